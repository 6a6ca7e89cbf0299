//! The crate's error type.

/// Everything that can go wrong in tile geometry and assembly.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// A tiling parameter that does not fit (with the numbers).
    #[error("invalid tiling: {0}")]
    InvalidGeometry(String),
    /// A model answer of a shape that is neither the core nor the buffered tile.
    #[error("tile {tile} band {band:?}: answer has shape {found:?}, expected {expected}")]
    AnswerShape {
        /// Tile as `(col, row)`.
        tile: String,
        /// Output band name.
        band: String,
        /// Shape found.
        found: Vec<usize>,
        /// What was acceptable.
        expected: String,
    },
    /// A tile added twice or outside the grid, or an assembly invariant broken.
    #[error("assembly: {0}")]
    Assembly(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

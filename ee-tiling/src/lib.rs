//! Tile geometry for Earth Engine–style prediction: affine transforms, pixel windows, tile
//! grids with overlap, input/output scale, and rayon-parallel assembly of predicted tiles
//! into seamless output (crop or blend), with Earth Engine's minimum-mask rule.
//!
//! ```
//! use ee_tiling::{Overlap, RasterSize, TileGrid, TileSize};
//!
//! // A 1000 x 700 raster in 256-pixel tiles, 8 pixels of total overlap per axis.
//! let grid = TileGrid::new(
//!     RasterSize::new(1000, 700).window(),
//!     TileSize::new(256, 256)?,
//!     Overlap::new(8, 8),
//!     TileSize::new(256, 256)?,
//! )?;
//! assert_eq!((grid.cols(), grid.rows()), (4, 3));
//! let last = grid.tiles().last().unwrap();
//! assert_eq!((last.input.x, last.input.width), (764, 264)); // 4 left + 256 + 4 right
//! # Ok::<(), ee_tiling::Error>(())
//! ```
//!
//! Pure arithmetic and in-memory assembly: no I/O (rasters are read and written by
//! `ee-raster-io`), no network, no tensors (answers arrive as ndarray views).

#![deny(missing_docs)]

mod answer;
mod assemble;
mod blend;
mod error;
mod geo;
mod grid;
mod mask;
mod shard;
mod window;

pub use answer::{crop_answer, BandDims, Cropped, Pixel, Sample};
pub use assemble::{Assembler, Block, MergeMode, TileAnswer};
pub use blend::axis_profile;
pub use error::{Error, Result};
pub use geo::GeoTransform;
pub use grid::{Margins, Overlap, Tile, TileGrid, TileIndex, TileSize};
pub use mask::min_mask;
pub use shard::Shard;
pub use window::{RasterSize, Window};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

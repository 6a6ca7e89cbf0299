//! `TileGrid`: a region cut into row-major tiles of `TileSize`, each sent with its `Overlap`
//! margins, and the output grid the answers form (scaled by output tile / input tile).

use crate::{Error, GeoTransform, RasterSize, Result, Window};

/// A tile's core size in pixels (both non-zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileSize {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl TileSize {
    /// A tile of `width` x `height`; zero is refused.
    pub fn new(width: usize, height: usize) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidGeometry(format!(
                "tile size [{width}, {height}] has a zero side"
            )));
        }
        Ok(TileSize { width, height })
    }
}

/// TOTAL overlap per axis: each tile is sent with `floor(x/2)` extra pixels on the left and
/// `x - floor(x/2)` on the right, and likewise `y` on top and bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Overlap {
    /// Total extra columns per tile.
    pub x: usize,
    /// Total extra rows per tile.
    pub y: usize,
}

impl Overlap {
    /// An overlap of `x` columns and `y` rows in total.
    pub fn new(x: usize, y: usize) -> Self {
        Overlap { x, y }
    }

    /// Margins on each side.
    pub fn margins(self) -> Margins {
        Margins {
            left: self.x / 2,
            right: self.x - self.x / 2,
            top: self.y / 2,
            bottom: self.y - self.y / 2,
        }
    }
}

/// Extra pixels on each side of a tile's core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Margins {
    /// Columns left of the core.
    pub left: usize,
    /// Columns right of the core.
    pub right: usize,
    /// Rows above the core.
    pub top: usize,
    /// Rows below the core.
    pub bottom: usize,
}

/// A tile's position in the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileIndex {
    /// Tile row (north to south).
    pub row: usize,
    /// Tile column (west to east).
    pub col: usize,
}

impl std::fmt::Display for TileIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(col {}, row {})", self.col, self.row)
    }
}

/// One tile: where it reads and where its answer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Position in the grid.
    pub index: TileIndex,
    /// Row-major sequence number.
    pub number: usize,
    /// The core, in input pixels of the raster (may run past the region's far edges).
    pub core: Window,
    /// The core with overlap margins: what is read and sent.
    pub input: Window,
    /// The core's place in the output grid (output pixels, may run past the output's edges).
    pub output: Window,
}

/// A region of a raster cut into tiles, and the output grid their answers form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileGrid {
    region: Window,
    tile: TileSize,
    overlap: Overlap,
    out_tile: TileSize,
    cols: usize,
    rows: usize,
}

/// How output pixels relate to input pixels along one axis.
fn check_ratio(axis: &str, input: usize, output: usize) -> Result<()> {
    if input.is_multiple_of(output) || output.is_multiple_of(input) {
        Ok(())
    } else {
        Err(Error::InvalidGeometry(format!(
            "input tile {axis} {input} and output tile {axis} {output} are not whole multiples of one another, so output pixels would not align with input pixels"
        )))
    }
}

impl TileGrid {
    /// Tiles `region` (input pixels of the raster) with cores of `tile`, margins from
    /// `overlap`, and answers of `out_tile` per core.
    pub fn new(
        region: Window,
        tile: TileSize,
        overlap: Overlap,
        out_tile: TileSize,
    ) -> Result<Self> {
        if region.width == 0 || region.height == 0 {
            return Err(Error::InvalidGeometry(format!(
                "the region is empty ({} x {} pixels)",
                region.width, region.height
            )));
        }
        if overlap.x >= tile.width || overlap.y >= tile.height {
            return Err(Error::InvalidGeometry(format!(
                "overlap [{}, {}] must be smaller than the tile [{}, {}]",
                overlap.x, overlap.y, tile.width, tile.height
            )));
        }
        check_ratio("width", tile.width, out_tile.width)?;
        check_ratio("height", tile.height, out_tile.height)?;
        Ok(TileGrid {
            region,
            tile,
            overlap,
            out_tile,
            cols: region.width.div_ceil(tile.width),
            rows: region.height.div_ceil(tile.height),
        })
    }

    /// The tiled region, in input pixels.
    pub fn region(&self) -> Window {
        self.region
    }

    /// Core tile size in input pixels.
    pub fn tile_size(&self) -> TileSize {
        self.tile
    }

    /// Core answer size in output pixels.
    pub fn output_tile_size(&self) -> TileSize {
        self.out_tile
    }

    /// The overlap.
    pub fn overlap(&self) -> Overlap {
        self.overlap
    }

    /// Tile columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Tile rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of tiles.
    pub fn len(&self) -> usize {
        self.cols * self.rows
    }

    /// Always false: a grid has at least one tile.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The tile at `index`.
    pub fn tile(&self, index: TileIndex) -> Tile {
        let m = self.overlap.margins();
        let core = Window::new(
            self.region.x + (index.col * self.tile.width) as i64,
            self.region.y + (index.row * self.tile.height) as i64,
            self.tile.width,
            self.tile.height,
        );
        Tile {
            index,
            number: index.row * self.cols + index.col,
            core,
            input: core.expand(m.left, m.top, m.right, m.bottom),
            output: Window::new(
                (index.col * self.out_tile.width) as i64,
                (index.row * self.out_tile.height) as i64,
                self.out_tile.width,
                self.out_tile.height,
            ),
        }
    }

    /// The tile with row-major sequence number `number`.
    pub fn tile_number(&self, number: usize) -> Option<Tile> {
        (number < self.len()).then(|| {
            self.tile(TileIndex {
                row: number / self.cols,
                col: number % self.cols,
            })
        })
    }

    /// Every tile, row-major.
    pub fn tiles(&self) -> impl Iterator<Item = Tile> + '_ {
        (0..self.len()).filter_map(|n| self.tile_number(n))
    }

    /// The output raster's size: the region scaled by output tile / input tile, rounded up.
    pub fn output_size(&self) -> RasterSize {
        RasterSize::new(
            (self.region.width * self.out_tile.width).div_ceil(self.tile.width),
            (self.region.height * self.out_tile.height).div_ceil(self.tile.height),
        )
    }

    /// Output pixel size as a multiple of the input's, per axis (`input tile / output tile`).
    pub fn pixel_scale(&self) -> (f64, f64) {
        (
            self.tile.width as f64 / self.out_tile.width as f64,
            self.tile.height as f64 / self.out_tile.height as f64,
        )
    }

    /// The output grid's transform, given the input raster's: same origin as the region,
    /// pixels scaled by [`TileGrid::pixel_scale`].
    pub fn output_transform(&self, input: GeoTransform) -> GeoTransform {
        let (sx, sy) = self.pixel_scale();
        input.offset(self.region.x, self.region.y).scaled(sx, sy)
    }

    /// The overlap margins in output pixels, when they scale to whole pixels.
    pub fn output_margins(&self) -> Option<Margins> {
        let m = self.overlap.margins();
        let scale = |v: usize, out: usize, inp: usize| {
            (v * out).is_multiple_of(inp).then_some(v * out / inp)
        };
        Some(Margins {
            left: scale(m.left, self.out_tile.width, self.tile.width)?,
            right: scale(m.right, self.out_tile.width, self.tile.width)?,
            top: scale(m.top, self.out_tile.height, self.tile.height)?,
            bottom: scale(m.bottom, self.out_tile.height, self.tile.height)?,
        })
    }

    /// The input pixels (a window of the raster) an output pixel `(col, row)` covers.
    pub fn footprint(&self, col: usize, row: usize) -> Window {
        let (tw, th, ow, oh) = (
            self.tile.width,
            self.tile.height,
            self.out_tile.width,
            self.out_tile.height,
        );
        let x0 = col * tw / ow;
        let x1 = ((col + 1) * tw).div_ceil(ow);
        let y0 = row * th / oh;
        let y1 = ((row + 1) * th).div_ceil(oh);
        Window::new(
            self.region.x + x0 as i64,
            self.region.y + y0 as i64,
            x1 - x0,
            y1 - y0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(w: usize, h: usize, t: usize, o: usize, out: usize) -> Result<TileGrid> {
        TileGrid::new(
            RasterSize::new(w, h).window(),
            TileSize::new(t, t)?,
            Overlap::new(o, o),
            TileSize::new(out, out)?,
        )
    }

    #[test]
    fn tiles_are_row_major_and_run_past_the_edge() {
        let g = grid(10, 5, 4, 3, 4).unwrap();
        assert_eq!((g.cols(), g.rows(), g.len()), (3, 2, 6));
        let t = g.tile_number(5).unwrap();
        assert_eq!(t.index, TileIndex { row: 1, col: 2 });
        assert_eq!(t.core, Window::new(8, 4, 4, 4));
        // overlap 3: 1 on the left/top, 2 on the right/bottom
        assert_eq!(t.input, Window::new(7, 3, 7, 7));
        assert_eq!(g.output_size(), RasterSize::new(10, 5));
    }

    #[test]
    fn bad_parameters_name_their_numbers() {
        assert_eq!(
            grid(10, 10, 4, 4, 4).unwrap_err().to_string(),
            "invalid tiling: overlap [4, 4] must be smaller than the tile [4, 4]"
        );
        assert!(grid(10, 10, 6, 0, 4)
            .unwrap_err()
            .to_string()
            .contains("input tile width 6 and output tile width 4"));
        assert!(grid(0, 10, 4, 0, 4).is_err());
    }

    #[test]
    fn classifier_grid_is_coarser_with_the_same_origin() {
        let g = grid(1000, 700, 256, 0, 1).unwrap();
        assert_eq!(g.output_size(), RasterSize::new(4, 3));
        let t = g.output_transform(GeoTransform::north_up(500_000.0, 4_000_000.0, 10.0, 10.0));
        assert_eq!(
            t,
            GeoTransform::north_up(500_000.0, 4_000_000.0, 2560.0, 2560.0)
        );
        assert_eq!(g.footprint(3, 2), Window::new(768, 512, 256, 256));
    }

    #[test]
    fn margins_scale_only_when_whole() {
        assert_eq!(
            grid(64, 64, 32, 8, 16).unwrap().output_margins(),
            Some(Margins {
                left: 2,
                right: 2,
                top: 2,
                bottom: 2
            })
        );
        assert_eq!(grid(64, 64, 32, 3, 16).unwrap().output_margins(), None);
        assert_eq!(
            grid(64, 64, 16, 4, 32).unwrap().output_margins(),
            Some(Margins {
                left: 4,
                right: 4,
                top: 4,
                bottom: 4
            })
        );
    }
}

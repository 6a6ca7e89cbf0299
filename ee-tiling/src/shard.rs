//! Splitting a job across machines: shard `i` of `n` is a band of whole tile rows of the
//! grid, so every shard sends exactly the tiles the whole job would send for its rows and,
//! with crop merging, the shards' outputs mosaic (a GDAL VRT) into the whole job's pixels.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result, TileGrid, Window};

/// Shard `index` (0-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// Shard `index` of `count`; `index` must be below `count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::InvalidGeometry(format!(
                "shard {index}/{count}: the index must be 0 to {} (0-based)",
                count.saturating_sub(1)
            )));
        }
        Ok(Shard { index, count })
    }

    /// The 0-based index.
    pub fn index(self) -> usize {
        self.index
    }

    /// How many shards there are.
    pub fn count(self) -> usize {
        self.count
    }

    /// The part of `grid`'s region this shard predicts: tile rows
    /// `[index * rows / count, (index + 1) * rows / count)`, clipped to the region. More
    /// shards than tile rows is an error (some would be empty).
    pub fn region(self, grid: &TileGrid) -> Result<Window> {
        let rows = grid.rows();
        let (first, end) = (
            self.index * rows / self.count,
            (self.index + 1) * rows / self.count,
        );
        if self.count > rows {
            return Err(Error::InvalidGeometry(format!(
                "shard {self} is empty: the region has only {rows} tile rows; use at most {rows} shards"
            )));
        }
        let region = grid.region();
        let tile_h = grid.tile_size().height;
        let top = first * tile_h;
        let bottom = (end * tile_h).min(region.height);
        Ok(Window::new(
            region.x,
            region.y + top as i64,
            region.width,
            bottom - top,
        ))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `"i/n"`, 0-based: `0/4` to `3/4`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidGeometry(format!(
                "{s:?} is not a shard: write i/n with 0 <= i < n, e.g. 0/4"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Overlap, TileSize};

    fn grid(height: usize) -> TileGrid {
        TileGrid::new(
            Window::new(0, 0, 50, height),
            TileSize::new(16, 16).unwrap(),
            Overlap::new(4, 4),
            TileSize::new(16, 16).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn shards_cover_the_region_in_whole_tile_rows_without_overlap() {
        for height in [1, 15, 16, 17, 100, 161] {
            let g = grid(height);
            for count in 1..=g.rows() {
                let mut next = 0i64;
                for i in 0..count {
                    let w = Shard::new(i, count).unwrap().region(&g).unwrap();
                    assert_eq!(w.y, next, "height {height}, shard {i}/{count}");
                    assert_eq!((w.x, w.width), (0, 50));
                    if w.bottom() < height as i64 {
                        assert_eq!(w.height % 16, 0);
                    }
                    next = w.bottom();
                }
                assert_eq!(next, height as i64);
            }
        }
    }

    #[test]
    fn bad_shards_are_named() {
        assert!(Shard::new(4, 4).is_err());
        assert!("3/0".parse::<Shard>().is_err());
        assert!("x"
            .parse::<Shard>()
            .unwrap_err()
            .to_string()
            .contains("e.g. 0/4"));
        assert_eq!("1/3".parse::<Shard>().unwrap(), Shard::new(1, 3).unwrap());
        let e = Shard::new(5, 9).unwrap().region(&grid(40)).unwrap_err();
        assert!(e.to_string().contains("only 3 tile rows"), "{e}");
    }
}

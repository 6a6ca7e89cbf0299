//! Earth Engine's minimum-mask rule at the output scale: an output pixel is valid only where
//! every input pixel of its footprint is valid.

use ndarray::{Array2, ArrayView2};

use crate::{Error, Result, TileGrid};

/// The output-scale validity of one tile's core, from the validity of its input core
/// (`(tile rows, tile cols)`, true = valid). The answer is `(output rows, output cols)`.
pub fn min_mask(grid: &TileGrid, input_valid: ArrayView2<'_, bool>) -> Result<Array2<bool>> {
    let (t, o) = (grid.tile_size(), grid.output_tile_size());
    if input_valid.dim() != (t.height, t.width) {
        return Err(Error::Assembly(format!(
            "input mask is {:?}, expected the tile core ({}, {})",
            input_valid.dim(),
            t.height,
            t.width
        )));
    }
    // The usual cases, without visiting every footprint: output at the input's scale, and
    // a tile with nothing masked.
    if (o.height, o.width) == (t.height, t.width) {
        return Ok(input_valid.to_owned());
    }
    if input_valid.iter().all(|&v| v) {
        return Ok(Array2::from_elem((o.height, o.width), true));
    }
    Ok(Array2::from_shape_fn((o.height, o.width), |(r, c)| {
        let (x0, x1) = (c * t.width / o.width, ((c + 1) * t.width).div_ceil(o.width));
        let (y0, y1) = (
            r * t.height / o.height,
            ((r + 1) * t.height).div_ceil(o.height),
        );
        (y0..y1).all(|y| (x0..x1).all(|x| input_valid[[y, x]]))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Overlap, RasterSize, TileSize};

    #[test]
    fn one_masked_input_pixel_masks_its_block() {
        let g = TileGrid::new(
            RasterSize::new(8, 8).window(),
            TileSize::new(4, 4).unwrap(),
            Overlap::default(),
            TileSize::new(2, 2).unwrap(),
        )
        .unwrap();
        let mut valid = Array2::from_elem((4, 4), true);
        valid[[3, 0]] = false;
        let m = min_mask(&g, valid.view()).unwrap();
        assert_eq!(m, ndarray::arr2(&[[true, true], [false, true]]));
        let up = TileGrid::new(
            RasterSize::new(8, 8).window(),
            TileSize::new(2, 2).unwrap(),
            Overlap::default(),
            TileSize::new(4, 4).unwrap(),
        )
        .unwrap();
        let mut v = Array2::from_elem((2, 2), true);
        v[[0, 1]] = false;
        let m = min_mask(&up, v.view()).unwrap();
        assert!(!m[[0, 2]] && !m[[1, 3]] && m[[2, 2]] && m[[0, 1]]);
        assert_eq!(
            min_mask(&g, Array2::from_elem((4, 4), true).view()).unwrap(),
            Array2::from_elem((2, 2), true)
        );
    }

    #[test]
    fn at_the_input_scale_the_mask_is_the_input_core() {
        let g = TileGrid::new(
            RasterSize::new(8, 8).window(),
            TileSize::new(4, 4).unwrap(),
            Overlap::default(),
            TileSize::new(4, 4).unwrap(),
        )
        .unwrap();
        let mut valid = Array2::from_elem((6, 6), true);
        valid[[2, 3]] = false;
        // A core cut out of a larger (bordered) window, as the pipeline passes it.
        let core = valid.slice(ndarray::s![1..5, 1..5]);
        let m = min_mask(&g, core).unwrap();
        assert_eq!(m, core.to_owned());
        assert!(!m[[1, 2]] && m.iter().filter(|v| !**v).count() == 1);
    }
}

//! Tiled prediction without seams: a 300 x 200 raster is cut into 64-pixel tiles, a
//! neighbourhood "model" (a 5 x 5 mean, which needs 2 pixels of context on every side) runs
//! on each tile's input window, and the answers are cropped or blended and assembled row by
//! row. The assembled raster is compared with the model run once over the whole raster:
//!
//! - no overlap: every tile edge lacks context, so seams appear along the tile borders;
//! - 4 pixels of overlap, crop (Earth Engine's rule): identical to the untiled result;
//! - 16 pixels of overlap, blend: margins averaged with raised-cosine weights.
//!
//! `cargo run -p ee-tiling --example seamless` (no arguments; nothing is written to disk).

use ee_tiling::{
    crop_answer, min_mask, Assembler, BandDims, MergeMode, Overlap, RasterSize, TileAnswer,
    TileGrid, TileSize, Window,
};
use ndarray::{s, Array2, ArrayD, IxDyn};

const WIDTH: usize = 300;
const HEIGHT: usize = 200;
const RADIUS: i64 = 2;

/// The synthetic scene: smooth waves and a sharp-edged "lake".
fn scene() -> Array2<f32> {
    Array2::from_shape_fn((HEIGHT, WIDTH), |(y, x)| {
        let (fx, fy) = (x as f32 / 37.0, y as f32 / 23.0);
        let lake = if (x as f32 - 170.0).hypot(y as f32 - 90.0) < 45.0 {
            2.0
        } else {
            0.0
        };
        fx.sin() * fy.cos() + lake
    })
}

/// A raster window, zero outside the raster (as a reader fills it).
fn read_window(raster: &Array2<f32>, w: Window) -> Array2<f32> {
    Array2::from_shape_fn((w.height, w.width), |(r, c)| {
        let (x, y) = (w.x + c as i64, w.y + r as i64);
        if (0..WIDTH as i64).contains(&x) && (0..HEIGHT as i64).contains(&y) {
            raster[[y as usize, x as usize]]
        } else {
            0.0
        }
    })
}

/// The "model": a 5 x 5 mean over its input, zero beyond the input's edge. Its answer has
/// the input's size, so it is the core plus the overlap margins.
fn model(input: &Array2<f32>) -> ArrayD<f32> {
    let (h, w) = input.dim();
    ArrayD::from_shape_fn(IxDyn(&[h, w, 1]), |i| {
        let (r, c) = (i[0] as i64, i[1] as i64);
        let mut sum = 0.0;
        for y in (r - RADIUS).max(0)..=(r + RADIUS).min(h as i64 - 1) {
            for x in (c - RADIUS).max(0)..=(c + RADIUS).min(w as i64 - 1) {
                sum += input[[y as usize, x as usize]];
            }
        }
        sum / ((2 * RADIUS + 1) * (2 * RADIUS + 1)) as f32
    })
}

/// Runs the model tile by tile and assembles the answers; returns the output raster and the
/// number of blocks the assembler handed on.
fn tiled(
    raster: &Array2<f32>,
    overlap: usize,
    mode: MergeMode,
) -> Result<(Array2<f64>, usize), Box<dyn std::error::Error>> {
    let grid = TileGrid::new(
        RasterSize::new(WIDTH, HEIGHT).window(),
        TileSize::new(64, 64)?,
        Overlap::new(overlap, overlap),
        TileSize::new(64, 64)?,
    )?;
    let out = grid.output_size();
    let mut result = Array2::<f64>::zeros((out.height, out.width));
    let mut assembler = Assembler::new(grid, mode, 1)?;
    let mut blocks = 0;
    for row in 0..grid.rows() {
        // One row of tiles is one "batch" of requests.
        let mut answers = Vec::new();
        for col in 0..grid.cols() {
            let tile = grid.tile(ee_tiling::TileIndex { row, col });
            let input = read_window(raster, tile.input);
            let answer = model(&input);
            // Checks the answer's shape and keeps the margins only where they are blended.
            let cropped = crop_answer(
                answer.view(),
                &grid,
                &tile,
                "mean",
                BandDims::Scalar,
                mode == MergeMode::Blend,
            )?;
            // Valid where the core lies inside the raster (Earth Engine's minimum mask).
            let inside = tile.core.intersect(RasterSize::new(WIDTH, HEIGHT).window());
            let core_valid =
                Array2::from_shape_fn((tile.core.height, tile.core.width), |(r, c)| {
                    inside.is_some_and(|w| {
                        w.contains(Window::new(
                            tile.core.x + c as i64,
                            tile.core.y + r as i64,
                            1,
                            1,
                        ))
                    })
                });
            answers.push(TileAnswer {
                tile,
                values: cropped.values,
                margins: cropped.margins,
                valid: min_mask(&grid, core_valid.view())?,
            });
        }
        assembler.add(&answers)?;
        while let Some(block) = assembler.take_finished()? {
            if !block.valid.iter().all(|v| *v) {
                return Err(format!("block at row {} has masked pixels", block.y0).into());
            }
            let rows = block.valid.nrows();
            result
                .slice_mut(s![block.y0..block.y0 + rows, ..])
                .assign(&block.values.slice(s![.., .., 0]));
            blocks += 1;
        }
    }
    // Every tile answered, every row handed on exactly once.
    assembler.finish()?;
    Ok((result, blocks))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let raster = scene();
    let whole = model(&raster);
    let whole = whole.slice(s![.., .., 0]).mapv(f64::from);
    println!("raster {WIDTH} x {HEIGHT}, 64 x 64 tiles, a 5 x 5 mean as the model");

    let mut seam_error = 0.0;
    for (overlap, mode) in [
        (0, MergeMode::Crop),
        (4, MergeMode::Crop),
        (16, MergeMode::Blend),
    ] {
        let (out, blocks) = tiled(&raster, overlap, mode)?;
        let diff = (&out - &whole).mapv(f64::abs);
        let max = diff.iter().copied().fold(0.0, f64::max);
        let differing = diff.iter().filter(|d| **d > 1e-6).count();
        println!(
            "overlap {overlap:>2} {mode:<5?}: {blocks} blocks, max |tiled - untiled| = {max:.6}, {differing} of {} pixels differ",
            diff.len()
        );
        match (overlap, mode) {
            (0, _) => seam_error = max,
            (_, MergeMode::Crop) if max > 1e-6 => {
                return Err(format!("crop with overlap {overlap} is not seamless: {max}").into())
            }
            (_, MergeMode::Blend) if max >= seam_error => {
                return Err(
                    format!("blend ({max}) is no better than no overlap ({seam_error})").into(),
                )
            }
            _ => {}
        }
    }
    if seam_error < 1e-3 {
        return Err("expected seams without overlap".into());
    }
    println!("ok: enough overlap gives the untiled result; none leaves seams at tile borders");
    Ok(())
}

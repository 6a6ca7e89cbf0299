//! Properties that must hold for every raster size, tile size, overlap (even or odd) and
//! scale: every output pixel covered exactly once in crop mode, blend weights summing to one,
//! output transforms consistent with the input grid, tiled equal to untiled, and memory
//! bounded by the rows in flight.

use ee_tiling::{
    crop_answer, min_mask, Assembler, BandDims, Block, GeoTransform, MergeMode, Overlap,
    RasterSize, TileAnswer, TileGrid, TileSize,
};
use ndarray::{s, Array2, Array3, IxDyn};
use proptest::prelude::*;

/// A grid with an output tile that is the input tile divided or multiplied by a whole factor.
fn grid_strategy() -> impl Strategy<Value = TileGrid> {
    (
        1usize..50,
        1usize..50,
        2usize..12,
        2usize..12,
        0usize..12,
        0usize..12,
        0usize..3,
        any::<bool>(),
    )
        .prop_filter_map(
            "overlap must be smaller than the tile",
            |(w, h, tw, th, ox, oy, k, down)| {
                let f = [1, 2, 3][k];
                let (ow, oh) = if down {
                    if tw % f != 0 || th % f != 0 {
                        return None;
                    }
                    (tw / f, th / f)
                } else {
                    (tw * f, th * f)
                };
                TileGrid::new(
                    RasterSize::new(w, h).window(),
                    TileSize::new(tw, th).ok()?,
                    Overlap::new(ox, oy),
                    TileSize::new(ow, oh).ok()?,
                )
                .ok()
            },
        )
}

/// Runs the whole grid through an assembler, one tile row at a time, with answers made by
/// `answer(tile) -> values over core + margins` (margins in blend mode, none in crop mode);
/// returns the assembled planes and the most rows held at once.
fn assemble(
    grid: &TileGrid,
    mode: MergeMode,
    planes: usize,
    answer: &dyn Fn(&ee_tiling::Tile, ee_tiling::Margins) -> Array3<f64>,
) -> (Array3<f64>, usize) {
    let margins = if mode == MergeMode::Blend {
        grid.output_margins().unwrap()
    } else {
        Default::default()
    };
    assemble_with_margins(grid, mode, margins, planes, answer)
}

/// [`assemble`] with answers carrying `margins` around their cores whatever the mode (crop
/// must then throw them away).
fn assemble_with_margins(
    grid: &TileGrid,
    mode: MergeMode,
    margins: ee_tiling::Margins,
    planes: usize,
    answer: &dyn Fn(&ee_tiling::Tile, ee_tiling::Margins) -> Array3<f64>,
) -> (Array3<f64>, usize) {
    let out = grid.output_size();
    // Blocks of 1 to 7 rows, varying with the raster, must assemble the same picture.
    let mut asm = Assembler::new(*grid, mode, planes)
        .unwrap()
        .with_max_block_rows(1 + out.height % 7);
    let mut result = Array3::<f64>::from_elem((planes, out.height, out.width), f64::NAN);
    let mut max_rows = 0;
    let mut put = |b: Block| {
        let h = b.valid.nrows();
        result
            .slice_mut(s![.., b.y0..b.y0 + h, ..])
            .assign(&b.values.view().permuted_axes([2, 0, 1]));
    };
    for row in 0..grid.rows() {
        let answers: Vec<TileAnswer> = (0..grid.cols())
            .map(|col| {
                let tile = grid.tile(ee_tiling::TileIndex { row, col });
                TileAnswer {
                    tile,
                    values: answer(&tile, margins),
                    margins,
                    valid: Array2::from_elem((tile.output.height, tile.output.width), true),
                }
            })
            .collect();
        asm.add(&answers).unwrap();
        max_rows = max_rows.max(asm.rows_in_flight());
        while let Some(b) = asm.take_finished().unwrap() {
            put(b);
        }
    }
    asm.finish().unwrap();
    (result, max_rows)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn crop_covers_every_output_pixel_exactly_once(grid in grid_strategy()) {
        // Each answer holds its tile's number: every pixel must come from the tile whose
        // output core contains it (the assembler itself errors on a pixel written twice).
        let (result, max_rows) = assemble(&grid, MergeMode::Crop, 1, &|t, _| {
            Array3::from_elem((t.output.height, t.output.width, 1), t.number as f64)
        });
        let o = grid.output_tile_size();
        for ((_, y, x), v) in result.indexed_iter() {
            let expected = (y / o.height) * grid.cols() + x / o.width;
            prop_assert_eq!(*v, expected as f64);
        }
        prop_assert!(max_rows <= o.height, "held {} rows for tiles {} high", max_rows, o.height);
    }

    #[test]
    fn blend_weights_sum_to_one_everywhere(grid in grid_strategy()) {
        prop_assume!(grid.output_margins().is_some());
        // Every answer is the same smooth field, so any weighting that sums to one gives it back.
        let field = |x: i64, y: i64| (x as f64) * 0.5 + (y as f64) * 1000.0 + 3.0;
        let (result, max_rows) = assemble(&grid, MergeMode::Blend, 2, &|t, m| {
            let f = t.output.expand(m.left, m.top, m.right, m.bottom);
            Array3::from_shape_fn((f.height, f.width, 2), |(r, c, p)| field(f.x + c as i64, f.y + r as i64) * (p + 1) as f64)
        });
        for ((p, y, x), v) in result.indexed_iter() {
            let want = field(x as i64, y as i64) * (p + 1) as f64;
            prop_assert!((v - want).abs() <= 1e-9 * want.abs().max(1.0), "({}, {}): {} vs {}", x, y, v, want);
        }
        let m = grid.output_margins().unwrap();
        prop_assert!(max_rows <= grid.output_tile_size().height + m.top + m.bottom);
    }

    #[test]
    fn output_pixel_centres_land_on_their_input_footprints(
        grid in grid_strategy(),
        x0 in -1e6f64..1e6, y0 in -1e6f64..1e6, px in 0.1f64..100.0, py in 0.1f64..100.0, rot in -0.5f64..0.5,
    ) {
        let input = GeoTransform { x0, dx: px, rx: rot, y0, ry: -rot, dy: -py };
        let output = grid.output_transform(input);
        let out = grid.output_size();
        for (c, r) in [(0, 0), (out.width - 1, out.height - 1), (out.width / 2, out.height / 2)] {
            let f = grid.footprint(c, r);
            // The footprint of a whole output pixel (not clipped at the raster's edge).
            let (cx, cy) = input.apply(f.x as f64 + f.width as f64 / 2.0, f.y as f64 + f.height as f64 / 2.0);
            let (ox, oy) = output.apply(c as f64 + 0.5, r as f64 + 0.5);
            let (sx, sy) = grid.pixel_scale();
            if sx >= 1.0 && sy >= 1.0 {
                prop_assert!((cx - ox).abs() < 1e-6 && (cy - oy).abs() < 1e-6, "({}, {}): {:?} vs {:?}", c, r, (cx, cy), (ox, oy));
            } else {
                // Upscaled output: each output pixel is a sub-pixel inside its input pixel.
                let (ix, iy) = input.apply(f.x as f64 + 0.5, f.y as f64 + 0.5);
                prop_assert!((ix - ox).abs() <= px + rot.abs() && (iy - oy).abs() <= py + rot.abs());
            }
        }
    }
}

/// The weights SPEC 2.7's raised-cosine blend gives output coordinate `x` along one axis, as
/// `(tile column or row, weight)`: tiles `core` pixels wide, `count` of them, each answer
/// reaching `before` pixels before its core and `after` past it. The boundary between tiles
/// `c - 1` and `c` at `b = c * core` is a zone `[b - before, b + after)` of `z = before + after`
/// pixels both answers cover; at its `t`-th pixel tile `c` weighs `sin^2(pi (t + 1/2) / 2z)`
/// and tile `c - 1` `cos^2` of the same angle (the half-angle form of `1/2 -+ 1/2 cos(pi
/// (t + 1/2) / z)`), so the two sum to one. Elsewhere, the raster's edges included (nothing
/// there to blend with, so nothing is faded), the tile whose core holds `x` has weight one.
fn raised_cosine_weights(
    x: usize,
    core: usize,
    count: usize,
    before: usize,
    after: usize,
) -> Vec<(usize, f64)> {
    let z = (before + after) as f64;
    let own = x / core;
    let angle = |t: usize| std::f64::consts::PI * (t as f64 + 0.5) / (2.0 * z);
    if own > 0 && x < own * core + after {
        // In the zone shared with the previous tile, past the boundary.
        let a = angle(x + before - own * core);
        vec![(own - 1, a.cos().powi(2)), (own, a.sin().powi(2))]
    } else if own + 1 < count && x + before >= (own + 1) * core {
        // In the zone shared with the next tile, before the boundary.
        let a = angle(x + before - (own + 1) * core);
        vec![(own, a.cos().powi(2)), (own + 1, a.sin().powi(2))]
    } else {
        vec![(own, 1.0)]
    }
}

/// What tile `number` answers on plane `p`, everywhere in its footprint: a different constant
/// for every tile and plane, so a pixel's value says which tiles it came from and how much.
fn tile_constant(number: usize, p: usize) -> f64 {
    (number + 1) as f64 * (p + 1) as f64
}

/// Assembles answers that hold [`tile_constant`] over the core and the scaled margins, in
/// `mode`, and checks every output pixel: in crop mode exactly its own tile's constant, in
/// blend mode the average of the tiles reaching it weighed by [`raised_cosine_weights`] along
/// both axes. Returns how many pixels blend mixed (had a weight other than 0 or 1).
fn check_neighbours_answering_differently(
    grid: &TileGrid,
    mode: MergeMode,
) -> Result<usize, TestCaseError> {
    let m = grid
        .output_margins()
        .expect("margins scale to whole output pixels");
    let planes = 2;
    let (result, _) = assemble_with_margins(grid, mode, m, planes, &|t, m| {
        let f = t.output.expand(m.left, m.top, m.right, m.bottom);
        Array3::from_shape_fn((f.height, f.width, planes), |(_, _, p)| {
            tile_constant(t.number, p)
        })
    });
    let o = grid.output_tile_size();
    let mut mixed = 0;
    for ((p, y, x), v) in result.indexed_iter() {
        let (col, row) = (x / o.width, y / o.height);
        let want = match mode {
            MergeMode::Crop => tile_constant(row * grid.cols() + col, p),
            MergeMode::Blend => {
                let wx = raised_cosine_weights(x, o.width, grid.cols(), m.left, m.right);
                let wy = raised_cosine_weights(y, o.height, grid.rows(), m.top, m.bottom);
                if p == 0 && (wx.len() > 1 || wy.len() > 1) {
                    mixed += 1;
                }
                let mut sum = 0.0;
                for &(c, a) in &wx {
                    for &(r, b) in &wy {
                        sum += a * b * tile_constant(r * grid.cols() + c, p);
                    }
                }
                sum
            }
        };
        // Crop copies values; blend's sum of weighted constants may round differently.
        let good = match mode {
            MergeMode::Crop => *v == want,
            MergeMode::Blend => (v - want).abs() <= 1e-12 * want,
        };
        prop_assert!(
            good,
            "{:?} plane {} at ({}, {}) in tile ({}, {}): {} not {}",
            mode,
            p,
            x,
            y,
            col,
            row,
            v,
            want
        );
    }
    Ok(mixed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Neighbouring tiles answer different constants: crop gives every pixel its own tile's
    /// constant (the answers' margins thrown away), blend the raised-cosine average of SPEC
    /// 2.7, computed here from the formula and not from the crate's weights.
    #[test]
    fn neighbours_answering_differently_crop_and_blend_as_specified(grid in grid_strategy()) {
        prop_assume!(grid.output_margins().is_some());
        check_neighbours_answering_differently(&grid, MergeMode::Crop)?;
        check_neighbours_answering_differently(&grid, MergeMode::Blend)?;
    }
}

/// One grid worked by hand: three columns and two rows of 8-pixel tiles, 4 pixels of overlap
/// (zones 4 wide around each boundary). Blend and crop must disagree on every zone pixel, and
/// one pixel is checked against its number.
#[test]
fn blend_mixes_neighbours_where_crop_does_not() {
    let grid = TileGrid::new(
        RasterSize::new(20, 13).window(),
        TileSize::new(8, 8).unwrap(),
        Overlap::new(4, 4),
        TileSize::new(8, 8).unwrap(),
    )
    .unwrap();
    let mixed = check_neighbours_answering_differently(&grid, MergeMode::Blend).unwrap();
    check_neighbours_answering_differently(&grid, MergeMode::Crop).unwrap();
    // Columns 6..10 and 14..18 over all 13 rows, rows 6..10 over the rest of the 20 columns.
    assert_eq!(mixed, 2 * 4 * 13 + 4 * (20 - 8));
    let m = grid.output_margins().unwrap();
    let blend = assemble_with_margins(&grid, MergeMode::Blend, m, 1, &|t, m| {
        let f = t.output.expand(m.left, m.top, m.right, m.bottom);
        Array3::from_elem((f.height, f.width, 1), tile_constant(t.number, 0))
    })
    .0;
    let crop = assemble_with_margins(&grid, MergeMode::Crop, m, 1, &|t, m| {
        let f = t.output.expand(m.left, m.top, m.right, m.bottom);
        Array3::from_elem((f.height, f.width, 1), tile_constant(t.number, 0))
    })
    .0;
    // Column 6, row 2: the first pixel of the zone between tile 0 (answers 1) and tile 1
    // (answers 2): 1 * cos^2(pi / 16) + 2 * sin^2(pi / 16) = 1 + sin^2(pi / 16).
    assert!(
        (blend[[0, 2, 6]] - 1.038_060_233_744_356_5).abs() < 1e-14,
        "{}",
        blend[[0, 2, 6]]
    );
    assert_eq!(crop[[0, 2, 6]], 1.0);
    // Column 9, row 2: the last pixel of that zone, tile 1's: 1 * sin^2 + 2 * cos^2.
    assert!(
        (blend[[0, 2, 9]] - 1.961_939_766_255_643_5).abs() < 1e-14,
        "{}",
        blend[[0, 2, 9]]
    );
    assert_eq!(crop[[0, 2, 9]], 2.0);
    // The raster's edges are not faded: column 0 and the last column are their tiles' own.
    assert_eq!((blend[[0, 2, 0]], blend[[0, 2, 19]]), (1.0, 3.0));
}

/// A 5x5 convolution (radius 2) with zero padding beyond the array.
fn conv5(a: &Array2<f64>) -> Array2<f64> {
    let (h, w) = a.dim();
    let k = |dy: i64, dx: i64| ((dy + 3) * 7 + (dx + 3) * 3) as f64 * 0.01 - 0.2;
    Array2::from_shape_fn((h, w), |(y, x)| {
        let mut acc = 0.0;
        for dy in -2i64..=2 {
            for dx in -2i64..=2 {
                let (yy, xx) = (y as i64 + dy, x as i64 + dx);
                if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                    acc += k(dy, dx) * a[[yy as usize, xx as usize]];
                }
            }
        }
        acc
    })
}

#[test]
fn tiled_convolution_equals_untiled_in_the_interior() {
    for (w, h) in [(1, 1), (7, 5), (16, 16), (33, 17), (50, 61)] {
        for tile in [5, 8, 13] {
            let image =
                Array2::from_shape_fn((h, w), |(y, x)| ((x * 31 + y * 17) % 23) as f64 - 11.0);
            let whole = conv5(&image);
            let grid = TileGrid::new(
                RasterSize::new(w, h).window(),
                TileSize::new(tile, tile).unwrap(),
                Overlap::new(4, 4),
                TileSize::new(tile, tile).unwrap(),
            )
            .unwrap();
            // Crop only (SPEC's correctness anchor): blend also weighs margin pixels whose
            // receptive field ran past the tile's window, so it smooths seams rather than
            // reproducing the untiled result (blend's own arithmetic is checked above).
            let (result, _) = assemble(&grid, MergeMode::Crop, 1, &|t, _| {
                // Read the tile's input window, 0 outside the raster, run the model on it.
                let win = t.input;
                let input = Array2::from_shape_fn((win.height, win.width), |(r, c)| {
                    let (y, x) = (win.y + r as i64, win.x + c as i64);
                    if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                        image[[y as usize, x as usize]]
                    } else {
                        0.0
                    }
                });
                let answer = conv5(&input)
                    .into_shape_with_order(IxDyn(&[win.height, win.width, 1]))
                    .unwrap();
                crop_answer(answer.view(), &grid, t, "conv", BandDims::Scalar, false)
                    .unwrap()
                    .values
            });
            for y in 2..h.saturating_sub(2) {
                for x in 2..w.saturating_sub(2) {
                    assert_eq!(
                        result[[0, y, x]],
                        whole[[y, x]],
                        "{w}x{h} tile {tile} at ({x}, {y})"
                    );
                }
            }
        }
    }
}

#[test]
fn masks_follow_the_min_rule_through_assembly() {
    let grid = TileGrid::new(
        RasterSize::new(8, 8).window(),
        TileSize::new(4, 4).unwrap(),
        Overlap::default(),
        TileSize::new(2, 2).unwrap(),
    )
    .unwrap();
    let mut asm = Assembler::new(grid, MergeMode::Crop, 1).unwrap();
    let answers: Vec<TileAnswer> = grid
        .tiles()
        .map(|t| {
            let mut input_valid = Array2::from_elem((4, 4), true);
            if t.number == 3 {
                input_valid[[0, 0]] = false;
            }
            TileAnswer {
                tile: t,
                values: Array3::from_elem((2, 2, 1), 5.0),
                margins: Default::default(),
                valid: min_mask(&grid, input_valid.view()).unwrap(),
            }
        })
        .collect();
    asm.add(&answers).unwrap();
    let b = asm.take_finished().unwrap().unwrap();
    assert!(!b.valid[[2, 2]] && b.valid[[2, 3]] && b.valid[[3, 2]]);
    assert_eq!(b.values[[2, 2, 0]], 0.0);
    assert_eq!(b.values[[3, 3, 0]], 5.0);
    asm.finish().unwrap();
}

#[test]
fn a_missing_or_repeated_tile_is_an_error() {
    let grid = TileGrid::new(
        RasterSize::new(8, 4).window(),
        TileSize::new(4, 4).unwrap(),
        Overlap::default(),
        TileSize::new(4, 4).unwrap(),
    )
    .unwrap();
    let answer = |n| {
        let t = grid.tile_number(n).unwrap();
        TileAnswer {
            tile: t,
            values: Array3::<f64>::zeros((4, 4, 1)),
            margins: Default::default(),
            valid: Array2::from_elem((4, 4), true),
        }
    };
    let mut asm = Assembler::new(grid, MergeMode::Crop, 1).unwrap();
    asm.add(&[answer(0)]).unwrap();
    assert!(asm
        .add(&[answer(0)])
        .unwrap_err()
        .to_string()
        .contains("answered twice"));
    assert!(asm.take_finished().unwrap().is_none());
    assert!(asm
        .finish()
        .unwrap_err()
        .to_string()
        .contains("tile (col 1, row 0) was never answered"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    /// Given float32 answers (what models send), an `f32` assembler recycling every block it
    /// hands out gives exactly the `f64` assembler's blocks converted to `f32`, masked pixels
    /// 0, in both merge modes (blend still sums in f64).
    #[test]
    fn f32_assembly_is_f64_assembly_rounded_once(grid in grid_strategy(), blend: bool, seed in 0u64..1000) {
        let mode = if blend && grid.output_margins().is_some() { MergeMode::Blend } else { MergeMode::Crop };
        let margins = if mode == MergeMode::Blend { grid.output_margins().unwrap() } else { Default::default() };
        let rows = 1 + grid.output_size().height % 5;
        let mut wide = Assembler::<f64>::new(grid, mode, 2).unwrap().with_max_block_rows(rows);
        let mut narrow = Assembler::<f32>::new(grid, mode, 2).unwrap().with_max_block_rows(rows);
        for tile in grid.tiles() {
            let f = tile.output.expand(margins.left, margins.top, margins.right, margins.bottom);
            let values = Array3::from_shape_fn((f.height, f.width, 2), |(r, c, p)| {
                (((r * 31 + c * 7 + p + tile.number) as f64 + seed as f64).sin() * 1e3 + 0.1) as f32 as f64
            });
            let valid = Array2::from_shape_fn((tile.output.height, tile.output.width), |(r, c)| {
                !(r + c + tile.number + seed as usize).is_multiple_of(5)
            });
            let a = TileAnswer { tile, values, margins, valid };
            let b = TileAnswer { tile, values: a.values.mapv(|v| v as f32), margins, valid: a.valid.clone() };
            wide.add(std::slice::from_ref(&a)).unwrap();
            narrow.add(std::slice::from_ref(&b)).unwrap();
            while let Some(w) = wide.take_finished().unwrap() {
                let n = narrow.take_finished().unwrap().unwrap();
                prop_assert_eq!(w.y0, n.y0);
                prop_assert_eq!(&w.valid, &n.valid);
                for ((x, y), ok) in w.values.iter().zip(n.values.iter()).zip(w.valid.iter().flat_map(|&v| [v, v])) {
                    prop_assert_eq!((*x as f32).to_bits(), y.to_bits());
                    if !ok {
                        prop_assert_eq!(*y, 0.0);
                    }
                }
                narrow.recycle(n);
            }
            prop_assert!(narrow.take_finished().unwrap().is_none());
        }
        wide.finish().unwrap();
        narrow.finish().unwrap();
    }
}

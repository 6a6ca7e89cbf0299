//! Assembly throughput (output megapixels per second) of a 2048 x 2048 x 4-plane output from
//! 256-pixel tiles with 16 pixels of overlap, crop and blend, on one thread and on all cores.
//! With `--bench`, also prints median Mpx/s as `bench-report|` rows for `cargo xtask bench`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use ee_tiling::{
    Assembler, MergeMode, Overlap, RasterSize, TileAnswer, TileGrid, TileIndex, TileSize,
};
use ndarray::{Array2, Array3};

const SIZE: usize = 2048;
const PLANES: usize = 4;

fn run(grid: &TileGrid, mode: MergeMode, answers: &[Vec<TileAnswer>]) {
    let mut asm = Assembler::new(*grid, mode, PLANES).unwrap();
    for row in answers {
        asm.add(row).unwrap();
        while let Some(b) = asm.take_finished().unwrap() {
            black_box(b);
        }
    }
    asm.finish().unwrap();
}

fn answers(grid: &TileGrid, mode: MergeMode) -> Vec<Vec<TileAnswer>> {
    let m = match mode {
        MergeMode::Crop => Default::default(),
        MergeMode::Blend => grid.output_margins().unwrap(),
    };
    (0..grid.rows())
        .map(|row| {
            (0..grid.cols())
                .map(|col| {
                    let tile = grid.tile(TileIndex { row, col });
                    let (h, w) = (
                        tile.output.height + m.top + m.bottom,
                        tile.output.width + m.left + m.right,
                    );
                    TileAnswer {
                        tile,
                        values: Array3::from_shape_fn((h, w, PLANES), |(y, x, p)| {
                            (y * w + x + p) as f64
                        }),
                        margins: m,
                        valid: Array2::from_elem((tile.output.height, tile.output.width), true),
                    }
                })
                .collect()
        })
        .collect()
}

fn grid() -> TileGrid {
    TileGrid::new(
        RasterSize::new(SIZE, SIZE).window(),
        TileSize::new(256, 256).unwrap(),
        Overlap::new(16, 16),
        TileSize::new(256, 256).unwrap(),
    )
    .unwrap()
}

fn assemble(c: &mut Criterion) {
    let grid = grid();
    let mut group = c.benchmark_group("assemble_2048x2048x4");
    group.throughput(Throughput::Elements((SIZE * SIZE) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for mode in [MergeMode::Crop, MergeMode::Blend] {
        let data = answers(&grid, mode);
        group.bench_function(format!("{mode:?}/1-thread"), |b| {
            b.iter(|| single.install(|| run(&grid, mode, &data)))
        });
        group.bench_function(format!("{mode:?}/all-cores"), |b| {
            b.iter(|| run(&grid, mode, &data))
        });
    }
    group.finish();
}

criterion_group!(benches, assemble);

/// Median Mpx/s over a few runs of each case, as `bench-report|` rows for `cargo xtask bench`.
fn report() {
    let grid = grid();
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let cores = rayon::current_num_threads();
    for mode in [MergeMode::Crop, MergeMode::Blend] {
        let data = answers(&grid, mode);
        let mut rates = Vec::new();
        for one in [true, false] {
            let mut secs: Vec<f64> = (0..7)
                .map(|_| {
                    let start = Instant::now();
                    if one {
                        single.install(|| run(&grid, mode, &data));
                    } else {
                        run(&grid, mode, &data);
                    }
                    start.elapsed().as_secs_f64()
                })
                .collect();
            secs.sort_by(|a, b| a.total_cmp(b));
            rates.push((SIZE * SIZE) as f64 / 1e6 / secs[secs.len() / 2]);
        }
        println!(
            "bench-report| assembly, {SIZE}x{SIZE}x{PLANES} planes, 256 tiles, overlap 16 | {mode:?}, 1 thread | {:.1} Mpx/s | | |",
            rates[0]
        );
        println!(
            "bench-report| assembly, {SIZE}x{SIZE}x{PLANES} planes, 256 tiles, overlap 16 | {mode:?}, all {cores} cores | {:.1} Mpx/s | 1 thread: {:.1} Mpx/s | {:.2}x |",
            rates[1],
            rates[0],
            rates[1] / rates[0]
        );
    }
}

fn main() {
    // `cargo xtask bench --quick` skips the criterion runs and keeps the report rows.
    if std::env::var_os("EE_BENCH_QUICK").is_none() {
        benches();
        criterion::Criterion::default()
            .configure_from_args()
            .final_summary();
    }
    if std::env::args().any(|a| a == "--bench") {
        report();
    }
}

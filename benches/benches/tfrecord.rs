//! TFRecord patch throughput (MB/s of float32 pixels) of a 2048 x 2048 x 4 GeoTIFF: export to
//! 256 x 256 patches (plain and gzip) and import of the plain records into a GeoTIFF, against
//! the raw windowed GeoTIFF read of the same pixels measured in the same run. Without
//! `--bench` (as `cargo test` runs it) it uses a 256 x 256 raster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use ee_patches::{export_image, import_predictions, ExportOptions, ImportOptions, Mixer};
use ee_raster_io::{Compression, GeoTiffWriter, InputStack, OutputBand, Resampling, WriteOptions};
use ee_tensor_proto::DataType;
use ee_tiling::{Block, GeoTransform, RasterSize, Window};
use ndarray::{Array2, Array3};

const BANDS: usize = 4;
const PATCH: usize = 256;

fn size() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        2048
    } else {
        256
    }
}

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/tfrecord");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn make_raster(path: &Path, size: usize) {
    let bands: Vec<OutputBand> = (0..BANDS)
        .map(|b| OutputBand {
            name: format!("B{}", b + 1),
            dtype: DataType::Float32,
        })
        .collect();
    let mut w = GeoTiffWriter::create(
        path,
        RasterSize::new(size, size),
        GeoTransform::north_up(500_000.0, 5_000_000.0, 10.0, 10.0),
        "EPSG:32633",
        &bands,
        &WriteOptions {
            compression: Compression::None,
            ..Default::default()
        },
    )
    .unwrap();
    let rows = 256.min(size);
    for y0 in (0..size).step_by(rows) {
        w.write_block(&mut Block {
            y0,
            values: Array3::from_shape_fn((rows, size, BANDS), |(r, c, b)| {
                ((c as f64) * 0.01 + b as f64).sin() * 100.0 + (y0 + r) as f64
            }),
            valid: Array2::from_elem((rows, size), true),
        })
        .unwrap();
    }
    w.finish().unwrap();
}

fn tfrecord(c: &mut Criterion) {
    let size = size();
    let d = dir();
    let input = d.join(format!("in_{size}.tif"));
    make_raster(&input, size);
    let stack =
        InputStack::open(std::slice::from_ref(&input), &[], None, Resampling::Nearest).unwrap();
    let bytes = (size * size * BANDS * 4) as u64;
    let mut group = c.benchmark_group(format!("tfrecord_{size}x{size}x{BANDS}_f32"));
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));

    group.bench_function("geotiff_read_windows (baseline)", |b| {
        b.iter(|| {
            for y in (0..size).step_by(PATCH) {
                for x in (0..size).step_by(PATCH) {
                    let w = stack
                        .read_window::<f32>(Window::new(x as i64, y as i64, PATCH, PATCH), 0.0)
                        .unwrap();
                    std::hint::black_box(w);
                }
            }
        })
    });
    for compressed in [false, true] {
        let options = ExportOptions {
            patch_dimensions: [PATCH, PATCH],
            compressed,
            ..Default::default()
        };
        let name = if compressed {
            "export_gzip"
        } else {
            "export_plain"
        };
        group.bench_function(name, |b| {
            b.iter(|| export_image(&stack, &d.join(name), &options).unwrap())
        });
    }
    let plain = export_image(
        &stack,
        &d.join("export_plain"),
        &ExportOptions {
            patch_dimensions: [PATCH, PATCH],
            compressed: false,
            ..Default::default()
        },
    )
    .unwrap();
    let mixer = Mixer::read(plain.mixer.as_ref().unwrap()).unwrap();
    let import = ImportOptions {
        write: WriteOptions {
            compression: Compression::None,
            ..Default::default()
        },
        ..Default::default()
    };
    group.bench_function("import_plain (to uncompressed GeoTIFF)", |b| {
        b.iter(|| import_predictions(&mixer, &plain.files, &d.join("import.tif"), &import).unwrap())
    });
    group.finish();
}

criterion_group!(benches, tfrecord);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}

//! Windowed GeoTIFF write and read throughput (8192 x 8192 x 4 float32, DEFLATE, 256-pixel
//! blocks) against `gdal_translate` of the same file, measured in the same run. Prints a
//! table. Without `--bench` (as `cargo test` runs it) it checks itself on a 512 x 512 raster.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use ee_raster_io::{GeoTiffWriter, InputStack, OutputBand, Resampling, WriteOptions};
use ee_tensor_proto::DataType;
use ee_tiling::{Block, GeoTransform, RasterSize, Window};
use ndarray::{Array2, Array3};

const BANDS: usize = 4;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let size = if bench { 8192 } else { 512 };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("raster_io_{size}.tif"));
    let mb = (size * size * BANDS * 4) as f64 / 1e6;

    // Write: 256-row blocks of smooth, varied values.
    let rows = 256;
    let block_values = Array3::from_shape_fn((rows, size, BANDS), |(r, c, b)| {
        ((c as f64) * 0.01 + b as f64).sin() * 100.0 + r as f64
    });
    let valid = Array2::from_elem((rows, size), true);
    let bands: Vec<OutputBand> = (0..BANDS)
        .map(|b| OutputBand {
            name: format!("B{}", b + 1),
            dtype: DataType::Float32,
        })
        .collect();
    let wkt = "EPSG:32633";
    let start = Instant::now();
    let mut writer = GeoTiffWriter::create(
        &path,
        RasterSize::new(size, size),
        GeoTransform::north_up(0.0, 0.0, 10.0, 10.0),
        wkt,
        &bands,
        &WriteOptions::default(),
    )
    .unwrap();
    for y0 in (0..size).step_by(rows) {
        writer
            .write_block(&mut Block {
                y0,
                values: block_values.clone(),
                valid: valid.clone(),
            })
            .unwrap();
    }
    writer.finish().unwrap();
    let write_s = start.elapsed().as_secs_f64();

    // Read: 256 x 256 tiles with 16 pixels of overlap, as prediction reads them.
    let start = Instant::now();
    let stack =
        InputStack::open(std::slice::from_ref(&path), &[], None, Resampling::Nearest).unwrap();
    let mut checksum = 0.0f64;
    for ty in (0..size).step_by(256) {
        for tx in (0..size).step_by(256) {
            let w = stack
                .read_window::<f32>(Window::new(tx as i64 - 8, ty as i64 - 8, 272, 272), 0.0)
                .unwrap();
            checksum += w.values[[0, 8, 8]] as f64;
        }
    }
    let read_s = start.elapsed().as_secs_f64();
    assert!(checksum.is_finite());

    // gdal_translate of the same file with the same layout: GDAL's C read + write.
    let copy = dir.join(format!("raster_io_{size}_translate.tif"));
    let start = Instant::now();
    let status = Command::new("gdal_translate")
        .args([
            "-q",
            "-co",
            "TILED=YES",
            "-co",
            "BLOCKXSIZE=256",
            "-co",
            "BLOCKYSIZE=256",
            "-co",
            "COMPRESS=DEFLATE",
            "-co",
            "PREDICTOR=3",
        ])
        .arg(&path)
        .arg(&copy)
        .status()
        .expect("gdal_translate (gdal-bin) runs");
    assert!(status.success());
    let translate_s = start.elapsed().as_secs_f64();

    println!("\n| {size} x {size} x {BANDS} float32, DEFLATE ({mb:.0} MB) | seconds | MB/s |");
    println!("|---|---|---|");
    println!(
        "| write (GeoTiffWriter, 256-row blocks) | {write_s:.2} | {:.0} |",
        mb / write_s
    );
    println!(
        "| read (InputStack, 272 x 272 windows) | {read_s:.2} | {:.0} |",
        mb / read_s
    );
    println!(
        "| gdal_translate (read + write) | {translate_s:.2} | {:.0} |",
        mb / translate_s
    );
    println!(
        "\nour write + read = {:.2}x the time of gdal_translate",
        (write_s + read_s) / translate_s
    );
    // Rows for `cargo xtask bench` (target/bench-report.md).
    let area = format!("GeoTIFF {size}x{size}x{BANDS} f32 DEFLATE ({mb:.0} MB)");
    let translate = format!("gdal_translate copy {:.0} MB/s", mb / translate_s);
    println!(
        "bench-report| {area} | write (256-row blocks) | {:.0} MB/s | {translate} | {:.2}x its time |",
        mb / write_s,
        write_s / translate_s
    );
    println!(
        "bench-report| {area} | windowed read (272x272) | {:.0} MB/s | {translate} | {:.2}x its time |",
        mb / read_s,
        read_s / translate_s
    );
    println!(
        "bench-report| {area} | write + read | {:.0} MB/s | {translate} | {:.2}x its time |",
        mb / (write_s + read_s),
        (write_s + read_s) / translate_s
    );
    let _ = std::fs::remove_file(&copy);
}

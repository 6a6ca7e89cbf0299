//! Streams a large raster through read -> tile -> assemble -> write with an identity "model"
//! and prints the peak resident memory, to show it is bounded by the rows in flight rather
//! than by the raster's size.
//!
//! `cargo run -p ee-raster-io --example stream_memory -- [SIZE] [DIR]`: SIZE defaults to 2048
//! (a 2048 x 2048 float32 raster, a few seconds in a debug build), DIR to the system temp
//! directory. The input is created sparse, so the disk stays small even for
//! `cargo run --release -p ee-raster-io --example stream_memory -- 40000`, where the peak
//! memory shows it does not grow with the raster.

use std::path::PathBuf;
use std::time::Instant;

use ee_raster_io::{GeoTiffWriter, InputStack, OutputBand, Resampling, WriteOptions};
use ee_tensor_proto::DataType;
use ee_tiling::{
    Assembler, GeoTransform, MergeMode, Overlap, RasterSize, TileAnswer, TileGrid, TileSize,
};
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::DriverManager;
use ndarray::{s, Array3};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let size: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2048);
    let dir = std::env::args()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir)?;
    let input = dir.join(format!("sparse_{size}.tif"));
    let output = dir.join(format!("stream_out_{size}.tif"));

    // A sparse input: a few written blocks, the rest nodata (never stored).
    let block = 256.min(size / 8).max(1);
    {
        let driver = DriverManager::get_driver_by_name("GTiff")?;
        let opts = RasterCreationOptions::from_iter([
            "TILED=YES",
            "SPARSE_OK=TRUE",
            "BIGTIFF=YES",
            "COMPRESS=DEFLATE",
        ]);
        let mut ds =
            driver.create_with_band_type_with_options::<f32, _>(&input, size, size, 1, &opts)?;
        ds.set_geo_transform(&[300_000.0, 10.0, 0.0, 5_400_000.0, 0.0, -10.0])?;
        ds.set_spatial_ref(&SpatialRef::from_epsg(32633)?)?;
        let mut band = ds.rasterband(1)?;
        band.set_no_data_value(Some(-9999.0))?;
        for k in 0..8 {
            let at = (k * size / 8) as isize;
            band.write(
                (at, at),
                (block, block),
                &mut Buffer::new((block, block), vec![k as f32; block * block]),
            )?;
        }
    }

    let start = Instant::now();
    let stack = InputStack::open(std::slice::from_ref(&input), &[], None, Resampling::Nearest)?;
    let grid = TileGrid::new(
        RasterSize::new(size, size).window(),
        TileSize::new(256, 256)?,
        Overlap::new(16, 16),
        TileSize::new(256, 256)?,
    )?;
    let mut assembler = Assembler::new(grid, MergeMode::Crop, 1)?;
    let transform = grid.output_transform(GeoTransform::from_gdal([
        300_000.0,
        10.0,
        0.0,
        5_400_000.0,
        0.0,
        -10.0,
    ]));
    let bands = [OutputBand {
        name: "identity".into(),
        dtype: DataType::Float32,
    }];
    let mut writer = GeoTiffWriter::create(
        &output,
        grid.output_size(),
        transform,
        &stack.grid().crs_wkt,
        &bands,
        &WriteOptions::default(),
    )?;
    let m = grid.overlap().margins();
    for row in 0..grid.rows() {
        let mut answers = Vec::with_capacity(grid.cols());
        for col in 0..grid.cols() {
            let tile = grid.tile(ee_tiling::TileIndex { row, col });
            let data = stack.read_window::<f32>(tile.input, 0.0)?;
            // The identity model: the answer is the input's core.
            let core = data
                .values
                .slice(s![0, m.top..m.top + 256, m.left..m.left + 256])
                .mapv(f64::from);
            let valid = data
                .valid
                .slice(s![m.top..m.top + 256, m.left..m.left + 256])
                .to_owned();
            let values = Array3::from_shape_vec((256, 256, 1), core.into_raw_vec_and_offset().0)?;
            answers.push(TileAnswer {
                tile,
                values,
                margins: Default::default(),
                valid,
            });
        }
        assembler.add(&answers)?;
        while let Some(mut block) = assembler.take_finished()? {
            writer.write_block(&mut block)?;
            assembler.recycle(block);
        }
    }
    assembler.finish()?;
    writer.finish()?;
    let secs = start.elapsed().as_secs_f64();

    // The identity went through: each written block reads back, the rest is still nodata.
    let out = gdal::Dataset::open(&output)?;
    let band = out.rasterband(1)?;
    for k in 0..8 {
        let at = (k * size / 8) as isize;
        let got = band.read_as::<f32>((at, at), (1, 1), (1, 1), None)?.data()[0];
        if got != k as f32 {
            return Err(format!("output pixel ({at}, {at}) is {got}, expected {k}").into());
        }
    }
    let corner = band
        .read_as::<f32>((size as isize - 1, 0), (1, 1), (1, 1), None)?
        .data()[0];
    if !(corner.is_nan() || corner == -9999.0) {
        return Err(format!("output corner is {corner}, expected nodata").into());
    }
    println!(
        "{size} x {size} float32 ({:.1} Mpx) read -> assemble -> write in {secs:.1} s ({:.1} Mpx/s); peak RSS {:.0} MiB",
        (size * size) as f64 / 1e6,
        (size * size) as f64 / 1e6 / secs,
        peak_rss_mib()
    );
    println!(
        "input {} ({} bytes), output {} ({} bytes)",
        input.display(),
        std::fs::metadata(&input)?.len(),
        output.display(),
        std::fs::metadata(&output)?.len()
    );
    println!("checked: the written blocks came through, the rest is nodata");
    Ok(())
}

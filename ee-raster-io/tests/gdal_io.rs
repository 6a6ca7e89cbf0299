//! End-to-end checks of reading, warping and writing against GDAL's own tools: `gdalinfo -json`
//! reads what we write, and our warped windows equal `gdalwarp`'s output.

use std::path::{Path, PathBuf};
use std::process::Command;

use ee_raster_io::{
    write_quicklook, BandSelector, Compression, GeoTiffWriter, InputStack, OutputBand,
    RasterSource, Resampling, SamplingGrid, WriteOptions,
};
use ee_tensor_proto::DataType;
use ee_tiling::{Block, GeoTransform, RasterSize, Window};
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{DriverManager, Metadata};
use ndarray::{Array2, Array3};
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-raster-io-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn utm33() -> String {
    SpatialRef::from_epsg(32633).unwrap().to_wkt().unwrap()
}

/// A 2-band f32 input made with GDAL directly: band 1 "red" with nodata -9999 in a square,
/// band 2 "nir"; values are a function of position.
fn make_input(path: &Path, w: usize, h: usize) {
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let opts = RasterCreationOptions::from_iter(["TILED=YES", "COMPRESS=DEFLATE"]);
    let mut ds = driver
        .create_with_band_type_with_options::<f32, _>(path, w, h, 2, &opts)
        .unwrap();
    ds.set_geo_transform(&[500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0])
        .unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(32633).unwrap())
        .unwrap();
    for (b, name) in [(1usize, "red"), (2, "nir")] {
        let mut band = ds.rasterband(b).unwrap();
        band.set_description(name).unwrap();
        band.set_no_data_value(Some(-9999.0)).unwrap();
        let data: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if b == 1 && (10..14).contains(&x) && (5..8).contains(&y) {
                    -9999.0
                } else {
                    (x as f32 * 0.37).sin() * 50.0 + y as f32 * b as f32
                }
            })
            .collect();
        band.write((0, 0), (w, h), &mut Buffer::new((w, h), data))
            .unwrap();
    }
}

fn gdalinfo(path: &Path) -> Value {
    let out = Command::new("gdalinfo")
        .arg("-json")
        .arg(path)
        .output()
        .expect("gdalinfo runs (gdal-bin installed)");
    assert!(
        out.status.success(),
        "gdalinfo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn written_geotiff_reads_back_in_gdalinfo_and_through_the_stack() {
    let path = scratch("out.tif");
    let size = RasterSize::new(300, 200);
    let transform = GeoTransform::north_up(600_000.0, 4_100_000.0, 20.0, 20.0);
    let bands = [
        OutputBand {
            name: "water".into(),
            dtype: DataType::Float32,
        },
        OutputBand {
            name: "cloud".into(),
            dtype: DataType::Uint8,
        },
    ];
    let mut writer = GeoTiffWriter::create(
        &path,
        size,
        transform,
        &utm33(),
        &bands,
        &WriteOptions::default(),
    )
    .unwrap();
    assert!(!path.exists(), "nothing at the final path before finish");
    for y0 in (0..200).step_by(64) {
        let rows = 64.min(200 - y0);
        let values = Array3::from_shape_fn((rows, 300, 2), |(r, c, k)| {
            ((y0 + r) * 1000 + c) as f64 * 0.5 + k as f64
        });
        let valid = Array2::from_shape_fn((rows, 300), |(r, c)| !((y0 + r) == 3 && c == 7));
        writer
            .write_block(&mut Block { y0, values, valid })
            .unwrap();
    }
    let done = writer.finish().unwrap();
    assert_eq!(done, path);
    assert!(!ee_raster_io::partial_path(&path).exists());

    let info = gdalinfo(&path);
    assert!(info["coordinateSystem"]["wkt"]
        .as_str()
        .unwrap()
        .contains("32633"));
    let gt: Vec<f64> = info["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(gt, transform.to_gdal().to_vec());
    assert_eq!(info["size"], serde_json::json!([300, 200]));
    assert_eq!(
        info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"],
        "DEFLATE"
    );
    let b = info["bands"].as_array().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["description"], "water");
    assert_eq!(b[1]["description"], "cloud");
    assert_eq!(b[0]["block"], serde_json::json!([256, 256]));
    assert_eq!(b[0]["type"], "Float32", "u8 + f32 bands share float32");
    assert_eq!(b[0]["noDataValue"], "NaN");

    let stack =
        InputStack::open(std::slice::from_ref(&path), &[], None, Resampling::Nearest).unwrap();
    let data = stack
        .read_window::<f32>(Window::new(0, 0, 300, 200), -1.0)
        .unwrap();
    assert!(!data.valid[[3, 7]] && data.valid[[3, 8]]);
    assert_eq!(data.values[[0, 3, 8]], 1504.0);
    assert_eq!(
        data.values[[1, 150, 299]],
        (150.0 * 1000.0 + 299.0) * 0.5 + 1.0
    );
    assert_eq!(
        data.values[[0, 3, 7]],
        -1.0,
        "masked pixels hold the fill value"
    );
}

#[test]
fn windows_past_the_edge_are_filled_and_masked() {
    let path = scratch("in_edges.tif");
    make_input(&path, 40, 30);
    let stack = InputStack::open(
        std::slice::from_ref(&path),
        &[(0, "nir".parse().unwrap()), (0, BandSelector::Index(1))],
        None,
        Resampling::Nearest,
    )
    .unwrap();
    assert_eq!(stack.bands()[0].info.name, "nir");
    let data = stack
        .read_window::<f64>(Window::new(-3, -2, 20, 12), 0.0)
        .unwrap();
    assert_eq!(data.values.dim(), (2, 12, 20));
    assert!(
        !data.valid[[0, 5]] && !data.valid[[5, 0]],
        "outside the raster"
    );
    assert_eq!(data.values[[0, 1, 5]], 0.0);
    // (x, y) = (2, 0) is at window (5, 2)
    assert!(data.valid[[2, 5]]);
    assert_eq!(
        data.values[[0, 2, 5]],
        ((2.0f32 * 0.37).sin() * 50.0 + 0.0) as f64
    );
    // red is nodata at x 10..14, y 5..8 -> window cols 13..17, rows 7..10: masked in the stack
    assert!(!data.valid[[7, 13]] && !data.valid[[9, 16]] && data.valid[[7, 17]]);
    assert_eq!(
        data.values[[1, 7, 13]],
        0.0,
        "masked pixels hold the fill value in every band"
    );
    // A window entirely outside is all fill, all invalid.
    let out = stack
        .read_window::<f32>(Window::new(100, 100, 4, 4), 7.0)
        .unwrap();
    assert!(out.valid.iter().all(|v| !v) && out.values.iter().all(|&v| v == 7.0));
}

#[test]
fn bad_bands_and_files_name_themselves() {
    let path = scratch("in_names.tif");
    make_input(&path, 8, 8);
    let source = RasterSource::open(&path).unwrap();
    let err = source
        .band(&BandSelector::Name("swir".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("in_names.tif: no band \"swir\"") && err.contains("#1 \"red\", #2 \"nir\""),
        "{err}"
    );
    assert!(source.band(&BandSelector::Index(3)).is_err());

    let bogus = scratch("not_a_raster.tif");
    std::fs::write(&bogus, b"this is not a tiff").unwrap();
    let err = RasterSource::open(&bogus).unwrap_err().to_string();
    assert!(
        err.contains("not_a_raster.tif") && err.contains("not recognized"),
        "{err}"
    );
    let err = RasterSource::open(scratch("missing.tif"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.tif") && err.contains("No such file"),
        "{err}"
    );
}

fn read_all(path: &Path, band: usize) -> Vec<f32> {
    let ds = gdal::Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    ds.rasterband(band)
        .unwrap()
        .read_as::<f32>((0, 0), (w, h), (w, h), None)
        .unwrap()
        .into_shape_and_vec()
        .1
}

/// A tiled, uncompressed, pixel-interleaved float32 GeoTIFF of `bands` bands without nodata;
/// pixel `i` (row-major) of band `b` (1-based) holds `value(i, b)`.
fn make_interleaved(
    path: &Path,
    (w, h): (usize, usize),
    bands: usize,
    value: impl Fn(usize, usize) -> f32,
) {
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let opts = RasterCreationOptions::from_iter(["TILED=YES", "INTERLEAVE=PIXEL"]);
    let mut ds = driver
        .create_with_band_type_with_options::<f32, _>(path, w, h, bands, &opts)
        .unwrap();
    ds.set_geo_transform(&[500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0])
        .unwrap();
    for b in 1..=bands {
        let data: Vec<f32> = (0..w * h).map(|i| value(i, b)).collect();
        ds.rasterband(b)
            .unwrap()
            .write((0, 0), (w, h), &mut Buffer::new((w, h), data))
            .unwrap();
    }
}

#[test]
fn warped_windows_equal_gdalwarp() {
    let src = scratch("warp_src.tif");
    make_input(&src, 120, 90);
    // A geographic grid covering most of the source, coarser than it.
    let wgs84 = SpatialRef::from_epsg(4326).unwrap().to_wkt().unwrap();
    let grid = SamplingGrid {
        crs_wkt: wgs84,
        transform: GeoTransform::north_up(15.0010, 45.1530, 0.00019, 0.00011),
        size: RasterSize::new(70, 60),
    };
    let (xmin, ymin, xmax, ymax) = grid.bounds().unwrap();
    for (resampling, name) in [
        (Resampling::Nearest, "near"),
        (Resampling::Bilinear, "bilinear"),
        (Resampling::Cubic, "cubic"),
    ] {
        let reference = scratch(&format!("gdalwarp_{name}.tif"));
        let _ = std::fs::remove_file(&reference);
        let status = Command::new("gdalwarp")
            .args([
                "-q",
                "-t_srs",
                "EPSG:4326",
                "-te",
                &xmin.to_string(),
                &ymin.to_string(),
                &xmax.to_string(),
                &ymax.to_string(),
            ])
            .args([
                "-ts", "70", "60", "-r", name, "-et", "0", "-wo", "XSCALE=1", "-wo", "YSCALE=1",
            ])
            .arg(&src)
            .arg(&reference)
            .status()
            .unwrap();
        assert!(status.success());
        let want = read_all(&reference, 2);
        let source = RasterSource::open_warped(&src, &grid, resampling).unwrap();
        assert!(source.is_warped());
        let stack = InputStack::new(vec![source], &[(0, BandSelector::Index(2))]).unwrap();
        // Read in several windows, as tiles would, some past the edge.
        let mut compared = 0;
        for win in [
            Window::new(0, 0, 70, 60),
            Window::new(13, 7, 25, 31),
            Window::new(50, 40, 30, 30),
        ] {
            let got = stack.read_window::<f32>(win, f32::NAN).unwrap();
            for r in 0..win.height {
                for c in 0..win.width {
                    let (x, y) = (win.x as usize + c, win.y as usize + r);
                    if x < 70 && y < 60 {
                        let w = want[y * 70 + x];
                        let g = got.values[[0, r, c]];
                        if got.valid[[r, c]] {
                            compared += 1;
                            assert_eq!(
                                g.to_bits(),
                                w.to_bits(),
                                "{name} ({x}, {y}): ours {g}, gdalwarp {w}"
                            );
                        } else {
                            assert!(
                                w == -9999.0 || w == 0.0,
                                "{name} ({x}, {y}) masked here but gdalwarp has {w}"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            compared > 4000,
            "{name}: only {compared} valid pixels compared"
        );
    }
}

#[test]
fn cog_and_quicklook() {
    let path = scratch("cog.tif");
    let size = RasterSize::new(600, 400);
    let bands = [OutputBand {
        name: "ndvi".into(),
        dtype: DataType::Float32,
    }];
    let options = WriteOptions {
        compression: Compression::Zstd,
        cog: true,
        ..Default::default()
    };
    let mut writer = GeoTiffWriter::create(
        &path,
        size,
        GeoTransform::north_up(0.0, 0.0, 1.0, 1.0),
        &utm33(),
        &bands,
        &options,
    )
    .unwrap();
    let values = Array3::from_shape_fn((400, 600, 1), |(r, c, _)| (r + c) as f64);
    let valid = Array2::from_shape_fn((400, 600), |(r, _)| r < 390);
    writer
        .write_block(&mut Block {
            y0: 0,
            values,
            valid,
        })
        .unwrap();
    writer.finish().unwrap();
    let info = gdalinfo(&path);
    assert_eq!(info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"], "COG");
    assert_eq!(info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"], "ZSTD");
    assert_eq!(info["bands"][0]["description"], "ndvi");
    let ds = gdal::Dataset::open(&path).unwrap();
    assert_eq!(ds.rasterband(1).unwrap().description().unwrap(), "ndvi");

    let png = scratch("quick.png");
    assert_eq!(write_quicklook(&path, &png, &[1], 300).unwrap(), (300, 200));
    let info = gdalinfo(&png);
    assert_eq!(info["driverShortName"], "PNG");
    assert_eq!(info["bands"].as_array().unwrap().len(), 2, "grey + alpha");
}

#[test]
fn interleaved_reads_equal_band_reads_and_step_aside_where_they_cannot() {
    // Three bands, no nodata, pixel-interleaved like most multi-band GeoTIFFs.
    let path = scratch("in_interleaved.tif");
    let w = 70usize;
    make_interleaved(&path, (w, 50), 3, |i, b| {
        (i % w) as f32 * 0.5 + (i / w) as f32 * 100.0 + b as f32 * 1e5
    });
    let stack =
        InputStack::open(std::slice::from_ref(&path), &[], None, Resampling::Nearest).unwrap();
    // Whole windows, and windows past every edge (outside pixels hold the fill, invalid).
    for win in [
        Window::new(13, 7, 40, 30),
        Window::new(-5, -3, 20, 12),
        Window::new(60, 40, 16, 16),
        Window::new(-2, -2, 74, 54),
    ] {
        let planes = stack.read_window::<f64>(win, -7.5).unwrap();
        for positions in [vec![0usize, 1, 2], vec![2, 0]] {
            let got = stack
                .read_interleaved::<f32>(win, &positions, -7.5)
                .unwrap()
                .expect("a window of unmasked bands of one file");
            assert_eq!(got.values.len(), win.width * win.height * positions.len());
            assert_eq!(got.valid, planes.valid, "{win:?}");
            for r in 0..win.height {
                for c in 0..win.width {
                    for (k, &p) in positions.iter().enumerate() {
                        let i = (r * win.width + c) * positions.len() + k;
                        assert_eq!(
                            got.values[i] as f64,
                            planes.values[[p, r, c]],
                            "{win:?} ({c}, {r}) band {p}"
                        );
                    }
                }
            }
        }
    }
    // Nowhere on the raster, or bands with nodata: the plane reader's job.
    assert!(stack
        .read_interleaved::<f32>(Window::new(-20, 0, 10, 10), &[0], 0.0)
        .unwrap()
        .is_none());
    let masked = scratch("in_interleaved_nodata.tif");
    make_input(&masked, 20, 20);
    let stack = InputStack::open(
        std::slice::from_ref(&masked),
        &[],
        None,
        Resampling::Nearest,
    )
    .unwrap();
    assert!(stack
        .read_interleaved::<f32>(Window::new(0, 0, 10, 10), &[0, 1], 0.0)
        .unwrap()
        .is_none());
}

/// A writer of two float32 bands, "a" and "b", on a unit north-up grid in UTM 33.
fn float32_ab_writer(path: &Path, size: RasterSize, options: WriteOptions) -> GeoTiffWriter {
    let bands = ["a", "b"].map(|name| OutputBand {
        name: name.into(),
        dtype: DataType::Float32,
    });
    GeoTiffWriter::create(
        path,
        size,
        GeoTransform::north_up(0.0, 0.0, 1.0, 1.0),
        &utm33(),
        &bands,
        &options,
    )
    .unwrap()
}

#[test]
fn float32_blocks_written_in_place_equal_float64_blocks_converted() {
    // The same pixels (some masked, some values f32 must round) written once from f64 blocks
    // (converted) and once from f32 blocks (written as they lie) give the same file bytes,
    // and the masked pixels of the f32 block became nodata in place.
    let size = RasterSize::new(300, 130);
    let value = |r: usize, c: usize, k: usize| (r * 1000 + c) as f64 * 0.1 + k as f64 / 3.0;
    let ok = |r: usize, c: usize| !(r * 7 + c).is_multiple_of(11);
    let write = |name: &str, f32_blocks: bool| -> Vec<u8> {
        let mut writer = float32_ab_writer(&scratch(name), size, WriteOptions::default());
        for y0 in (0..130).step_by(50) {
            let rows = 50.min(130 - y0);
            let values = Array3::from_shape_fn((rows, 300, 2), |(r, c, k)| value(y0 + r, c, k));
            let valid = Array2::from_shape_fn((rows, 300), |(r, c)| ok(y0 + r, c));
            if f32_blocks {
                let mut block = Block {
                    y0,
                    values: values.mapv(|v| v as f32),
                    valid,
                };
                writer.write_block(&mut block).unwrap();
                let nodata = writer.nodata() as f32;
                for ((r, c, _), v) in block.values.indexed_iter() {
                    let want = if ok(y0 + r, c) { *v } else { nodata };
                    assert_eq!(v.to_bits(), want.to_bits());
                }
            } else {
                writer
                    .write_block(&mut Block { y0, values, valid })
                    .unwrap();
            }
        }
        std::fs::read(writer.finish().unwrap()).unwrap()
    };
    assert_eq!(write("from_f64.tif", false), write("from_f32.tif", true));
}

#[test]
fn rows_written_in_order_flush_whole_block_rows_only() {
    // 16-pixel blocks filled by 7-row pieces in order (flushed block row by block row) and by
    // the same pieces bottom-up (left to GDAL's cache): the same pixels, and the same DEFLATE
    // file size, so no block was flushed half-written and written again.
    let size = RasterSize::new(100, 90);
    let write = |name: &str, bottom_up: bool| -> PathBuf {
        let options = WriteOptions {
            block_size: 16,
            ..Default::default()
        };
        let mut writer = float32_ab_writer(&scratch(name), size, options);
        let mut starts: Vec<usize> = (0..90).step_by(7).collect();
        if bottom_up {
            starts.reverse();
        }
        for y0 in starts {
            let rows = 7.min(90 - y0);
            let values = Array3::from_shape_fn((rows, 100, 2), |(r, c, k)| {
                ((y0 + r) * 100 + c) as f32 + k as f32 * 0.5
            });
            let valid =
                Array2::from_shape_fn((rows, 100), |(r, c)| !(y0 + r + c).is_multiple_of(9));
            writer
                .write_block(&mut Block { y0, values, valid })
                .unwrap();
        }
        writer.finish().unwrap()
    };
    let (in_order, reversed) = (write("in_order.tif", false), write("reversed.tif", true));
    let bits = |p: &Path, b| {
        read_all(p, b)
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    for b in 1..=2 {
        assert!(bits(&in_order, b) == bits(&reversed, b), "band {b} differs");
    }
    let len = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert_eq!(len(&in_order), len(&reversed));
}

#[test]
fn a_block_cut_short_is_an_error_not_zeros() {
    // An uncompressed pixel-interleaved GeoTIFF whose only block loses its last 300 bytes,
    // mid-page: a window inside the cut part must fail (GDAL's mapped reads alone would
    // return zeros there), by both readers; the intact file reads.
    let path = scratch("cut_whole.tif");
    make_interleaved(&path, (64, 64), 2, |i, b| i as f32 + 1.0 + b as f32);
    let bytes = std::fs::read(&path).unwrap();
    let cut = scratch("cut_short.tif");
    std::fs::write(&cut, &bytes[..bytes.len() - 300]).unwrap();
    let tail = Window::new(0, 60, 64, 4);
    for (file, whole) in [(&path, true), (&cut, false)] {
        let stack =
            InputStack::open(std::slice::from_ref(file), &[], None, Resampling::Nearest).unwrap();
        let interleaved = stack.read_interleaved::<f32>(tail, &[0, 1], 0.0);
        let planes = stack.read_window::<f32>(tail, 0.0);
        if whole {
            assert!(interleaved
                .unwrap()
                .unwrap()
                .values
                .iter()
                .all(|&v| v > 0.0));
            assert!(planes.unwrap().values.iter().all(|&v| v > 0.0));
        } else {
            let err = interleaved.unwrap_err().to_string();
            assert!(err.contains("cut_short.tif"), "{err}");
            assert!(planes.is_err());
        }
    }
}

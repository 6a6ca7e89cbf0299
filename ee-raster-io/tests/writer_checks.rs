//! The GeoTIFF writer's checks on what it writes: a file whose last writes fail (a full disk)
//! is never moved into place as complete, and integer outputs keep their values (nodata per
//! band, clamped values and values equal to nodata counted).

use std::path::{Path, PathBuf};
use std::process::Command;

use ee_raster_io::{GeoTiffWriter, OutputBand, WriteOptions};
use ee_tensor_proto::DataType;
use ee_tiling::{Block, GeoTransform, RasterSize};
use ndarray::{Array2, Array3};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-raster-io-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct TinyDisk {
    dir: PathBuf,
}

impl TinyDisk {
    /// `None` (with the reason printed) where mounting is not possible (not root, no tmpfs).
    fn mount(name: &str, size: &str) -> Option<TinyDisk> {
        let dir = scratch(name);
        std::fs::create_dir_all(&dir).unwrap();
        match Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
        {
            Ok(out) if out.status.success() => Some(TinyDisk { dir }),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a {size} tmpfs on {} ({})",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn float32_band(name: &str) -> OutputBand {
    OutputBand {
        name: name.into(),
        dtype: DataType::Float32,
    }
}

/// Writes `size` of all-nodata rows (sparse: no block of data reaches the disk) in blocks of
/// 16 rows and finishes.
fn write_sparse(
    path: &Path,
    size: RasterSize,
    options: &WriteOptions,
) -> ee_raster_io::Result<PathBuf> {
    let mut writer = GeoTiffWriter::create(
        path,
        size,
        GeoTransform::north_up(500_000.0, 5_000_000.0, 10.0, 10.0),
        "EPSG:32633",
        &[float32_band("p")],
        options,
    )?;
    for y0 in (0..size.height).step_by(16) {
        let rows = 16.min(size.height - y0);
        writer.write_block(&mut Block {
            y0,
            values: Array3::<f32>::zeros((rows, size.width, 1)),
            valid: Array2::from_elem((rows, size.width), false),
        })?;
    }
    writer.finish()
}

#[test]
fn a_geotiff_whose_last_writes_fail_is_not_moved_into_place() {
    // 4000 x 4000 pixels in 16 x 16 blocks: 62,500 blocks, whose offsets and sizes (500 kB of
    // the TIFF directory, written when the file is flushed and closed) do not fit a 256 kB
    // disk, while the blocks themselves (all nodata, sparse) take no room.
    let Some(disk) = TinyDisk::mount("tiny", "256k") else {
        return;
    };
    let path = disk.dir.join("full.tif");
    let options = WriteOptions {
        block_size: 16,
        ..Default::default()
    };
    let err = write_sparse(&path, RasterSize::new(4000, 4000), &options)
        .expect_err("the directory cannot be written on a full disk")
        .to_string();
    assert!(err.contains("full.tif.partial"), "{err}");
    assert!(
        !path.exists(),
        "{} was moved into place: {err}",
        path.display()
    );
    // The same file on a disk with room is written and moved into place.
    let roomy = scratch("roomy.tif");
    assert_eq!(
        write_sparse(&roomy, RasterSize::new(4000, 4000), &options).unwrap(),
        roomy
    );
    eprintln!("{err}");
    drop(disk);
    // A COG conversion that runs out of room: the plain file (sparse, 54 kB) fits, the COG
    // (every block written, and overviews) does not.
    let Some(disk) = TinyDisk::mount("tiny_cog", "256k") else {
        return;
    };
    let path = disk.dir.join("full.tif");
    let cog = WriteOptions {
        block_size: 16,
        cog: true,
        ..Default::default()
    };
    let err = write_sparse(&path, RasterSize::new(1500, 1500), &cog)
        .expect_err("the COG does not fit")
        .to_string();
    assert!(err.contains("full.cog.tif.partial"), "{err}");
    assert!(
        !path.exists(),
        "{} was moved into place: {err}",
        path.display()
    );
}

fn band(name: &str, dtype: DataType) -> OutputBand {
    OutputBand {
        name: name.into(),
        dtype,
    }
}

/// A one-row raster of `values` (band-interleaved per pixel, `bands.len()` planes) with the
/// pixels of `invalid` masked; returns the path, the nodata GDAL reports and the stats.
fn write_row(
    name: &str,
    bands: &[OutputBand],
    values: &[f64],
    invalid: &[usize],
    options: &WriteOptions,
) -> ee_raster_io::Result<(PathBuf, Option<f64>, ee_raster_io::WriteStats)> {
    let planes = bands.len();
    let width = values.len() / planes;
    let path = scratch(name);
    let mut writer = GeoTiffWriter::create(
        &path,
        RasterSize::new(width, 1),
        GeoTransform::north_up(0.0, 0.0, 1.0, 1.0),
        "EPSG:32633",
        bands,
        options,
    )?;
    writer.write_block(&mut Block {
        y0: 0,
        values: Array3::from_shape_vec((1, width, planes), values.to_vec()).unwrap(),
        valid: Array2::from_shape_fn((1, width), |(_, c)| !invalid.contains(&c)),
    })?;
    let stats = writer.stats();
    writer.finish()?;
    let ds = gdal::Dataset::open(&path).unwrap();
    let nodata = ds.rasterband(1).unwrap().no_data_value();
    Ok((path, nodata, stats))
}

fn read_u8(path: &Path) -> Vec<u8> {
    let ds = gdal::Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    ds.rasterband(1)
        .unwrap()
        .read_as::<u8>((0, 0), (w, h), (w, h), None)
        .unwrap()
        .data()
        .to_vec()
}

#[test]
fn a_real_255_in_a_uint8_band_with_nodata_0_reads_back_as_255() {
    let classes = [band("class", DataType::Uint8)];
    let options = WriteOptions {
        band_nodata: vec![Some(0.0)],
        ..Default::default()
    };
    let (path, nodata, stats) = write_row(
        "class.tif",
        &classes,
        &[255.0, 3.0, 7.0, 0.0],
        &[2],
        &options,
    )
    .unwrap();
    assert_eq!(nodata, Some(0.0));
    // The masked pixel is nodata (0); the 255 is a value; the valid 0 collides with nodata.
    assert_eq!(read_u8(&path), vec![255, 3, 0, 0]);
    assert_eq!(
        stats,
        ee_raster_io::WriteStats {
            clamped: 0,
            nodata_collisions: 1
        }
    );
    // Without a nodata the default (the type's maximum) stays, and the 255 is counted.
    let (_, nodata, stats) = write_row(
        "class255.tif",
        &classes,
        &[255.0, 3.0],
        &[],
        &WriteOptions::default(),
    )
    .unwrap();
    assert_eq!(nodata, Some(255.0));
    assert_eq!(stats.nodata_collisions, 1);
    // `nodata` (the command line's) overrides the bands'.
    let (_, nodata, _) = write_row(
        "class7.tif",
        &classes,
        &[255.0],
        &[],
        &WriteOptions {
            nodata: Some(7.0),
            ..options
        },
    )
    .unwrap();
    assert_eq!(nodata, Some(7.0));
}

#[test]
fn clamped_values_are_counted_exactly() {
    // uint8: -1, 256, NaN, 300 and 255.5 (rounds to 256) are clamped; -0.4 and 2.6 round.
    // The masked pixel's 1000 is not counted: it becomes nodata.
    let values = [
        -1.0,
        0.0,
        255.0,
        256.0,
        f64::NAN,
        2.6,
        300.0,
        -0.4,
        255.5,
        1000.0,
    ];
    let (path, nodata, stats) = write_row(
        "clamped.tif",
        &[band("c", DataType::Uint8)],
        &values,
        &[9],
        &WriteOptions::default(),
    )
    .unwrap();
    assert_eq!(nodata, Some(255.0));
    assert_eq!(read_u8(&path), vec![0, 0, 255, 255, 0, 3, 255, 0, 255, 255]);
    // Valid values written as 255 (nodata): 255, 256, 300, 255.5.
    assert_eq!(
        stats,
        ee_raster_io::WriteStats {
            clamped: 5,
            nodata_collisions: 4
        }
    );
    // Two bands (uint8 and int16, so an Int16 file): clamped at the file's type.
    let (_, _, stats) = write_row(
        "clamped2.tif",
        &[band("a", DataType::Uint8), band("b", DataType::Int16)],
        &[40000.0, -40000.0, 1.0, f64::NAN],
        &[],
        &WriteOptions::default(),
    )
    .unwrap();
    assert_eq!(stats.clamped, 3);
    // float32 blocks into a float32 file: a valid NaN is nodata (NaN) when read back.
    let path = scratch("nan.tif");
    let mut writer = GeoTiffWriter::create(
        &path,
        RasterSize::new(3, 1),
        GeoTransform::north_up(0.0, 0.0, 1.0, 1.0),
        "EPSG:32633",
        &[float32_band("p")],
        &WriteOptions::default(),
    )
    .unwrap();
    writer
        .write_block(&mut Block {
            y0: 0,
            values: Array3::from_shape_vec((1, 3, 1), vec![f32::NAN, 0.5, f32::NAN]).unwrap(),
            valid: Array2::from_shape_vec((1, 3), vec![true, true, false]).unwrap(),
        })
        .unwrap();
    assert_eq!(
        writer.stats(),
        ee_raster_io::WriteStats {
            clamped: 0,
            nodata_collisions: 1
        }
    );
    writer.finish().unwrap();
}

#[test]
fn nodata_that_cannot_be_stored_is_refused() {
    let classes = [band("class", DataType::Uint8)];
    let err = write_row(
        "minus1.tif",
        &classes,
        &[1.0],
        &[],
        &WriteOptions {
            nodata: Some(-1.0),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nodata -1 does not fit") && err.contains("0 to 255"),
        "{err}"
    );
    let two = [band("a", DataType::Uint8), band("b", DataType::Uint8)];
    let err = write_row(
        "differ.tif",
        &two,
        &[1.0, 2.0],
        &[],
        &WriteOptions {
            band_nodata: vec![Some(0.0), Some(255.0)],
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("band 1 (a) has nodata 0, band 2 (b) 255") && err.contains("one nodata"),
        "{err}"
    );
    let err = write_row(
        "short.tif",
        &two,
        &[1.0, 2.0],
        &[],
        &WriteOptions {
            band_nodata: vec![Some(0.0)],
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nodata given for 1 bands, the file has 2"),
        "{err}"
    );
    // Bands without a nodata take the one given.
    let (_, nodata, _) = write_row(
        "one_given.tif",
        &two,
        &[1.0, 2.0],
        &[],
        &WriteOptions {
            band_nodata: vec![None, Some(9.0)],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(nodata, Some(9.0));
}

//! Shared by the integration tests: test rasters made with GDAL in temp dirs and the values
//! an export must hold (the interop Python is `ee_fuzzkit::interop_python`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{DriverManager, Metadata};

pub const TRANSFORM: [f64; 6] = [500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0];
pub const NODATA: f64 = -9999.0;

/// A fresh temp dir for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ee-patches-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A float32 test raster: distinct values per band and pixel, band `masked_band` (if any)
/// holding nodata where `masked(x, y)`.
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub names: Vec<String>,
    pub bands: Vec<Vec<f32>>,
    pub valid: Vec<bool>,
}

pub fn value(b: usize, x: usize, y: usize, w: usize) -> f32 {
    (b * 10_000 + y * w + x) as f32 + 0.5
}

impl Raster {
    pub fn new(
        width: usize,
        height: usize,
        names: &[&str],
        masked: impl Fn(usize, usize) -> bool,
    ) -> Self {
        let mut valid = vec![true; width * height];
        let bands = (0..names.len())
            .map(|b| {
                (0..width * height)
                    .map(|i| {
                        let (x, y) = (i % width, i / width);
                        if b == 0 && masked(x, y) {
                            valid[i] = false;
                            NODATA as f32
                        } else {
                            value(b, x, y, width)
                        }
                    })
                    .collect()
            })
            .collect();
        Raster {
            width,
            height,
            names: names.iter().map(|s| s.to_string()).collect(),
            bands,
            valid,
        }
    }

    /// Writes it as a GeoTIFF in EPSG:32633 with `TRANSFORM`; nodata on band 1.
    pub fn write(&self, path: &Path) {
        let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
        let mut ds = driver
            .create_with_band_type_with_options::<f32, _>(
                path,
                self.width,
                self.height,
                self.bands.len(),
                &RasterCreationOptions::new(),
            )
            .unwrap();
        ds.set_geo_transform(&TRANSFORM).unwrap();
        ds.set_spatial_ref(&SpatialRef::from_epsg(32633).unwrap())
            .unwrap();
        for (b, data) in self.bands.iter().enumerate() {
            let mut band = ds.rasterband(b + 1).unwrap();
            band.set_description(&self.names[b]).unwrap();
            if b == 0 {
                band.set_no_data_value(Some(NODATA)).unwrap();
            }
            band.write(
                (0, 0),
                (self.width, self.height),
                &mut Buffer::new((self.width, self.height), data.clone()),
            )
            .unwrap();
        }
    }

    /// The value an export must hold for band `b` at raster pixel `(x, y)` (may be outside).
    pub fn exported(&self, b: usize, x: i64, y: i64, fill: f32) -> f32 {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return fill;
        }
        let i = y as usize * self.width + x as usize;
        if self.valid[i] {
            self.bands[b][i]
        } else {
            fill
        }
    }

    /// Band `b` over the window at `(x0, y0)` of `w x h`, row-major.
    pub fn window(&self, b: usize, x0: i64, y0: i64, w: usize, h: usize, fill: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                out.push(self.exported(b, x0 + x, y0 + y, fill));
            }
        }
        out
    }
}

/// Reads little-endian f32s.
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Reads little-endian i64s.
pub fn i64s(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Reads band `b` (1-based) of a raster as f64.
pub fn read_band(path: &Path, b: usize) -> (usize, usize, Vec<f64>) {
    let ds = gdal::Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let band = ds.rasterband(b).unwrap();
    let buf = band.read_as::<f64>((0, 0), (w, h), (w, h), None).unwrap();
    (w, h, buf.data().to_vec())
}

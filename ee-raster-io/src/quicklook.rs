//! An 8-bit PNG quicklook of one or three bands of a raster, each stretched between its 2nd
//! and 98th percentile of valid pixels, masked pixels transparent.

use std::path::Path;

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::DriverManager;

use crate::error::gdal_err;
use crate::gdal_apps::open_raster;
use crate::{Error, Result};

/// Writes a PNG of `bands` (1-based; one for grey, three for RGB) of `raster`, at most
/// `max_side` pixels on its longer side. Returns the PNG's size.
pub fn write_quicklook(
    raster: &Path,
    png: &Path,
    bands: &[usize],
    max_side: usize,
) -> Result<(usize, usize)> {
    if !(bands.len() == 1 || bands.len() == 3) {
        return Err(Error::Grid(format!(
            "a quicklook takes 1 or 3 bands, not {}",
            bands.len()
        )));
    }
    let ds = open_raster(raster)?;
    let (w, h) = ds.raster_size();
    let scale = (w.max(h) as f64 / max_side.max(1) as f64).max(1.0);
    let (qw, qh) = (
        ((w as f64 / scale).round() as usize).max(1),
        ((h as f64 / scale).round() as usize).max(1),
    );
    let mut alpha = vec![255u8; qw * qh];
    let mut planes = Vec::with_capacity(bands.len());
    for &b in bands {
        let band = ds.rasterband(b).map_err(gdal_err(
            raster,
            format!("opening band {b} for the quicklook"),
        ))?;
        let values = band
            .read_as::<f64>((0, 0), (w, h), (qw, qh), None)
            .map_err(gdal_err(
                raster,
                format!("reading band {b} for the quicklook"),
            ))?
            .into_shape_and_vec()
            .1;
        let nodata = band.no_data_value();
        let is_valid =
            |v: f64| v.is_finite() && nodata.is_none_or(|n| v != n && !(n.is_nan() && v.is_nan()));
        let mut sorted: Vec<f64> = values.iter().copied().filter(|&v| is_valid(v)).collect();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let pick = |q: f64| {
            sorted
                .get(((sorted.len().saturating_sub(1)) as f64 * q) as usize)
                .copied()
                .unwrap_or(0.0)
        };
        let (lo, hi) = (pick(0.02), pick(0.98));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let plane: Vec<u8> = values
            .iter()
            .zip(alpha.iter_mut())
            .map(|(&v, a)| {
                if !is_valid(v) {
                    *a = 0;
                    0
                } else {
                    (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8
                }
            })
            .collect();
        planes.push(plane);
    }
    let mem = DriverManager::get_driver_by_name("MEM")
        .map_err(gdal_err(png, "finding the MEM driver"))?;
    let tmp = mem
        .create_with_band_type::<u8, _>("", qw, qh, planes.len() + 1)
        .map_err(gdal_err(png, "creating the quicklook in memory"))?;
    for (i, plane) in planes.into_iter().chain(std::iter::once(alpha)).enumerate() {
        let mut band = tmp
            .rasterband(i + 1)
            .map_err(gdal_err(png, "quicklook band"))?;
        band.write((0, 0), (qw, qh), &mut Buffer::new((qw, qh), plane))
            .map_err(gdal_err(png, "writing the quicklook"))?;
    }
    let driver = DriverManager::get_driver_by_name("PNG")
        .map_err(gdal_err(png, "finding the PNG driver"))?;
    tmp.create_copy(&driver, png, &RasterCreationOptions::new())
        .map_err(gdal_err(png, "writing the PNG"))?;
    let _ = std::fs::remove_file(png.with_extension("png.aux.xml"));
    Ok((qw, qh))
}

//! Earth Engine's mixer: the JSON sidecar (`PREFIX-mixer.json`) that georeferences a patch
//! export, so predictions made on the patches can be put back on the map.
//!
//! ```json
//! {"projection": {"crs": "EPSG:32633",
//!                 "affine": {"doubleMatrix": [10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0]}},
//!  "patchDimensions": [256, 256], "patchesPerRow": 4, "totalPatches": 12}
//! ```
//!
//! The affine is `[xScale, xShear, xTranslation, yShear, yScale, yTranslation]` of the core
//! grid: its translation is the top-left corner of the first core patch.

use std::path::Path;

use ee_tiling::{GeoTransform, RasterSize};
use serde::{Deserialize, Serialize};

use crate::error::io_err;
use crate::{Error, Result};

/// The affine transform as Earth Engine writes it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    /// `[xScale, xShear, xTranslation, yShear, yScale, yTranslation]`.
    #[serde(rename = "doubleMatrix")]
    pub double_matrix: [f64; 6],
}

/// CRS and affine transform of the core patch grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// `EPSG:NNNN` when the CRS has an authority code, else its WKT.
    pub crs: String,
    /// Pixel-to-ground transform.
    pub affine: Affine,
}

/// The mixer: how patches (row-major, `patches_per_row` to a row) tile the map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mixer {
    /// CRS and transform of the core grid.
    pub projection: Projection,
    /// Core patch size `[width, height]` in pixels.
    pub patch_dimensions: [usize; 2],
    /// Patches per row of the grid.
    pub patches_per_row: usize,
    /// Patches in all.
    pub total_patches: usize,
}

impl Affine {
    /// From a GDAL-ordered geotransform.
    pub fn from_transform(t: GeoTransform) -> Self {
        Affine {
            double_matrix: [t.dx, t.rx, t.x0, t.ry, t.dy, t.y0],
        }
    }

    /// As a GDAL-ordered geotransform.
    pub fn transform(&self) -> GeoTransform {
        let [dx, rx, x0, ry, dy, y0] = self.double_matrix;
        GeoTransform {
            x0,
            dx,
            rx,
            y0,
            ry,
            dy,
        }
    }
}

impl Mixer {
    /// A mixer for a core grid starting at `transform`'s origin.
    pub fn new(
        crs: String,
        transform: GeoTransform,
        patch: [usize; 2],
        patches_per_row: usize,
        total_patches: usize,
    ) -> Self {
        Mixer {
            projection: Projection {
                crs,
                affine: Affine::from_transform(transform),
            },
            patch_dimensions: patch,
            patches_per_row,
            total_patches,
        }
    }

    /// Rows of patches.
    pub fn patch_rows(&self) -> usize {
        self.total_patches / self.patches_per_row.max(1)
    }

    /// The raster the patches cover, in pixels.
    pub fn raster_size(&self) -> RasterSize {
        RasterSize::new(
            self.patches_per_row * self.patch_dimensions[0],
            self.patch_rows() * self.patch_dimensions[1],
        )
    }

    /// The transform of that raster.
    pub fn transform(&self) -> GeoTransform {
        self.projection.affine.transform()
    }

    /// Checks that the mixer describes a non-empty, complete grid of patches.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let [w, h] = self.patch_dimensions;
        if w == 0 || h == 0 {
            return Err(format!("patchDimensions [{w}, {h}] has a zero side"));
        }
        if self.patches_per_row == 0 || self.total_patches == 0 {
            return Err(format!(
                "patchesPerRow {} and totalPatches {} describe no patch",
                self.patches_per_row, self.total_patches
            ));
        }
        if !self.total_patches.is_multiple_of(self.patches_per_row) {
            return Err(format!(
                "totalPatches {} is not a whole number of rows of {} patches",
                self.total_patches, self.patches_per_row
            ));
        }
        // GDAL rasters have at most i32::MAX pixels a side.
        let side =
            |patches: usize, px: usize| patches.checked_mul(px).filter(|&n| n <= i32::MAX as usize);
        if side(self.patches_per_row, w).is_none() || side(self.patch_rows(), h).is_none() {
            return Err(format!(
                "patchDimensions [{w}, {h}] with patchesPerRow {} and totalPatches {} describe a raster larger than {} pixels a side",
                self.patches_per_row,
                self.total_patches,
                i32::MAX
            ));
        }
        let m = self.projection.affine.double_matrix;
        if m.iter().any(|v| !v.is_finite()) || m[0] * m[4] - m[1] * m[3] == 0.0 {
            return Err(format!("the affine {m:?} is not an invertible transform"));
        }
        Ok(())
    }

    /// Reads and validates a mixer file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(io_err(path))?;
        let mixer: Mixer = serde_json::from_slice(&text).map_err(|e| Error::Mixer {
            path: path.to_path_buf(),
            problem: format!("not an Earth Engine mixer: {e}"),
        })?;
        mixer.validate().map_err(|problem| Error::Mixer {
            path: path.to_path_buf(),
            problem,
        })?;
        Ok(mixer)
    }

    /// Writes the mixer (under `PATH.partial`, renamed when complete).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let partial = ee_raster_io::partial_path(path);
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::Mixer {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        std::fs::write(&partial, text).map_err(io_err(&partial))?;
        std::fs::rename(&partial, path).map_err(io_err(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_earth_engines_mixer() {
        // The example of Earth Engine's TFRecord guide.
        let text = r#"{
          "patchDimensions": [256, 256],
          "patchesPerRow": 8,
          "projection": {
            "affine": {"doubleMatrix": [8.983152841195215e-05, 0.0, -122.00284487955057,
                                        0.0, -8.983152841195215e-05, 37.39430149644129]},
            "crs": "EPSG:4326"},
          "totalPatches": 40}"#;
        let m: Mixer = serde_json::from_str(text).unwrap();
        m.validate().unwrap();
        assert_eq!(m.patch_rows(), 5);
        assert_eq!(m.raster_size(), RasterSize::new(2048, 1280));
        let t = m.transform();
        assert_eq!((t.x0, t.y0), (-122.00284487955057, 37.39430149644129));
        assert_eq!(
            (t.dx, t.dy, t.rx, t.ry),
            (8.983152841195215e-05, -8.983152841195215e-05, 0.0, 0.0)
        );
        // Written back in Earth Engine's field names.
        let v: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(v["patchesPerRow"], 8);
        assert_eq!(
            v["projection"]["affine"]["doubleMatrix"][2],
            -122.00284487955057
        );
    }

    #[test]
    fn rejects_incomplete_grids() {
        let mut m = Mixer::new(
            "EPSG:4326".into(),
            GeoTransform::north_up(0.0, 0.0, 1.0, 1.0),
            [4, 4],
            3,
            7,
        );
        assert!(m.validate().unwrap_err().contains("totalPatches 7"));
        m.total_patches = 6;
        m.validate().unwrap();
        m.patch_dimensions = [0, 4];
        assert!(m.validate().unwrap_err().contains("zero side"));
    }
}

//! `RasterSource`: one raster opened through GDAL (any format GDAL reads), its grid and bands,
//! optionally warped onto another `SamplingGrid` through a lazy warped VRT (only the windows
//! read are computed, never a full-size copy).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use ee_tensor_proto::DataType;
use ee_tiling::{GeoTransform, RasterSize};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, Metadata};

use crate::error::gdal_err;
use crate::gdal_apps::{open_raster, warp};
use crate::{pixel, Error, Result};

/// A pixel grid: CRS, affine transform and size.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingGrid {
    /// The CRS as WKT (empty when the raster has none).
    pub crs_wkt: String,
    /// Pixel-to-ground transform.
    pub transform: GeoTransform,
    /// Size in pixels.
    pub size: RasterSize,
}

impl SamplingGrid {
    /// True when both grids have the same size, transform (to 1e-9 of a pixel) and CRS.
    pub fn same_as(&self, other: &SamplingGrid) -> bool {
        let t = (self.transform.to_gdal(), other.transform.to_gdal());
        let px = self
            .transform
            .dx
            .abs()
            .max(self.transform.dy.abs())
            .max(1e-300);
        self.size == other.size
            && t.0
                .iter()
                .zip(t.1.iter())
                .all(|(a, b)| (a - b).abs() <= 1e-9 * px.max(a.abs().max(b.abs()) * 1e-6))
            && same_crs(&self.crs_wkt, &other.crs_wkt)
    }

    /// A north-up grid in `crs` with pixels of `pixel` (`[x, y]`, positive) aligned to
    /// `origin`, covering this grid's extent (its outline densified and transformed).
    pub fn covering(&self, crs: &str, pixel: [f64; 2], origin: [f64; 2]) -> Result<SamplingGrid> {
        use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform};
        let mut src = SpatialRef::from_wkt(&self.crs_wkt).map_err(|e| {
            Error::Grid(format!(
                "the input has no usable CRS to reproject from: {e}"
            ))
        })?;
        let mut dst = SpatialRef::from_definition(crs)
            .map_err(|e| {
                Error::Grid(format!(
                    "proj CRS {crs:?} is not a CRS GDAL recognises (give EPSG:n, WKT or a PROJ string; {e})"
                ))
            })?;
        src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        dst.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let ct = CoordTransform::new(&src, &dst)
            .map_err(|e| Error::Grid(format!("cannot transform to {crs:?}: {e}")))?;
        let (w, h) = (self.size.width as f64, self.size.height as f64);
        let steps = 32;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for i in 0..=steps {
            let f = i as f64 / steps as f64;
            for (c, r) in [(f * w, 0.0), (f * w, h), (0.0, f * h), (w, f * h)] {
                let (x, y) = self.transform.apply(c, r);
                xs.push(x);
                ys.push(y);
            }
        }
        let mut zs = vec![0.0; xs.len()];
        ct.transform_coords(&mut xs, &mut ys, &mut zs)
            .map_err(|e| {
                Error::Grid(format!("transforming the input's outline to {crs:?}: {e}"))
            })?;
        let fold = |v: &[f64], f: fn(f64, f64) -> f64, init: f64| {
            v.iter().copied().filter(|x| x.is_finite()).fold(init, f)
        };
        let (xmin, xmax) = (
            fold(&xs, f64::min, f64::INFINITY),
            fold(&xs, f64::max, f64::NEG_INFINITY),
        );
        let (ymin, ymax) = (
            fold(&ys, f64::min, f64::INFINITY),
            fold(&ys, f64::max, f64::NEG_INFINITY),
        );
        if !(xmax > xmin && ymax > ymin) {
            return Err(Error::Grid(format!(
                "the input's extent does not transform to {crs:?}"
            )));
        }
        let [px, py] = pixel;
        let x0 = origin[0] + ((xmin - origin[0]) / px).floor() * px;
        let y1 = origin[1] + ((ymax - origin[1]) / py).ceil() * py;
        let width = ((xmax - x0) / px).ceil().max(1.0) as usize;
        let height = ((y1 - ymin) / py).ceil().max(1.0) as usize;
        Ok(SamplingGrid {
            crs_wkt: dst.to_wkt().map_err(|e| Error::Grid(e.to_string()))?,
            transform: GeoTransform::north_up(x0, y1, px, py),
            size: RasterSize::new(width, height),
        })
    }

    /// The grid's bounds `(xmin, ymin, xmax, ymax)`; refused for rotated grids.
    pub fn bounds(&self) -> Result<(f64, f64, f64, f64)> {
        let t = self.transform;
        if t.rx != 0.0 || t.ry != 0.0 {
            return Err(Error::Grid(
                "warping onto a rotated grid is not supported".into(),
            ));
        }
        let (x0, y0) = t.apply(0.0, 0.0);
        let (x1, y1) = t.apply(self.size.width as f64, self.size.height as f64);
        Ok((x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)))
    }
}

/// True when two WKT strings describe the same CRS.
pub fn same_crs(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (SpatialRef::from_wkt(a), SpatialRef::from_wkt(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// A CRS as Earth Engine names it: `AUTHORITY:CODE` (e.g. `EPSG:32633`) when the WKT carries
/// an authority code, else the WKT itself (empty stays empty).
pub fn crs_short_name(wkt: &str) -> String {
    match SpatialRef::from_wkt(wkt) {
        Ok(srs) => match (srs.auth_name(), srs.auth_code()) {
            (Some(name), Ok(code)) => format!("{name}:{code}"),
            _ => wkt.to_string(),
        },
        Err(_) => wkt.to_string(),
    }
}

/// Resampling used when warping inputs onto the sampling grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Resampling {
    /// Nearest neighbour (the default).
    #[default]
    Nearest,
    /// Bilinear.
    Bilinear,
    /// Cubic convolution.
    Cubic,
}

impl Resampling {
    fn gdal_name(self) -> &'static str {
        match self {
            Resampling::Nearest => "near",
            Resampling::Bilinear => "bilinear",
            Resampling::Cubic => "cubic",
        }
    }
}

impl FromStr for Resampling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "nearest" | "near" => Ok(Resampling::Nearest),
            "bilinear" => Ok(Resampling::Bilinear),
            "cubic" => Ok(Resampling::Cubic),
            other => Err(Error::Unsupported(format!(
                "unknown resampling {other:?} (nearest, bilinear or cubic)"
            ))),
        }
    }
}

/// A band by 1-based index or by description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BandSelector {
    /// 1-based band number.
    Index(usize),
    /// Band description (name).
    Name(String),
}

impl FromStr for BandSelector {
    type Err = std::convert::Infallible;

    /// A number is an index, anything else a name.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.parse::<usize>() {
            Ok(i) => BandSelector::Index(i),
            Err(_) => BandSelector::Name(s.to_string()),
        })
    }
}

impl std::fmt::Display for BandSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BandSelector::Index(i) => write!(f, "#{i}"),
            BandSelector::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// What a band is.
#[derive(Clone, Debug, PartialEq)]
pub struct BandInfo {
    /// 1-based index in its file.
    pub index: usize,
    /// Its name: the band description, or `b1`, `b2`... when it has none.
    pub name: String,
    /// Element type.
    pub dtype: DataType,
    /// Nodata value, if set.
    pub nodata: Option<f64>,
}

/// An in-memory warped VRT and the source it reads. Field order matters: the VRT must be
/// closed before its source, which Rust's declaration-order drop guarantees.
struct Warped {
    vrt: Dataset,
    _source: Dataset,
}

/// One opened raster.
pub struct RasterSource {
    path: PathBuf,
    dataset: Dataset,
    warped: Option<Warped>,
    grid: SamplingGrid,
    bands: Vec<BandInfo>,
}

fn read_grid(ds: &Dataset, path: &Path) -> Result<SamplingGrid> {
    let (w, h) = ds.raster_size();
    let transform = ds
        .geo_transform()
        .map(GeoTransform::from_gdal)
        .map_err(|_| {
            Error::Grid(format!(
                "{}: the raster has no geotransform",
                path.display()
            ))
        })?;
    let crs_wkt = ds
        .spatial_ref()
        .and_then(|s| s.to_wkt())
        .unwrap_or_default();
    Ok(SamplingGrid {
        crs_wkt,
        transform,
        size: RasterSize::new(w, h),
    })
}

fn read_bands(ds: &Dataset, path: &Path, count: usize) -> Result<Vec<BandInfo>> {
    (1..=count)
        .map(|index| {
            let band = ds
                .rasterband(index)
                .map_err(gdal_err(path, format!("opening band {index}")))?;
            let description = band.description().unwrap_or_default();
            Ok(BandInfo {
                index,
                name: if description.trim().is_empty() {
                    format!("b{index}")
                } else {
                    description
                },
                dtype: pixel::from_gdal(band.band_type())
                    .map_err(|e| Error::Grid(format!("{}: band {index}: {e}", path.display())))?,
                nodata: band.no_data_value(),
            })
        })
        .collect()
}

impl std::fmt::Debug for RasterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RasterSource")
            .field("path", &self.path)
            .field("warped", &self.warped.is_some())
            .field("grid", &self.grid)
            .field("bands", &self.bands)
            .finish()
    }
}

impl RasterSource {
    /// Opens a raster on its own grid.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let dataset = open_raster(&path)?;
        let (w, h) = dataset.raster_size();
        if w == 0 || h == 0 || dataset.raster_count() == 0 {
            return Err(Error::Grid(format!(
                "{}: the raster is empty ({w} x {h} pixels, {} bands)",
                path.display(),
                dataset.raster_count()
            )));
        }
        let grid = read_grid(&dataset, &path)?;
        let bands = read_bands(&dataset, &path, dataset.raster_count())?;
        Ok(RasterSource {
            path,
            dataset,
            warped: None,
            grid,
            bands,
        })
    }

    /// Opens a raster and warps it onto `grid` with GDAL's warper (the engine of `gdalwarp`),
    /// lazily: windows are computed when read. Pixels outside the source, or nodata in it,
    /// come out masked.
    pub fn open_warped(
        path: impl AsRef<Path>,
        grid: &SamplingGrid,
        resampling: Resampling,
    ) -> Result<Self> {
        let mut plain = RasterSource::open(path)?;
        if plain.grid.crs_wkt.is_empty() || grid.crs_wkt.is_empty() {
            return Err(Error::Grid(format!(
                "{}: cannot warp without a CRS on both the input and the sampling grid",
                plain.path.display()
            )));
        }
        let (xmin, ymin, xmax, ymax) = grid.bounds()?;
        let args: Vec<String> = [
            "-of",
            "VRT",
            "-t_srs",
            &grid.crs_wkt,
            "-te",
            &xmin.to_string(),
            &ymin.to_string(),
            &xmax.to_string(),
            &ymax.to_string(),
            "-ts",
            &grid.size.width.to_string(),
            &grid.size.height.to_string(),
            "-r",
            resampling.gdal_name(),
            // Exact transformer and unscaled kernels, so any window equals gdalwarp's output.
            "-et",
            "0",
            "-wo",
            "XSCALE=1",
            "-wo",
            "YSCALE=1",
            // Validity travels in an alpha band (outside the source and source nodata both
            // give alpha 0); output nodata would otherwise take precedence over it.
            "-dstalpha",
            "-dstnodata",
            "None",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let vrt = warp(&plain.dataset, "", &args, &plain.path)?;
        let source = std::mem::replace(&mut plain.dataset, open_raster(&plain.path)?);
        plain.warped = Some(Warped {
            vrt,
            _source: source,
        });
        plain.grid = SamplingGrid {
            crs_wkt: grid.crs_wkt.clone(),
            transform: grid.transform,
            size: grid.size,
        };
        Ok(plain)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The grid windows are read on (the sampling grid when warped).
    pub fn grid(&self) -> &SamplingGrid {
        &self.grid
    }

    /// The bands.
    pub fn bands(&self) -> &[BandInfo] {
        &self.bands
    }

    /// True when reads go through a warp.
    pub fn is_warped(&self) -> bool {
        self.warped.is_some()
    }

    /// The warp's alpha band (validity: outside the source or source nodata is 0), when warped.
    /// A warped VRT does not expose it through its bands' mask flags, so readers use it directly.
    pub(crate) fn alpha_band(&self) -> Option<usize> {
        self.warped.as_ref().map(|w| w.vrt.raster_count())
    }

    /// The dataset windows are read from.
    pub(crate) fn dataset(&self) -> &Dataset {
        match &self.warped {
            Some(w) => &w.vrt,
            None => &self.dataset,
        }
    }

    /// Finds a band by index or name.
    pub fn band(&self, selector: &BandSelector) -> Result<&BandInfo> {
        let found = match selector {
            BandSelector::Index(i) => self.bands.iter().find(|b| b.index == *i),
            BandSelector::Name(n) => self.bands.iter().find(|b| &b.name == n),
        };
        found.ok_or_else(|| Error::NoSuchBand {
            path: self.path.clone(),
            band: selector.to_string(),
            available: format!(
                "{} band(s): {}",
                self.bands.len(),
                self.bands
                    .iter()
                    .map(|b| format!("#{} {:?}", b.index, b.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

//! `GeoTiffWriter`: a tiled, compressed GeoTIFF written window by window as rows finish.
//!
//! The file is written under a `.partial` name and renamed into place by `finish`, so a run
//! that dies never leaves a file that looks complete. `finish` can also turn it into a
//! Cloud-Optimized GeoTIFF with GDAL's COG driver; a file GDAL cannot close cleanly (a full
//! disk when the last blocks and the TIFF directory are written) is an error and stays under
//! its `.partial` name. GTiff stores one type and one nodata value for all bands; the writer
//! picks the narrowest type holding every band's values, and counts what the conversion to
//! it changed ([`WriteStats`]).

use std::any::Any;
use std::path::{Path, PathBuf};

use ee_tensor_proto::DataType;
use ee_tiling::{Block, GeoTransform, Pixel, RasterSize, Window};
use gdal::raster::{GdalDataType, GdalType, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager, Metadata};
use ndarray::Array3;

use crate::error::gdal_err;
use crate::gdal_apps::{open_raster, quiet_gdal, translate};
pub use crate::pixel::FromF64;
use crate::pixel::ValueRange;
use crate::{pixel, Error, Result};

/// One output band.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputBand {
    /// Band description (name).
    pub name: String,
    /// The values' type.
    pub dtype: DataType,
}

/// Block compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// DEFLATE (zlib), with a predictor.
    #[default]
    Deflate,
    /// Zstandard, with a predictor.
    Zstd,
    /// None.
    None,
}

/// How the GeoTIFF is laid out.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOptions {
    /// Block compression.
    pub compression: Compression,
    /// Square block size in pixels (a multiple of 16).
    pub block_size: usize,
    /// Nodata value of every band, written where output is masked (a command line's
    /// `--nodata`); it overrides `band_nodata`.
    pub nodata: Option<f64>,
    /// Nodata of each band in order (empty: none given; else one entry per band, an array
    /// band's planes each repeating its value). GTiff stores one nodata value for all bands:
    /// the values given must be equal, and the bands without one take it. With none given
    /// anywhere the nodata is NaN for float files and the type's maximum for integer files
    /// ([`pixel::default_nodata`]).
    pub band_nodata: Vec<Option<f64>>,
    /// Convert to a Cloud-Optimized GeoTIFF at the end.
    pub cog: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::Deflate,
            block_size: 256,
            nodata: None,
            band_nodata: Vec::new(),
            cog: false,
        }
    }
}

/// What converting the blocks to the file's type changed, counted over valid pixels (masked
/// pixels become nodata whatever their value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Values outside the file type's range (saturated at it) or NaN written to an integer
    /// type (as 0): changed beyond rounding.
    pub clamped: u64,
    /// Valid values equal to the nodata value as written (NaN when nodata is NaN): they read
    /// back as masked.
    pub nodata_collisions: u64,
}

impl std::fmt::Display for WriteStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} values clamped to the output type, {} valid values equal to nodata",
            self.clamped, self.nodata_collisions
        )
    }
}

/// A GeoTIFF being written.
pub struct GeoTiffWriter {
    path: PathBuf,
    partial: PathBuf,
    dataset: Dataset,
    bands: Vec<OutputBand>,
    gdal_type: GdalDataType,
    nodata: f64,
    size: RasterSize,
    cog: Option<Compression>,
    block_size: usize,
    /// Rows `0..rows_in_order` were written, in order, by the blocks so far; `None` once a
    /// block came out of order (then GDAL's cache decides when blocks are written).
    rows_in_order: Option<usize>,
    stats: WriteStats,
}

/// The name written to until `finish`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

/// The file's one nodata value (see [`WriteOptions::band_nodata`]), checked against the file's
/// type `gdal_type`.
fn file_nodata(
    path: &Path,
    bands: &[OutputBand],
    options: &WriteOptions,
    gdal_type: GdalDataType,
) -> Result<f64> {
    let given = |what: String, v: f64| -> Result<f64> {
        let range = ValueRange::of(pixel::from_gdal(gdal_type)?);
        if range.contains(v) {
            Ok(v)
        } else {
            Err(Error::Unsupported(format!(
                "{}: {what} {v} does not fit the file's {gdal_type:?} bands ({range})",
                path.display()
            )))
        }
    };
    if let Some(v) = options.nodata {
        return given("nodata".into(), v);
    }
    if options.band_nodata.is_empty() {
        return Ok(pixel::default_nodata(gdal_type));
    }
    if options.band_nodata.len() != bands.len() {
        return Err(Error::Grid(format!(
            "{}: nodata given for {} bands, the file has {}",
            path.display(),
            options.band_nodata.len(),
            bands.len()
        )));
    }
    let mut first: Option<(usize, f64)> = None;
    for (i, v) in options.band_nodata.iter().enumerate() {
        let Some(v) = *v else { continue };
        match first {
            None => first = Some((i, v)),
            Some((j, w)) if !v.same_as(w) => {
                return Err(Error::Unsupported(format!(
                    "{}: band {} ({}) has nodata {w}, band {} ({}) {v}: a GeoTIFF stores one nodata value for all its bands",
                    path.display(),
                    j + 1,
                    bands[j].name,
                    i + 1,
                    bands[i].name
                )))
            }
            Some(_) => {}
        }
    }
    match first {
        Some((i, v)) => given(format!("band {} ({}) nodata", i + 1, bands[i].name), v),
        None => Ok(pixel::default_nodata(gdal_type)),
    }
}

/// Closes `dataset`, writing what GDAL still holds (the last blocks, the TIFF directory), with
/// GDAL's failure as an error naming `path`. GDAL before 3.7 reports a failed flush or close
/// only through its error state, which is read here.
fn close_checked(dataset: Dataset, path: &Path, operation: &str) -> Result<()> {
    // SAFETY: GDAL's error state is per thread; resetting and reading it has no preconditions.
    unsafe { gdal_sys::CPLErrorReset() };
    let mut dataset = dataset;
    let flushed = dataset.flush_cache();
    let closed = dataset.close();
    // SAFETY: as above.
    let failed = unsafe { gdal_sys::CPLGetLastErrorType() } >= gdal_sys::CPLErr::CE_Failure;
    match (flushed.and(closed), failed) {
        (Err(e), _) => Err(gdal_err(path, operation)(e)),
        (Ok(()), true) => Err(Error::Gdal {
            path: path.to_path_buf(),
            operation: operation.to_string(),
            message: crate::gdal_apps::last_message(),
        }),
        (Ok(()), false) => Ok(()),
    }
}

fn compression_options(c: Compression, float: bool) -> Vec<String> {
    let predictor = if float { "PREDICTOR=3" } else { "PREDICTOR=2" };
    match c {
        Compression::Deflate => vec!["COMPRESS=DEFLATE".into(), predictor.into()],
        Compression::Zstd => vec!["COMPRESS=ZSTD".into(), predictor.into()],
        Compression::None => vec![],
    }
}

impl GeoTiffWriter {
    /// Creates `path` (as `path.partial` until `finish`) of `size`, georeferenced by
    /// `transform` and `crs_wkt` (WKT, or any definition GDAL accepts such as `EPSG:32633`),
    /// with `bands`.
    pub fn create(
        path: impl AsRef<Path>,
        size: RasterSize,
        transform: GeoTransform,
        crs_wkt: &str,
        bands: &[OutputBand],
        options: &WriteOptions,
    ) -> Result<Self> {
        quiet_gdal();
        let path = path.as_ref().to_path_buf();
        if bands.is_empty() {
            return Err(Error::Grid(format!(
                "{}: no output band to write",
                path.display()
            )));
        }
        if options.block_size == 0 || !options.block_size.is_multiple_of(16) {
            return Err(Error::Grid(format!(
                "block size {} is not a positive multiple of 16",
                options.block_size
            )));
        }
        let partial = partial_path(&path);
        let _ = std::fs::remove_file(&partial);
        let types: Vec<DataType> = bands.iter().map(|b| b.dtype).collect();
        let gdal_type = pixel::common_type(&types)?;
        let float = matches!(gdal_type, GdalDataType::Float32 | GdalDataType::Float64);
        let nodata = file_nodata(&path, bands, options, gdal_type)?;
        let mut co: Vec<String> = vec![
            "TILED=YES".into(),
            format!("BLOCKXSIZE={}", options.block_size),
            format!("BLOCKYSIZE={}", options.block_size),
            "BIGTIFF=IF_SAFER".into(),
            "SPARSE_OK=TRUE".into(),
            "INTERLEAVE=BAND".into(),
            // Compress blocks on every core.
            "NUM_THREADS=ALL_CPUS".into(),
        ];
        co.extend(compression_options(options.compression, float));
        let creation = RasterCreationOptions::from_iter(co.iter().map(String::as_str));
        let driver = DriverManager::get_driver_by_name("GTiff")
            .map_err(gdal_err(&path, "finding the GTiff driver"))?;
        let create = |ds: &mut Dataset| -> Result<()> {
            ds.set_geo_transform(&transform.to_gdal())
                .map_err(gdal_err(&partial, "setting the geotransform"))?;
            if !crs_wkt.is_empty() {
                let srs = SpatialRef::from_definition(crs_wkt)
                    .map_err(gdal_err(&partial, "parsing the CRS"))?;
                ds.set_spatial_ref(&srs)
                    .map_err(gdal_err(&partial, "setting the CRS"))?;
            }
            for (i, b) in bands.iter().enumerate() {
                let mut band = ds
                    .rasterband(i + 1)
                    .map_err(gdal_err(&partial, format!("opening band {}", i + 1)))?;
                band.set_description(&b.name)
                    .map_err(gdal_err(&partial, "setting a band description"))?;
                band.set_no_data_value(Some(nodata))
                    .map_err(gdal_err(&partial, "setting nodata"))?;
            }
            Ok(())
        };
        macro_rules! create_as {
            ($t:ty) => {
                driver.create_with_band_type_with_options::<$t, _>(
                    &partial,
                    size.width,
                    size.height,
                    bands.len(),
                    &creation,
                )
            };
        }
        let made = match gdal_type {
            GdalDataType::UInt8 => create_as!(u8),
            GdalDataType::UInt16 => create_as!(u16),
            GdalDataType::Int16 => create_as!(i16),
            GdalDataType::UInt32 => create_as!(u32),
            GdalDataType::Int32 => create_as!(i32),
            GdalDataType::UInt64 => create_as!(u64),
            GdalDataType::Int64 => create_as!(i64),
            GdalDataType::Float32 => create_as!(f32),
            _ => create_as!(f64),
        };
        let mut dataset = made.map_err(gdal_err(&partial, "creating the GeoTIFF"))?;
        create(&mut dataset)?;
        Ok(GeoTiffWriter {
            path,
            partial,
            dataset,
            bands: bands.to_vec(),
            gdal_type,
            nodata,
            size,
            cog: options.cog.then_some(options.compression),
            block_size: options.block_size,
            rows_in_order: Some(0),
            stats: WriteStats::default(),
        })
    }

    /// What the conversion to the file's type changed in the blocks written so far.
    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    /// The nodata value written where output is masked.
    pub fn nodata(&self) -> f64 {
        self.nodata
    }

    /// The GDAL type of every band.
    pub fn gdal_type(&self) -> GdalDataType {
        self.gdal_type
    }

    /// Writes finished rows: `block.values` is `(rows, cols, bands)`; invalid pixels get nodata.
    /// When `P` is the bands' type, the block is written from its own memory (its invalid
    /// pixels set to nodata there); otherwise through one converted copy.
    pub fn write_block<P: Pixel>(&mut self, block: &mut Block<P>) -> Result<()> {
        let (rows, cols, planes) = block.values.dim();
        if planes != self.bands.len()
            || cols != self.size.width
            || block.y0 + rows > self.size.height
        {
            return Err(Error::Grid(format!(
                "{}: block of {rows}x{cols}x{planes} at row {} does not fit a {}x{} raster of {} bands",
                self.partial.display(),
                block.y0,
                self.size.width,
                self.size.height,
                self.bands.len()
            )));
        }
        match self.gdal_type {
            GdalDataType::UInt8 => self.write_as::<u8, P>(block),
            GdalDataType::UInt16 => self.write_as::<u16, P>(block),
            GdalDataType::Int16 => self.write_as::<i16, P>(block),
            GdalDataType::UInt32 => self.write_as::<u32, P>(block),
            GdalDataType::Int32 => self.write_as::<i32, P>(block),
            GdalDataType::UInt64 => self.write_as::<u64, P>(block),
            GdalDataType::Int64 => self.write_as::<i64, P>(block),
            GdalDataType::Float32 => self.write_as::<f32, P>(block),
            _ => self.write_as::<f64, P>(block),
        }
    }

    fn write_as<T: GdalType + Copy + FromF64 + 'static, P: Pixel>(
        &mut self,
        block: &mut Block<P>,
    ) -> Result<()> {
        let (rows, cols, planes) = block.values.dim();
        let nodata = T::from_f64(self.nodata);
        let Block { y0, values, valid } = block;
        let all_valid = valid.iter().all(|&ok| ok);
        // The block already in the bands' type is written as it lies; otherwise one pass
        // converts it, still pixel-interleaved, counting clamped values. Either way one GDAL
        // call writes every band (GDAL splits the interleave into the band blocks itself).
        let same = (values as &mut dyn Any).downcast_mut::<Array3<T>>();
        let mut converted: Vec<T>;
        let mut clamped = 0u64;
        let data: &mut [T] = match same.and_then(|v| v.as_slice_mut()) {
            Some(data) => data,
            None => {
                converted = Vec::with_capacity(rows * cols * planes);
                let mut convert = |v: f64| {
                    let (x, c) = T::from_f64_checked(v);
                    clamped += c as u64;
                    x
                };
                match (values.as_slice(), all_valid) {
                    (Some(v), true) => converted.extend(v.iter().map(|&v| convert(v.to_f64()))),
                    (Some(v), false) => {
                        for (px, &ok) in v.chunks_exact(planes.max(1)).zip(valid.iter()) {
                            if ok {
                                converted.extend(px.iter().map(|&v| convert(v.to_f64())));
                            } else {
                                converted.extend(px.iter().map(|&v| T::from_f64(v.to_f64())));
                            }
                        }
                    }
                    (None, _) => {
                        for ((r, c, _), &v) in values.indexed_iter() {
                            converted.push(if valid[[r, c]] {
                                convert(v.to_f64())
                            } else {
                                T::from_f64(v.to_f64())
                            });
                        }
                    }
                }
                &mut converted
            }
        };
        let mut collisions = 0u64;
        if all_valid {
            collisions = data.iter().filter(|v| v.same_as(nodata)).count() as u64;
        } else {
            for (px, &ok) in data.chunks_exact_mut(planes.max(1)).zip(valid.iter()) {
                if ok {
                    collisions += px.iter().filter(|v| v.same_as(nodata)).count() as u64;
                } else {
                    px.fill(nodata);
                }
            }
        }
        self.stats.clamped += clamped;
        self.stats.nodata_collisions += collisions;
        let mut bands: Vec<i32> = (1..=planes as i32).collect();
        // Rows arriving in order are written in pieces that end on the file's block rows; each
        // block row, once complete, is flushed out of GDAL's cache at once (see
        // `flush_cache`). Once a block comes out of order, GDAL's cache decides.
        let row_len = cols * planes;
        let mut y = *y0;
        let mut rest = data;
        while y < *y0 + rows {
            let in_order = self.rows_in_order == Some(y);
            let end = if in_order {
                ((y / self.block_size + 1) * self.block_size).min(*y0 + rows)
            } else {
                *y0 + rows
            };
            let (piece, tail) = rest.split_at_mut((end - y) * row_len);
            crate::gdal_apps::pixel_interleaved_io(
                &self.dataset,
                true,
                Window::new(0, y as i64, cols, end - y),
                &mut bands,
                piece,
                cols,
                &self.partial,
                || format!("writing rows {y}..{end}"),
            )?;
            self.rows_in_order = in_order.then_some(end);
            if in_order && (end.is_multiple_of(self.block_size) || end == self.size.height) {
                self.flush_cache(y, end)?;
            }
            (y, rest) = (end, tail);
        }
        Ok(())
    }

    /// Writes and drops every band's cached blocks, once rows written in order from the top
    /// have completed a row of the file's blocks (or the raster) with `y..end`. Nothing partial
    /// is in the cache then, so no block is written twice; the cache holds one block row
    /// instead of filling up with the whole output, which saves its memory and the page faults
    /// of filling it.
    fn flush_cache(&self, y: usize, end: usize) -> Result<()> {
        for b in 1..=self.bands.len() {
            let band = self
                .dataset
                .rasterband(b)
                .map_err(gdal_err(&self.partial, format!("opening band {b}")))?;
            // SAFETY: the handle belongs to `band`, alive for the call.
            let err = unsafe { gdal_sys::GDALFlushRasterCache(band.c_rasterband()) };
            if err != gdal_sys::CPLErr::CE_None {
                return Err(Error::Gdal {
                    path: self.partial.clone(),
                    operation: format!("writing rows {y}..{end} of band {b}"),
                    message: crate::gdal_apps::last_message(),
                });
            }
        }
        Ok(())
    }

    /// Writes what GDAL still holds and closes the file, optionally converts it to COG, and
    /// moves it into place. Returns its path. A file GDAL fails to write or close stays under
    /// its `.partial` name, and the error names it. [`GeoTiffWriter::stats`] before it tells
    /// what the conversion changed.
    pub fn finish(self) -> Result<PathBuf> {
        close_checked(
            self.dataset,
            &self.partial,
            "writing the last blocks and the TIFF directory",
        )?;
        match self.cog {
            None => {
                std::fs::rename(&self.partial, &self.path).map_err(|source| Error::Io {
                    path: self.path.clone(),
                    source,
                })?;
            }
            Some(compression) => {
                let src = open_raster(&self.partial)?;
                let staging = partial_path(&self.path.with_extension("cog.tif"));
                let mut args: Vec<String> = vec![
                    "-of".into(),
                    "COG".into(),
                    "-co".into(),
                    format!("BLOCKSIZE={}", self.block_size),
                ];
                let float = matches!(
                    self.gdal_type,
                    GdalDataType::Float32 | GdalDataType::Float64
                );
                for o in compression_options(compression, float) {
                    let o = o
                        .replace("PREDICTOR=3", "PREDICTOR=YES")
                        .replace("PREDICTOR=2", "PREDICTOR=YES");
                    args.push("-co".into());
                    args.push(o);
                }
                close_checked(
                    translate(&src, &staging, &args)?,
                    &staging,
                    "writing the Cloud-Optimized GeoTIFF",
                )?;
                drop(src);
                std::fs::rename(&staging, &self.path).map_err(|source| Error::Io {
                    path: self.path.clone(),
                    source,
                })?;
                let _ = std::fs::remove_file(&self.partial);
            }
        }
        Ok(self.path)
    }
}

//! `InputStack`: the bands of one or more rasters on one sampling grid, read window by window.
//! Windows may run past the raster (overlap margins at the edges): pixels outside are filled
//! with a chosen value and marked invalid, as are nodata pixels and pixels a GDAL mask band
//! (or alpha band) masks. Validity is combined over all bands (Earth Engine's min-mask rule).

use std::path::PathBuf;

use ee_tiling::Window;
use gdal::raster::GdalType;
use ndarray::{s, Array2, Array3, ArrayViewMut2, Axis};

use crate::error::gdal_err;
use crate::source::{BandInfo, BandSelector, RasterSource, Resampling, SamplingGrid};
use crate::{Error, Result};

/// One band of the stack: which source and which band of it.
#[derive(Clone, Debug, PartialEq)]
pub struct StackBand {
    /// Index of the source in the stack.
    pub source: usize,
    /// The band.
    pub info: BandInfo,
}

/// A window's pixels and validity.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowData<T> {
    /// Values `(bands, rows, cols)`; invalid pixels hold the fill value.
    pub values: Array3<T>,
    /// Validity `(rows, cols)`: inside the raster and unmasked in every band.
    pub valid: Array2<bool>,
}

/// A window's pixels read pixel-interleaved (see [`InputStack::read_interleaved`]).
#[derive(Clone, Debug, PartialEq)]
pub struct InterleavedWindow<T> {
    /// Values `(rows, cols, bands)` row-major; pixels outside the raster hold the fill value.
    pub values: Vec<T>,
    /// Validity `(rows, cols)`: inside the raster.
    pub valid: Array2<bool>,
}

/// Several rasters' bands on one grid.
pub struct InputStack {
    sources: Vec<RasterSource>,
    bands: Vec<StackBand>,
    grid: SamplingGrid,
}

impl InputStack {
    /// Opens `paths` on `grid` (the first input's own grid when `None`), warping the inputs
    /// that are not on it, and selects `selection` as `(input index, band)`; an empty
    /// selection takes every band of every input, in order.
    pub fn open(
        paths: &[PathBuf],
        selection: &[(usize, BandSelector)],
        grid: Option<&SamplingGrid>,
        resampling: Resampling,
    ) -> Result<Self> {
        let first = paths
            .first()
            .ok_or_else(|| Error::Grid("no input raster given".into()))?;
        let mut sources = Vec::with_capacity(paths.len());
        let grid = match grid {
            Some(g) => g.clone(),
            None => {
                let s = RasterSource::open(first)?;
                let g = s.grid().clone();
                sources.push(s);
                g
            }
        };
        for path in &paths[sources.len()..] {
            let plain = RasterSource::open(path)?;
            sources.push(if plain.grid().same_as(&grid) {
                plain
            } else {
                RasterSource::open_warped(path, &grid, resampling)?
            });
        }
        if let Some(s) = sources.first_mut() {
            if !s.grid().same_as(&grid) {
                *s = RasterSource::open_warped(first, &grid, resampling)?;
            }
        }
        InputStack::new(sources, selection)
    }

    /// Stacks already opened sources, which must share one grid.
    pub fn new(sources: Vec<RasterSource>, selection: &[(usize, BandSelector)]) -> Result<Self> {
        let first = sources
            .first()
            .ok_or_else(|| Error::Grid("no input raster given".into()))?;
        let grid = first.grid().clone();
        for s in &sources[1..] {
            if !s.grid().same_as(&grid) {
                return Err(Error::Grid(format!(
                    "{} is on another grid than {} ({}x{} vs {}x{} pixels, transform {:?} vs {:?}); warp it onto the sampling grid",
                    s.path().display(),
                    first.path().display(),
                    s.grid().size.width,
                    s.grid().size.height,
                    grid.size.width,
                    grid.size.height,
                    s.grid().transform.to_gdal(),
                    grid.transform.to_gdal()
                )));
            }
        }
        let bands = if selection.is_empty() {
            sources
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    s.bands().iter().map(move |b| StackBand {
                        source: i,
                        info: b.clone(),
                    })
                })
                .collect()
        } else {
            selection
                .iter()
                .map(|(i, sel)| {
                    let s = sources.get(*i).ok_or_else(|| {
                        Error::Grid(format!(
                            "band {sel} asks for input {} but only {} were given",
                            i + 1,
                            sources.len()
                        ))
                    })?;
                    Ok(StackBand {
                        source: *i,
                        info: s.band(sel)?.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        Ok(InputStack {
            sources,
            bands,
            grid,
        })
    }

    /// The sampling grid.
    pub fn grid(&self) -> &SamplingGrid {
        &self.grid
    }

    /// The stacked bands, in order.
    pub fn bands(&self) -> &[StackBand] {
        &self.bands
    }

    /// The sources.
    pub fn sources(&self) -> &[RasterSource] {
        &self.sources
    }

    /// Reads `window` of every band as `T` (GDAL converts), `fill` outside the raster and
    /// where masked.
    pub fn read_window<T: GdalType + Copy>(
        &self,
        window: Window,
        fill: T,
    ) -> Result<WindowData<T>> {
        let (h, w) = (window.height, window.width);
        let mut values = Array3::from_elem((self.bands.len(), h, w), fill);
        let mut valid = Array2::from_elem((h, w), false);
        let Some(inside) = window.intersect(self.grid.size.window()) else {
            return Ok(WindowData { values, valid });
        };
        let whole = inside == window;
        let (ox, oy) = (
            (inside.x - window.x) as usize,
            (inside.y - window.y) as usize,
        );
        let rows = oy..oy + inside.height;
        let cols = ox..ox + inside.width;
        valid.slice_mut(s![rows.clone(), cols.clone()]).fill(true);
        let mut buf: Vec<T> = Vec::new();
        let mut mask: Vec<u8> = Vec::new();
        // Whether any pixel may be invalid: then masked pixels are set to `fill` at the end.
        let mut masked = !whole;
        let (ix, iy, iw, ih) = (
            inside.x as isize,
            inside.y as isize,
            inside.width,
            inside.height,
        );
        let mut apply_mask = |band: &gdal::raster::RasterBand<'_>,
                              path: &std::path::Path,
                              what: &str|
         -> Result<()> {
            masked = true;
            mask.resize(inside.area(), 0);
            band.read_into_slice::<u8>((ix, iy), (iw, ih), (iw, ih), &mut mask, None)
                .map_err(gdal_err(path, format!("reading the mask of {what}")))?;
            let mut v = valid.slice_mut(s![rows.clone(), cols.clone()]);
            for (ok, m) in v.iter_mut().zip(&mask) {
                *ok &= *m != 0;
            }
            Ok(())
        };
        // Warped sources carry validity in their alpha band, once per source.
        let mut alpha_done = vec![false; self.sources.len()];
        for (k, band) in self.bands.iter().enumerate() {
            let source = &self.sources[band.source];
            let path = source.path();
            let what = format!(
                "band {} ({:?}) window {}x{} at ({}, {})",
                band.info.index, band.info.name, iw, ih, ix, iy
            );
            let gband = source
                .dataset()
                .rasterband(band.info.index)
                .map_err(gdal_err(path, what.clone()))?;
            let plane = values.index_axis_mut(Axis(0), k);
            match plane.into_slice() {
                // The window is the plane: GDAL reads straight into it.
                Some(dst) if whole => gband
                    .read_into_slice::<T>((ix, iy), (iw, ih), (iw, ih), dst, None)
                    .map_err(gdal_err(path, format!("reading {what}")))?,
                _ => {
                    buf.resize(inside.area(), fill);
                    gband
                        .read_into_slice::<T>((ix, iy), (iw, ih), (iw, ih), &mut buf, None)
                        .map_err(gdal_err(path, format!("reading {what}")))?;
                    let mut plane = values.slice_mut(s![k, rows.clone(), cols.clone()]);
                    copy_rows(&buf, iw, &mut plane);
                }
            }
            match source.alpha_band() {
                Some(alpha) if !alpha_done[band.source] => {
                    alpha_done[band.source] = true;
                    let aband = source
                        .dataset()
                        .rasterband(alpha)
                        .map_err(gdal_err(path, format!("alpha band of the warp for {what}")))?;
                    apply_mask(&aband, path, &what)?;
                }
                Some(_) => {}
                None => {
                    let flags = gband
                        .mask_flags()
                        .map_err(gdal_err(path, format!("mask flags of {what}")))?;
                    if !flags.is_all_valid() {
                        let mband = gband
                            .open_mask_band()
                            .map_err(gdal_err(path, format!("mask of {what}")))?;
                        apply_mask(&mband, path, &what)?;
                    }
                }
            }
        }
        // Masked pixels are sent as the fill value too.
        if masked {
            for k in 0..self.bands.len() {
                let mut plane = values.slice_mut(s![k, .., ..]);
                plane.zip_mut_with(&valid, |v, ok| {
                    if !ok {
                        *v = fill;
                    }
                });
            }
        }
        Ok(WindowData { values, valid })
    }
}

impl InputStack {
    /// Reads the stack bands at `positions` of `window` pixel-interleaved, `(h, w,
    /// positions.len())` row-major, in one GDAL call that converts to `T`: the layout a model
    /// input tensor has, so it can be sent as read. Pixels outside the raster hold `fill` and
    /// are invalid, as [`InputStack::read_window`] has them. `None` (read with
    /// [`InputStack::read_window`] instead) unless the window meets the raster and the bands
    /// come from one unwarped source and have no masked pixels.
    pub fn read_interleaved<T: GdalType + Copy>(
        &self,
        window: Window,
        positions: &[usize],
        fill: T,
    ) -> Result<Option<InterleavedWindow<T>>> {
        let Some(inside) = window.intersect(self.grid.size.window()) else {
            return Ok(None);
        };
        let Some(first) = positions.first().and_then(|&p| self.bands.get(p)) else {
            return Ok(None);
        };
        let source = &self.sources[first.source];
        if source.alpha_band().is_some() {
            return Ok(None);
        }
        let path = source.path();
        let mut band_map = Vec::with_capacity(positions.len());
        for &p in positions {
            let Some(band) = self.bands.get(p).filter(|b| b.source == first.source) else {
                return Ok(None);
            };
            let what = format!("band {} ({:?})", band.info.index, band.info.name);
            let gband = source
                .dataset()
                .rasterband(band.info.index)
                .map_err(gdal_err(path, what.clone()))?;
            let flags = gband
                .mask_flags()
                .map_err(gdal_err(path, format!("mask flags of {what}")))?;
            if !flags.is_all_valid() {
                return Ok(None);
            }
            band_map.push(i32::try_from(band.info.index).map_err(|_| {
                Error::Grid(format!(
                    "{}: band index {} is out of range",
                    path.display(),
                    band.info.index
                ))
            })?);
        }
        let (n, w, h) = (positions.len(), window.width, window.height);
        let mut values = vec![fill; w * h * n];
        let mut valid = Array2::from_elem((h, w), inside == window);
        let (ox, oy) = (
            (inside.x - window.x) as usize,
            (inside.y - window.y) as usize,
        );
        if inside != window {
            valid
                .slice_mut(s![oy..oy + inside.height, ox..ox + inside.width])
                .fill(true);
        }
        // The part inside the raster lands at its place in the window's lines.
        crate::gdal_apps::pixel_interleaved_io(
            source.dataset(),
            false,
            inside,
            &mut band_map,
            &mut values[(oy * w + ox) * n..],
            w,
            path,
            || {
                format!(
                    "reading {n} bands of window {}x{} at ({}, {})",
                    inside.width, inside.height, inside.x, inside.y
                )
            },
        )?;
        Ok(Some(InterleavedWindow { values, valid }))
    }
}

fn copy_rows<T: Copy>(src: &[T], width: usize, dst: &mut ArrayViewMut2<'_, T>) {
    for (mut row, chunk) in dst.rows_mut().into_iter().zip(src.chunks_exact(width)) {
        for (d, s) in row.iter_mut().zip(chunk) {
            *d = *s;
        }
    }
}

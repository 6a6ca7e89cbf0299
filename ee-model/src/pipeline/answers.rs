//! Answers and cropping: a model's answer for one tile checked against the declared output
//! bands, cropped (or kept whole, for blending) and laid out as the tile's planes; and its
//! non-finite values counted, so that a model answering NaN is never a silent wrong answer.

use ee_raster_io::OutputBand;
use ee_tensor_proto::{Instance, Tensor};
use ee_tiling::{crop_answer, BandDims, MergeMode, Pixel, Tile, TileAnswer, TileGrid};
use ndarray::Array3;

use super::inputs::TileWork;
use crate::spec::OutputBandSpec;
use crate::{Error, Result};

/// Crops one answer tensor for a band, whatever its element type, into `P`.
fn crop_tensor<P: Pixel>(
    t: &Tensor,
    grid: &TileGrid,
    tile: &Tile,
    band: &OutputBandSpec,
    keep: bool,
) -> Result<ee_tiling::Cropped<P>> {
    macro_rules! go {
        ($a:expr) => {
            crop_answer($a.view(), grid, tile, &band.name, band.dims, keep)?
        };
    }
    Ok(match t {
        Tensor::F32(a) => go!(a),
        Tensor::F64(a) => go!(a),
        Tensor::F16(a) => go!(a),
        Tensor::I8(a) => go!(a),
        Tensor::I16(a) => go!(a),
        Tensor::I32(a) => go!(a),
        Tensor::I64(a) => go!(a),
        Tensor::U8(a) => go!(a),
        Tensor::U16(a) => go!(a),
        Tensor::U32(a) => go!(a),
        Tensor::U64(a) => go!(a),
        Tensor::Bool(a) => go!(a),
        Tensor::String(_) => {
            return Err(Error::Answer(format!(
                "tile {}: output band {:?} came back as strings",
                tile.index, band.name
            )))
        }
    })
}

/// Turns a model answer for one tile into a `TileAnswer` (bands' planes concatenated) and the
/// plane count of each band.
pub(crate) fn to_answer<P: Pixel>(
    mut answer: Instance,
    work: &TileWork,
    grid: &TileGrid,
    bands: &[OutputBandSpec],
    merge: MergeMode,
) -> Result<(TileAnswer<P>, Vec<usize>)> {
    let keep = merge == MergeMode::Blend;
    let mut parts = Vec::with_capacity(bands.len());
    // A single unnamed (or differently named) output maps to the single declared band.
    if answer.len() == 1 && bands.len() == 1 && answer.get(&bands[0].name).is_none() {
        let (_, t) = answer.into_entries().pop().expect("one entry");
        answer = Instance::new().with(bands[0].name.clone(), t);
    }
    for band in bands {
        let t = match answer.take(&band.name) {
            Some(t) => t,
            None => {
                return Err(Error::Answer(format!(
                    "tile {}: the model's answer has no output {:?} (it has: {})",
                    work.tile.index,
                    band.name,
                    answer.names().collect::<Vec<_>>().join(", ")
                )))
            }
        };
        parts.push(crop_tensor(&t, grid, &work.tile, band, keep)?);
    }
    let margins = parts[0].margins;
    let planes: Vec<usize> = parts.iter().map(|p| p.values.dim().2).collect();
    let (rows, cols, _) = parts[0].values.dim();
    if let Some(p) = parts
        .iter()
        .find(|p| p.values.dim().0 != rows || p.values.dim().1 != cols)
    {
        return Err(Error::Answer(format!(
            "tile {}: output bands differ in size: {:?} and {:?}",
            work.tile.index,
            parts[0].values.dim(),
            p.values.dim()
        )));
    }
    // Bands' planes side by side, in standard layout (one band: its values as they are).
    let values = if parts.len() == 1 {
        parts.pop().expect("one part").values
    } else {
        let total: usize = planes.iter().sum();
        let mut out = Vec::with_capacity(rows * cols * total);
        let slices: Vec<std::borrow::Cow<'_, [P]>> = parts
            .iter()
            .map(|p| match p.values.as_slice() {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(p.values.iter().copied().collect()),
            })
            .collect();
        for px in 0..rows * cols {
            for (s, &n) in slices.iter().zip(&planes) {
                out.extend_from_slice(&s[px * n..(px + 1) * n]);
            }
        }
        Array3::from_shape_vec((rows, cols, total), out)
            .map_err(|e| Error::Worker(format!("pipeline: {e}")))?
    };
    Ok((
        TileAnswer {
            tile: work.tile,
            values,
            margins,
            valid: work.valid.clone(),
        },
        planes,
    ))
}

/// Non-finite values (NaN, infinities) answered where the inputs were valid: counted over the
/// job's predicted tiles.
#[derive(Default)]
pub(crate) struct NonFiniteCounter {
    tiles: std::sync::atomic::AtomicU64,
    values: std::sync::atomic::AtomicU64,
}

/// NaN or infinite values a job's model answered where the inputs were valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NonFinite {
    /// Tiles whose answer had at least one non-finite value where the inputs were valid.
    pub tiles: u64,
    /// Those values, all tiles together.
    pub values: u64,
}

impl NonFiniteCounter {
    pub(crate) fn add(&self, values: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        if values > 0 {
            self.tiles.fetch_add(1, Relaxed);
            self.values.fetch_add(values, Relaxed);
        }
    }

    pub(crate) fn get(&self) -> NonFinite {
        use std::sync::atomic::Ordering::Relaxed;
        NonFinite {
            tiles: self.tiles.load(Relaxed),
            values: self.values.load(Relaxed),
        }
    }
}

/// The non-finite values of `answer` at the output pixels its inputs left valid, and how many
/// values those pixels hold (every plane of every valid pixel of the core).
pub(crate) fn non_finite<P: Pixel>(answer: &TileAnswer<P>) -> (u64, u64) {
    let m = answer.margins;
    let cols = answer.valid.dim().1;
    fn bad_in<'a, P: Pixel + 'a>(values: impl IntoIterator<Item = &'a P>) -> u64 {
        values
            .into_iter()
            .filter(|v| !v.to_f64().is_finite())
            .count() as u64
    }
    let (mut bad, mut all) = (0u64, 0u64);
    for (r, valid) in answer.valid.outer_iter().enumerate() {
        // The core's row `r`: `(cols, planes)`.
        let row = answer
            .values
            .slice(ndarray::s![m.top + r, m.left..m.left + cols, ..]);
        if valid.iter().all(|&v| v) {
            // Every pixel valid (the usual row): one pass over the row's values.
            all += row.len() as u64;
            bad += bad_in(row);
        } else {
            for (px, _) in row.outer_iter().zip(&valid).filter(|(_, &v)| v) {
                all += px.len() as u64;
                bad += bad_in(px);
            }
        }
    }
    (bad, all)
}

/// The output band names: `name` for scalar bands, `name_0`, `name_1`... for array bands.
pub(crate) fn band_names(bands: &[OutputBandSpec], planes: &[usize]) -> Vec<OutputBand> {
    bands
        .iter()
        .zip(planes)
        .flat_map(|(b, &n)| {
            (0..n).map(move |k| OutputBand {
                name: if b.dims == BandDims::Scalar && n == 1 {
                    b.name.clone()
                } else {
                    format!("{}_{k}", b.name)
                },
                dtype: b.dtype,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_tensor_proto::DataType;
    use ee_tiling::{Overlap, RasterSize, TileSize};

    #[test]
    fn answers_that_do_not_fit_are_the_models_fault_named_with_the_tile() {
        let grid = TileGrid::new(
            RasterSize::new(8, 8).window(),
            TileSize::new(4, 4).unwrap(),
            Overlap::default(),
            TileSize::new(4, 4).unwrap(),
        )
        .unwrap();
        let work = TileWork {
            tile: grid.tile_number(1).unwrap(),
            instance: Instance::new(),
            valid: ndarray::Array2::from_elem((4, 4), true),
        };
        let band = |name: &str| OutputBandSpec {
            name: name.into(),
            dtype: DataType::Float32,
            dims: BandDims::Scalar,
            nodata: None,
        };
        let bands = [band("a"), band("b")];
        let answer = Instance::new().with("a", Tensor::zeros(DataType::Float32, &[4, 4]));
        let err = to_answer::<f32>(answer, &work, &grid, &bands, MergeMode::Crop)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("model answer: tile (col 1, row 0)") && err.contains("no output \"b\""),
            "{err}"
        );
        let strings = Instance::new()
            .with(
                "a",
                Tensor::from_strings(&[1], vec![b"x".to_vec()]).unwrap(),
            )
            .with("b", Tensor::zeros(DataType::Float32, &[4, 4]));
        let err = to_answer::<f32>(strings, &work, &grid, &bands, MergeMode::Crop)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("model answer: tile"), "{err}");
    }
}

//! Inputs and instances: the spec's input bands resolved against the rasters' bands, and each
//! tile's window read and packed into the tensors the model takes (with its validity at the
//! output's scale for the minimum-mask rule).

use std::sync::Arc;
use std::time::Instant;

use ee_raster_io::{BandSelector, InputStack, RasterSource};
use ee_tensor_proto::{DataType, Instance, Tensor};
use ee_tiling::{min_mask, Tile, TileGrid, Window};
use ndarray::{s, Array3, ArrayD, IxDyn};

use super::{Defer, StageClock};
use crate::spec::ModelSpec;
use crate::{Error, Result};
use ee_runtime::from_f64;

/// The stack's band selection and each model input's plan.
type ResolvedInputs = (Vec<(usize, BandSelector)>, Vec<InputPlan>);

/// One model input: its name, the stack bands feeding it, the type to send.
#[derive(Clone, Debug)]
pub(crate) struct InputPlan {
    pub name: String,
    pub positions: Vec<usize>,
    pub dtype: DataType,
}

/// A tile read and ready to send.
pub(crate) struct TileWork {
    pub tile: Tile,
    pub instance: Instance,
    pub valid: ndarray::Array2<bool>,
}

/// Resolves the spec's input bands against the files: `(file, band)` selections for the
/// stack, and each model input's positions in it.
pub(crate) fn resolve_inputs(
    spec: &ModelSpec,
    sources: &[RasterSource],
    local_inputs: &[(String, DataType)],
) -> Result<ResolvedInputs> {
    let all: Vec<(usize, &ee_raster_io::BandInfo)> = sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.bands().iter().map(move |b| (i, b)))
        .collect();
    let mut selection: Vec<(usize, BandSelector)> = Vec::new();
    let mut dtypes: Vec<DataType> = Vec::new();
    let mut position = |file: usize, band: &ee_raster_io::BandInfo| -> usize {
        let sel = (file, BandSelector::Index(band.index));
        match selection.iter().position(|s| *s == sel) {
            Some(p) => p,
            None => {
                selection.push(sel);
                dtypes.push(band.dtype);
                selection.len() - 1
            }
        }
    };
    let mut plans = Vec::new();
    if spec.input_bands.is_empty() {
        for (file, band) in &all {
            if plans.iter().any(|p: &InputPlan| p.name == band.name) {
                return Err(Error::Spec(format!(
                    "two input bands are named {:?}; name the model inputs with inputBands",
                    band.name
                )));
            }
            let p = position(*file, band);
            plans.push(InputPlan {
                name: band.name.clone(),
                positions: vec![p],
                dtype: band.dtype,
            });
        }
    } else {
        for input in &spec.input_bands {
            let mut positions = Vec::new();
            for sel in &input.bands {
                let found = match sel {
                    BandSelector::Name(n) => all.iter().find(|(_, b)| &b.name == n),
                    BandSelector::Index(k) => all.get(k - 1),
                };
                let (file, band) = found.ok_or_else(|| {
                    Error::Spec(format!(
                        "inputBands.{}: no input band {sel} (the inputs have {})",
                        input.name,
                        all.iter()
                            .enumerate()
                            .map(|(k, (f, b))| format!("#{} {:?} (file {})", k + 1, b.name, f + 1))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                positions.push(position(*file, band));
            }
            plans.push(InputPlan {
                name: input.name.clone(),
                positions,
                dtype: DataType::Float32,
            });
        }
        for p in &mut plans {
            let types: Vec<DataType> = p.positions.iter().map(|&i| dtypes[i]).collect();
            p.dtype = if types.iter().all(|t| *t == types[0]) {
                types[0]
            } else {
                DataType::Float32
            };
        }
    }
    for p in &mut plans {
        if let Some((_, d)) = spec.input_type_override.iter().find(|(n, _)| *n == p.name) {
            p.dtype = *d;
        } else if let Some((_, d)) =
            local_inputs
                .iter()
                .find(|(n, _)| *n == p.name)
                .or(if local_inputs.len() == 1 {
                    local_inputs.first()
                } else {
                    None
                })
        {
            p.dtype = *d;
        }
    }
    Ok((selection, plans))
}

/// Builds a tile's instance from its window: each input's bands stacked as `(h, w, n)`.
fn build_instance(values: &Array3<f64>, inputs: &[InputPlan]) -> Result<Instance> {
    let (_, h, w) = values.dim();
    let mut inst = Instance::new();
    for p in inputs {
        let n = p.positions.len();
        let shape = [h, w, n];
        // The common types are interleaved and converted in one pass over contiguous planes
        // (the same `as` conversions `from_f64` makes); the rest go through `from_f64`.
        let fast = match p.dtype {
            DataType::Float32 => {
                interleave(values, &p.positions, |v| v as f32).map(|d| Tensor::from_vec(&shape, d))
            }
            DataType::Float64 => {
                interleave(values, &p.positions, |v| v).map(|d| Tensor::from_vec(&shape, d))
            }
            _ => None,
        };
        let t = match fast {
            Some(t) => t?,
            None => {
                let mut data = Vec::with_capacity(h * w * n);
                for y in 0..h {
                    for x in 0..w {
                        for &b in &p.positions {
                            data.push(values[[b, y, x]]);
                        }
                    }
                }
                let a = ArrayD::from_shape_vec(IxDyn(&shape), data)
                    .map_err(|e| Error::Worker(format!("pipeline: {e}")))?;
                from_f64(&a, p.dtype).ok_or_else(|| {
                    Error::Spec(format!("input {:?} cannot be sent as {}", p.name, p.dtype))
                })?
            }
        };
        inst.push(p.name.clone(), t);
    }
    Ok(inst)
}

/// The instance of a one-input float32 model read straight in the tensor's layout (see
/// [`InputStack::read_interleaved`]), skipping the `(bands, h, w)` window and its conversions,
/// and the window's validity; `None` where that does not apply. Outside the raster the
/// tensor holds `fill` as f32, as [`build_instance`] would have it.
fn read_as_sent(
    stack: &InputStack,
    window: Window,
    inputs: &[InputPlan],
    fill: f64,
) -> Result<Option<(Instance, ndarray::Array2<bool>)>> {
    let [p] = inputs else {
        return Ok(None);
    };
    if p.dtype != DataType::Float32 {
        return Ok(None);
    }
    let Some(data) = stack.read_interleaved::<f32>(window, &p.positions, fill as f32)? else {
        return Ok(None);
    };
    let shape = [window.height, window.width, p.positions.len()];
    let mut inst = Instance::new();
    inst.push(p.name.clone(), Tensor::from_vec(&shape, data.values)?);
    Ok(Some((inst, data.valid)))
}

/// The planes `positions` of a `(bands, h, w)` window interleaved pixel by pixel as
/// `(h, w, positions.len())`, each value converted with `f`; `None` when the window is not in
/// standard layout.
fn interleave<T>(
    values: &Array3<f64>,
    positions: &[usize],
    f: impl Fn(f64) -> T,
) -> Option<Vec<T>> {
    let (bands, h, w) = values.dim();
    let all = values.as_slice()?;
    let plane = h * w;
    if positions.iter().any(|&b| b >= bands) {
        return None;
    }
    let planes: Vec<&[f64]> = positions
        .iter()
        .map(|&b| &all[b * plane..(b + 1) * plane])
        .collect();
    let mut out = Vec::with_capacity(plane * planes.len());
    match planes.as_slice() {
        [a] => out.extend(a.iter().map(|&v| f(v))),
        [a, b, c, d] => {
            for i in 0..plane {
                out.extend([f(a[i]), f(b[i]), f(c[i]), f(d[i])]);
            }
        }
        _ => {
            for i in 0..plane {
                out.extend(planes.iter().map(|p| f(p[i])));
            }
        }
    }
    Some(out)
}

/// Reads tiles: a tile's window from the stack, packed as the model's instance.
#[derive(Clone)]
pub(crate) struct TileReader {
    pub plans: Arc<Vec<InputPlan>>,
    pub grid: TileGrid,
    pub fill: f64,
    pub clock: Arc<StageClock>,
}

impl TileReader {
    /// Reads `tile` from `stack`: its instance, and its core's validity at the output scale.
    pub fn read(&self, stack: &InputStack, tile: Tile) -> Result<TileWork> {
        let started = Instant::now();
        let clock = self.clock.clone();
        let _timer = Defer(Some(move || StageClock::add(&clock.read, started)));
        let (instance, valid) = match read_as_sent(stack, tile.input, &self.plans, self.fill)? {
            Some(read) => read,
            None => {
                let data = stack.read_window::<f64>(tile.input, self.fill)?;
                (build_instance(&data.values, &self.plans)?, data.valid)
            }
        };
        let (size, margins) = (self.grid.tile_size(), self.grid.overlap().margins());
        let core = valid.slice(s![
            margins.top..margins.top + size.height,
            margins.left..margins.left + size.width
        ]);
        Ok(TileWork {
            tile,
            instance,
            valid: min_mask(&self.grid, core)?,
        })
    }
}

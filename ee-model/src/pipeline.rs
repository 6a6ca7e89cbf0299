//! `predict_image`: read windows (GDAL thread) -> tensors -> batched predictions (bounded in
//! flight) -> crop or blend -> masked GeoTIFF written as rows finish (writer thread), with
//! every finished tile journaled for `--resume`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ee_predict_client::{MetricsSnapshot, PredictClient};
use ee_raster_io::{
    write_quicklook, BandSelector, Compression, GeoTiffWriter, InputStack, OutputBand,
    RasterSource, Resampling, SamplingGrid, WriteOptions,
};
use ee_tensor_proto::{DataType, Instance, Tensor};
use ee_tiling::{
    crop_answer, min_mask, Assembler, BandDims, MergeMode, Pixel, RasterSize, Shard, Tile,
    TileAnswer, TileGrid, Window,
};
use ndarray::{s, Array3, ArrayD, IxDyn};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::journal::{fingerprint, journal_path, Journal};
use crate::spec::{ModelSpec, OutputBandSpec};
use crate::{Error, Result};
use ee_runtime::{from_f64, LocalModel};

/// Progress of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Tiles finished (resumed ones included).
    pub done: usize,
    /// Tiles in the job.
    pub total: usize,
    /// Tiles taken from the journal.
    pub resumed: usize,
}

/// Called as tiles finish.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Called with the plan before anything is sent.
pub type PlanFn = Arc<dyn Fn(&JobPlan) + Send + Sync>;

/// The stack's band selection and each model input's plan.
type ResolvedInputs = (Vec<(usize, BandSelector)>, Vec<InputPlan>);

/// How to run a job.
#[derive(Clone)]
pub struct PredictOptions {
    /// Crop (Earth Engine's) or blend overlaps.
    pub merge: MergeMode,
    /// Write a Cloud-Optimized GeoTIFF.
    pub cog: bool,
    /// Block compression.
    pub compression: Compression,
    /// Continue from the journal beside the output.
    pub resume: bool,
    /// Refuse jobs needing more requests than this (the zoom-out guard).
    pub max_requests: usize,
    /// Value sent for pixels outside the raster or masked.
    pub fill_value: f64,
    /// Resampling for inputs warped onto the sampling grid.
    pub resampling: Resampling,
    /// Write an 8-bit PNG quicklook of these output bands (1-based) here.
    pub quicklook: Option<(PathBuf, Vec<usize>)>,
    /// Called as tiles finish.
    pub progress: Option<ProgressFn>,
    /// Called with the plan before anything is sent.
    pub on_plan: Option<PlanFn>,
    /// Predict only this pixel window of the (sampling grid of the) inputs; tiles start at its
    /// top-left corner. `None`: the whole raster.
    pub region: Option<Window>,
    /// Predict only this shard's band of tile rows (of the region); with crop merging the
    /// shards' outputs mosaic into the whole job's pixels.
    pub shard: Option<Shard>,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            merge: MergeMode::Crop,
            cog: false,
            compression: Compression::Deflate,
            resume: false,
            max_requests: 100_000,
            fill_value: 0.0,
            resampling: Resampling::Nearest,
            quicklook: None,
            progress: None,
            on_plan: None,
            region: None,
            shard: None,
        }
    }
}

/// What a job will send, reported before sending (and used by the zoom-out guard).
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    /// Tiles in the grid.
    pub tiles: usize,
    /// Tiles still to predict (not in the journal).
    pub to_send: usize,
    /// Requests (model runs, for a local model) needed.
    pub requests: usize,
    /// Approximate request bytes (0 for a local model).
    pub bytes: u64,
    /// True when "requests" are local model runs.
    pub local: bool,
    /// Output size.
    pub output_size: RasterSize,
}

impl std::fmt::Display for JobPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tiles ({} to predict) in {} ",
            self.tiles, self.to_send, self.requests
        )?;
        if self.local {
            write!(f, "model runs")?;
        } else {
            write!(f, "requests, about {:.1} MB", self.bytes as f64 / 1e6)?;
        }
        write!(
            f,
            ", for a {} x {} output",
            self.output_size.width, self.output_size.height
        )
    }
}

/// Busy time per pipeline stage (stages overlap, so these add up to more than wall time).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    /// Reading windows and building tensors (GDAL thread).
    pub read: Duration,
    /// Waiting for answers: requests (encode, network, decode) or local model runs, summed
    /// over batches in flight.
    pub predict: Duration,
    /// Cropping answers into tile results.
    pub crop: Duration,
    /// Journaling, assembling and writing the GeoTIFF (writer thread).
    pub write: Duration,
}

#[derive(Default)]
struct StageClock {
    read: AtomicU64,
    predict: AtomicU64,
    crop: AtomicU64,
    write: AtomicU64,
}

impl StageClock {
    fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn times(&self) -> StageTimes {
        let d = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        StageTimes {
            read: d(&self.read),
            predict: d(&self.predict),
            crop: d(&self.crop),
            write: d(&self.write),
        }
    }
}

/// What a finished job did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The GeoTIFF written.
    pub output: PathBuf,
    /// The plan it ran.
    pub plan: JobPlan,
    /// Output band names.
    pub bands: Vec<String>,
    /// Tiles replayed from the journal.
    pub resumed: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Client counters (hosted predictors).
    pub metrics: Option<MetricsSnapshot>,
    /// The quicklook written, if any.
    pub quicklook: Option<PathBuf>,
    /// Busy time per stage.
    pub stages: StageTimes,
}

/// Where predictions are computed.
pub(crate) enum Runner {
    Local {
        model: Arc<LocalModel>,
        batch: usize,
    },
    Remote(Arc<PredictClient>),
}

/// One model input: its name, the stack bands feeding it, the type to send.
#[derive(Clone, Debug)]
struct InputPlan {
    name: String,
    positions: Vec<usize>,
    dtype: DataType,
}

/// A tile read and ready to send.
struct TileWork {
    tile: Tile,
    instance: Instance,
    valid: ndarray::Array2<bool>,
}

/// Resolves the spec's input bands against the files: `(file, band)` selections for the
/// stack, and each model input's positions in it.
fn resolve_inputs(
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
            return Err(Error::Spec(format!(
                "output band {:?} came back as strings",
                band.name
            )))
        }
    })
}

/// Turns a model answer for one tile into a `TileAnswer` (bands' planes concatenated) and the
/// plane count of each band.
fn to_answer<P: Pixel>(
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
                return Err(Error::Spec(format!(
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
        return Err(Error::Spec(format!(
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

/// The output band names: `name` for scalar bands, `name_0`, `name_1`... for array bands.
fn band_names(bands: &[OutputBandSpec], planes: &[usize]) -> Vec<OutputBand> {
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

/// Messages to the writer thread. An answer carries its tile's slot of the pipeline's
/// in-flight budget, freed once the writer has taken it in: a writer slower than the model
/// then holds the reader back instead of letting answers pile up in memory.
enum ToWriter<P> {
    Answer(Box<TileAnswer<P>>, Vec<usize>, Option<OwnedSemaphorePermit>),
    Fail(Error),
}

/// Everything the writer thread needs.
struct WriterJob<P> {
    output: PathBuf,
    grid: TileGrid,
    sampling: SamplingGrid,
    merge: MergeMode,
    bands: Vec<OutputBandSpec>,
    options: WriteOptions,
    journal: Journal,
    replay: Vec<TileAnswer<P>>,
    progress: Option<ProgressFn>,
    total: usize,
    clock: Arc<StageClock>,
}

/// The writer thread: journal, assemble, write; returns the output band names.
fn write_loop<P: Pixel>(
    job: WriterJob<P>,
    rx: mpsc::Receiver<ToWriter<P>>,
) -> Result<(Vec<String>, Journal)> {
    let WriterJob {
        output,
        grid,
        sampling,
        merge,
        bands,
        options,
        mut journal,
        replay,
        progress,
        total,
        clock,
    } = job;
    let mut state: Option<(Assembler<P>, GeoTiffWriter, Vec<usize>)> = None;
    let resumed = replay.len();
    let mut done = 0usize;
    let transform = grid.output_transform(sampling.transform);
    let mut handle = |answer: TileAnswer<P>,
                      planes: Option<Vec<usize>>,
                      journal: &mut Journal,
                      fresh: bool|
     -> Result<()> {
        let started = Instant::now();
        let planes = planes.unwrap_or_else(|| {
            // Replayed answers: split evenly when all bands are scalar, else by the stored total.
            let total = answer.values.dim().2;
            if bands.len() == 1 {
                vec![total]
            } else {
                vec![total / bands.len(); bands.len()]
            }
        });
        if state.is_none() {
            let names = band_names(&bands, &planes);
            // Finished rows go to the writer 64 at a time: a 40000-pixel-wide tile row
            // would otherwise be one block of hundreds of MB.
            let assembler = Assembler::new(grid, merge, names.len())?.with_max_block_rows(64);
            let writer = GeoTiffWriter::create(
                &output,
                grid.output_size(),
                transform,
                &sampling.crs_wkt,
                &names,
                &options,
            )?;
            state = Some((assembler, writer, planes.clone()));
        }
        let (assembler, writer, expected) = state.as_mut().expect("created above");
        if *expected != planes {
            return Err(Error::Spec(format!(
                "tile {} answered {planes:?} planes per band, earlier tiles {expected:?}",
                answer.tile.index
            )));
        }
        if fresh {
            journal.append(&answer)?;
        }
        assembler.add(std::slice::from_ref(&answer))?;
        while let Some(mut block) = assembler.take_finished()? {
            writer.write_block(&mut block)?;
            assembler.recycle(block);
        }
        done += 1;
        StageClock::add(&clock.write, started);
        if let Some(p) = &progress {
            p(Progress {
                done,
                total,
                resumed,
            });
        }
        Ok(())
    };
    for answer in replay {
        handle(answer, None, &mut journal, false)?;
    }
    for msg in rx {
        match msg {
            ToWriter::Answer(a, planes, slot) => {
                handle(*a, Some(planes), &mut journal, true)?;
                drop(slot);
            }
            ToWriter::Fail(e) => return Err(e),
        }
    }
    let Some((assembler, writer, planes)) = state else {
        return Err(Error::Spec("no tile was answered".into()));
    };
    assembler.finish()?;
    writer.finish()?;
    let names = band_names(&bands, &planes)
        .into_iter()
        .map(|b| b.name)
        .collect();
    Ok((names, journal))
}

/// Runs a whole job: in `f32` when every output band is float32 (the same pixels, half the
/// memory traffic; see [`Pixel`]), else in `f64`.
pub(crate) async fn predict_image(
    spec: &ModelSpec,
    runner: &Runner,
    inputs: &[PathBuf],
    output: &Path,
    options: &PredictOptions,
) -> Result<Report> {
    if spec
        .output_bands
        .iter()
        .all(|b| b.dtype == DataType::Float32)
    {
        predict_image_as::<f32>(spec, runner, inputs, output, options).await
    } else {
        predict_image_as::<f64>(spec, runner, inputs, output, options).await
    }
}

async fn predict_image_as<P: Pixel>(
    spec: &ModelSpec,
    runner: &Runner,
    inputs: &[PathBuf],
    output: &Path,
    options: &PredictOptions,
) -> Result<Report> {
    let started = Instant::now();
    if inputs.is_empty() {
        return Err(Error::Spec("no input raster given".into()));
    }
    // Open everything on a blocking thread: GDAL never runs on the async workers.
    let local_inputs: Vec<(String, DataType)> = match runner {
        Runner::Local { model, .. } => model.inputs().to_vec(),
        Runner::Remote(_) => Vec::new(),
    };
    if options.shard.is_some() && options.merge == MergeMode::Blend {
        return Err(Error::Spec(
            "sharding needs crop merging: blended shards would not fade into each other at their borders".into(),
        ));
    }
    let (spec2, paths, resampling) = (spec.clone(), inputs.to_vec(), options.resampling);
    let (region, shard) = (options.region, options.shard);
    let fill = options.fill_value;
    let (stack, plans, grid) =
        tokio::task::spawn_blocking(move || -> Result<(InputStack, Vec<InputPlan>, TileGrid)> {
            let sources = paths
                .iter()
                .map(RasterSource::open)
                .collect::<ee_raster_io::Result<Vec<_>>>()?;
            let (selection, plans) = resolve_inputs(&spec2, &sources, &local_inputs)?;
            let sampling = match (&spec2.proj, spec2.fix_input_proj) {
                (Some(p), true) => Some(sources[0].grid().covering(
                    &p.crs,
                    p.scale,
                    p.origin.unwrap_or([0.0, 0.0]),
                )?),
                _ => None,
            };
            drop(sources);
            let stack = InputStack::open(&paths, &selection, sampling.as_ref(), resampling)?;
            let whole = stack.grid().size.window();
            let region = match region {
                None => whole,
                Some(r)
                    if r.x >= 0
                        && r.y >= 0
                        && r.right() <= whole.right()
                        && r.bottom() <= whole.bottom()
                        && r.width > 0
                        && r.height > 0 =>
                {
                    r
                }
                Some(r) => {
                    return Err(Error::Spec(format!(
                        "region {},{},{},{} (x, y, width, height) is not inside the {} x {} input",
                        r.x, r.y, r.width, r.height, whole.width, whole.height
                    )))
                }
            };
            let grid_of = |region| {
                TileGrid::new(
                    region,
                    spec2.input_tile_size,
                    spec2.input_overlap_size,
                    spec2.output_tile_size,
                )
            };
            let mut grid = grid_of(region)?;
            if let Some(shard) = shard {
                grid = grid_of(shard.region(&grid)?)?;
            }
            Ok((stack, plans, grid))
        })
        .await
        .map_err(|e| Error::Worker(format!("input thread: {e}")))??;
    let sampling = stack.grid().clone();

    // Journal: fingerprint of arguments and inputs.
    let jpath = journal_path(output);
    let mut parts: Vec<Vec<u8>> = vec![
        format!("{spec:?}").into_bytes(),
        format!(
            "{:?} {:?} {} {:?}",
            options.merge,
            options.resampling,
            options.fill_value,
            grid.region()
        )
        .into_bytes(),
    ];
    for p in inputs {
        let meta = std::fs::metadata(p).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        parts.push(format!("{} {} {}", p.display(), meta.len(), mtime).into_bytes());
    }
    let fp = fingerprint(parts.iter().map(Vec::as_slice));
    let (replay, journal) = if options.resume && jpath.exists() {
        Journal::resume(&jpath, &fp, &grid)?
    } else {
        (Vec::new(), Journal::create(&jpath, &fp)?)
    };
    let mut done_tiles = vec![false; grid.len()];
    for a in &replay {
        done_tiles[a.tile.number] = true;
    }
    let todo: Vec<Tile> = grid.tiles().filter(|t| !done_tiles[t.number]).collect();

    // Zoom-out guard: size one real tile, derive requests and bytes.
    let margins = grid.overlap().margins();
    let tile_size = grid.tile_size();
    let clock = Arc::new(StageClock::default());
    let read_work = {
        let plans = plans.clone();
        let clock = clock.clone();
        move |stack: &InputStack, tile: Tile| -> Result<TileWork> {
            let started = Instant::now();
            let clock = clock.clone();
            let _timer = Defer(Some(move || StageClock::add(&clock.read, started)));
            let (instance, valid) = match read_as_sent(stack, tile.input, &plans, fill)? {
                Some(read) => read,
                None => {
                    let data = stack.read_window::<f64>(tile.input, fill)?;
                    (build_instance(&data.values, &plans)?, data.valid)
                }
            };
            let core = valid.slice(s![
                margins.top..margins.top + tile_size.height,
                margins.left..margins.left + tile_size.width
            ]);
            Ok(TileWork {
                tile,
                instance,
                valid: min_mask(&grid, core)?,
            })
        }
    };
    let (stack, sample) = tokio::task::spawn_blocking({
        let read_work = read_work.clone();
        let first = grid.tile_number(0).expect("a grid has a tile");
        move || {
            let w = read_work(&stack, first);
            (stack, w)
        }
    })
    .await
    .map_err(|e| Error::Worker(format!("input thread: {e}")))?;
    let sample = sample?;
    let (per_request, tile_bytes) = match runner {
        Runner::Local { batch, .. } => (*batch, 0u64),
        Runner::Remote(client) => {
            // The first tile alone (an error names it if it cannot fit), then as many tiles
            // of its size as the client's planner would put in one request, at most 64.
            let one = std::slice::from_ref(&sample.instance);
            client.plan(one, &[sample.tile.index.to_string()])?;
            let alone = client.encoded_size(one)?;
            let config = client.config();
            let scaled = |bytes: usize| (bytes as f64 * config.output_multiplier).ceil() as usize;
            let per_request = (2..=64usize)
                .take_while(|&k| scaled(alone.saturating_mul(k)) <= config.max_payload_bytes)
                .last()
                .unwrap_or(1);
            (per_request, alone as u64)
        }
    };
    let plan = JobPlan {
        tiles: grid.len(),
        to_send: todo.len(),
        requests: todo.len().div_ceil(per_request),
        bytes: tile_bytes * todo.len() as u64,
        local: matches!(runner, Runner::Local { .. }),
        output_size: grid.output_size(),
    };
    tracing::info!("plan: {plan}");
    if let Some(f) = &options.on_plan {
        f(&plan);
    }
    if plan.requests > options.max_requests {
        return Err(Error::TooLarge(format!(
            "refusing to send {} requests ({plan}); the limit is {} (raise --max-requests, use a smaller region or larger tiles)",
            plan.requests, options.max_requests
        )));
    }

    // Writer thread.
    let (to_writer, from_pipeline) = mpsc::channel::<ToWriter<P>>();
    let write_options = WriteOptions {
        compression: options.compression,
        cog: options.cog,
        ..Default::default()
    };
    let writer_job = WriterJob {
        output: output.to_path_buf(),
        grid,
        sampling: sampling.clone(),
        merge: options.merge,
        bands: spec.output_bands.clone(),
        options: write_options,
        journal,
        replay,
        progress: options.progress.clone(),
        total: grid.len(),
        clock: clock.clone(),
    };
    let writer = std::thread::Builder::new()
        .name("ee-model-writer".into())
        .spawn(move || write_loop(writer_job, from_pipeline))
        .map_err(|source| Error::Io {
            path: output.to_path_buf(),
            source,
        })?;

    // Reader thread: tiles in row-major order into a bounded channel.
    // Tiles between the reader and the writer are bounded: a local model runs at most one
    // batch per core at once, a remote one `maxConcurrency` requests; the reader reads two
    // batches ahead.
    let concurrency = match runner {
        Runner::Local { .. } => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(spec.max_concurrency),
        Runner::Remote(_) => spec.max_concurrency,
    };
    let in_flight_tiles = (per_request * (concurrency + 2)).max(8);
    let (tiles_tx, mut tiles_rx) =
        tokio::sync::mpsc::channel::<Result<TileWork>>((per_request * 2).max(4));
    let reader = std::thread::Builder::new()
        .name("ee-model-reader".into())
        .spawn(move || {
            let mut first = Some(sample);
            for tile in todo {
                let work = match first.take() {
                    Some(s) if s.tile == tile => Ok(s),
                    _ => read_work(&stack, tile),
                };
                let failed = work.is_err();
                if tiles_tx.blocking_send(work).is_err() || failed {
                    return;
                }
            }
        })
        .map_err(|source| Error::Io {
            path: output.to_path_buf(),
            source,
        })?;

    // Dispatch batches; answers go to the writer.
    let permits = Arc::new(Semaphore::new(in_flight_tiles));
    let mut tasks = tokio::task::JoinSet::new();
    let mut failure: Option<Error> = None;
    let bands = Arc::new(spec.output_bands.clone());
    let merge = options.merge;
    let mut batch: Vec<TileWork> = Vec::new();
    let mut closed = false;
    while !closed || !batch.is_empty() {
        if !closed && batch.len() < per_request {
            // A partial batch goes out at once only when nothing is in flight (the model
            // would idle otherwise); while requests are running, waiting for the reader to
            // fill the batch costs nothing and saves requests.
            let next = if batch.is_empty() || !tasks.is_empty() {
                tiles_rx.recv().await
            } else {
                tiles_rx.try_recv().ok()
            };
            match next {
                Some(Ok(w)) => {
                    batch.push(w);
                    continue;
                }
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                None if batch.is_empty() => {
                    closed = true;
                    continue;
                }
                None => {
                    if tiles_rx.is_closed() && tiles_rx.is_empty() {
                        closed = true;
                    }
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let work = std::mem::take(&mut batch);
        let permit = permits
            .clone()
            .acquire_many_owned(work.len() as u32)
            .await
            .map_err(|e| Error::Worker(format!("pipeline: {e}")))?;
        let (to_writer, bands, clock) = (to_writer.clone(), bands.clone(), clock.clone());
        let run = match runner {
            Runner::Local { model, .. } => Either::Local(model.clone()),
            Runner::Remote(c) => Either::Remote(c.clone()),
        };
        tasks.spawn(async move {
            let mut work = work;
            let instances: Vec<Instance> = work
                .iter_mut()
                .map(|w| std::mem::replace(&mut w.instance, Instance::new()))
                .collect();
            let started = Instant::now();
            let answers = match run {
                Either::Local(model) => tokio::task::spawn_blocking(move || model.run(&instances))
                    .await
                    .map_err(|e| Error::Worker(format!("pipeline: {e}")))
                    .and_then(|r| r.map_err(Error::from)),
                Either::Remote(client) => {
                    let labels: Vec<String> = work
                        .iter()
                        .map(|w| format!("tile {}", w.tile.index))
                        .collect();
                    client
                        .predict(&instances, &labels)
                        .await
                        .map_err(Error::from)
                }
            };
            StageClock::add(&clock.predict, started);
            let mut permit = permit;
            answers.and_then(|answers| {
                for (a, w) in answers.into_iter().zip(&work) {
                    let cropping = Instant::now();
                    let (answer, planes) = to_answer::<P>(a, w, &grid, &bands, merge)?;
                    StageClock::add(&clock.crop, cropping);
                    let slot = permit.split(1);
                    let _ = to_writer.send(ToWriter::Answer(Box::new(answer), planes, slot));
                }
                Ok(())
            })
        });
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done
                .map_err(|e| Error::Worker(format!("pipeline: {e}")))
                .and_then(|r| r)
            {
                failure.get_or_insert(e);
            }
        }
        if failure.is_some() {
            break;
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done
            .map_err(|e| Error::Worker(format!("pipeline: {e}")))
            .and_then(|r| r)
        {
            failure.get_or_insert(e);
        }
    }
    drop(tiles_rx);
    let _ = reader.join();
    if let Some(e) = failure {
        let _ = to_writer.send(ToWriter::Fail(e));
    }
    drop(to_writer);
    let (names, journal) = writer
        .join()
        .map_err(|_| Error::Worker("writer thread (it panicked)".into()))?
        .inspect_err(|_| {
            // A failed job leaves the journal (for --resume) but no partial GeoTIFF.
            let _ = std::fs::remove_file(ee_raster_io::partial_path(output));
        })?;
    journal.remove()?;
    let quicklook = match &options.quicklook {
        Some((png, bands)) => {
            let (png, bands, out) = (png.clone(), bands.clone(), output.to_path_buf());
            tokio::task::spawn_blocking(move || {
                write_quicklook(&out, &png, &bands, 1024).map(|_| png)
            })
            .await
            .map_err(|e| Error::Worker(format!("pipeline: {e}")))?
            .map(Some)?
        }
        None => None,
    };
    Ok(Report {
        output: output.to_path_buf(),
        resumed: plan.tiles - plan.to_send,
        plan,
        bands: names,
        elapsed: started.elapsed(),
        metrics: match runner {
            Runner::Remote(c) => Some(c.metrics()),
            Runner::Local { .. } => None,
        },
        quicklook,
        stages: clock.times(),
    })
}

/// Runs a closure when dropped (times a scope whatever way it is left).
struct Defer<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for Defer<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

enum Either {
    Local(Arc<LocalModel>),
    Remote(Arc<PredictClient>),
}

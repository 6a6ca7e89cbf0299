//! `predict_image`: read windows (GDAL thread) -> tensors -> batched predictions (bounded in
//! flight) -> crop or blend -> masked GeoTIFF written as rows finish (writer thread), with
//! every finished tile journaled for `--resume`.
//!
//! The stages, one file each:
//! - [`plan`]: inputs opened, region checked, the grid, one tile's memory, the zoom-out guard
//!   (all before anything is read or sent);
//! - [`inputs`]: input bands resolved against the rasters, tiles read into instances;
//! - [`dispatch`]: the reader thread, batches to the model, stopping at the first failure;
//! - [`answers`]: answers checked against the output bands and cropped;
//! - [`writer`]: the writer thread (journal, assembly, GeoTIFF).

mod answers;
mod dispatch;
mod inputs;
mod plan;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ee_predict_client::{MetricsSnapshot, ModelCheck, PredictClient};
use ee_raster_io::{write_quicklook, Compression, Resampling, WriteOptions};
use ee_tensor_proto::DataType;
use ee_tiling::{MergeMode, Pixel, Shard, Window};

use crate::journal::{job_fingerprint, journal_path, Journal, Resumed};
use crate::spec::ModelSpec;
use crate::{Error, Result};
use ee_runtime::LocalModel;

pub use answers::NonFinite;
pub use plan::JobPlan;

/// Bytes per pixel and band of a window as read (f64 planes).
const WINDOW_PIXEL_BYTES: usize = 8;

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
    /// Write tiles whose every valid value came back NaN or infinite (they are counted either
    /// way). Off: such a tile fails the job, naming the tile, the output and the runtime.
    pub allow_non_finite: bool,
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
            allow_non_finite: false,
        }
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
pub(crate) struct StageClock {
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
    /// What converting the answers to the output type changed: values clamped to its range,
    /// valid values equal to the nodata value (they read back as masked).
    pub written: ee_raster_io::WriteStats,
    /// NaN or infinite values the model answered where the inputs were valid (predicted
    /// tiles; replayed ones were counted when they were predicted).
    pub non_finite: NonFinite,
}

/// Where predictions are computed.
#[derive(Clone)]
pub(crate) enum Runner {
    Local {
        model: Arc<LocalModel>,
        batch: usize,
    },
    Remote(Arc<PredictClient>),
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
        return Err(Error::Options("no input raster given".into()));
    }
    if options.shard.is_some() && options.merge == MergeMode::Blend {
        return Err(Error::Options(
            "sharding needs crop merging: blended shards would not fade into each other at their borders".into(),
        ));
    }
    // Open everything on a blocking thread: GDAL never runs on the async workers.
    let local_inputs: Vec<(String, DataType)> = match runner {
        Runner::Local { model, .. } => model.inputs().to_vec(),
        Runner::Remote(_) => Vec::new(),
    };
    let (spec2, paths, resampling) = (spec.clone(), inputs.to_vec(), options.resampling);
    let (region, shard) = (options.region, options.shard);
    let opened = tokio::task::spawn_blocking(move || {
        plan::open(&spec2, &paths, &local_inputs, resampling, region, shard)
    })
    .await
    .map_err(|e| Error::Worker(format!("input thread: {e}")))??;
    let plan::Opened { stack, plans, grid } = opened;
    let sampling = stack.grid().clone();

    // Everything the guard needs comes from the grid's arithmetic: nothing is read (or
    // allocated per tile) before the job is accepted.
    plan::tile_bytes(&grid, stack.bands().len(), &plans)?;
    let sizing = plan::per_request(runner, &grid, &plans)?;
    let jpath = journal_path(output);
    let fingerprint = job_fingerprint(spec, options, grid.region(), inputs)?;
    let resumed = if options.resume && jpath.exists() {
        Some(Journal::resume::<P>(&jpath, &fingerprint, &grid)?)
    } else {
        None
    };
    let replayed = resumed.as_ref().map_or(0, |r| r.answers.len());
    let local = matches!(runner, Runner::Local { .. });
    let plan = plan::guard(
        &grid,
        grid.len() - replayed,
        sizing,
        local,
        options.max_requests,
    )?;
    tracing::info!("plan: {plan}");
    if let Some(f) = &options.on_plan {
        f(&plan);
    }
    if let Runner::Remote(client) = runner {
        // A server that can describe the model is asked once, before any tile is read.
        match client
            .check_inputs(&plan::input_descriptions(&grid, &plans))
            .await?
        {
            ModelCheck::Matches { .. } => {
                tracing::info!("the server's description of the model matches the inputs")
            }
            ModelCheck::NotDescribed { reason } => {
                tracing::debug!("inputs not checked against the model: {reason}")
            }
        }
    }
    let Resumed {
        answers: replay,
        journal,
    } = match resumed {
        Some(r) => r,
        None => Resumed {
            answers: Vec::new(),
            journal: Journal::create(&jpath, &fingerprint)?,
        },
    };
    let mut done: Vec<usize> = replay.iter().map(|a| a.tile.number).collect();
    done.sort_unstable();

    let clock = Arc::new(StageClock::default());
    let (to_writer, writer_failed, writer) = writer::spawn(writer::WriterJob {
        output: output.to_path_buf(),
        grid,
        sampling,
        merge: options.merge,
        bands: spec.output_bands.clone(),
        options: WriteOptions {
            compression: options.compression,
            cog: options.cog,
            ..Default::default()
        },
        journal,
        replay,
        progress: options.progress.clone(),
        total: grid.len(),
        clock: clock.clone(),
    })?;

    // Tiles between the reader and the writer are bounded: a local model runs at most one
    // batch per core at once, a remote one `maxConcurrency` requests; the reader reads two
    // batches ahead.
    let per_request = sizing.0;
    let concurrency = match runner {
        Runner::Local { .. } => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(spec.max_concurrency),
        Runner::Remote(_) => spec.max_concurrency,
    };
    let tile_reader = inputs::TileReader {
        plans: Arc::new(plans),
        grid,
        fill: options.fill_value,
        clock: clock.clone(),
    };
    let mut reader = dispatch::Reader::spawn(
        dispatch::tiles_to_read(grid, done),
        dispatch::read_with(stack, tile_reader),
        (per_request * 2).max(4),
    )?;
    let non_finite = Arc::new(answers::NonFiniteCounter::default());
    let runtime: Arc<str> = match (runner, &spec.predictor) {
        (Runner::Local { .. }, crate::spec::PredictorSpec::Local { path, .. }) => {
            format!("the embedded runtime (tract), model {}", path.display()).into()
        }
        (Runner::Local { .. }, _) => "the embedded runtime (tract)".into(),
        (Runner::Remote(client), _) => client.describe().into(),
    };
    let ended = dispatch::run::<P>(
        dispatch::Dispatch {
            runner: runner.clone(),
            per_request,
            in_flight_tiles: (per_request * (concurrency + 2)).max(8),
            grid,
            bands: Arc::new(spec.output_bands.clone()),
            merge: options.merge,
            clock: clock.clone(),
            to_writer: to_writer.clone(),
            writer_failed,
            non_finite: non_finite.clone(),
            refuse_non_finite: !options.allow_non_finite,
            output: output.display().to_string().into(),
            runtime,
        },
        &mut reader.tiles,
    )
    .await;
    let read = reader.join();
    let failure = match (ended, read) {
        (dispatch::Ended::Failed(e), _) => Some(e),
        (_, Err(e)) => Some(e),
        (dispatch::Ended::WriterFailed, Ok(())) => None,
        (dispatch::Ended::Done, Ok(())) => None,
    };
    if let Some(e) = failure {
        let _ = to_writer.send(writer::ToWriter::Fail(e));
    }
    drop(to_writer);
    let (names, write_stats, journal) = writer
        .join()
        .map_err(|_| Error::Worker("writer thread (it panicked)".into()))?
        .inspect_err(|_| {
            // A failed job leaves the journal (for --resume) but no partial GeoTIFF.
            let _ = std::fs::remove_file(ee_raster_io::partial_path(output));
        })?;
    journal.remove()?;
    let counted = non_finite.get();
    if counted.values > 0 {
        tracing::warn!(
            "{}: {} NaN or infinite values answered where the inputs were valid, in {} tiles",
            output.display(),
            counted.values,
            counted.tiles
        );
    }
    if write_stats.clamped > 0 || write_stats.nodata_collisions > 0 {
        tracing::warn!("{}: {write_stats}", output.display());
    }
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
        written: write_stats,
        non_finite: non_finite.get(),
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

//! The writer loop (its own thread): every answer journaled first, then assembled, and the
//! GeoTIFF's finished blocks written as rows complete. Replayed answers (from the journal of
//! an earlier run) go through the same path, unjournaled. When it fails it says so at once
//! through [`WriterFailed`], so the dispatcher stops sending instead of paying for answers
//! nobody can write.

use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use ee_raster_io::{GeoTiffWriter, SamplingGrid, WriteOptions, WriteStats};
use ee_tiling::{Assembler, MergeMode, Pixel, TileAnswer, TileGrid};
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::answers::band_names;
use super::{Progress, ProgressFn, StageClock};
use crate::journal::Journal;
use crate::spec::OutputBandSpec;
use crate::{Error, Result};

/// Messages to the writer thread. An answer carries its tile's slot of the pipeline's
/// in-flight budget, freed once the writer has taken it in: a writer slower than the model
/// then holds the reader back instead of letting answers pile up in memory.
pub(crate) enum ToWriter<P> {
    /// A tile's answer, the planes of each band, and its slot.
    Answer(Box<TileAnswer<P>>, Vec<usize>, Option<OwnedSemaphorePermit>),
    /// The job failed: write nothing more, finish nothing.
    Fail(Error),
}

/// Set (to `true`) by the writer thread when it stops on an error; the dispatcher watches it.
pub(crate) type WriterFailed = watch::Receiver<bool>;

/// Everything the writer thread needs.
pub(crate) struct WriterJob<P> {
    pub output: PathBuf,
    pub grid: TileGrid,
    pub sampling: SamplingGrid,
    pub merge: MergeMode,
    pub bands: Vec<OutputBandSpec>,
    pub options: WriteOptions,
    pub journal: Journal,
    pub replay: Vec<TileAnswer<P>>,
    pub progress: Option<ProgressFn>,
    pub total: usize,
    pub clock: Arc<StageClock>,
}

/// What the writer thread gives back: the output band names, what converting to the output
/// type changed, and the journal (to be removed once everything else succeeded).
pub(crate) type Written = (Vec<String>, WriteStats, Journal);

/// The running writer: where answers go, the flag it raises when it fails, the thread.
pub(crate) type Running<P> = (
    mpsc::Sender<ToWriter<P>>,
    WriterFailed,
    std::thread::JoinHandle<Result<Written>>,
);

/// Starts the writer thread.
pub(crate) fn spawn<P: Pixel>(job: WriterJob<P>) -> Result<Running<P>> {
    let (tx, rx) = mpsc::channel::<ToWriter<P>>();
    let (failed_tx, failed_rx) = watch::channel(false);
    let output = job.output.clone();
    let handle = std::thread::Builder::new()
        .name("ee-model-writer".into())
        .spawn(move || write_loop(job, rx, &failed_tx))
        .map_err(|source| Error::Io {
            path: output,
            source,
        })?;
    Ok((tx, failed_rx, handle))
}

/// The writer thread: journal, assemble, write; returns the output band names. On an error
/// `failed` is set at once, before anything is dropped (closing a GeoTIFF on a full disk
/// takes a while, and the answers queued here hold the dispatcher's slots until then).
fn write_loop<P: Pixel>(
    job: WriterJob<P>,
    rx: mpsc::Receiver<ToWriter<P>>,
    failed: &watch::Sender<bool>,
) -> Result<Written> {
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
                      planes: &[usize],
                      journal: &mut Journal,
                      fresh: bool|
     -> Result<()> {
        let started = Instant::now();
        if state.is_none() {
            let names = band_names(&bands, planes);
            // Finished rows go to the writer 64 at a time: a 40000-pixel-wide tile row
            // would otherwise be one block of hundreds of MB.
            let assembler = Assembler::new(grid, merge, names.len())?.with_max_block_rows(64);
            let options = WriteOptions {
                band_nodata: OutputBandSpec::plane_nodata(&bands, planes),
                ..options.clone()
            };
            let writer = GeoTiffWriter::create(
                &output,
                grid.output_size(),
                transform,
                &sampling.crs_wkt,
                &names,
                &options,
            )?;
            state = Some((assembler, writer, planes.to_vec()));
        }
        let (assembler, writer, expected) = state.as_mut().expect("created above");
        if expected != planes {
            return Err(Error::Answer(format!(
                "tile {} answered {planes:?} planes per band, earlier tiles {expected:?}",
                answer.tile.index
            )));
        }
        if fresh {
            journal.append(&answer, planes)?;
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
    let take_all = || -> Result<()> {
        if !replay.is_empty() {
            let layout = journal.layout().map(<[usize]>::to_vec).ok_or_else(|| {
                Error::Resume("the journal holds tiles but not the output bands' layout".into())
            })?;
            for answer in replay {
                handle(answer, &layout, &mut journal, false)?;
            }
        }
        for msg in rx.iter() {
            match msg {
                ToWriter::Answer(a, planes, slot) => {
                    handle(*a, &planes, &mut journal, true)?;
                    drop(slot);
                }
                ToWriter::Fail(e) => return Err(e),
            }
        }
        Ok(())
    };
    if let Err(e) = take_all() {
        let _ = failed.send(true);
        return Err(e);
    }
    let Some((assembler, writer, planes)) = state else {
        return Err(Error::Worker(
            "writer: the job ended before any tile was answered".into(),
        ));
    };
    assembler.finish()?;
    let stats = writer.stats();
    writer.finish()?;
    let names = band_names(&bands, &planes)
        .into_iter()
        .map(|b| b.name)
        .collect();
    Ok((names, stats, journal))
}

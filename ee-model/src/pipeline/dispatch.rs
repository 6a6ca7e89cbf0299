//! Dispatch: the reader thread reads tiles in row-major order into a bounded channel; batches
//! of them go to the model (local runs or requests), at most a bounded number of tiles in
//! flight; answers are cropped and handed to the writer. The job stops at the first failure:
//! a failed read or prediction lets the batches in flight finish (their answers are
//! journaled), a failed writer stops everything at once (nothing more could be written).

use std::sync::{mpsc, Arc};
use std::time::Instant;

use ee_raster_io::InputStack;
use ee_tensor_proto::Instance;
use ee_tiling::{MergeMode, Pixel, Tile, TileGrid};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::answers::{non_finite, to_answer, NonFiniteCounter};
use super::inputs::{TileReader, TileWork};
use super::writer::{ToWriter, WriterFailed};
use super::{Runner, StageClock};
use crate::spec::OutputBandSpec;
use crate::{Error, Result};

/// The reader thread and the channel it fills.
pub(crate) struct Reader {
    handle: std::thread::JoinHandle<()>,
    /// Tiles read, in order; an error ends the stream.
    pub tiles: tokio::sync::mpsc::Receiver<Result<TileWork>>,
}

impl Reader {
    /// Starts reading `tiles` with `read` on a thread of its own, at most `ahead` tiles
    /// ahead of the dispatcher.
    pub fn spawn<I, F>(tiles: I, mut read: F, ahead: usize) -> Result<Reader>
    where
        I: Iterator<Item = Tile> + Send + 'static,
        F: FnMut(Tile) -> Result<TileWork> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<TileWork>>(ahead.max(1));
        let handle = std::thread::Builder::new()
            .name("ee-model-reader".into())
            .spawn(move || {
                for tile in tiles {
                    let work = read(tile);
                    let failed = work.is_err();
                    if tx.blocking_send(work).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Worker(format!("reader thread: {e}")))?;
        Ok(Reader { handle, tiles: rx })
    }

    /// Stops the reader (the channel is dropped) and waits for it: an error when it
    /// panicked, with the panic's message, so that a reader that died is never taken for
    /// one that ran out of tiles.
    pub fn join(self) -> Result<()> {
        let Reader { handle, tiles } = self;
        drop(tiles);
        handle.join().map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Error::Worker(format!("reader thread (it panicked: {message})"))
        })
    }
}

/// Reads the tiles of `grid` not in `done` (sorted tile numbers), lazily.
pub(crate) fn tiles_to_read(grid: TileGrid, done: Vec<usize>) -> impl Iterator<Item = Tile> {
    (0..grid.len())
        .filter(move |n| done.binary_search(n).is_err())
        .filter_map(move |n| grid.tile_number(n))
}

/// A reader over `stack` with `reader`'s packing.
pub(crate) fn read_with(
    stack: InputStack,
    reader: TileReader,
) -> impl FnMut(Tile) -> Result<TileWork> {
    move |tile| reader.read(&stack, tile)
}

/// What the dispatcher needs besides the tiles.
pub(crate) struct Dispatch<P> {
    pub runner: Runner,
    pub per_request: usize,
    /// Tiles between the reader and the writer at most.
    pub in_flight_tiles: usize,
    pub grid: TileGrid,
    pub bands: Arc<Vec<OutputBandSpec>>,
    pub merge: MergeMode,
    pub clock: Arc<StageClock>,
    pub to_writer: mpsc::Sender<ToWriter<P>>,
    pub writer_failed: WriterFailed,
    /// Non-finite answers, counted.
    pub non_finite: Arc<NonFiniteCounter>,
    /// Refuse a tile whose every valid value is non-finite (else count and write it).
    pub refuse_non_finite: bool,
    /// The output and the runtime, for messages.
    pub output: Arc<str>,
    pub runtime: Arc<str>,
}

/// How dispatching ended.
pub(crate) enum Ended {
    /// Every tile read was predicted and handed to the writer.
    Done,
    /// A read or a prediction failed (batches in flight were let finish).
    Failed(Error),
    /// The writer stopped on an error (its own, returned when it is joined); requests in
    /// flight were abandoned.
    WriterFailed,
}

/// Batches tiles from `tiles` and predicts them until the stream ends or something fails.
pub(crate) async fn run<P: Pixel>(
    job: Dispatch<P>,
    tiles: &mut tokio::sync::mpsc::Receiver<Result<TileWork>>,
) -> Ended {
    let permits = Arc::new(Semaphore::new(job.in_flight_tiles));
    let mut writer_failed = job.writer_failed.clone();
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    let mut failure: Option<Error> = None;
    let mut batch: Vec<TileWork> = Vec::new();
    let mut closed = false;
    let record = |failure: &mut Option<Error>, done: std::result::Result<Result<()>, _>| {
        if let Err(e) = flatten(done) {
            failure.get_or_insert(e);
        }
    };
    'dispatch: loop {
        // Fill a batch. A partial batch goes out at once only when nothing is in flight
        // (the model would idle otherwise); while requests are running, waiting for the
        // reader to fill the batch costs nothing and saves requests.
        while !closed && batch.len() < job.per_request && failure.is_none() {
            if !batch.is_empty() && tasks.is_empty() {
                match tiles.try_recv() {
                    Ok(Ok(w)) => batch.push(w),
                    Ok(Err(e)) => failure = Some(e),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => closed = true,
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = writer_failed.wait_for(|&f| f) => break 'dispatch,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => record(&mut failure, done),
                next = tiles.recv() => match next {
                    Some(Ok(w)) => batch.push(w),
                    Some(Err(e)) => failure = Some(e),
                    None => closed = true,
                },
            }
        }
        if failure.is_some() || (closed && batch.is_empty()) {
            break;
        }
        if batch.is_empty() {
            continue;
        }
        let work = std::mem::take(&mut batch);
        let permit = tokio::select! {
            biased;
            _ = writer_failed.wait_for(|&f| f) => break 'dispatch,
            p = permits.clone().acquire_many_owned(work.len() as u32) => match p {
                Ok(p) => p,
                Err(e) => {
                    failure = Some(Error::Worker(format!("pipeline: {e}")));
                    break;
                }
            },
        };
        tasks.spawn(predict_batch(work, permit, Batch::of(&job)));
    }
    // Let the batches in flight finish, unless the writer failed (now, or while they run):
    // then nothing more can be written, and they (and their retries) are dropped.
    loop {
        tokio::select! {
            biased;
            _ = writer_failed.wait_for(|&f| f) => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Ended::WriterFailed;
            }
            done = tasks.join_next() => match done {
                Some(done) => record(&mut failure, done),
                None => break,
            },
        }
    }
    match failure {
        Some(e) => Ended::Failed(e),
        None => Ended::Done,
    }
}

fn flatten(done: std::result::Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
    done.map_err(|e| Error::Worker(format!("pipeline: {e}")))?
}

/// What one batch's task needs of the dispatch.
struct Batch<P> {
    runner: Runner,
    grid: TileGrid,
    bands: Arc<Vec<OutputBandSpec>>,
    merge: MergeMode,
    clock: Arc<StageClock>,
    to_writer: mpsc::Sender<ToWriter<P>>,
    non_finite: Arc<NonFiniteCounter>,
    refuse_non_finite: bool,
    output: Arc<str>,
    runtime: Arc<str>,
}

impl<P> Batch<P> {
    fn of(job: &Dispatch<P>) -> Self {
        Batch {
            runner: job.runner.clone(),
            grid: job.grid,
            bands: job.bands.clone(),
            merge: job.merge,
            clock: job.clock.clone(),
            to_writer: job.to_writer.clone(),
            non_finite: job.non_finite.clone(),
            refuse_non_finite: job.refuse_non_finite,
            output: job.output.clone(),
            runtime: job.runtime.clone(),
        }
    }
}

/// Predicts one batch and hands each answer, cropped, to the writer with its slot of the
/// in-flight budget. A tile whose every valid value came back NaN or infinite fails the job
/// (unless allowed); any non-finite value is counted.
async fn predict_batch<P: Pixel>(
    mut work: Vec<TileWork>,
    mut permit: tokio::sync::OwnedSemaphorePermit,
    job: Batch<P>,
) -> Result<()> {
    let Batch {
        runner,
        grid,
        bands,
        merge,
        clock,
        to_writer,
        non_finite: counter,
        refuse_non_finite,
        output,
        runtime,
    } = job;
    let instances: Vec<Instance> = work
        .iter_mut()
        .map(|w| std::mem::replace(&mut w.instance, Instance::new()))
        .collect();
    let started = Instant::now();
    let answers = match runner {
        Runner::Local { model, .. } => tokio::task::spawn_blocking(move || model.run(&instances))
            .await
            .map_err(|e| Error::Worker(format!("pipeline: {e}")))?
            .map_err(Error::from),
        Runner::Remote(client) => {
            let labels: Vec<String> = work
                .iter()
                .map(|w| format!("tile {}", w.tile.index))
                .collect();
            match client.predict(&instances, &labels).await {
                // Sized from the plan's sample (zeros), a batch of a text payload format may
                // be over the budget once the values are known: the client's planner splits
                // it. Only such a batch is encoded twice.
                Err(ee_predict_client::Error::TileTooLarge { .. }) if instances.len() > 1 => {
                    let mut answers = Vec::with_capacity(instances.len());
                    for range in client.plan(&instances, &labels)? {
                        let part = client
                            .predict(&instances[range.clone()], &labels[range])
                            .await?;
                        answers.extend(part);
                    }
                    Ok(answers)
                }
                answered => answered.map_err(Error::from),
            }
        }
    }?;
    StageClock::add(&clock.predict, started);
    if answers.len() != work.len() {
        return Err(Error::Answer(format!(
            "{} answers for a batch of {} tiles (from tile {})",
            answers.len(),
            work.len(),
            work[0].tile.index
        )));
    }
    for (a, w) in answers.into_iter().zip(&work) {
        let cropping = Instant::now();
        let (answer, planes) = to_answer::<P>(a, w, &grid, &bands, merge)?;
        let (bad, all) = non_finite(&answer);
        if bad > 0 {
            tracing::warn!(
                "tile {}: {bad} of {all} values answered where the inputs were valid are NaN or infinite ({runtime})",
                w.tile.index
            );
            if bad == all && refuse_non_finite {
                return Err(Error::Answer(format!(
                    "tile {} of {output}: every one of its {all} values is NaN or infinite where the inputs were valid ({runtime}); the model cannot be run as it is on these inputs (--allow-non-finite writes such answers)",
                    w.tile.index
                )));
            }
        }
        counter.add(bad);
        StageClock::add(&clock.crop, cropping);
        let slot = permit.split(1);
        if to_writer
            .send(ToWriter::Answer(Box::new(answer), planes, slot))
            .is_err()
        {
            // The writer is gone; it says why when it is joined.
            return Err(Error::Worker("writer thread (it stopped)".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_tiling::{Overlap, RasterSize, TileSize};

    fn grid() -> TileGrid {
        TileGrid::new(
            RasterSize::new(8, 8).window(),
            TileSize::new(2, 2).unwrap(),
            Overlap::default(),
            TileSize::new(2, 2).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_reader_that_panics_is_an_error_not_the_end_of_the_tiles() {
        let g = grid();
        let read = move |tile: Tile| -> Result<TileWork> {
            if tile.number == 3 {
                panic!("GDAL blew up at tile {}", tile.number);
            }
            Ok(TileWork {
                tile,
                instance: Instance::new(),
                valid: ndarray::Array2::from_elem((2, 2), true),
            })
        };
        let mut reader = Reader::spawn(tiles_to_read(g, vec![]), read, 2).unwrap();
        let mut got = 0;
        while let Some(w) = reader.tiles.blocking_recv() {
            w.unwrap();
            got += 1;
        }
        assert_eq!(got, 3, "the tiles before the panic");
        let err = reader.join().unwrap_err().to_string();
        assert!(
            err.contains("panicked") && err.contains("GDAL blew up at tile 3"),
            "{err}"
        );
    }

    #[test]
    fn a_reader_that_runs_out_of_tiles_ends_cleanly_and_skips_done_tiles() {
        let g = grid();
        let read = |tile: Tile| -> Result<TileWork> {
            Ok(TileWork {
                tile,
                instance: Instance::new(),
                valid: ndarray::Array2::from_elem((2, 2), true),
            })
        };
        let mut reader = Reader::spawn(tiles_to_read(g, vec![0, 5, 15]), read, 2).unwrap();
        let mut numbers = Vec::new();
        while let Some(w) = reader.tiles.blocking_recv() {
            numbers.push(w.unwrap().tile.number);
        }
        reader.join().unwrap();
        let want: Vec<usize> = (0..16).filter(|n| ![0, 5, 15].contains(n)).collect();
        assert_eq!(numbers, want);
    }
}

//! Admission and batching. A request is admitted (or refused with [`Error::Overloaded`])
//! before its body is read, so memory stays bounded by `max_queue` bodies. Admitted
//! instances queue for the model; whenever a model slot is free the dispatcher takes the
//! oldest queued request and every other queued request of the same shapes, up to
//! `max_batch` instances, and runs them as one batch. Under load, requests that arrive while
//! the model is busy are therefore stacked together; an idle node answers at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ee_runtime::LocalModel;
use ee_tensor_proto::Instance;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{from_run, Error, Result};
use crate::signature::Signature;

/// Counters of what the node did, for logs and the shutdown summary.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests answered with predictions.
    pub answered: AtomicU64,
    /// Requests refused for overload.
    pub refused: AtomicU64,
    /// Requests refused as bad (4xx other than 429).
    pub bad: AtomicU64,
    /// Model runs.
    pub runs: AtomicU64,
    /// Instances run.
    pub instances: AtomicU64,
    /// Largest batch run.
    pub largest_batch: AtomicU64,
}

/// A node's request and batching counters at one moment (see [`Node::stats`](crate::Node::stats)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests answered with predictions.
    pub answered: u64,
    /// Requests refused for overload.
    pub refused: u64,
    /// Requests refused as bad.
    pub bad: u64,
    /// Model runs.
    pub runs: u64,
    /// Instances run.
    pub instances: u64,
    /// Largest batch run.
    pub largest_batch: u64,
}

impl Stats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            answered: self.answered.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            bad: self.bad.load(Ordering::Relaxed),
            runs: self.runs.load(Ordering::Relaxed),
            instances: self.instances.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests answered, {} refused as overloaded, {} bad; {} model runs of {} instances (mean batch {:.1}, largest {})",
            self.answered,
            self.refused,
            self.bad,
            self.runs,
            self.instances,
            self.instances as f64 / self.runs.max(1) as f64,
            self.largest_batch
        )
    }
}

/// Holds one admission slot until dropped.
pub struct Admission {
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Job {
    key: Vec<Vec<usize>>,
    instances: Vec<Instance>,
    reply: oneshot::Sender<Result<Vec<Instance>>>,
    request_id: u64,
}

/// The model behind a queue.
pub struct Batcher {
    signature: Signature,
    queue: mpsc::UnboundedSender<Job>,
    in_flight: Arc<AtomicUsize>,
    max_queue: usize,
    retry_after: Duration,
    stats: Arc<Stats>,
}

impl Batcher {
    /// Starts the dispatcher on the current tokio runtime.
    pub fn start(
        model: Arc<LocalModel>,
        signature: Signature,
        max_batch: usize,
        max_concurrency: usize,
        max_queue: usize,
        retry_after: Duration,
    ) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        tokio::spawn(dispatch(
            model,
            rx,
            max_batch.max(1),
            signature.batchable,
            Arc::new(Semaphore::new(max_concurrency.max(1))),
            stats.clone(),
        ));
        Batcher {
            signature,
            queue: tx,
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_queue: max_queue.max(1),
            retry_after,
            stats,
        }
    }

    /// The served signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The node's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Takes an admission slot, or refuses when `max_queue` requests are admitted already.
    pub fn admit(&self) -> Result<Admission> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admission = Admission {
            in_flight: self.in_flight.clone(),
        };
        if before >= self.max_queue {
            drop(admission);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Overloaded {
                limit: self.max_queue,
                retry_after: self.retry_after,
            });
        }
        Ok(admission)
    }

    /// Checks the instances against the signature and runs them (batched with other
    /// requests'); answers come back in order.
    pub async fn predict(
        &self,
        instances: Vec<Instance>,
        request_id: u64,
    ) -> Result<Vec<Instance>> {
        let instances = self.signature.check(instances).map_err(Error::BadRequest)?;
        // Instances of one shape go together; a request mixing tile shapes becomes one job
        // per shape, answered in the request's order.
        let mut groups: Vec<(Vec<Vec<usize>>, Vec<usize>)> = Vec::new();
        for (i, inst) in instances.iter().enumerate() {
            let key = self.signature.key(inst);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let mut slots: Vec<Option<Instance>> = instances.into_iter().map(Some).collect();
        let mut waits = Vec::new();
        for (key, members) in &groups {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                key: key.clone(),
                instances: members.iter().filter_map(|&i| slots[i].take()).collect(),
                reply,
                request_id,
            };
            self.queue.send(job).map_err(|_| Error::ShuttingDown)?;
            waits.push(answer);
        }
        let mut answers: Vec<Option<Instance>> = vec![None; slots.len()];
        for ((_, members), wait) in groups.iter().zip(waits) {
            let rows = wait.await.map_err(|_| Error::ShuttingDown)??;
            for (&i, row) in members.iter().zip(rows) {
                answers[i] = Some(row);
            }
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| Error::Model("an instance got no answer".into())))
            .collect()
    }
}

async fn dispatch(
    model: Arc<LocalModel>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    max_batch: usize,
    batchable: bool,
    slots: Arc<Semaphore>,
    stats: Arc<Stats>,
) {
    let mut pending: VecDeque<Job> = VecDeque::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match pending.pop_front() {
            Some(j) => j,
            None => match rx.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        while let Ok(j) = rx.try_recv() {
            pending.push_back(j);
        }
        let mut batch = vec![first];
        let mut size = batch[0].instances.len();
        if batchable {
            let mut i = 0;
            while i < pending.len() && size < max_batch {
                if pending[i].key == batch[0].key && size + pending[i].instances.len() <= max_batch
                {
                    size += pending[i].instances.len();
                    batch.extend(pending.remove(i));
                } else {
                    i += 1;
                }
            }
        }
        let (model, stats) = (model.clone(), stats.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            run_batch(&model, batch, max_batch, batchable, &stats);
        });
    }
}

/// Runs the jobs' instances as stacked runs of at most `max_batch` (one at a time when the
/// model has no batch axis) and hands each job its rows.
fn run_batch(model: &LocalModel, jobs: Vec<Job>, max_batch: usize, batchable: bool, stats: &Stats) {
    let started = Instant::now();
    let ids: Vec<u64> = jobs.iter().map(|j| j.request_id).collect();
    let counts: Vec<usize> = jobs.iter().map(|j| j.instances.len()).collect();
    let mut replies = Vec::with_capacity(jobs.len());
    let mut all = Vec::new();
    for job in jobs {
        all.extend(job.instances);
        replies.push(job.reply);
    }
    let chunk = if batchable { max_batch } else { 1 };
    let mut rows = Vec::with_capacity(all.len());
    let mut failure = None;
    for part in all.chunks(chunk) {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.run(part)));
        stats.runs.fetch_add(1, Ordering::Relaxed);
        stats
            .instances
            .fetch_add(part.len() as u64, Ordering::Relaxed);
        stats
            .largest_batch
            .fetch_max(part.len() as u64, Ordering::Relaxed);
        match run {
            Ok(Ok(r)) => rows.extend(r),
            Ok(Err(e)) => {
                failure = Some(from_run(e));
                break;
            }
            Err(_) => {
                failure = Some(Error::Model("the runtime panicked".into()));
                break;
            }
        }
    }
    tracing::info!(
        requests = ?ids,
        instances = all.len(),
        run_ms = started.elapsed().as_secs_f64() * 1e3,
        ok = failure.is_none(),
        "model run"
    );
    let mut rows = rows.into_iter();
    for (reply, n) in replies.into_iter().zip(counts) {
        let answer = match &failure {
            Some(e) => Err(clone_error(e)),
            None => Ok(rows.by_ref().take(n).collect()),
        };
        let _ = reply.send(answer);
    }
}

fn clone_error(e: &Error) -> Error {
    match e {
        Error::BadRequest(m) => Error::BadRequest(m.clone()),
        other => Error::Model(other.to_string()),
    }
}

//! Counters the client keeps while it works, for the command to print at the end: requests,
//! retries by cause, bytes moved, latency histogram, and the concurrency level.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (ms) of the latency histogram's buckets; the last bucket is open.
pub const LATENCY_BUCKETS_MS: [u64; 10] = [5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000];

/// A copy of the counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Requests answered successfully.
    pub requests_ok: u64,
    /// Requests that failed for good.
    pub requests_failed: u64,
    /// Retries by cause (`429`, `503`, `timeout`, `reset`, `unreachable`, `malformed answer`...;
    /// see [`crate::retry::Cause::label`]).
    pub retries: BTreeMap<String, u64>,
    /// Request body bytes sent (all attempts).
    pub bytes_sent: u64,
    /// Response body bytes received (all attempts).
    pub bytes_received: u64,
    /// Successful request latencies per bucket of [`LATENCY_BUCKETS_MS`] (plus one open bucket).
    pub latency_buckets: Vec<u64>,
    /// The largest number of requests in flight seen.
    pub peak_in_flight: usize,
    /// Time spent encoding request bodies.
    pub encode_time: Duration,
    /// Time spent decoding answers.
    pub decode_time: Duration,
    /// Time from sending a request to its decoded answer, summed over successful requests
    /// (overlapping requests each count).
    pub request_time: Duration,
    /// The concurrency limit at the time of the snapshot.
    pub concurrency_limit: f64,
}

impl MetricsSnapshot {
    /// Total retries.
    pub fn total_retries(&self) -> u64 {
        self.retries.values().sum()
    }

    /// Approximate latency quantile `q` in ms (bucket upper bound).
    pub fn latency_quantile_ms(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let target = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.latency_buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Some(LATENCY_BUCKETS_MS.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        None
    }
}

impl fmt::Display for MetricsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests ok, {} failed; {} retries",
            self.requests_ok,
            self.requests_failed,
            self.total_retries()
        )?;
        if !self.retries.is_empty() {
            let by: Vec<String> = self
                .retries
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, " ({})", by.join(", "))?;
        }
        write!(
            f,
            "; {:.1} MB sent, {:.1} MB received; peak {} in flight",
            self.bytes_sent as f64 / 1e6,
            self.bytes_received as f64 / 1e6,
            self.peak_in_flight
        )?;
        if let (Some(p50), Some(p99)) = (
            self.latency_quantile_ms(0.5),
            self.latency_quantile_ms(0.99),
        ) {
            write!(f, "; latency p50 <= {p50} ms, p99 <= {p99} ms")?;
        }
        Ok(())
    }
}

/// The live counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<MetricsSnapshot>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut MetricsSnapshot)) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if m.latency_buckets.is_empty() {
            m.latency_buckets = vec![0; LATENCY_BUCKETS_MS.len() + 1];
        }
        f(&mut m);
    }

    pub(crate) fn sent(&self, bytes: usize, in_flight: usize) {
        self.with(|m| {
            m.bytes_sent += bytes as u64;
            m.peak_in_flight = m.peak_in_flight.max(in_flight);
        });
    }

    pub(crate) fn received(&self, bytes: usize, decode: Duration) {
        self.with(|m| {
            m.bytes_received += bytes as u64;
            m.decode_time += decode;
        });
    }

    pub(crate) fn encoded(&self, time: Duration) {
        self.with(|m| m.encode_time += time);
    }

    pub(crate) fn retry(&self, cause: &str) {
        self.with(|m| *m.retries.entry(cause.to_string()).or_default() += 1);
    }

    pub(crate) fn done(&self, latency: Option<Duration>) {
        self.with(|m| match latency {
            Some(l) => {
                m.requests_ok += 1;
                m.request_time += l;
                let ms = l.as_millis() as u64;
                let i = LATENCY_BUCKETS_MS
                    .iter()
                    .position(|&b| ms <= b)
                    .unwrap_or(LATENCY_BUCKETS_MS.len());
                m.latency_buckets[i] += 1;
            }
            None => m.requests_failed += 1,
        });
    }

    /// A copy of the counters, with the current concurrency limit.
    pub fn snapshot(&self, concurrency_limit: f64) -> MetricsSnapshot {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.concurrency_limit = concurrency_limit;
        s
    }
}

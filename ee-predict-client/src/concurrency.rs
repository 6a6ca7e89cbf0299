//! Adaptive concurrency under node pressure: the number of requests in flight moves between
//! 1 and a maximum, growing additively (about one more per round of successes) and halving on
//! overload signals (429, 503, timeouts). A halving counts once per round: overload answers to
//! requests sent before the last decrease do not decrease it again.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

struct State {
    limit: f64,
    in_flight: usize,
    epoch: u64,
}

/// The shared limiter.
pub struct AdaptiveConcurrency {
    state: Mutex<State>,
    notify: Notify,
    max: usize,
}

/// A slot for one request; dropping it frees the slot.
pub struct Permit {
    limiter: Arc<AdaptiveConcurrency>,
    epoch: u64,
}

impl AdaptiveConcurrency {
    /// A limiter between 1 and `max` (at least 1), starting at `initial`.
    pub fn new(max: usize, initial: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(AdaptiveConcurrency {
            state: Mutex::new(State {
                limit: initial.clamp(1, max) as f64,
                in_flight: 0,
                epoch: 0,
            }),
            notify: Notify::new(),
            max,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a free slot.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if (s.in_flight as f64) < s.limit.floor().max(1.0) {
                    s.in_flight += 1;
                    return Permit {
                        limiter: Arc::clone(self),
                        epoch: s.epoch,
                    };
                }
            }
            notified.await;
        }
    }

    /// The current limit.
    pub fn limit(&self) -> f64 {
        self.lock().limit
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// The maximum.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Permit {
    /// The request succeeded: grow by `1 / limit` (one slot per round of successes).
    pub fn success(&self) {
        let mut s = self.limiter.lock();
        s.limit = (s.limit + 1.0 / s.limit).min(self.limiter.max as f64);
        drop(s);
        self.limiter.notify.notify_waiters();
    }

    /// The server signalled overload: halve, once per round.
    pub fn overload(&self) {
        let mut s = self.limiter.lock();
        if self.epoch == s.epoch {
            s.limit = (s.limit / 2.0).max(1.0);
            s.epoch += 1;
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.lock().in_flight -= 1;
        self.limiter.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grows_additively_and_halves_once_per_round() {
        let l = AdaptiveConcurrency::new(16, 4);
        let permits: Vec<Permit> = futures_join(&l, 4).await;
        assert_eq!(l.in_flight(), 4);
        // All four answered 429: only the first halves.
        for p in &permits {
            p.overload();
        }
        assert_eq!(l.limit(), 2.0);
        drop(permits);
        let p = l.acquire().await;
        for _ in 0..4 {
            p.success();
        }
        assert!(l.limit() > 3.0 && l.limit() < 4.0, "{}", l.limit());
        p.overload();
        assert!(l.limit() < 2.0);
    }

    async fn futures_join(l: &Arc<AdaptiveConcurrency>, n: usize) -> Vec<Permit> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(l.acquire().await);
        }
        v
    }
}

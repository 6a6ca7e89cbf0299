//! What every handler shares: the batcher (signature, admission, counters), the node's
//! configuration and the request ids. `rest`, `grpc` and `node` import it; none of them
//! imports another's state.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::batcher::Batcher;
use crate::config::ServeConfig;

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) batcher: Batcher,
    pub(crate) config: ServeConfig,
    ids: AtomicU64,
}

impl Shared {
    pub(crate) fn new(batcher: Batcher, config: ServeConfig) -> Shared {
        Shared {
            batcher,
            config,
            ids: AtomicU64::new(0),
        }
    }

    /// A fresh id for a request's log lines.
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}

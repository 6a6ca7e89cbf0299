//! Exponential backoff with decorrelated jitter: each wait is drawn uniformly between the
//! initial backoff and `base` times the previous wait, capped at the maximum. The random
//! source is injectable so tests can check exact sequences.

use std::time::Duration;

/// Backoff parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The first (and smallest) wait. Default 100 ms.
    pub init_backoff: Duration,
    /// The largest wait. Default 15 s.
    pub max_backoff: Duration,
    /// Growth factor of the upper bound per retry. Default 3.
    pub base: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 3.0,
        }
    }
}

/// Uniform random numbers in `[0, 1)`.
pub trait RandomSource: Send {
    /// The next number.
    fn next_f64(&mut self) -> f64;
}

/// The default random source.
pub struct FastRandom(fastrand::Rng);

impl FastRandom {
    /// A source seeded from the OS.
    pub fn new() -> Self {
        FastRandom(fastrand::Rng::new())
    }

    /// A reproducible source.
    pub fn seeded(seed: u64) -> Self {
        FastRandom(fastrand::Rng::with_seed(seed))
    }
}

impl Default for FastRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl RandomSource for FastRandom {
    fn next_f64(&mut self) -> f64 {
        self.0.f64()
    }
}

/// The wait sequence of one request.
pub struct Backoff {
    config: BackoffConfig,
    previous: Duration,
    rng: Box<dyn RandomSource>,
}

impl Backoff {
    /// A new sequence drawing from `rng`.
    pub fn new(config: BackoffConfig, rng: Box<dyn RandomSource>) -> Self {
        let previous = config.init_backoff;
        Backoff {
            config,
            previous,
            rng,
        }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        let low = self.config.init_backoff.as_secs_f64();
        let high = (self.previous.as_secs_f64() * self.config.base).max(low);
        let draw = low + (high - low) * self.rng.next_f64();
        // NaN (an infinite bound times a zero draw) and anything past the cap is the cap.
        let wait = if draw < self.config.max_backoff.as_secs_f64() {
            Duration::try_from_secs_f64(draw).unwrap_or(self.config.max_backoff)
        } else {
            self.config.max_backoff
        };
        self.previous = wait;
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl RandomSource for Fixed {
        fn next_f64(&mut self) -> f64 {
            self.0
        }
    }

    fn sequence(r: f64, n: usize) -> Vec<u64> {
        let mut b = Backoff::new(BackoffConfig::default(), Box::new(Fixed(r)));
        (0..n).map(|_| b.next_wait().as_millis() as u64).collect()
    }

    #[test]
    fn minimum_stays_at_the_initial_backoff() {
        assert_eq!(sequence(0.0, 5), vec![100; 5]);
    }

    #[test]
    fn maximum_grows_by_base_until_the_cap() {
        // 300, 900, 2700, 8100, then capped at 15000.
        assert_eq!(
            sequence(1.0 - f64::EPSILON, 6),
            vec![300, 900, 2700, 8100, 15000, 15000]
        );
    }

    #[test]
    fn huge_bounds_saturate_at_the_cap_without_panicking() {
        let config = BackoffConfig {
            init_backoff: Duration::from_secs(1),
            max_backoff: Duration::MAX,
            base: f64::MAX,
        };
        for r in [0.0, 0.5, 1.0 - f64::EPSILON] {
            let mut b = Backoff::new(config.clone(), Box::new(Fixed(r)));
            let waits: Vec<Duration> = (0..4).map(|_| b.next_wait()).collect();
            assert!(
                waits.iter().all(|w| *w >= Duration::from_secs(1)),
                "{waits:?}"
            );
            if r > 0.0 {
                assert_eq!(waits[3], Duration::MAX, "{r}: {waits:?}");
            }
        }
    }

    #[test]
    fn midpoint_follows_the_decorrelated_recurrence() {
        // w1 = 100 + (300 - 100) / 2 = 200; w2 = 100 + (600 - 100) / 2 = 350; w3 = 100 + 950 / 2 = 575.
        assert_eq!(sequence(0.5, 4), vec![200, 350, 575, 912]);
    }
}

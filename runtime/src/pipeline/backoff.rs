//! Exponential backoff with jitter for sources that lost their device or connection.

use std::time::Duration;

/// How long a stream waits before it calls a failing source again: `initial`, doubling after
/// every failure in a row up to `max`, each wait drawn at random from its upper half
/// (`[d/2, d]`) so that streams failing together do not retry in lockstep. A good frame resets
/// it to `initial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait (before jitter).
    pub initial: Duration,
    /// The longest wait (before jitter).
    pub max: Duration,
}

impl Backoff {
    /// The default first wait: 100 ms.
    pub const DEFAULT_INITIAL: Duration = Duration::from_millis(100);
    /// The default longest wait: 5 s.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(5);

    /// A backoff from `initial` to `max` (`max` is raised to `initial` if below it).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
        }
    }
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s.
    fn default() -> Self {
        Backoff::new(Self::DEFAULT_INITIAL, Self::DEFAULT_MAX)
    }
}

/// The running state of a [`Backoff`]: the next delay and a small PRNG for the jitter. No heap.
#[derive(Debug, Clone)]
pub(crate) struct BackoffState {
    settings: Backoff,
    next: Duration,
    rng: u64,
}

impl BackoffState {
    /// A fresh state; `seed` varies the jitter between streams.
    pub(crate) fn new(settings: Backoff, seed: u64) -> Self {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        BackoffState {
            settings,
            next: settings.initial,
            // xorshift must not start at 0.
            rng: (clock ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
        }
    }

    /// The wait before the next attempt; doubles the one after it (up to the maximum).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = d.saturating_mul(2).min(self.settings.max);
        // xorshift64
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        let frac = (x >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        d / 2 + d.mul_f64(frac / 2.0)
    }

    /// After a good frame: the next failure waits `initial` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.settings.initial;
    }
}

//! Seeded randomness: the engine's jitter and the simulator's own choices, from one seed.

use crate::engine::Entropy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;

/// A value-stable generator (ChaCha8): a seed gives the same draws on every platform and version.
#[derive(Debug)]
pub struct Seeded {
    rng: Mutex<ChaCha8Rng>,
}

impl Seeded {
    /// The stream `stream` of `seed` (the engine and the simulator draw from different streams,
    /// so a change in how often one draws does not shift the other's draws).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Self { rng: Mutex::new(rng) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
        f(&mut self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        self.with(|r| r.random_bool(p.clamp(0.0, 1.0)))
    }

    /// A uniform draw from `lo..=hi`.
    pub fn between(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        self.with(|r| r.random_range(lo..=hi))
    }

    /// A uniform index below `n` (0 when `n` is 0).
    pub fn index(&self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.with(|r| r.random_range(0..n))
    }
}

impl Entropy for Seeded {
    fn unit(&self) -> f64 {
        self.with(|r| r.random::<f64>())
    }
}

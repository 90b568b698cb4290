//! The one seam for randomness in the engine's decisions (backoff jitter): system or seeded.

use std::sync::Arc;

/// Where the engine draws the random numbers its decisions use. The simulator gives a seeded
/// source, so that the same seed makes the same decisions.
pub trait Entropy: Send + Sync + std::fmt::Debug {
    /// A uniform draw from `[0, 1)`.
    fn unit(&self) -> f64;
}

/// Randomness from the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn unit(&self) -> f64 {
        // The low bits of a v4 UUID are uniformly random; 53 of them make an f64 in [0, 1).
        let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
}

/// A shared entropy handle.
pub type SharedEntropy = Arc<dyn Entropy>;

//! The resolved retry policy of a task and its backoff arithmetic (exponential, capped, full jitter).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::definition::RetrySpec;
use super::limits;

/// A retry policy with every field decided. Stored as JSON in the tasks table,
/// with durations as integer milliseconds (`initial_backoff_ms`, `max_backoff_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    #[serde(rename = "initial_backoff_ms", with = "millis")]
    pub initial_backoff: Duration,
    pub multiplier: f64,
    #[serde(rename = "max_backoff_ms", with = "millis")]
    pub max_backoff: Duration,
    /// Full jitter: the delay is drawn uniformly from `[0, computed delay)`.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: limits::DEFAULT_MAX_ATTEMPTS,
            initial_backoff: limits::DEFAULT_INITIAL_BACKOFF,
            multiplier: limits::DEFAULT_MULTIPLIER,
            max_backoff: limits::DEFAULT_MAX_BACKOFF,
            jitter: limits::DEFAULT_JITTER,
        }
    }
}

impl RetryPolicy {
    /// Field by field: the spec's value where it has one, else `fallback`'s.
    pub fn resolve(spec: Option<&RetrySpec>, fallback: &RetryPolicy) -> RetryPolicy {
        let Some(spec) = spec else {
            return fallback.clone();
        };
        RetryPolicy {
            max_attempts: spec.max_attempts.unwrap_or(fallback.max_attempts),
            initial_backoff: spec.initial_backoff.unwrap_or(fallback.initial_backoff),
            multiplier: spec.multiplier.unwrap_or(fallback.multiplier),
            max_backoff: spec.max_backoff.unwrap_or(fallback.max_backoff),
            jitter: spec.jitter.unwrap_or(fallback.jitter),
        }
    }

    /// Delay before the next attempt after `failed_attempt` (1-based) failed:
    /// `min(max_backoff, initial_backoff * multiplier^(failed_attempt - 1))`.
    /// With jitter the delay is scaled by `unit`, a uniform draw from `[0, 1)`
    /// (full jitter); `unit` is ignored without jitter. Saturating: never panics,
    /// never NaN, whatever the policy or arguments (out-of-range `unit` is clamped,
    /// a NaN `unit` counts as 0).
    pub fn backoff(&self, failed_attempt: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(failed_attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        // Nanoseconds as f64 are exact up to ~104 days, far past any allowed bound.
        let cap = self.max_backoff.as_nanos() as f64;
        let raw = self.initial_backoff.as_nanos() as f64 * self.multiplier.powi(exponent);
        // NaN (0 * inf, NaN multiplier) or anything at or past the cap saturates.
        let capped = if raw.is_nan() || raw >= cap {
            if !self.jitter {
                return self.max_backoff;
            }
            cap
        } else {
            raw.max(0.0)
        };
        let scaled = if self.jitter { capped * if unit.is_nan() { 0.0 } else { unit.clamp(0.0, 1.0) } } else { capped };
        if scaled >= cap {
            return self.max_backoff;
        }
        // `as` saturates; `scaled` is finite and in [0, cap) here.
        Duration::from_nanos(scaled.round() as u64).min(self.max_backoff)
    }

    /// Whether another attempt may start after `attempts_made` attempts.
    pub fn has_attempts_left(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts
    }
}

impl From<&RetryPolicy> for RetrySpec {
    /// The policy written out in full (every field `Some`).
    fn from(policy: &RetryPolicy) -> Self {
        RetrySpec {
            max_attempts: Some(policy.max_attempts),
            initial_backoff: Some(policy.initial_backoff),
            multiplier: Some(policy.multiplier),
            max_backoff: Some(policy.max_backoff),
            jitter: Some(policy.jitter),
        }
    }
}

/// Durations as whole milliseconds (saturating at `u64::MAX`).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const SECS: fn(u64) -> Duration = Duration::from_secs;

    fn policy(initial: Duration, multiplier: f64, max: Duration, jitter: bool) -> RetryPolicy {
        RetryPolicy { max_attempts: 5, initial_backoff: initial, multiplier, max_backoff: max, jitter }
    }

    #[test]
    fn default_matches_limits() {
        let p = RetryPolicy::default();
        assert_eq!((p.max_attempts, p.initial_backoff, p.max_backoff, p.jitter), (3, SECS(1), SECS(300), true));
        assert_eq!(p.multiplier, 2.0);
    }

    #[test]
    fn resolve_is_field_wise() {
        let fallback = policy(SECS(2), 3.0, SECS(60), false);
        assert_eq!(RetryPolicy::resolve(None, &fallback), fallback);
        assert_eq!(RetryPolicy::resolve(Some(&RetrySpec::default()), &fallback), fallback);
        let spec = RetrySpec { max_attempts: Some(9), max_backoff: Some(SECS(10)), ..RetrySpec::default() };
        let got = RetryPolicy::resolve(Some(&spec), &fallback);
        assert_eq!(got, RetryPolicy { max_attempts: 9, max_backoff: SECS(10), ..fallback.clone() });
        let full = RetrySpec::from(&got);
        assert_eq!(RetryPolicy::resolve(Some(&full), &RetryPolicy::default()), got);
    }

    #[test]
    fn backoff_grows_then_caps() {
        let p = policy(SECS(1), 2.0, SECS(10), false);
        let got: Vec<_> = (1..=6).map(|n| p.backoff(n, 0.5)).collect();
        assert_eq!(got, [SECS(1), SECS(2), SECS(4), SECS(8), SECS(10), SECS(10)]);
        // Attempt 0 is treated like attempt 1.
        assert_eq!(p.backoff(0, 0.5), SECS(1));
        let constant = policy(MS(250), 1.0, SECS(10), false);
        assert_eq!(constant.backoff(40, 0.0), MS(250));
        let fractional = policy(MS(100), 1.5, SECS(10), false);
        assert_eq!(fractional.backoff(3, 0.0), MS(225));
    }

    #[test]
    fn jitter_scales_within_bounds() {
        let p = policy(SECS(1), 2.0, SECS(10), true);
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), SECS(2));
        assert_eq!(p.backoff(3, 0.25), SECS(1));
        assert!(p.backoff(3, 0.999_999) < SECS(4));
        assert_eq!(p.backoff(20, 0.5), SECS(5));
        for i in 0..1000 {
            let unit = f64::from(i) / 1000.0;
            for attempt in [1, 2, 5, 50] {
                let d = p.backoff(attempt, unit);
                let ceiling = policy(SECS(1), 2.0, SECS(10), false).backoff(attempt, 0.0);
                assert!(d <= ceiling, "attempt {attempt} unit {unit}: {d:?} > {ceiling:?}");
            }
        }
        // Out-of-range draws are clamped, NaN counts as 0.
        assert_eq!(p.backoff(1, -3.0), Duration::ZERO);
        assert_eq!(p.backoff(1, 7.0), SECS(1));
        assert_eq!(p.backoff(1, f64::NAN), Duration::ZERO);
        assert_eq!(p.backoff(1, f64::INFINITY), SECS(1));
    }

    #[test]
    fn huge_attempts_and_odd_policies_saturate() {
        let p = policy(limits::MAX_INITIAL_BACKOFF, limits::MAX_MULTIPLIER, limits::MAX_MAX_BACKOFF, false);
        assert_eq!(p.backoff(u32::MAX, 0.5), limits::MAX_MAX_BACKOFF);
        let jittered = RetryPolicy { jitter: true, ..p.clone() };
        assert!(jittered.backoff(u32::MAX, 0.999) < limits::MAX_MAX_BACKOFF);
        let odd = [
            policy(Duration::MAX, 10.0, Duration::MAX, false),
            policy(Duration::MAX, 10.0, Duration::MAX, true),
            policy(Duration::ZERO, f64::INFINITY, SECS(5), false),
            policy(SECS(1), f64::NAN, SECS(5), true),
            policy(SECS(1), f64::NEG_INFINITY, SECS(5), false),
            policy(SECS(1), -2.0, SECS(5), false),
            policy(SECS(1), 0.5, SECS(5), false),
            policy(SECS(9), 2.0, SECS(5), false),
            policy(SECS(1), 2.0, Duration::ZERO, true),
        ];
        for p in odd {
            for attempt in [0, 1, 2, 3, 1000, u32::MAX] {
                for unit in [0.0, 0.5, 0.999_999, f64::NAN] {
                    let d = p.backoff(attempt, unit);
                    assert!(d <= p.max_backoff, "{p:?} attempt {attempt}: {d:?}");
                }
            }
        }
        assert_eq!(policy(SECS(1), 0.5, SECS(5), false).backoff(2, 0.0), MS(500));
        assert_eq!(policy(SECS(9), 2.0, SECS(5), false).backoff(1, 0.0), SECS(5));
        assert_eq!(policy(SECS(1), f64::NAN, SECS(5), false).backoff(2, 0.0), SECS(5));
    }

    #[test]
    fn attempts_left() {
        let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let got: Vec<_> = (0..=4).map(|n| p.has_attempts_left(n)).collect();
        assert_eq!(got, [true, true, true, false, false]);
        let none = RetryPolicy { max_attempts: 0, ..RetryPolicy::default() };
        assert!(!none.has_attempts_left(0));
    }

    #[test]
    fn stored_as_milliseconds() {
        let p = policy(MS(1500), 2.5, SECS(60), true);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"max_attempts": 5, "initial_backoff_ms": 1500, "multiplier": 2.5,
                               "max_backoff_ms": 60000, "jitter": true})
        );
        assert_eq!(serde_json::from_value::<RetryPolicy>(json).unwrap(), p);
    }
}

//! The faults a simulation may inject, by name, and when each strikes (drawn from the seed).

use super::entropy::Seeded;
use std::time::Duration;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// A worker process dies: its leases are never answered, it comes back later as a new stream.
    WorkerCrash,
    /// A worker stops for longer than the lease TTL (a GC pause, a partition), then sends the
    /// results it finished meanwhile: they are stale by then.
    WorkerStall,
    /// The queue loses every entry (a Redis restart without persistence, `FLUSHALL`).
    RedisFlush,
    /// The queue delivers entries twice for a while (acks lost).
    DuplicateDelivery,
    /// The database refuses every call for a few seconds.
    StoreOutage,
    /// Some calls are carried out but their answer never reaches the caller (a connection
    /// lost after the commit), so the caller tries again.
    LostAnswer,
    /// A client cancels a run that is under way.
    Cancel,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::WorkerCrash,
        Fault::WorkerStall,
        Fault::RedisFlush,
        Fault::DuplicateDelivery,
        Fault::StoreOutage,
        Fault::LostAnswer,
        Fault::Cancel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::WorkerCrash => "worker-crash",
            Fault::WorkerStall => "worker-stall",
            Fault::RedisFlush => "redis-flush",
            Fault::DuplicateDelivery => "duplicate-delivery",
            Fault::StoreOutage => "store-outage",
            Fault::LostAnswer => "lost-answer",
            Fault::Cancel => "cancel",
        }
    }

    /// How many times it strikes in one simulation.
    fn occurrences(self) -> u64 {
        match self {
            Fault::WorkerCrash | Fault::WorkerStall | Fault::RedisFlush => 2,
            Fault::DuplicateDelivery | Fault::StoreOutage | Fault::Cancel => 1,
            // Not scheduled: a chance on every call while faults are on.
            Fault::LostAnswer => 0,
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `a,b,c` (or `all`, or `none`) into faults, naming an unknown one and the known ones.
pub fn parse_faults(text: &str) -> Result<Vec<Fault>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => out.extend(Fault::ALL),
            "none" => {}
            name => match Fault::ALL.iter().find(|f| f.name() == name) {
                Some(f) => out.push(*f),
                None => {
                    let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                    return Err(format!("unknown fault {name:?}; expected all, none or some of {}", known.join(", ")));
                }
            },
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One fault striking at `at` (virtual time since the start), lasting `length` where that means something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strike {
    pub fault: Fault,
    pub at: Duration,
    pub length: Duration,
}

/// When the `faults` strike within the first `duration` (after a quiet first 5 s), from the seed.
pub fn plan(faults: &[Fault], duration: Duration, lease_ttl: Duration, rng: &Seeded) -> Vec<Strike> {
    let quiet = 5_000;
    let end = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(quiet + 1);
    let ttl = u64::try_from(lease_ttl.as_millis()).unwrap_or(u64::MAX);
    let mut out = Vec::new();
    for &fault in faults {
        for _ in 0..fault.occurrences() {
            let at = Duration::from_millis(rng.between(quiet, end * 3 / 4));
            let ms = match fault {
                // Long enough for the leases to expire and the tasks to move on.
                Fault::WorkerStall => rng.between(ttl + 1_000, ttl * 2 + 5_000),
                Fault::WorkerCrash => rng.between(1_000, 20_000),
                Fault::DuplicateDelivery => rng.between(5_000, 15_000),
                Fault::StoreOutage => rng.between(1_000, 5_000),
                Fault::RedisFlush | Fault::LostAnswer | Fault::Cancel => 0,
            };
            out.push(Strike { fault, at, length: Duration::from_millis(ms) });
        }
    }
    out.sort_by_key(|s| (s.at, s.fault));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_all_and_refuses_unknown_ones() {
        assert_eq!(parse_faults("redis-flush, worker-crash").unwrap(), vec![Fault::WorkerCrash, Fault::RedisFlush]);
        assert_eq!(parse_faults("all").unwrap().len(), Fault::ALL.len());
        assert!(parse_faults("none").unwrap().is_empty());
        let e = parse_faults("worker-crash,meteor").unwrap_err();
        assert!(e.contains("\"meteor\"") && e.contains("redis-flush"), "{e}");
    }
}

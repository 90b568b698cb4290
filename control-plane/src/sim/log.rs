//! The simulation's event log: every action and answer at its virtual time, ids replaced by stable names.
//!
//! Ids are random (UUIDv7), names are not: a run is `r1`, `r2`, … and a lease `L1`, … in the
//! order the simulation first meets them, so the same seed writes the same log, byte for byte.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt::Write as _;
use uuid::Uuid;

/// Stable names for ids, handed out in order of first sight.
#[derive(Debug, Default)]
pub struct Names {
    names: HashMap<Uuid, String>,
    counts: HashMap<&'static str, usize>,
}

impl Names {
    /// The name of `id`, giving it the next `prefix` name if it has none.
    pub fn name(&mut self, prefix: &'static str, id: Uuid) -> String {
        if let Some(n) = self.names.get(&id) {
            return n.clone();
        }
        let count = self.counts.entry(prefix).or_default();
        *count += 1;
        let n = format!("{prefix}{count}");
        self.names.insert(id, n.clone());
        n
    }

    /// `text` with every UUID in it replaced by its name (`id` for ones never named).
    pub fn scrub(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some((at, id)) = find_uuid(rest) {
            out.push_str(&rest[..at]);
            let name = self.name("id", id);
            out.push_str(&name);
            rest = &rest[at + 36..];
        }
        out.push_str(rest);
        out
    }
}

/// The first UUID in `s` (hyphenated form) and where it starts.
fn find_uuid(s: &str) -> Option<(usize, Uuid)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i + 36 <= bytes.len() {
        if bytes[i].is_ascii_hexdigit()
            && bytes[i + 8] == b'-'
            && s.is_char_boundary(i)
            && s.is_char_boundary(i + 36)
            && let Ok(id) = Uuid::try_parse(&s[i..i + 36])
        {
            return Some((i, id));
        }
        i += 1;
    }
    None
}

/// The log being written.
#[derive(Debug)]
pub struct EventLog {
    start: DateTime<Utc>,
    text: String,
}

impl EventLog {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { start, text: String::new() }
    }

    /// Appends `line` stamped with `at` as seconds since the start.
    pub fn at(&mut self, at: DateTime<Utc>, line: &str) {
        let us = (at - self.start).num_microseconds().unwrap_or(i64::MAX);
        let _ = writeln!(self.text, "{:>4}.{:06} {line}", us / 1_000_000, us % 1_000_000);
    }

    /// Appends an unstamped line (the summary at the end).
    pub fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_become_names_in_order_of_first_sight() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut names = Names::default();
        assert_eq!(names.name("r", b), "r1");
        let text = format!("lease {a} of {b}, again {a}");
        assert_eq!(names.scrub(&text), "lease id1 of r1, again id1");
        assert_eq!(names.scrub("no ids here ✓ 0123"), "no ids here ✓ 0123");
    }
}

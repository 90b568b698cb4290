//! Cron expressions in an IANA timezone: validation with field-named errors, and tick arithmetic (croner, chrono-tz).
//!
//! A tick is a local wall-clock time of the schedule's timezone that matches the pattern,
//! fired at most once. Daylight-saving changes, deliberately (croner's rules, made stateless):
//! - spring forward (a local time that does not exist, e.g. 02:30 on 2026-03-08 in New York):
//!   a fixed-time pattern (one second, one minute, one hour, e.g. `30 2 * * *`) fires at the
//!   first instant after the gap (03:00 EDT); other patterns (wildcards, steps, lists) skip the
//!   missing times.
//! - fall back (a local time that happens twice, e.g. 01:30 on 2026-11-01): it fires once, at its
//!   first (daylight) occurrence. This holds for every pattern: `*/15 * * * *` fires at 01:00 …
//!   01:45 EDT and then not until 02:00 EST. Use UTC for strictly periodic schedules.

use super::validate::ValidationError;
use chrono::{DateTime, LocalResult, SubsecRound, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// Names of the fields of a 6-field expression (a 5-field one has no seconds).
const FIELDS: [&str; 6] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"];
/// How far a search for the end of a repeated (fall-back) hour looks, in minutes.
const FOLD_SEARCH_MINUTES: u32 = 6 * 60;

/// A validated cron expression in a timezone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
}

fn invalid(path: &str, reason: impl Into<String>) -> ValidationError {
    ValidationError::new(path, reason)
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).build()
}

/// The IANA timezone `name` names; empty means UTC.
pub fn parse_timezone(name: &str) -> Result<Tz, ValidationError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    name.parse::<Tz>().map_err(|_| {
        invalid("timezone", format!("{name:?} is not an IANA timezone name (such as \"America/New_York\" or \"UTC\")"))
    })
}

/// Checks `expr` (5 fields, or 6 with seconds first), naming the first field that is wrong.
pub fn parse_cron(expr: &str) -> Result<Cron, ValidationError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let names: &[&str] = match fields.len() {
        5 => &FIELDS[1..],
        6 => &FIELDS,
        n => {
            return Err(invalid(
                "cron",
                format!(
                    "{expr:?} has {n} field(s); expected 5 (minute hour day-of-month month day-of-week) or 6 (second first)"
                ),
            ));
        }
    };
    match parser().parse(expr) {
        Ok(cron) => Ok(cron),
        Err(whole) => {
            // Find the field at fault: each one alone, the others `*`.
            let offset = FIELDS.len() - names.len();
            for (i, (field, name)) in fields.iter().zip(names).enumerate() {
                let mut probe = vec!["*"; FIELDS.len()];
                probe[offset + i] = field;
                if let Err(e) = parser().parse(&probe.join(" ")) {
                    return Err(invalid("cron", format!("{name} field {field:?} is not valid: {e}")));
                }
            }
            Err(invalid("cron", format!("{expr:?} is not valid: {whole}")))
        }
    }
}

impl CronSchedule {
    /// Validates `expr` and `timezone` (empty means UTC).
    pub fn parse(expr: &str, timezone: &str) -> Result<Self, ValidationError> {
        let tz = parse_timezone(timezone)?;
        let cron = parse_cron(expr)?;
        let this = Self { cron, tz };
        // From a fixed instant, so that validation does not depend on the clock.
        if this.next_after(DateTime::<Utc>::UNIX_EPOCH).is_none() {
            return Err(invalid("cron", format!("{expr:?} never fires (no date matches it)")));
        }
        Ok(this)
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `t`, or None if the pattern never fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = t.trunc_subsecs(0);
        let mut from = t.with_timezone(&self.tz);
        let mut inclusive = false;
        for _ in 0..3 {
            let next = self.cron.find_next_occurrence(&from, inclusive).ok()?.with_timezone(&Utc);
            if next > t {
                return Some(next);
            }
            // `t` is in the second pass of a repeated hour, whose wall-clock times fired at
            // their first pass: go on from the end of the repeated hour.
            from = self.end_of_fold(t)?;
            inclusive = true;
        }
        None
    }

    /// The first instant after `t` whose local time is not ambiguous.
    fn end_of_fold(&self, t: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let local = t.with_timezone(&self.tz).naive_local();
        let mut n = local.date().and_hms_opt(local.hour(), local.minute(), 0)?;
        for _ in 0..FOLD_SEARCH_MINUTES {
            n += chrono::Duration::minutes(1);
            if let LocalResult::Single(dt) = self.tz.from_local_datetime(&n) {
                return Some(dt);
            }
        }
        None
    }

    /// The next `n` ticks strictly after `t`.
    pub fn next_n(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            let Some(next) = self.next_after(at) else { break };
            out.push(next);
            at = next;
        }
        out
    }

    /// Ticks in `(after, until]`, oldest first, at most `limit`.
    pub fn ticks_between(&self, after: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = after;
        while out.len() < limit {
            match self.next_after(at) {
                Some(next) if next <= until => {
                    out.push(next);
                    at = next;
                }
                Some(_) | None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("an RFC 3339 instant")
    }

    fn ny(expr: &str) -> CronSchedule {
        CronSchedule::parse(expr, "America/New_York").expect("valid")
    }

    #[test]
    fn field_counts_and_field_errors_are_named() {
        assert!(CronSchedule::parse("*/5 * * * *", "").is_ok());
        assert!(CronSchedule::parse("* * * * * *", "UTC").is_ok());
        let e = CronSchedule::parse("* * * *", "").unwrap_err();
        assert_eq!(e.path, "cron");
        assert!(e.reason.contains("has 4 field(s)"), "{}", e.reason);
        assert!(CronSchedule::parse("0 0 0 * * * 2030", "").unwrap_err().reason.contains("7 field"));
        let e = CronSchedule::parse("61 * * * *", "").unwrap_err();
        assert!(e.reason.starts_with("minute field \"61\""), "{}", e.reason);
        let e = CronSchedule::parse("0 0 25 * * *", "").unwrap_err();
        assert!(e.reason.starts_with("hour field \"25\""), "{}", e.reason);
        let e = CronSchedule::parse("0 0 * 13 *", "").unwrap_err();
        assert!(e.reason.starts_with("month field \"13\""), "{}", e.reason);
        let e = CronSchedule::parse("0 0 * * MON-FOO", "").unwrap_err();
        assert!(e.reason.starts_with("day-of-week field"), "{}", e.reason);
        let e = CronSchedule::parse("0 0 * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(e.path, "timezone");
        assert!(e.reason.contains("Mars/Olympus"));
    }

    #[test]
    fn utc_ticks_are_plain() {
        let c = CronSchedule::parse("*/15 * * * *", "").unwrap();
        let ticks = c.ticks_between(utc("2026-01-01T00:00:00Z"), utc("2026-01-01T01:00:00Z"), 100);
        assert_eq!(ticks.len(), 4);
        assert_eq!(ticks[0], utc("2026-01-01T00:15:00Z"));
        assert_eq!(ticks[3], utc("2026-01-01T01:00:00Z"));
        let s = CronSchedule::parse("* * * * * *", "").unwrap();
        assert_eq!(s.next_after(utc("2026-01-01T00:00:00.500Z")), Some(utc("2026-01-01T00:00:01Z")));
    }

    #[test]
    fn spring_forward_fires_a_missing_fixed_time_after_the_gap() {
        let c = ny("30 2 * * *");
        let ticks = c.ticks_between(utc("2026-03-06T12:00:00Z"), utc("2026-03-10T12:00:00Z"), 10);
        assert_eq!(
            ticks,
            vec![
                utc("2026-03-07T07:30:00Z"), // 02:30 EST
                utc("2026-03-08T07:00:00Z"), // 02:30 does not exist: 03:00 EDT
                utc("2026-03-09T06:30:00Z"), // 02:30 EDT
                utc("2026-03-10T06:30:00Z"),
            ]
        );
        // An hourly pattern skips the missing hour.
        let hourly = ny("0 * * * *");
        let ticks = hourly.ticks_between(utc("2026-03-08T05:30:00Z"), utc("2026-03-08T08:30:00Z"), 10);
        assert_eq!(ticks, vec![utc("2026-03-08T06:00:00Z"), utc("2026-03-08T07:00:00Z"), utc("2026-03-08T08:00:00Z")]);
    }

    #[test]
    fn fall_back_fires_a_repeated_time_once_at_its_first_occurrence() {
        let c = ny("30 1 * * *");
        let ticks = c.ticks_between(utc("2026-10-31T00:00:00Z"), utc("2026-11-03T00:00:00Z"), 10);
        assert_eq!(
            ticks,
            vec![
                utc("2026-10-31T05:30:00Z"), // 01:30 EDT
                utc("2026-11-01T05:30:00Z"), // the first 01:30 (EDT) only
                utc("2026-11-02T06:30:00Z"), // 01:30 EST
            ]
        );
        let daily = ny("30 2 * * *");
        let ticks = daily.ticks_between(utc("2026-10-31T00:00:00Z"), utc("2026-11-02T00:00:00Z"), 10);
        assert_eq!(ticks, vec![utc("2026-10-31T06:30:00Z"), utc("2026-11-01T07:30:00Z")]);
        // Interval patterns fire each wall-clock time once too: the repeated hour is quiet.
        let quarter = ny("*/30 * * * *");
        let ticks = quarter.ticks_between(utc("2026-11-01T04:45:00Z"), utc("2026-11-01T07:45:00Z"), 10);
        assert_eq!(
            ticks,
            vec![
                utc("2026-11-01T05:00:00Z"), // 01:00 EDT
                utc("2026-11-01T05:30:00Z"), // 01:30 EDT
                utc("2026-11-01T07:00:00Z"), // 02:00 EST
                utc("2026-11-01T07:30:00Z"),
            ]
        );
        // From inside the repeated hour, the next tick is after it (never in the past).
        assert_eq!(quarter.next_after(utc("2026-11-01T06:10:00Z")), Some(utc("2026-11-01T07:00:00Z")));
        assert_eq!(c.next_after(utc("2026-11-01T06:10:00Z")), Some(utc("2026-11-02T06:30:00Z")));
    }

    #[test]
    fn a_pattern_that_never_fires_is_refused() {
        let t = std::time::Instant::now();
        let e = CronSchedule::parse("0 0 30 2 *", "").unwrap_err();
        assert!(e.reason.contains("never fires"), "{}", e.reason);
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn a_leap_day_pattern_is_accepted() {
        let c = CronSchedule::parse("0 0 29 2 *", "").unwrap();
        assert_eq!(c.next_after(utc("2026-01-01T00:00:00Z")), Some(utc("2028-02-29T00:00:00Z")));
    }

    #[test]
    fn next_n_lists_upcoming_ticks() {
        let c = CronSchedule::parse("0 9 * * MON", "Europe/Paris").unwrap();
        let next = c.next_n(utc("2026-06-01T00:00:00Z"), 3);
        assert_eq!(next, vec![utc("2026-06-01T07:00:00Z"), utc("2026-06-08T07:00:00Z"), utc("2026-06-15T07:00:00Z")]);
    }
}

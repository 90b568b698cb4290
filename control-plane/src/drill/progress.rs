//! The progress display on stderr (a status line on a terminal, plain lines otherwise) and the timeline it records.

use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a status line is repeated when stderr is not a terminal.
const PLAIN_STATUS_EVERY: Duration = Duration::from_secs(3);

/// One entry of the timeline: milliseconds since the drill started.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: u64,
    /// `setup`, `workload`, `fault`, `heal`, `observed` or `settled`.
    pub kind: &'static str,
    pub what: String,
}

#[derive(Debug)]
struct State {
    events: Vec<Event>,
    status_shown: bool,
    last_plain_status: Option<Instant>,
}

/// Progress of one drill: timeline events are printed as lines, status updates replace each other.
#[derive(Debug, Clone)]
pub struct Progress {
    start: Instant,
    /// The same instant on the wall clock (UTC).
    started_at: chrono::DateTime<chrono::Utc>,
    tty: bool,
    state: Arc<Mutex<State>>,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            started_at: chrono::Utc::now(),
            tty: std::io::stderr().is_terminal(),
            state: Arc::new(Mutex::new(State { events: Vec::new(), status_shown: false, last_plain_status: None })),
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// When the drill started, RFC 3339 UTC.
    pub fn started_at(&self) -> String {
        self.started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Milliseconds from the start of the drill to `t`.
    pub fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a timeline event now and prints it.
    pub fn event(&self, kind: &'static str, what: impl Into<String>) -> Instant {
        let now = Instant::now();
        self.event_at(now, kind, what);
        now
    }

    /// Records a timeline event that happened at `t` and prints it.
    pub fn event_at(&self, t: Instant, kind: &'static str, what: impl Into<String>) {
        let what = what.into();
        let at_ms = self.ms(t);
        let mut s = self.lock();
        let mut err = std::io::stderr().lock();
        if s.status_shown {
            let _ = write!(err, "\r\x1b[2K");
            s.status_shown = false;
        }
        let _ = writeln!(err, "[{:>7.3}s] {kind:<8} {what}", at_ms as f64 / 1000.0);
        s.events.push(Event { at_ms, kind, what });
    }

    /// Shows what the drill is waiting for (replaced by the next status on a terminal).
    pub fn status(&self, what: impl AsRef<str>) {
        let mut s = self.lock();
        let elapsed = self.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K[{elapsed:>7.3}s] … {}", what.as_ref());
            let _ = err.flush();
            s.status_shown = true;
        } else if s.last_plain_status.is_none_or(|t| t.elapsed() >= PLAIN_STATUS_EVERY) {
            let _ = writeln!(err, "[{elapsed:>7.3}s] …        {}", what.as_ref());
            s.last_plain_status = Some(Instant::now());
        }
    }

    /// Clears the status line (before the report is printed).
    pub fn finish(&self) {
        let mut s = self.lock();
        if s.status_shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            s.status_shown = false;
        }
    }

    /// The events so far, in order of time.
    pub fn timeline(&self) -> Vec<Event> {
        let mut events = self.lock().events.clone();
        events.sort_by_key(|e| e.at_ms);
        events
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

//! Human or JSON output. Results go to stdout; progress, warnings and
//! errors go to stderr.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::CliError;

/// Where and how a command reports.
pub(crate) struct Output {
    json: bool,
    start: Instant,
}

impl Output {
    /// `json`: results as one JSON document on stdout.
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            start: Instant::now(),
        }
    }

    /// One progress line (`[  1.2s] order placed …`) on stderr.
    pub(crate) fn progress(&self, msg: &str) {
        eprintln!("[{:>6.1}s] {msg}", self.start.elapsed().as_secs_f64());
    }

    /// A progress line while polling: status and time spent waiting.
    pub(crate) fn waiting(&self, what: &str, status: &str, waited: Duration) {
        self.progress(&format!(
            "  waiting for {what}: {status}, {:.1}s elapsed",
            waited.as_secs_f64()
        ));
    }

    /// A warning on stderr.
    pub(crate) fn warn(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }

    /// The command's result: `human` lines, or `json` when `--json`.
    pub(crate) fn result(&self, human: &str, json: Value) {
        if self.json {
            println!("{json}");
        } else {
            println!("{human}");
        }
    }

    /// The failure, on stderr (and as JSON on stdout with `--json`).
    pub(crate) fn error(&self, e: &CliError) {
        eprintln!("error: {e}");
        if self.json {
            let mut doc = serde_json::json!({"error": e.to_string(), "exit_code": e.exit_code()});
            if let CliError::Client(c) = e
                && let Some(t) = c.acme_type()
            {
                doc["acme_type"] = t.into();
            }
            println!("{doc}");
        }
    }
}

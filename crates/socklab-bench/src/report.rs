//! Result lines: one JSON object per line on stdout, flushed at once so the orchestrator
//! can act on each phase as it happens.

use std::io::Write;

/// Prints `value` as one line of JSON on stdout and flushes.
pub fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the orchestrator is gone; nothing useful is left to do with it.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Counts errors by kind, so a failed run says why (`ConnectionRefused`, `TimedOut`, ...).
#[derive(Debug, Default)]
pub struct ErrorCounts(std::collections::BTreeMap<String, u64>);

impl ErrorCounts {
    /// Counts one error.
    pub fn add(&mut self, e: &std::io::Error) {
        *self.0.entry(format!("{:?}", e.kind())).or_default() += 1;
    }

    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: ErrorCounts) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }

    /// Total errors counted.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// As a JSON object `{kind: count}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
                .collect(),
        )
    }
}

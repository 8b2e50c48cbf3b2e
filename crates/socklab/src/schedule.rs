//! Fault schedule files (`--link-schedule FILE`) for repeatable runs: one action per line,
//! at a time measured from socklab's start.
//!
//! ```text
//! # time   action              [listener=ID]
//! 30s      outage 10s
//! 45s      reset               listener=0
//! 2m       nat_drop
//! 150s     link gprs,nat_idle=30s
//! 200s     link none
//! ```
//!
//! Faults hit every session online at that moment (of one listener with `listener=ID`);
//! `link` sets the listener's link (every listener without `listener=`), which also
//! applies to its online sessions.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::hub::Hub;
use crate::link::spec::parse_duration;
use crate::link::{Fault, FaultParseError, LinkParseError, LinkSpec};
use crate::shutdown::Shutdown;

/// A schedule line that could not be understood.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("schedule line {line}: {problem}")]
pub struct ScheduleError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub problem: ScheduleProblem,
}

/// What is wrong with a schedule line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleProblem {
    /// `listener=` is not followed by a number.
    #[error("{0:?} is not a listener id")]
    ListenerId(String),
    /// Not `TIME ACTION`.
    #[error("expected 'TIME ACTION'")]
    Syntax,
    /// The time or the link is not understood.
    #[error(transparent)]
    Link(#[from] LinkParseError),
    /// The fault is not understood.
    #[error(transparent)]
    Fault(#[from] FaultParseError),
}

/// What a schedule line does.
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleAction {
    /// Inject a fault into the online sessions.
    Fault(Fault),
    /// Set the link (`None`: `link none`).
    Link(Option<Box<LinkSpec>>),
}

/// One line of a schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleEntry {
    /// When, from socklab's start.
    pub at: Duration,
    /// What.
    pub action: ScheduleAction,
    /// Only this listener's sessions; `None`: all.
    pub listener: Option<u32>,
}

/// Parses a schedule; errors name the line. Entries come out sorted by time (lines with
/// the same time keep their order).
pub fn parse(text: &str) -> Result<Vec<ScheduleEntry>, ScheduleError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let err = |problem: ScheduleProblem| ScheduleError {
            line: i + 1,
            problem,
        };
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let mut listener = None;
        if let Some(last) = words.last().and_then(|w| w.strip_prefix("listener=")) {
            listener = Some(
                last.parse::<u32>()
                    .map_err(|_| err(ScheduleProblem::ListenerId(last.to_string())))?,
            );
            words.pop();
        }
        let (time, rest) = match words.split_first() {
            Some((t, rest)) if !rest.is_empty() => (*t, rest.join(" ")),
            _ => return Err(err(ScheduleProblem::Syntax)),
        };
        let at = parse_duration(time).map_err(|e| err(e.into()))?;
        let action = match rest.strip_prefix("link ") {
            Some("none") => ScheduleAction::Link(None),
            Some(spec) => ScheduleAction::Link(Some(Box::new(
                LinkSpec::parse(spec.trim()).map_err(|e| err(e.into()))?,
            ))),
            None => ScheduleAction::Fault(Fault::parse(&rest).map_err(|e| err(e.into()))?),
        };
        out.push(ScheduleEntry {
            at,
            action,
            listener,
        });
    }
    out.sort_by_key(|e| e.at);
    Ok(out)
}

/// Runs the schedule from `start` until its end or shutdown.
pub async fn run(
    hub: Arc<Hub>,
    entries: Vec<ScheduleEntry>,
    start: Instant,
    mut shutdown: Shutdown,
) {
    for entry in entries {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = sleep_until(start + entry.at) => {}
        }
        let n = match &entry.action {
            ScheduleAction::Fault(f) => hub.inject_all(entry.listener, *f).await,
            ScheduleAction::Link(spec) => {
                let ids: Vec<u32> = match entry.listener {
                    Some(id) => vec![id],
                    None => hub.listener_ids(),
                };
                for id in ids {
                    if let Err(e) = hub.set_listener_link(id, spec.as_deref().cloned()) {
                        tracing::warn!("schedule: {e}");
                    }
                }
                hub.online_count()
            }
        };
        tracing::info!(
            "schedule at {:?}: {:?} ({n} session(s))",
            entry.at,
            entry.action
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times, actions, comments and listener filters parse; entries sort by time.
    #[test]
    fn parses_schedule() {
        let s = parse(
            "# a run\n\n2m nat_drop\n30s outage 10s  # short\n45s reset listener=1\n\
             150s link gprs,nat_idle=30s\n200s link none\n",
        )
        .unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].at, Duration::from_secs(30));
        assert_eq!(
            s[0].action,
            ScheduleAction::Fault(Fault::Outage(Duration::from_secs(10)))
        );
        assert_eq!(
            (s[1].action.clone(), s[1].listener),
            (ScheduleAction::Fault(Fault::Reset), Some(1))
        );
        assert_eq!(s[2].action, ScheduleAction::Fault(Fault::NatDrop));
        match &s[3].action {
            ScheduleAction::Link(Some(spec)) => assert_eq!(spec.to_string(), "gprs,nat_idle=30s"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s[4].action, ScheduleAction::Link(None));
    }

    /// Errors say which line is wrong.
    #[test]
    fn schedule_errors() {
        assert!(parse("30s\n").unwrap_err().to_string().contains("line 1"));
        assert!(
            parse("ok\n10s explode\n")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
        assert!(
            parse("10s reset\nsoon reset\n")
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        assert!(
            parse("10s link wifi\n")
                .unwrap_err()
                .to_string()
                .contains("unknown link profile")
        );
        assert!(
            parse("10s reset listener=x\n")
                .unwrap_err()
                .to_string()
                .contains("listener")
        );
    }
}

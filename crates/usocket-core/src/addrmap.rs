//! The script runner's `--map` rules: rewrite a (host, port) a device script uses to one
//! reachable from the PC, before any resolution happens.
//!
//! A rule `(from_host, from_port, to_host, to_port)` matches the host exactly as the
//! script passed it, case-insensitively; `from_port: None` matches any port and
//! `to_port: None` keeps the port. The first use of each rule queues one announcement
//! (`usocket: mapped HOST:PORT -> HOST:PORT`) for the binding to print on stderr.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

/// One rewrite rule.
#[derive(Debug)]
pub struct Rule {
    /// The host as scripts write it, lower-cased for matching.
    from_host: String,
    /// The port to match; `None` matches any.
    from_port: Option<u16>,
    /// The replacement host.
    to_host: String,
    /// The replacement port; `None` keeps the script's port.
    to_port: Option<u16>,
    /// Set after the rule's first use, so it is announced once.
    announced: AtomicBool,
}

impl Rule {
    /// A rule rewriting `from_host[:from_port]` to `to_host[:to_port]`.
    pub fn new(
        from_host: &str,
        from_port: Option<u16>,
        to_host: &str,
        to_port: Option<u16>,
    ) -> Rule {
        Rule {
            from_host: from_host.to_lowercase(),
            from_port,
            to_host: to_host.to_string(),
            to_port,
            announced: AtomicBool::new(false),
        }
    }
}

/// Set while rules exist, so unmapped programs pay one atomic load per call.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static RULES: RwLock<Vec<Rule>> = RwLock::new(Vec::new());
/// Announcements waiting for the binding to print them.
static PENDING: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HAS_PENDING: AtomicBool = AtomicBool::new(false);

/// Replaces every rule (an empty list clears the map).
pub fn set_rules(rules: Vec<Rule>) {
    let mut guard = RULES.write().unwrap_or_else(|e| e.into_inner());
    ACTIVE.store(!rules.is_empty(), Ordering::SeqCst);
    *guard = rules;
}

/// Applies the first matching rule to `(host, port)`; `None` when no rule matches.
pub fn apply(host: &str, port: u16) -> Option<(String, u16)> {
    if !ACTIVE.load(Ordering::Relaxed) {
        return None;
    }
    let rules = RULES.read().unwrap_or_else(|e| e.into_inner());
    let rule = rules.iter().find(|r| {
        r.from_host.eq_ignore_ascii_case(host) && r.from_port.is_none_or(|p| p == port)
    })?;
    let to_port = rule.to_port.unwrap_or(port);
    if !rule.announced.swap(true, Ordering::SeqCst) {
        let msg = format!(
            "usocket: mapped {}:{} -> {}:{}",
            host, port, rule.to_host, to_port
        );
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
        HAS_PENDING.store(true, Ordering::SeqCst);
    }
    Some((rule.to_host.clone(), to_port))
}

/// Takes the announcements queued since the last call (usually none).
pub fn take_announcements() -> Vec<String> {
    if !HAS_PENDING.swap(false, Ordering::SeqCst) {
        return Vec::new();
    }
    std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_case_insensitively_and_announce_once() {
        set_rules(vec![
            Rule::new("Example.COM", Some(80), "127.0.0.1", Some(8080)),
            Rule::new("any.port", None, "localhost", None),
        ]);
        assert_eq!(apply("example.com", 80), Some(("127.0.0.1".into(), 8080)));
        assert_eq!(apply("example.com", 81), None);
        assert_eq!(apply("ANY.port", 5), Some(("localhost".into(), 5)));
        apply("example.com", 80);
        let said = take_announcements();
        assert_eq!(
            said,
            vec![
                "usocket: mapped example.com:80 -> 127.0.0.1:8080",
                "usocket: mapped ANY.port:5 -> localhost:5"
            ]
        );
        assert!(take_announcements().is_empty());
        set_rules(Vec::new());
        assert_eq!(apply("example.com", 80), None);
    }
}

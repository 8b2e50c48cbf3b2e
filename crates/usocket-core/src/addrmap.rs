//! The script runner's `--map` rules: rewrite a (host, port) a device script uses to one
//! reachable from the PC, before any resolution happens.
//!
//! A rule `(from_host, from_port, to_host, to_port)` matches the host exactly as the
//! script passed it, case-insensitively; `from_port: None` matches any port and
//! `to_port: None` keeps the port. The first use of each rule queues one announcement
//! (`usocket: mapped HOST:PORT -> HOST:PORT`) for the binding to print on stderr.
//!
//! The [`Guard`] covers what no rule rewrote: with [`Guard::Warn`] the first connection to
//! each non-loopback destination queues a warning, with [`Guard::Strict`] it is refused.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
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

/// What happens to a connection to a non-loopback address that no rule rewrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Nothing (a plain Python program using usocket).
    Off,
    /// Allowed, with one warning per destination (the runner's default).
    Warn,
    /// Refused (`--strict-map`).
    Strict,
}

static GUARD: AtomicU8 = AtomicU8::new(0);
/// Destinations already warned about or refused, so each is reported once.
static REPORTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Sets the guard for unmapped non-loopback destinations.
pub fn set_guard(guard: Guard) {
    let value = match guard {
        Guard::Off => 0,
        Guard::Warn => 1,
        Guard::Strict => 2,
    };
    GUARD.store(value, Ordering::SeqCst);
}

/// The current guard.
pub fn guard() -> Guard {
    match GUARD.load(Ordering::Relaxed) {
        1 => Guard::Warn,
        2 => Guard::Strict,
        _ => Guard::Off,
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Checks a destination no rule rewrote (`host` as the script wrote it). `Ok(())` when it
/// may be used; `Err(())` when [`Guard::Strict`] refuses it. Reports each destination once.
#[allow(clippy::result_unit_err)]
pub fn check_unmapped(host: &str, dest: SocketAddr) -> Result<(), ()> {
    let guard = guard();
    if guard == Guard::Off || is_local(dest.ip()) {
        return Ok(());
    }
    let shown = if host.parse::<IpAddr>().is_ok() || host.is_empty() {
        dest.to_string()
    } else {
        format!("{host}:{} ({})", dest.port(), dest.ip())
    };
    let first = REPORTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(shown.clone());
    if first {
        let msg = match guard {
            Guard::Strict => format!(
                "usocket: refused {shown}: not covered by --map (--strict-map); OSError(113)"
            ),
            _ => format!(
                "usocket: warning: {shown} is not covered by --map; \
                 the script is talking to the real network"
            ),
        };
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
        HAS_PENDING.store(true, Ordering::SeqCst);
    }
    if guard == Guard::Strict {
        Err(())
    } else {
        Ok(())
    }
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

    /// The map is process-wide: tests that read the announcements take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn rules_match_case_insensitively_and_announce_once() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

    #[test]
    fn guard_reports_each_non_loopback_destination_once() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let far: SocketAddr = "203.0.113.7:80".parse().unwrap();
        set_guard(Guard::Off);
        assert_eq!(check_unmapped("203.0.113.7", far), Ok(()));
        set_guard(Guard::Warn);
        assert_eq!(
            check_unmapped("127.0.0.1", "127.0.0.1:1".parse().unwrap()),
            Ok(())
        );
        assert_eq!(check_unmapped("::1", "[::1]:1".parse().unwrap()), Ok(()));
        assert_eq!(check_unmapped("203.0.113.7", far), Ok(()));
        assert_eq!(check_unmapped("203.0.113.7", far), Ok(()));
        set_guard(Guard::Strict);
        let other: SocketAddr = "203.0.113.8:80".parse().unwrap();
        assert_eq!(check_unmapped("far.example", other), Err(()));
        set_guard(Guard::Off);
        let said = take_announcements();
        assert_eq!(
            said,
            vec![
                "usocket: warning: 203.0.113.7:80 is not covered by --map; \
                 the script is talking to the real network",
                "usocket: refused far.example:80 (203.0.113.8): not covered by --map \
                 (--strict-map); OSError(113)"
            ]
        );
    }
}

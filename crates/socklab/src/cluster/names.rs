//! Names that cross the wire: NATS subjects, node names, global session ids, and the
//! checks on the `--cluster` URL and `--node` name.
//!
//! Subjects (all under [`PREFIX`]):
//!
//! | subject | who publishes | what |
//! |---|---|---|
//! | `socklab.presence` | every node, each second | name, instance, HTTP address, totals |
//! | `socklab.node.NAME.events` | node NAME | its live events but data (online, offline, link, listener) |
//! | `socklab.node.NAME.data` | node NAME, while a node watches | its data events (what devices sent and got) |
//! | `socklab.node.NAME.api` | any node (request) | an operator action or lookup on NAME's sessions |
//! | `socklab.node.NAME.ping` | a starting node (request) | "is NAME taken?" |
//! | `socklab.all.sessions` | any node (request, many replies) | session listings for scatter-gather |
//! | `socklab.all.metrics` | any node (request, many replies) | counters for scatter-gather |
//! | `socklab.all.broadcast` | any node (request, many replies) | data for every node's devices |
//! | `socklab.all.watch` | a node that starts showing events (request, many replies) | "send me your data events" |

/// The first token of every subject socklab uses.
pub const PREFIX: &str = "socklab";

/// Longest node name accepted.
pub const MAX_NODE_NAME: usize = 64;

/// Presence heartbeats of every node.
pub fn presence() -> String {
    format!("{PREFIX}.presence")
}

/// The live events of one node.
pub fn events(node: &str) -> String {
    format!("{PREFIX}.node.{node}.events")
}

/// The live events of every node (a subscription).
pub fn all_events() -> String {
    format!("{PREFIX}.node.*.events")
}

/// The data events of one node (published only while another node watches).
pub fn data(node: &str) -> String {
    format!("{PREFIX}.node.{node}.data")
}

/// The data events of every node (a subscription, held while this node watches).
pub fn all_data() -> String {
    format!("{PREFIX}.node.*.data")
}

/// Requests for one node's API.
pub fn api(node: &str) -> String {
    format!("{PREFIX}.node.{node}.api")
}

/// The name-clash probe of one node name.
pub fn ping(node: &str) -> String {
    format!("{PREFIX}.node.{node}.ping")
}

/// A scatter-gather request every node answers (`what`: sessions, metrics, broadcast).
pub fn all(what: &str) -> String {
    format!("{PREFIX}.all.{what}")
}

/// The node named in an events or data subject (`socklab.node.NAME.events`,
/// `socklab.node.NAME.data`).
pub fn node_of_events_subject(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix(PREFIX)?.strip_prefix(".node.")?;
    rest.strip_suffix(".events")
        .or_else(|| rest.strip_suffix(".data"))
}

/// Checks a node name: 1 to [`MAX_NODE_NAME`] letters, digits, `-` or `_` (it becomes a
/// NATS subject token and part of every global session id).
pub fn parse_node_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NODE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} is not a node name: use 1 to {MAX_NODE_NAME} letters, digits, '-' or '_'"
        ))
    }
}

/// Checks a `--cluster` value: one or more comma-separated `nats://HOST:PORT` or
/// `tls://HOST:PORT` URLs (user and password or a token may be given in the URL).
pub fn parse_cluster_url(url: &str) -> Result<String, String> {
    let help = "use nats://HOST:PORT (or tls://HOST:PORT; several separated by commas)";
    if url.trim().is_empty() {
        return Err(format!("empty NATS URL: {help}"));
    }
    for part in url.split(',') {
        let part = part.trim();
        let Some((scheme, rest)) = part.split_once("://") else {
            return Err(format!("{part:?} is not a NATS URL: {help}"));
        };
        if scheme != "nats" && scheme != "tls" {
            return Err(format!("{part:?}: unsupported scheme {scheme:?}: {help}"));
        }
        let hostport = rest
            .rsplit('@')
            .next()
            .unwrap_or(rest)
            .trim_end_matches('/');
        let Some((host, port)) = hostport.rsplit_once(':') else {
            return Err(format!("{part:?} has no port: {help}"));
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{part:?} has no valid HOST:PORT: {help}"));
        }
        part.parse::<async_nats::ServerAddr>()
            .map_err(|e| format!("{part:?}: {e}: {help}"))?;
    }
    Ok(url.split(',').map(str::trim).collect::<Vec<_>>().join(","))
}

/// The URL(s) with any password or token in them replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|part| {
            let Some((scheme, rest)) = part.split_once("://") else {
                return part.to_string();
            };
            let Some((userinfo, hostport)) = rest.rsplit_once('@') else {
                return part.to_string();
            };
            let shown = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_string(),
            };
            format!("{scheme}://{shown}@{hostport}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A stable, readable default node name: the host name and the HTTP port
/// (`myhost-8080`), with characters a node name cannot hold replaced by `-`.
pub fn default_node_name(http_port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "socklab".to_string());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NODE_NAME - 6)
        .collect();
    format!("{host}-{http_port}")
}

/// NATS header naming the node that scatters a request to every node: that node answers
/// for itself directly, so it leaves its own request alone (NATS hands a connection its
/// own messages too; answered, a broadcast would reach its devices twice).
pub const ORIGIN_HEADER: &str = "Socklab-Origin";

/// A global session id: `NODE:ID`.
pub fn global_id(node: &str, id: u64) -> String {
    format!("{node}:{id}")
}

/// A session id as given in a URL: `NODE:ID` (global) or a bare `ID` (this node's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    /// The node holding it; `None` for a bare id (the node that was asked).
    pub node: Option<String>,
    /// The id on that node.
    pub id: u64,
}

/// Parses a session id from a URL; the error says what was expected.
pub fn parse_session_ref(raw: &str) -> Result<SessionRef, String> {
    let bad = || format!("invalid session id {raw:?}: use NODE:ID or ID");
    match raw.rsplit_once(':') {
        Some((node, id)) => Ok(SessionRef {
            node: Some(parse_node_name(node).map_err(|_| bad())?),
            id: id.parse().map_err(|_| bad())?,
        }),
        None => Ok(SessionRef {
            node: None,
            id: raw.parse().map_err(|_| bad())?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords and tokens never show; users, hosts and ports do.
    #[test]
    fn redacts_secrets() {
        assert_eq!(
            redact_url("nats://u:p@h:1,tls://tok@h:2,nats://h:3"),
            "nats://u:***@h:1,tls://***@h:2,nats://h:3"
        );
    }

    /// Good URLs pass (and are normalised); bad ones say what is expected.
    #[test]
    fn cluster_urls() {
        assert_eq!(
            parse_cluster_url("nats://127.0.0.1:4222").unwrap(),
            "nats://127.0.0.1:4222"
        );
        assert!(parse_cluster_url("nats://a:1, tls://b:2").is_ok());
        assert!(parse_cluster_url("nats://user:pw@host:4222").is_ok());
        for bad in [
            "",
            "127.0.0.1:4222",
            "http://h:1",
            "nats://h",
            "nats://:1",
            "nats://h:0",
        ] {
            let e = parse_cluster_url(bad).unwrap_err();
            assert!(e.contains("nats://HOST:PORT"), "{bad}: {e}");
        }
    }

    /// Node names are subject-safe; global ids round-trip; bare ids stay local.
    #[test]
    fn names_and_ids() {
        assert!(parse_node_name("node-a_1").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(65)] {
            assert!(parse_node_name(bad).is_err(), "{bad}");
        }
        let r = parse_session_ref(&global_id("a", 17)).unwrap();
        assert_eq!((r.node.as_deref(), r.id), (Some("a"), 17));
        assert_eq!(parse_session_ref("5").unwrap().node, None);
        assert!(parse_session_ref("a:x").is_err());
        assert!(parse_session_ref("a.b:1").is_err());
        assert_eq!(node_of_events_subject(&events("n1")), Some("n1"));
        assert!(parse_node_name(&default_node_name(8080)).is_ok());
    }
}

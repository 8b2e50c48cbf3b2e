//! What a server runs with. The CLI ([`crate::cli`]) builds a [`Config`]; tests build one
//! with [`Config::for_test`] (everything on loopback port 0).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::framing::Framing;
use crate::link::LinkSpec;
use crate::rules::Rule;
use crate::schedule::ScheduleEntry;

/// The tutorial's port, used when no listener is given.
pub const DEFAULT_DEVICE_PORT: u16 = 34187;

/// Default dashboard/API port.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// Default UDP idle timeout.
pub const DEFAULT_UDP_IDLE: Duration = Duration::from_secs(120);

/// Default cap on the sessions of one UDP socket (`--udp-max-sessions`).
pub const DEFAULT_UDP_MAX_SESSIONS: usize = 20_000;

/// Default TCP keepalive idle time (`--tcp-keepalive`): a device whose link vanished is
/// found about twice this long after its last traffic.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Everything a server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// TCP device listeners, in order (their index is the listener id; TCP ones first).
    pub tcp: Vec<SocketAddr>,
    /// UDP device listeners, numbered after the TCP ones.
    pub udp: Vec<SocketAddr>,
    /// TLS device listeners, numbered after the UDP ones.
    pub tls: Vec<SocketAddr>,
    /// The TLS listeners' certificate and key files (`--cert`, `--key`); `None`: a
    /// self-signed certificate kept next to the database.
    pub tls_cert: Option<(PathBuf, PathBuf)>,
    /// Extra names (DNS names or IP addresses) the self-signed certificate must carry.
    pub tls_names: Vec<String>,
    /// Bound on one TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Dashboard and API address.
    pub http: SocketAddr,
    /// SQLite database file.
    pub db: PathBuf,
    /// Retention: delete oldest closed sessions while the database exceeds this.
    pub max_db_bytes: Option<u64>,
    /// `--label-from`: a session without a label takes the first capture group (or the
    /// whole match) of this regex in its device's first upload.
    pub label_from: Option<regex::bytes::Regex>,
    /// API token. `None` on a loopback `http` means no token; on any other address the
    /// server generates one (see [`crate::server::Server::bind`]).
    pub token: Option<String>,
    /// A UDP peer silent this long goes offline.
    pub udp_idle_timeout: Duration,
    /// Most sessions one UDP socket keeps; a new peer beyond it evicts the least recently
    /// heard ones (ended with `evicted`).
    pub udp_max_sessions: usize,
    /// TCP keepalive on device connections: probes start after this much silence, and a
    /// device that answers none of them ends with `keepalive_timeout` (`None`: off).
    pub tcp_keepalive: Option<Duration>,
    /// Initial echo mode of every listener.
    pub echo: bool,
    /// Initial auto-reply rules of every listener.
    pub auto_replies: Vec<Rule>,
    /// Initial framing of every listener's auto-reply rules.
    pub reply_framing: Framing,
    /// Read commands from stdin (the binary; never in tests).
    pub console_input: bool,
    /// Print every event on stdout (off with `--quiet`).
    pub console_live: bool,
    /// Where to write the bound addresses as JSON once listening.
    pub ready_file: Option<PathBuf>,
    /// Emulated links: `(None, spec)` for every listener, `(Some(id), spec)` for one; later
    /// entries win.
    pub links: Vec<(Option<u32>, LinkSpec)>,
    /// Seed for the links' jitter and loss (`None`: different every run).
    pub link_seed: Option<u64>,
    /// Fault schedule, timed from the start.
    pub link_schedule: Vec<ScheduleEntry>,
    /// Join a cluster over NATS (`--cluster`); `None`: a single node, as always.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Timeouts and caps of the HTTP side (header timeout, connection cap, ...).
    pub http_limits: crate::web::HttpLimits,
    /// Networks besides loopback that operators may make socklab connect to or bind at
    /// run time (`--allow-net`).
    pub allow_net: Vec<ipnet::IpNet>,
}

impl Config {
    /// The link listener `id` starts with.
    pub fn link_for(&self, id: u32) -> Option<LinkSpec> {
        self.links
            .iter()
            .rev()
            .find(|(l, _)| l.is_none_or(|l| l == id))
            .map(|(_, s)| s.clone())
    }
}

impl Config {
    /// Checks what flags cannot check alone: every listener id named by `--link ID:SPEC`
    /// and by the fault schedule exists. The error is a user-facing message.
    pub fn check(&self) -> Result<(), String> {
        let count = (self.tcp.len() + self.udp.len() + self.tls.len()) as u32;
        let listeners = || {
            let names: Vec<String> = (self.tcp.iter().map(|a| format!("tcp {a}")))
                .chain(self.udp.iter().map(|a| format!("udp {a}")))
                .chain(self.tls.iter().map(|a| format!("tls {a}")))
                .enumerate()
                .map(|(i, n)| format!("{i} = {n}"))
                .collect();
            names.join(", ")
        };
        for (id, spec) in &self.links {
            if let Some(id) = id.filter(|id| *id >= count) {
                return Err(format!(
                    "--link {id}:{spec}: there is no listener {id} (listeners: {})",
                    listeners()
                ));
            }
        }
        for entry in &self.link_schedule {
            if let Some(id) = entry.listener.filter(|id| *id >= count) {
                return Err(format!(
                    "--link-schedule: there is no listener {id} (listeners: {})",
                    listeners()
                ));
            }
        }
        Ok(())
    }

    /// A configuration for tests: one TCP and one UDP listener and the API, all on
    /// 127.0.0.1 port 0, no console, the database at `db`.
    pub fn for_test(db: &Path) -> Config {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Config {
            tcp: vec![any],
            udp: vec![any],
            tls: Vec::new(),
            tls_cert: None,
            tls_names: Vec::new(),
            tls_handshake_timeout: crate::listener::tls::DEFAULT_HANDSHAKE_TIMEOUT,
            http: any,
            db: db.to_path_buf(),
            max_db_bytes: None,
            label_from: None,
            token: None,
            udp_idle_timeout: DEFAULT_UDP_IDLE,
            udp_max_sessions: DEFAULT_UDP_MAX_SESSIONS,
            tcp_keepalive: Some(DEFAULT_TCP_KEEPALIVE),
            echo: false,
            auto_replies: Vec::new(),
            reply_framing: Framing::Read,
            console_input: false,
            console_live: false,
            ready_file: None,
            links: Vec::new(),
            link_seed: None,
            link_schedule: Vec::new(),
            cluster: None,
            http_limits: crate::web::HttpLimits::default(),
            allow_net: Vec::new(),
        }
    }
}

/// The default database: `socklab.db` in the user's data directory
/// (`~/.local/share/socklab` on Linux), or the current directory if there is none.
pub fn default_db_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "socklab")
        .map(|d| d.data_dir().join("socklab.db"))
        .unwrap_or_else(|| PathBuf::from("socklab.db"))
}

/// Parses a listener address: `IP:PORT`, `[V6]:PORT`, `localhost:PORT` (127.0.0.1), or a
/// bare `PORT` meaning loopback. Other host names are refused: a server binds addresses.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some((host, port)) = s.rsplit_once(':')
        && host.eq_ignore_ascii_case("localhost")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    s.parse().map_err(|_| {
        format!(
            "{s:?} is not an address: use IP:PORT, [IPV6]:PORT, localhost:PORT or PORT \
             (meaning 127.0.0.1)"
        )
    })
}

/// The address to put in a URL that a browser on this machine can open: a wildcard bind
/// (`0.0.0.0`, `::`) is reached through loopback.
pub fn browsable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare port binds loopback; IPv6 needs brackets; names are rejected clearly.
    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(parse_addr("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert_eq!(
            parse_addr("localhost:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(parse_addr("devicehost:9").unwrap_err().contains("IP:PORT"));
        assert!(parse_addr("localhost:x").is_err());
    }

    /// A wildcard bind is shown as loopback; a concrete address stays.
    #[test]
    fn browsable_urls() {
        let b = |s: &str| browsable(s.parse().unwrap()).to_string();
        assert_eq!(b("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(b("[::]:8080"), "[::1]:8080");
        assert_eq!(b("192.168.1.5:80"), "192.168.1.5:80");
    }

    /// `--link ID:SPEC` and schedule lines must name a listener that exists.
    #[test]
    fn link_ids_are_checked() {
        let mut cfg = Config::for_test(Path::new("x.db"));
        cfg.links = vec![(Some(1), LinkSpec::parse("gprs").unwrap())];
        assert!(cfg.check().is_ok());
        cfg.links = vec![(Some(3), LinkSpec::parse("gprs").unwrap())];
        let err = cfg.check().unwrap_err();
        assert!(err.contains("no listener 3"), "{err}");
        assert!(err.contains("0 = tcp 127.0.0.1:0"), "{err}");
    }
}

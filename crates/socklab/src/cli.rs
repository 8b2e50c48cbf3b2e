//! Command-line interface: `socklab [OPTIONS]` serves, `socklab export` dumps history,
//! `socklab connect` asks a running socklab to connect to a device ([`connect`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

pub mod connect;

use crate::config::{
    Config, DEFAULT_DEVICE_PORT, DEFAULT_HTTP_PORT, DEFAULT_TCP_KEEPALIVE,
    DEFAULT_UDP_MAX_SESSIONS, default_db_path, parse_addr,
};
use crate::framing::Framing;
use crate::link::LinkSpec;
use crate::rules::Rule;
use crate::schedule::{self, ScheduleEntry};
use crate::web::HttpLimits;

/// socklab: the TCP/UDP server your device scripts talk to. Watch devices come online,
/// read what they send, send data down, keep the history; console, HTTP API and dashboard.
#[derive(Debug, Parser)]
#[command(name = "socklab", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A subcommand; without one, socklab serves.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TCP device listener HOST:PORT (IPv6: `[::1]:PORT`) or PORT (= 127.0.0.1:PORT); repeatable.
    /// Without --tcp, --udp and --tls-tcp: TCP and UDP on 127.0.0.1:34187.
    #[arg(long = "tcp", value_name = "ADDR", value_parser = parse_addr)]
    pub tcp: Vec<std::net::SocketAddr>,

    /// UDP device listener (same forms as --tcp); repeatable.
    #[arg(long = "udp", value_name = "ADDR", value_parser = parse_addr)]
    pub udp: Vec<std::net::SocketAddr>,

    /// TLS device listener (same forms as --tcp); repeatable. Without --cert/--key socklab
    /// makes a self-signed certificate, keeps it next to the database and prints its path.
    #[arg(long = "tls-tcp", value_name = "ADDR", value_parser = parse_addr)]
    pub tls_tcp: Vec<std::net::SocketAddr>,

    /// Certificate chain (PEM, leaf first) for the TLS listeners.
    #[arg(long, value_name = "PEM", requires_all = ["key", "tls_tcp"])]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "PEM", requires_all = ["cert", "tls_tcp"])]
    pub key: Option<PathBuf>,

    /// Another name (DNS name or IP address) the self-signed certificate carries, such as
    /// the public host devices connect to; repeatable. It always names localhost,
    /// 127.0.0.1, ::1 and each --tls-tcp address.
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls_tcp",
          conflicts_with = "cert", value_parser = parse_tls_name)]
    pub tls_name: Vec<String>,

    /// Seconds a TLS client has to finish its handshake (fractions allowed).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    pub tls_handshake_timeout: f64,

    /// Dashboard and HTTP API address. A non-loopback address requires a token.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr,
          default_value_t = std::net::SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT)))]
    pub http: std::net::SocketAddr,

    /// SQLite database [default: socklab.db in the user data directory].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Delete the oldest closed sessions while the database is larger than this.
    #[arg(long, value_name = "MB")]
    pub max_db_mb: Option<u64>,

    /// Name each device from its first upload: the first capture group of this regex (or
    /// the whole match), e.g. 'IMEI:(\d{15})'. Operators can rename sessions later.
    #[arg(long, value_name = "REGEX", value_parser = parse_label_regex)]
    pub label_from: Option<regex::bytes::Regex>,

    /// Do not print live events on the console (commands still work).
    #[arg(long, short)]
    pub quiet: bool,

    /// Require this token on every API call and the dashboard (generated and printed
    /// when --http is not loopback and no token is given).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Seconds of silence after which a UDP peer goes offline (fractions allowed).
    #[arg(long, value_name = "SECS", default_value_t = 120.0, value_parser = parse_secs)]
    pub udp_idle_timeout: f64,

    /// Most sessions one UDP socket keeps (spoofed sources cannot grow it further); a new
    /// peer beyond it ends the least recently heard ones with end reason "evicted".
    #[arg(long, value_name = "N", default_value_t = DEFAULT_UDP_MAX_SESSIONS,
          value_parser = parse_positive)]
    pub udp_max_sessions: usize,

    /// TCP keepalive on device connections: seconds of silence before probing (0 = off).
    /// A device that answers no probe ends with end reason "keepalive_timeout".
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TCP_KEEPALIVE.as_secs_f64(),
          value_parser = parse_secs_or_off)]
    pub tcp_keepalive: f64,

    /// Start every listener in echo mode (send back what arrives).
    #[arg(long)]
    pub echo: bool,

    /// Auto-reply rule MATCHER=>REPLY, repeatable, first match wins. MATCHER is
    /// exact:TEXT (whole read, a trailing \r\n or \n ignored), hex:HEX (contains bytes) or
    /// regex:RE; REPLY is text:TEXT or hex:HEX. TEXT understands \r \n \t \0 \\ \xHH.
    /// Example: --auto-reply 'exact:1234567890=>text:0123456789'
    #[arg(long = "auto-reply", value_name = "RULE", value_parser = Rule::parse_flag)]
    pub auto_reply: Vec<Rule>,

    /// How the auto-reply rules see what a device sends: read (each TCP read or UDP
    /// datagram as it arrived, so a reply depends on how the network chunked the data),
    /// line (each line, its line end removed) or delim:TEXT (frames ending at TEXT, e.g.
    /// delim:\x1a). Echo and history always see each read as it arrived.
    #[arg(long = "reply-framing", value_name = "FRAMING", default_value = "read",
          value_parser = Framing::parse)]
    pub reply_framing: Framing,

    /// Write {"http", "tcp", "udp", "token"} as JSON to PATH once listening.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,

    /// Emulate a link: PROFILE[,param=value...] for every listener, or ID:PROFILE[,...]
    /// for listener ID (TCP listeners first, in order). Profiles: gprs, nbiot, ltem, cat1,
    /// perfect. Example: --link nbiot,nat_idle=270s. Repeatable; later flags win.
    #[arg(long = "link", value_name = "[ID:]SPEC", value_parser = parse_link)]
    pub link: Vec<(Option<u32>, LinkSpec)>,

    /// Seed for the links' jitter and loss: the same seed gives the same run.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Seconds an HTTP client has to send a complete request header (also how long an idle
    /// keep-alive connection stays open).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    pub http_header_timeout: f64,

    /// Most HTTP connections open at once (also capped at a quarter of the open-file limit,
    /// so devices keep the rest). At the cap a new connection replaces the one idle longest.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http_max_connections: u32,

    /// Fault schedule file: lines of 'TIME ACTION [listener=ID]' timed from the start,
    /// ACTION one of 'outage DURATION', 'reset', 'nat_drop', 'link SPEC|none'.
    #[arg(long, value_name = "FILE", value_parser = parse_schedule)]
    pub link_schedule: Option<ScheduleFile>,

    /// Join a cluster of socklab nodes through the NATS server at URL
    /// (nats://HOST:PORT or tls://HOST:PORT; several separated by commas).
    #[arg(long, value_name = "URL", value_parser = crate::cluster::names::parse_cluster_url)]
    pub cluster: Option<String>,

    /// This node's name in the cluster, unique in it [default: HOSTNAME-HTTPPORT].
    #[arg(long, value_name = "NAME", requires = "cluster",
          value_parser = crate::cluster::names::parse_node_name)]
    pub node: Option<String>,

    /// Print the other nodes' events on the console too.
    #[arg(long, requires = "cluster")]
    pub cluster_view: bool,

    /// Token for the NATS server.
    #[arg(long, value_name = "TOKEN", requires = "cluster")]
    pub cluster_token: Option<String>,

    /// NATS credentials file (JWT and NKey seed, as `nsc` writes it).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub cluster_creds: Option<PathBuf>,

    /// CA certificate (PEM) to trust for TLS to NATS; TLS is then required.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub cluster_ca: Option<PathBuf>,

    /// Let operators make socklab connect to devices (client mode) and add listeners on
    /// this network too, not only on loopback: CIDR (192.168.1.0/24), one address, or any.
    /// Repeatable.
    #[arg(long = "allow-net", value_name = "NET",
          value_parser = crate::hub::listeners::NetPolicy::parse_net)]
    pub allow_net: Vec<Vec<ipnet::IpNet>>,
}

/// A parsed `--link-schedule` file.
#[derive(Clone, Debug)]
pub struct ScheduleFile(pub Vec<ScheduleEntry>);

fn parse_schedule(path: &str) -> Result<ScheduleFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    schedule::parse(&text)
        .map(ScheduleFile)
        .map_err(|e| e.to_string())
}

fn parse_link(s: &str) -> Result<(Option<u32>, LinkSpec), String> {
    let (id, spec) = match s.split_once(':') {
        Some((id, spec)) => (
            Some(
                id.parse::<u32>()
                    .map_err(|_| format!("{id:?} is not a listener id"))?,
            ),
            spec,
        ),
        None => (None, s),
    };
    LinkSpec::parse(spec).map(|l| (id, l)).map_err(|e| e.0)
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write history to stdout: sessions by id, --all, or a time range, as JSON lines, CSV,
    /// raw bytes of one direction, or a pcapng capture that Wireshark and tshark open.
    Export {
        /// Session ids (none: every session, with --all or a time range).
        sessions: Vec<u64>,
        /// Every session.
        #[arg(long)]
        all: bool,
        /// From this time: RFC 3339 (2026-12-01T10:00:00Z) or Unix milliseconds.
        #[arg(long, value_name = "TIME", value_parser = crate::export::parse_time)]
        since: Option<i64>,
        /// Before this time (same forms as --since).
        #[arg(long, value_name = "TIME", value_parser = crate::export::parse_time)]
        until: Option<i64>,
        /// Only this direction (raw: the direction written, default up).
        #[arg(long, value_enum)]
        direction: Option<ExportDirection>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// SQLite database [default: socklab.db in the user data directory].
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Ask a running socklab to connect to a device that is the server (client mode): the
    /// connection becomes a session like any other.
    Connect(connect::ConnectArgs),
}

/// Export formats.
pub use crate::export::Format as ExportFormat;

/// A direction on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportDirection {
    /// Device to server.
    Up,
    /// Server to device.
    Down,
}

fn parse_tls_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && (s.parse::<std::net::IpAddr>().is_ok()
            || s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*')));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a DNS name or an IP address"))
    }
}

fn parse_label_regex(s: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::RegexBuilder::new(s)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regex: {e}"))
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

fn parse_secs_or_off(s: &str) -> Result<f64, String> {
    match s {
        "0" | "off" => Ok(0.0),
        _ => parse_secs(s),
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

impl Cli {
    /// The server configuration these flags describe.
    pub fn config(&self) -> Config {
        let (mut tcp, mut udp) = (self.tcp.clone(), self.udp.clone());
        if tcp.is_empty() && udp.is_empty() && self.tls_tcp.is_empty() {
            let default = std::net::SocketAddr::from(([127, 0, 0, 1], DEFAULT_DEVICE_PORT));
            tcp.push(default);
            udp.push(default);
        }
        Config {
            tcp,
            udp,
            tls: self.tls_tcp.clone(),
            tls_cert: self.cert.clone().zip(self.key.clone()),
            tls_names: self.tls_name.clone(),
            tls_handshake_timeout: Duration::from_secs_f64(self.tls_handshake_timeout),
            http: self.http,
            db: self.db.clone().unwrap_or_else(default_db_path),
            max_db_bytes: self.max_db_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
            label_from: self.label_from.clone(),
            token: self.token.clone(),
            udp_idle_timeout: Duration::from_secs_f64(self.udp_idle_timeout),
            udp_max_sessions: self.udp_max_sessions,
            tcp_keepalive: (self.tcp_keepalive > 0.0)
                .then(|| Duration::from_secs_f64(self.tcp_keepalive.max(1.0))),
            echo: self.echo,
            auto_replies: self.auto_reply.clone(),
            reply_framing: self.reply_framing.clone(),
            console_input: true,
            console_live: !self.quiet,
            ready_file: self.ready_file.clone(),
            links: self.link.clone(),
            link_seed: self.seed,
            link_schedule: self
                .link_schedule
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or_default(),
            cluster: self
                .cluster
                .as_ref()
                .map(|url| crate::cluster::ClusterConfig {
                    url: url.clone(),
                    node: self.node.clone(),
                    view: self.cluster_view,
                    token: self.cluster_token.clone().filter(|t| !t.is_empty()),
                    creds: self.cluster_creds.clone(),
                    ca: self.cluster_ca.clone(),
                }),
            http_limits: HttpLimits {
                header_timeout: Duration::from_secs_f64(self.http_header_timeout),
                max_connections: self.http_max_connections as usize,
                ..HttpLimits::default()
            },
            allow_net: self.allow_net.iter().flatten().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No listener flags means the tutorial's port on loopback for both protocols.
    #[test]
    fn defaults_to_tutorial_port() {
        let cfg = Cli::parse_from(["socklab"]).config();
        assert_eq!(cfg.tcp, vec!["127.0.0.1:34187".parse().unwrap()]);
        assert_eq!(cfg.udp, cfg.tcp);
        assert_eq!(cfg.http, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(cfg.udp_idle_timeout, Duration::from_secs(120));
    }

    /// Repeated flags, rules and the export subcommand parse; bad values are errors.
    #[test]
    fn flags_parse() {
        let cli = Cli::parse_from([
            "socklab",
            "--tcp",
            "9000",
            "--tcp",
            "[::1]:9001",
            "--auto-reply",
            "exact:a=>text:b",
            "--udp-idle-timeout",
            "0.5",
            "--max-db-mb",
            "2",
        ]);
        let cfg = cli.config();
        assert_eq!(cfg.tcp.len(), 2);
        assert!(cfg.udp.is_empty());
        assert_eq!(cfg.auto_replies.len(), 1);
        assert_eq!(cfg.max_db_bytes, Some(2 * 1024 * 1024));
        let cli = Cli::parse_from(["socklab", "export", "7", "8", "--format", "pcapng"]);
        assert!(matches!(
            cli.command,
            Some(Command::Export { ref sessions, format: ExportFormat::Pcapng, .. })
                if sessions == &[7, 8]
        ));
        let cli = Cli::parse_from([
            "socklab",
            "export",
            "--all",
            "--since",
            "2026-12-01T10:00:00Z",
        ]);
        assert!(matches!(
            cli.command,
            Some(Command::Export {
                all: true,
                since: Some(1_796_119_200_000),
                ..
            })
        ));
        assert!(Cli::try_parse_from(["socklab", "--auto-reply", "x"]).is_err());
        assert!(Cli::try_parse_from(["socklab", "--udp-idle-timeout", "-1"]).is_err());
        assert!(Cli::try_parse_from(["socklab", "--tcp", "nohost:1"]).is_err());
        let cfg = Cli::parse_from(["socklab", "--link", "nbiot", "--link", "1:gprs,nat_idle=5s"])
            .config();
        assert_eq!(cfg.link_for(0).unwrap().profile, "nbiot");
        assert_eq!(cfg.link_for(1).unwrap().to_string(), "gprs,nat_idle=5s");
        assert!(Cli::try_parse_from(["socklab", "--link", "wifi"]).is_err());
        let cfg = Cli::parse_from([
            "socklab",
            "--http-header-timeout",
            "2.5",
            "--http-max-connections",
            "8",
        ])
        .config();
        assert_eq!(cfg.http_limits.header_timeout, Duration::from_millis(2500));
        assert_eq!(cfg.http_limits.max_connections, 8);
        assert!(Cli::try_parse_from(["socklab", "--http-max-connections", "0"]).is_err());
        assert!(Cli::try_parse_from(["socklab", "--link", "x:gprs"]).is_err());
    }

    /// TLS flags: listeners after UDP, --cert needs --key and a TLS listener, names checked.
    #[test]
    fn tls_flags() {
        let cfg = Cli::parse_from(["socklab", "--tls-tcp", "8883"]).config();
        assert_eq!(cfg.tls, vec!["127.0.0.1:8883".parse().unwrap()]);
        assert!(cfg.tcp.is_empty() && cfg.udp.is_empty() && cfg.tls_cert.is_none());
        let cfg = Cli::parse_from([
            "socklab",
            "--tcp",
            "1",
            "--tls-tcp",
            "2",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
        ])
        .config();
        assert_eq!(
            cfg.tls_cert,
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
        assert!(Cli::try_parse_from(["socklab", "--tls-tcp", "2", "--cert", "c.pem"]).is_err());
        assert!(Cli::try_parse_from(["socklab", "--cert", "c", "--key", "k"]).is_err());
        let cfg =
            Cli::parse_from(["socklab", "--tls-tcp", "2", "--tls-name", "dev.example"]).config();
        assert_eq!(cfg.tls_names, ["dev.example"]);
        assert!(Cli::try_parse_from(["socklab", "--tls-tcp", "2", "--tls-name", "a b"]).is_err());
        let mut cfg = Cli::parse_from(["socklab", "--udp", "1", "--tls-tcp", "2"]).config();
        cfg.links = vec![(Some(1), crate::link::LinkSpec::parse("gprs").unwrap())];
        assert!(cfg.check().is_ok());
        cfg.links[0].0 = Some(2);
        assert!(cfg.check().unwrap_err().contains("1 = tls 127.0.0.1:2"));
    }

    /// Cluster flags: a checked URL and name; without --cluster nothing cluster-ish.
    #[test]
    fn cluster_flags() {
        assert!(Cli::parse_from(["socklab"]).config().cluster.is_none());
        let cfg = Cli::parse_from(["socklab", "--cluster", "nats://127.0.0.1:4222"]).config();
        assert_eq!(cfg.cluster.unwrap().node, None);
        let cfg = Cli::parse_from([
            "socklab",
            "--cluster",
            "nats://h:1",
            "--node",
            "a",
            "--cluster-view",
        ])
        .config();
        assert_eq!(cfg.cluster.as_ref().unwrap().node.as_deref(), Some("a"));
        assert!(cfg.cluster.unwrap().view);
        assert!(Cli::try_parse_from(["socklab", "--cluster", "h:4222"]).is_err());
        assert!(
            Cli::try_parse_from(["socklab", "--cluster", "nats://h:1", "--node", "a.b"]).is_err()
        );
        assert!(Cli::try_parse_from(["socklab", "--node", "a"]).is_err());
    }
}

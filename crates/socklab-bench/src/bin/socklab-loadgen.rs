//! `socklab-loadgen`: the devices of socklab's benchmarks.
//!
//! * `idle`: open N idle connections over several 127.x source addresses, print
//!   `{"phase": "connected"}`, hold them until stdin closes (or `--max-hold-secs`), close.
//! * `ingest`: N devices send M-byte messages as fast as they can for D seconds.
//! * `probe`: time socklab's API (list sessions, send) at a fixed pace.
//!
//! Results are JSON lines on stdout (see `socklab_bench::report`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use socklab_bench::report::emit;
use socklab_bench::sources::{parse_loopback_target, parse_sources};
use socklab_bench::{idle, ingest, probe, sys};

/// Load generator for socklab's benchmarks (loopback only).
#[derive(Debug, Parser)]
#[command(name = "socklab-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Open idle connections, hold them until stdin closes, then close them.
    Idle {
        #[command(flatten)]
        conn: ConnectArgs,
        /// Connections to open.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        connections: u64,
        /// Close the connections after this long even if stdin stays open.
        #[arg(long, default_value_t = 600)]
        max_hold_secs: u64,
    },
    /// Devices that send fixed-size messages as fast as they can.
    Ingest {
        #[command(flatten)]
        conn: ConnectArgs,
        /// Devices (one connection each).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        devices: u64,
        /// Seconds the devices keep sending.
        #[arg(long, default_value_t = 10.0, value_parser = parse_secs)]
        secs: f64,
        /// Bytes per message.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
        msg_bytes: u64,
        /// After sending stops: the longest to wait for the server to take every byte.
        #[arg(long, default_value_t = 120.0, value_parser = parse_secs)]
        drain_timeout_secs: f64,
        /// Leave Nagle's algorithm on (default: TCP_NODELAY, one segment per message).
        #[arg(long)]
        nagle: bool,
    },
    /// Time the HTTP API while something else loads the server.
    Probe {
        /// socklab's HTTP address.
        #[arg(long, value_parser = parse_loopback_target)]
        http: SocketAddr,
        /// socklab's TCP device listener (the probe's own device connects there).
        #[arg(long, value_parser = parse_loopback_target)]
        device: SocketAddr,
        /// Seconds to keep probing.
        #[arg(long, default_value_t = 10.0, value_parser = parse_secs)]
        secs: f64,
        /// Milliseconds between rounds of requests.
        #[arg(long, default_value_t = 10)]
        interval_ms: u64,
        /// Upper bound on rounds.
        #[arg(long, default_value_t = 100_000)]
        max_rounds: u64,
        /// Per-request timeout in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        request_timeout_ms: u64,
    },
}

/// Where and how to connect.
#[derive(Debug, Args)]
struct ConnectArgs {
    /// Server ADDR:PORT (loopback).
    #[arg(long, value_parser = parse_loopback_target)]
    target: SocketAddr,
    /// Source addresses: comma-separated list of addresses and A.B.C.X-A.B.C.Y ranges.
    #[arg(long, default_value = "127.0.0.2-127.0.0.9", value_parser = parse_sources)]
    sources: std::vec::Vec<Ipv4Addr>,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Per-connection connect timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    connect_timeout_ms: u64,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

/// Raises the descriptor limit for `connections` plus slack and reports it.
fn limits(connections: u64) {
    match sys::raise_nofile_limit(connections + 256) {
        Ok((soft, hard)) => emit(&json!({
            "phase": "limits",
            "nofile_soft": soft,
            "nofile_hard": hard,
            "enough": soft >= connections + 64,
        })),
        Err(e) => emit(&json!({"phase": "limits", "error": e.to_string()})),
    }
}

/// Completes when stdin reaches end of file (the orchestrator closed it or died).
fn stdin_closed() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread: a blocked read must not hold up the runtime's shutdown.
    let spawned = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = tx.send(());
        });
    if let Err(e) = spawned {
        eprintln!("socklab-loadgen: cannot watch stdin ({e}); holding until --max-hold-secs");
    }
    rx
}

#[tokio::main]
async fn main() {
    match Cli::parse().mode {
        Mode::Idle {
            conn,
            connections,
            max_hold_secs,
        } => {
            limits(connections);
            let closed = stdin_closed();
            let opts = idle::IdleOptions {
                target: conn.target,
                connections: connections as usize,
                sources: conn.sources,
                concurrency: conn.concurrency,
                connect_timeout: Duration::from_millis(conn.connect_timeout_ms),
                max_hold: Duration::from_secs(max_hold_secs),
            };
            idle::run(opts, async {
                // An error means the watcher thread could not start: wait for max_hold.
                if closed.await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
            .await;
        }
        Mode::Ingest {
            conn,
            devices,
            secs,
            msg_bytes,
            drain_timeout_secs,
            nagle,
        } => {
            limits(devices);
            ingest::run(ingest::IngestOptions {
                target: conn.target,
                devices: devices as usize,
                duration: Duration::from_secs_f64(secs),
                msg_bytes: msg_bytes as usize,
                sources: conn.sources,
                concurrency: conn.concurrency,
                connect_timeout: Duration::from_millis(conn.connect_timeout_ms),
                drain_timeout: Duration::from_secs_f64(drain_timeout_secs),
                nagle,
            })
            .await;
        }
        Mode::Probe {
            http,
            device,
            secs,
            interval_ms,
            max_rounds,
            request_timeout_ms,
        } => {
            probe::run(probe::ProbeOptions {
                http,
                device,
                duration: Duration::from_secs_f64(secs),
                interval: Duration::from_millis(interval_ms),
                max_rounds,
                request_timeout: Duration::from_millis(request_timeout_ms),
            })
            .await;
        }
    }
}

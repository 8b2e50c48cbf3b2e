//! `bare-echo`: the baseline for socklab's benchmarks — a minimal tokio TCP echo server with
//! no sessions, no events and no storage.
//!
//! It reads the way socklab does (wait until readable, then read into a buffer that exists
//! only for that read), so an idle connection costs what tokio and the kernel need and
//! nothing more; the difference to socklab is socklab's own per-session state.
//!
//! Control: prints `{"phase": "ready", "addr": ...}` once listening; a `stats` line on stdin
//! prints `{"phase": "stats", ...}`; end of stdin, SIGINT, SIGTERM or `--max-secs` print the
//! final stats and exit.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use socklab_bench::report::emit;
use socklab_bench::sources::parse_loopback_target;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Largest single read, the same as socklab's.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Accept backlog, the same as socklab's device listeners (the kernel caps it at
/// `net.core.somaxconn`). tokio's default (128 here) overflows when hundreds of devices
/// connect at once, and every overflow costs the device a one-second SYN retransmit.
const BACKLOG: u32 = 65_535;

/// Minimal tokio TCP echo server (loopback only), the benchmark baseline.
#[derive(Debug, Parser)]
#[command(name = "bare-echo", version)]
struct Cli {
    /// Listen address (loopback).
    #[arg(long, default_value = "127.0.0.1:0", value_parser = parse_loopback_target)]
    listen: SocketAddr,
    /// Exit after this many seconds whatever happens.
    #[arg(long, default_value_t = 3600)]
    max_secs: u64,
    /// Read and count but send nothing back: the cheapest possible server, a stricter
    /// baseline than echo (no write syscalls, and the client reads nothing).
    #[arg(long)]
    discard: bool,
}

/// Process-wide counters.
#[derive(Debug, Default)]
struct Totals {
    accepted: AtomicU64,
    closed: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    /// Wall-clock time of the latest accept, Unix milliseconds: the benchmark computes the
    /// accept rate from it, as it does from socklab's session start times.
    last_accept_ms: AtomicU64,
}

impl Totals {
    fn report(&self, phase: &str) {
        let accepted = self.accepted.load(Ordering::Relaxed);
        let closed = self.closed.load(Ordering::Relaxed);
        emit(&json!({
            "phase": phase,
            "accepted": accepted,
            "online": accepted.saturating_sub(closed),
            "bytes_received": self.bytes_received.load(Ordering::Relaxed),
            "bytes_sent": self.bytes_sent.load(Ordering::Relaxed),
            "last_accept_ms": self.last_accept_ms.load(Ordering::Relaxed),
        }));
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let cli = Cli::parse();
    let (soft, hard) = socklab_bench::sys::raise_nofile_limit(u64::MAX >> 1)?;
    let socket = if cli.listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(cli.listen)?;
    let listener = socket.listen(BACKLOG)?;
    let totals = Arc::new(Totals::default());
    emit(&json!({
        "phase": "ready",
        "addr": listener.local_addr()?.to_string(),
        "nofile_soft": soft,
        "nofile_hard": hard,
    }));
    tokio::spawn(accept_loop(listener, totals.clone(), !cli.discard));
    let mut commands = stdin_lines();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let deadline = tokio::time::sleep(Duration::from_secs(cli.max_secs));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            line = commands.recv() => match line.as_deref() {
                Some("stats") => totals.report("stats"),
                Some(_) => {}
                None => break,
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = &mut deadline => break,
        }
    }
    totals.report("final");
    // Connection tasks die with the runtime; the process is about to exit anyway.
    std::process::exit(0);
}

/// Lines from stdin, read on a plain thread; the channel closes at end of file.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line.trim().to_string()).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("bare-echo: no stdin reader ({e}); stopping on a signal or --max-secs");
    }
    rx
}

async fn accept_loop(listener: TcpListener, totals: Arc<Totals>, echo_back: bool) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                totals.accepted.fetch_add(1, Ordering::Relaxed);
                totals
                    .last_accept_ms
                    .fetch_max(unix_ms(), Ordering::Relaxed);
                tokio::spawn(echo(stream, totals.clone(), echo_back));
            }
            Err(e) => {
                // EMFILE and friends: back off rather than spin.
                eprintln!("bare-echo: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Echoes (or with `echo_back` false, only reads) one connection until the peer closes or
/// an error.
async fn echo(mut stream: TcpStream, totals: Arc<Totals>, echo_back: bool) {
    let _ = stream.set_nodelay(true);
    loop {
        if stream.readable().await.is_err() {
            break;
        }
        let mut buf = Vec::with_capacity(READ_CHUNK_BYTES);
        match stream.try_read_buf(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                totals.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                if !echo_back {
                    continue;
                }
                if stream.write_all(&buf).await.is_err() {
                    break;
                }
                totals.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    totals.closed.fetch_add(1, Ordering::Relaxed);
}

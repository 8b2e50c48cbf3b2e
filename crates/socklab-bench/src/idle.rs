//! `idle` mode: open many device connections that send nothing, hold them, close them.
//!
//! This is the scale benchmark's client: what it measures is the server's memory per idle
//! connection and how fast the server accepts them, so the client stays as simple as
//! possible (connect, hold, drop).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::report::{ErrorCounts, emit};
use crate::sources::{connect_from, source_for};

/// What `idle` does.
#[derive(Clone, Debug)]
pub struct IdleOptions {
    /// Server address.
    pub target: SocketAddr,
    /// Connections to open.
    pub connections: usize,
    /// Source addresses, used round-robin.
    pub sources: Vec<Ipv4Addr>,
    /// Connection attempts in flight at once (keeps the listen backlog from overflowing,
    /// which would turn into slow SYN retransmits instead of a measured accept rate).
    pub concurrency: usize,
    /// Per-connection connect timeout.
    pub connect_timeout: Duration,
    /// The longest the connections are held before closing them anyway.
    pub max_hold: Duration,
}

/// Opens the connections, prints `{"phase": "connected", ...}`, holds them until `release`
/// completes or `max_hold` passes, closes them all and prints `{"phase": "closed", ...}`.
pub async fn run(opts: IdleOptions, release: impl Future<Output = ()>) {
    let start = Instant::now();
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..opts.connections {
        let permits = permits.clone();
        let source = source_for(&opts.sources, i);
        let (target, timeout) = (opts.target, opts.connect_timeout);
        tasks.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permits.acquire_owned().await;
            connect_from(source, target, timeout).await
        });
    }
    let mut streams: Vec<TcpStream> = Vec::with_capacity(opts.connections);
    let mut errors = ErrorCounts::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(e)) => errors.add(&e),
            Err(e) => errors.add(&std::io::Error::other(e)),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    emit(&json!({
        "phase": "connected",
        "connected": streams.len(),
        "failed": errors.total(),
        "errors": errors.to_json(),
        "elapsed_s": elapsed,
        "connect_rate_per_s": streams.len() as f64 / elapsed.max(1e-9),
    }));
    let held = Instant::now();
    tokio::select! {
        _ = release => {}
        _ = tokio::time::sleep(opts.max_hold) => {}
    }
    let count = streams.len();
    drop(streams);
    emit(&json!({
        "phase": "closed",
        "closed": count,
        "held_s": held.elapsed().as_secs_f64(),
    }));
}

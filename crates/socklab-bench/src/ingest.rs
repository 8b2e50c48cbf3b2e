//! `ingest` mode: N devices each write fixed-size messages as fast as they can.
//!
//! Each device is one connection with a writer task and a reader task. The writer sends
//! whole messages back to back until the send window closes, finishes the message it is in,
//! then half-closes (FIN). The reader counts what comes back (the echo server's echo) and
//! waits for the server to close. So "done" means the server has consumed every byte sent,
//! which is what makes a slow server's backlog in the kernel buffers count against it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::report::{ErrorCounts, emit};
use crate::sources::{connect_from, source_for};

/// Bytes the reader asks for at once.
const READ_BUF_BYTES: usize = 16 * 1024;

/// What `ingest` does.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Server address.
    pub target: SocketAddr,
    /// Devices (connections).
    pub devices: usize,
    /// How long the devices keep sending.
    pub duration: Duration,
    /// Size of each message.
    pub msg_bytes: usize,
    /// Source addresses, used round-robin.
    pub sources: Vec<Ipv4Addr>,
    /// Connection attempts in flight at once.
    pub concurrency: usize,
    /// Per-connection connect timeout.
    pub connect_timeout: Duration,
    /// After the window: the longest to wait for the server to consume what was sent and
    /// close; devices still open then are dropped and counted as `undrained`.
    pub drain_timeout: Duration,
    /// Leave Nagle's algorithm on, so the kernel may merge small writes into one segment
    /// (what a device with a default socket does). Off by default: one segment per message
    /// is the harder case for the server.
    pub nagle: bool,
}

/// Per-device counters, updated as data moves so an aborted task still counts.
#[derive(Debug, Default)]
struct Counters {
    bytes_sent: AtomicU64,
    msgs_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// Runs the benchmark and prints `connected`, `sending`, `stopped` and `done` phase lines.
pub async fn run(opts: IngestOptions) {
    let (streams, errors, connect_s) = connect_all(&opts).await;
    emit(&json!({
        "phase": "connected",
        "connected": streams.len(),
        "failed": errors.total(),
        "errors": errors.to_json(),
        "elapsed_s": connect_s,
    }));
    let message = message(opts.msg_bytes);
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let mut tasks = JoinSet::new();
    let connected = streams.len();
    let start = Instant::now();
    emit(&json!({"phase": "sending", "devices": connected}));
    for stream in streams {
        let (mut rd, mut wr) = stream.into_split();
        let (stop, sent, message) = (stop.clone(), counters.clone(), message.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if send_one(&mut wr, &message, &sent).await.is_err() {
                    return;
                }
            }
            // FIN: the server reads everything up to here, then closes its side.
            let _ = wr.shutdown().await;
        });
        let counters = counters.clone();
        tasks.spawn(async move {
            let mut buf = vec![0u8; READ_BUF_BYTES];
            while let Ok(n @ 1..) = rd.read(&mut buf).await {
                counters
                    .bytes_received
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        });
    }
    tokio::time::sleep(opts.duration).await;
    stop.store(true, Ordering::Relaxed);
    let window_s = start.elapsed().as_secs_f64();
    emit(&json!({
        "phase": "stopped",
        "window_s": window_s,
        "bytes_sent": counters.bytes_sent.load(Ordering::Relaxed),
    }));
    let drained = tokio::time::timeout(opts.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    let undrained = if drained { 0 } else { tasks.len() };
    tasks.shutdown().await;
    let bytes_sent = counters.bytes_sent.load(Ordering::Relaxed);
    emit(&json!({
        "phase": "done",
        "devices": opts.devices,
        "connected": connected,
        "failed": errors.total(),
        "msg_bytes": opts.msg_bytes,
        "bytes_sent": bytes_sent,
        "msgs_sent": counters.msgs_sent.load(Ordering::Relaxed),
        "bytes_received": counters.bytes_received.load(Ordering::Relaxed),
        "window_s": window_s,
        "done_s": start.elapsed().as_secs_f64(),
        "undrained_tasks": undrained,
        "nagle": opts.nagle,
    }));
}

/// One device message: printable, newline-terminated, like a device's text line.
fn message(len: usize) -> Arc<[u8]> {
    let mut m: Vec<u8> = (0..len).map(|i| b'0' + (i % 10) as u8).collect();
    if let Some(last) = m.last_mut() {
        *last = b'\n';
    }
    m.into()
}

/// Writes one whole message, counting bytes as they go (so a task aborted in the middle
/// of a message has still counted exactly what the kernel took).
async fn send_one(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    message: &[u8],
    counters: &Counters,
) -> std::io::Result<()> {
    let mut off = 0;
    while off < message.len() {
        let n = wr.write(&message[off..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        off += n;
        counters.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
    }
    counters.msgs_sent.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn connect_all(opts: &IngestOptions) -> (Vec<TcpStream>, ErrorCounts, f64) {
    let start = Instant::now();
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..opts.devices {
        let permits = permits.clone();
        let source = source_for(&opts.sources, i);
        let (target, timeout, nagle) = (opts.target, opts.connect_timeout, opts.nagle);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let stream = connect_from(source, target, timeout).await?;
            stream.set_nodelay(!nagle)?;
            Ok::<_, std::io::Error>(stream)
        });
    }
    let mut streams = Vec::with_capacity(opts.devices);
    let mut errors = ErrorCounts::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(s)) => streams.push(s),
            Ok(Err(e)) => errors.add(&e),
            Err(e) => errors.add(&std::io::Error::other(e)),
        }
    }
    (streams, errors, start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages have the asked size and end in a newline.
    #[test]
    fn message_shape() {
        let m = message(64);
        assert_eq!(m.len(), 64);
        assert_eq!(m[63], b'\n');
        assert_eq!(&m[..3], b"012");
    }
}

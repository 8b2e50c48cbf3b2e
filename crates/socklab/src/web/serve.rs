//! The HTTP server loop: the router over hyper's HTTP/1.1, with limits that anyone who can
//! reach the port cannot exhaust, token or not (a request that never finishes its header
//! never reaches the token check).
//!
//! * Header timeout: a connection must deliver each request header, the first and every
//!   keep-alive one, within [`HttpLimits::header_timeout`], or it is closed.
//! * Connection cap: at most [`HttpLimits::max_connections`] HTTP connections, and never
//!   more than a quarter of the process's descriptor limit (the descriptor reserve: the
//!   rest stays for devices, the listeners and the database). At the cap, a new connection
//!   takes the place of the one idle longest (waiting for a request header); when every
//!   connection is busy it is answered 503 and closed. So slow or idle clients can delay a
//!   request by at most one eviction, and device accepts never run out of descriptors
//!   because of HTTP.
//! * Shutdown: open connections get [`HttpLimits::shutdown_grace`] to finish, then they are
//!   dropped, so a stalled browser cannot hold up a graceful shutdown.
//!
//! Each request carries a [`ConnHandle`] so a handler can end its own connection (the event
//! stream cuts off a subscriber that stopped reading).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::shutdown::Shutdown;

/// Timeouts and caps of the HTTP side (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Time a client has to send a complete request header (also the keep-alive idle time).
    pub header_timeout: Duration,
    /// Most HTTP connections open at once (further capped by the descriptor reserve).
    pub max_connections: usize,
    /// After shutdown, how long open connections may take to finish before being dropped.
    pub shutdown_grace: Duration,
    /// How long a request waits for the database before answering 503 (disk full, or
    /// another process holding the database).
    pub store_timeout: Duration,
    /// An event stream whose client has taken nothing for this long is cut off.
    pub sse_stall_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(2),
            store_timeout: Duration::from_secs(5),
            sse_stall_timeout: Duration::from_secs(15),
        }
    }
}

/// Counters of the HTTP side, shown in `/metrics`.
#[derive(Debug, Default)]
pub struct WebStats {
    /// HTTP connections open now.
    pub connections: AtomicUsize,
    /// Idle connections closed to make room at the cap.
    pub evicted: AtomicU64,
    /// Connections answered 503 at the cap because none was idle.
    pub refused: AtomicU64,
    /// Event streams open now.
    pub sse_clients: AtomicUsize,
    /// Event streams cut off because their client fell behind or stopped reading.
    pub sse_cut_off: AtomicU64,
}

/// Lets a handler end the connection its request came on. Present in every request served
/// by [`serve`] (absent when a test drives the router with `oneshot`).
#[derive(Clone, Debug)]
pub struct ConnHandle {
    kill: Arc<Notify>,
}

impl ConnHandle {
    /// Drops the connection at once, without a response or the rest of one.
    pub fn close(&self) {
        self.kill.notify_one();
    }
}

/// One open connection, as the eviction policy sees it.
#[derive(Debug)]
struct Slot {
    kill: Arc<Notify>,
    /// Requests being answered or streamed; 0 means waiting for a request header.
    busy: AtomicUsize,
    /// When the connection last became idle, in ms since the server started.
    idle_since_ms: AtomicU64,
    /// Already chosen for eviction (so it is not chosen twice).
    evicted: AtomicBool,
}

/// The open connections.
#[derive(Debug)]
struct Registry {
    started: Instant,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the connection idle longest; false when every connection is busy.
    fn evict_oldest_idle(&self) -> bool {
        let slots = self.slots();
        let victim = slots
            .values()
            .filter(|s| s.busy.load(Ordering::Acquire) == 0 && !s.evicted.load(Ordering::Acquire))
            .min_by_key(|s| s.idle_since_ms.load(Ordering::Acquire));
        match victim {
            Some(slot) => {
                slot.evicted.store(true, Ordering::Release);
                slot.kill.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Marks a connection busy from the moment its request header is complete until the
/// response body has been sent (or dropped).
struct BusyGuard {
    slot: Arc<Slot>,
    registry: Arc<Registry>,
}

impl BusyGuard {
    fn new(slot: Arc<Slot>, registry: Arc<Registry>) -> BusyGuard {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard { slot, registry }
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.slot
            .idle_since_ms
            .store(self.registry.now_ms(), Ordering::Release);
        self.slot.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection marked busy while it is being sent.
struct TrackedBody {
    inner: Body,
    _busy: BusyGuard,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection cap in force: `requested`, but at most a quarter of the open-file limit.
pub fn connection_cap(requested: usize) -> usize {
    requested.clamp(1, (open_file_limit() / 4).max(4))
}

#[cfg(unix)]
fn open_file_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    }
}

#[cfg(not(unix))]
fn open_file_limit() -> usize {
    usize::MAX
}

/// Serves `router` on `listener` within `limits` until `shutdown`, then lets open
/// connections finish for the shutdown grace and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stats: Arc<WebStats>,
    mut shutdown: Shutdown,
) -> io::Result<()> {
    let cap = connection_cap(limits.max_connections);
    if cap < limits.max_connections {
        tracing::info!(
            "http: at most {cap} connections (a quarter of the open-file limit; the rest is kept for devices)"
        );
    }
    let permits = Arc::new(Semaphore::new(cap));
    let registry = Arc::new(Registry {
        started: Instant::now(),
        slots: Mutex::new(HashMap::new()),
    });
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a
                    // little instead of spinning, and keep serving.
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if registry.evict_oldest_idle() => {
                stats.evicted.fetch_add(1, Ordering::Relaxed);
                // The evicted connection's task ends at once and gives its permit back.
                match tokio::time::timeout(Duration::from_secs(1), permits.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        refuse(stream, &stats);
                        continue;
                    }
                }
            }
            Err(_) => {
                refuse(stream, &stats);
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let slot = Arc::new(Slot {
            kill: Arc::new(Notify::new()),
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(registry.now_ms()),
            evicted: AtomicBool::new(false),
        });
        registry.slots().insert(id, slot.clone());
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let router = router.clone();
        let registry = registry.clone();
        let stats = stats.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(stream, router, slot, registry.clone(), limits, shutdown).await;
            registry.slots().remove(&id);
            stats.connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    // Every connection ends within the grace after shutdown; waiting for all permits is
    // waiting for all of them (bounded anyway, in case a task is stuck in a handler).
    let _ = tokio::time::timeout(
        limits.shutdown_grace + Duration::from_secs(1),
        permits.acquire_many(cap as u32),
    )
    .await;
    Ok(())
}

/// Answers 503 without reading the request and closes (one non-blocking write: a fresh
/// socket's buffer always has room for it).
fn refuse(stream: TcpStream, stats: &WebStats) {
    stats.refused.fetch_add(1, Ordering::Relaxed);
    let body = r#"{"error":"too many HTTP connections open; try again in a moment"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    slot: Arc<Slot>,
    registry: Arc<Registry>,
    limits: HttpLimits,
    mut shutdown: Shutdown,
) {
    let kill = slot.kill.clone();
    let handle = ConnHandle { kill: kill.clone() };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let busy = BusyGuard::new(slot.clone(), registry.clone());
        req.extensions_mut().insert(handle.clone());
        let router = router.clone();
        async move {
            let response = match router.oneshot(req.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|inner| Body::new(TrackedBody { inner, _busy: busy })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("http connection: {e}");
            }
        }
        _ = kill.notified() => {}
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.shutdown_grace, async {
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = kill.notified() => {}
                }
            })
            .await;
        }
    }
}

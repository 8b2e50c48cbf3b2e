//! `GET /api/events`: the hub's events as Server-Sent Events, plus a `stats` event every
//! second for the dashboard's throughput chart.
//!
//! Each subscriber has its own place in the hub's bounded broadcast buffer, so a stalled
//! browser never slows a device or another subscriber down. A subscriber that falls behind
//! by more than the buffer gets a last `{"type": "lagged", "skipped": N}` event and its
//! stream ends (the browser reconnects and reloads what it shows). One that takes nothing
//! at all for [`super::HttpLimits::sse_stall_timeout`] (its socket is full) has its
//! connection dropped. Every stream ends when the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};

use super::AppState;
use super::serve::{ConnHandle, WebStats};
use crate::clock;

/// How often the `stats` event is sent.
pub const STATS_EVERY: Duration = Duration::from_secs(1);

/// Counts a stream in `WebStats::sse_clients` while it lives.
struct ClientGuard(Arc<WebStats>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.sse_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The event stream; it ends when the server shuts down or the subscriber is cut off.
pub async fn events(
    State(st): State<AppState>,
    conn: Option<Extension<ConnHandle>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    st.stats.sse_clients.fetch_add(1, Ordering::Relaxed);
    let guard = Arc::new(ClientGuard(st.stats.clone()));
    let stats_on_lag = st.stats.clone();
    let live = BroadcastStream::new(st.hub.subscribe())
        .map(|item| match item {
            Ok(event) => (serde_json::to_string(&*event).unwrap_or_default(), false),
            Err(BroadcastStreamRecvError::Lagged(skipped)) => (
                json!({ "type": "lagged", "skipped": skipped }).to_string(),
                true,
            ),
        })
        // The lagged event is the last one: a subscriber that cannot keep up is cut off.
        .scan(false, move |cut, (data, lagged)| {
            if *cut {
                return std::future::ready(None);
            }
            if lagged {
                *cut = true;
                stats_on_lag.sse_cut_off.fetch_add(1, Ordering::Relaxed);
            }
            std::future::ready(Some((data, lagged)))
        });
    let hub = st.hub.clone();
    let mut ticker = tokio::time::interval(STATS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stats = IntervalStream::new(ticker).map(move |_| {
        let data = json!({
            "type": "stats",
            "ts_ms": clock::now_ms(),
            "bytes_up": hub.totals.bytes_up.load(Ordering::Relaxed),
            "bytes_down": hub.totals.bytes_down.load(Ordering::Relaxed),
            "online": hub.online_count(),
        })
        .to_string();
        (data, false)
    });
    let started = Instant::now();
    let last_taken = Arc::new(AtomicU64::new(0));
    if let Some(Extension(conn)) = conn {
        watch_for_stall(
            conn,
            Arc::downgrade(&guard),
            last_taken.clone(),
            started,
            st.limits.sse_stall_timeout,
            st.stats.clone(),
        );
    }
    // The stats ticker stops when the live part ends (after a lagged event).
    let (live_end_tx, live_end_rx) = oneshot::channel::<()>();
    let live = live.map(|(data, _)| data).chain(
        futures_util::stream::once(async move { drop(live_end_tx) })
            .filter_map(|()| std::future::ready(None)),
    );
    let stats = stats.map(|(data, _)| data).take_until(live_end_rx);
    let mut shutdown = st.shutdown.clone();
    let stream = futures_util::stream::select(live, stats)
        .take_until(async move { shutdown.wait().await })
        .map(move |data| {
            let _alive = &guard;
            last_taken.store(started.elapsed().as_millis() as u64, Ordering::Release);
            Ok(SseEvent::default().data(data))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Drops the connection of a stream whose client has taken nothing for `stall` (the
/// stream's `stats` event comes every second, so a reading client takes something at
/// least that often). Ends by itself when the stream is gone.
fn watch_for_stall(
    conn: ConnHandle,
    alive: std::sync::Weak<ClientGuard>,
    last_taken: Arc<AtomicU64>,
    started: Instant,
    stall: Duration,
    stats: Arc<WebStats>,
) {
    let every = (stall / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if alive.strong_count() == 0 {
                return;
            }
            let now = started.elapsed().as_millis() as u64;
            let last = last_taken.load(Ordering::Acquire);
            if now.saturating_sub(last) > stall.as_millis() as u64 {
                tracing::info!("event stream cut off: its client took nothing for {stall:?}");
                stats.sse_cut_off.fetch_add(1, Ordering::Relaxed);
                conn.close();
                return;
            }
        }
    });
}

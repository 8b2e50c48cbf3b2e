//! `GET /api/events`: the hub's events as Server-Sent Events, plus a `stats` event every
//! second for the dashboard's throughput chart.
//!
//! Each subscriber has its own place in the hub's bounded broadcast buffer; one that falls
//! behind gets a `{"type": "lagged", "skipped": N}` event and continues from the newest
//! events, so a stalled browser never slows a device down.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};

use super::AppState;
use crate::clock;

/// How often the `stats` event is sent.
pub const STATS_EVERY: Duration = Duration::from_secs(1);

/// The event stream; it ends when the server shuts down.
pub async fn events(
    State(st): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let live = BroadcastStream::new(st.hub.subscribe()).map(|item| match item {
        Ok(event) => serde_json::to_string(&*event).unwrap_or_default(),
        Err(BroadcastStreamRecvError::Lagged(skipped)) => {
            json!({ "type": "lagged", "skipped": skipped }).to_string()
        }
    });
    let hub = st.hub.clone();
    let mut ticker = tokio::time::interval(STATS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stats = IntervalStream::new(ticker).map(move |_| {
        json!({
            "type": "stats",
            "ts_ms": clock::now_ms(),
            "bytes_up": hub.totals.bytes_up.load(Ordering::Relaxed),
            "bytes_down": hub.totals.bytes_down.load(Ordering::Relaxed),
            "online": hub.online_count(),
        })
        .to_string()
    });
    let mut shutdown = st.shutdown.clone();
    let stream = futures_util::stream::select(live, stats)
        .take_until(async move { shutdown.wait().await })
        .map(|data| Ok(SseEvent::default().data(data)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

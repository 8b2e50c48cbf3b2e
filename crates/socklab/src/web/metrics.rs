//! `GET /metrics`: Prometheus text exposition of the hub's counters.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::model::TlsFailureKind;

/// Renders the metrics.
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let hub = &st.hub;
    let t = &hub.totals;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "socklab_sessions_online",
        "gauge",
        "Sessions online now.",
        &[("", hub.online_count() as u64)],
    );
    metric(
        "socklab_sessions_total",
        "counter",
        "Sessions started since socklab started.",
        &[("", t.sessions.load(Ordering::Relaxed))],
    );
    metric(
        "socklab_bytes_total",
        "counter",
        "Bytes moved, by direction (up = from devices).",
        &[
            ("{direction=\"up\"}", t.bytes_up.load(Ordering::Relaxed)),
            ("{direction=\"down\"}", t.bytes_down.load(Ordering::Relaxed)),
        ],
    );
    metric(
        "socklab_messages_total",
        "counter",
        "Reads/datagrams moved, by direction.",
        &[
            ("{direction=\"up\"}", t.msgs_up.load(Ordering::Relaxed)),
            ("{direction=\"down\"}", t.msgs_down.load(Ordering::Relaxed)),
        ],
    );
    metric(
        "socklab_link_dropped_bytes_total",
        "counter",
        "Bytes the emulated links dropped (lost datagrams, NAT-dropped and reset connections).",
        &[("", hub.link_dropped_bytes())],
    );
    metric(
        "socklab_store_queue_depth",
        "gauge",
        "Device data waiting for the database writer (devices pause when full).",
        &[("", hub.store().queue_depth() as u64)],
    );
    let web = &st.stats;
    metric(
        "socklab_http_connections",
        "gauge",
        "HTTP connections open now.",
        &[("", web.connections.load(Ordering::Relaxed) as u64)],
    );
    metric(
        "socklab_http_connections_evicted_total",
        "counter",
        "Idle HTTP connections closed to make room at the connection cap.",
        &[("", web.evicted.load(Ordering::Relaxed))],
    );
    metric(
        "socklab_http_connections_refused_total",
        "counter",
        "HTTP connections answered 503 at the cap because none was idle.",
        &[("", web.refused.load(Ordering::Relaxed))],
    );
    metric(
        "socklab_event_streams",
        "gauge",
        "Live event streams (/api/events) open now.",
        &[("", web.sse_clients.load(Ordering::Relaxed) as u64)],
    );
    metric(
        "socklab_event_streams_cut_off_total",
        "counter",
        "Event streams ended because their client fell behind or stopped reading.",
        &[("", web.sse_cut_off.load(Ordering::Relaxed))],
    );
    metric(
        "socklab_store_write_retries_total",
        "counter",
        "Failed database commits the writer kept and retried (disk full, database locked).",
        &[("", hub.store().write_retries())],
    );
    metric(
        "socklab_udp_unstored_datagrams_total",
        "counter",
        "UDP datagrams received while the store was behind and their sender's hold was full \
         (not stored, not answered).",
        &[("", hub.store().unstored_datagrams())],
    );
    let tls_failures: Vec<(String, u64)> = TlsFailureKind::ALL
        .iter()
        .map(|k| {
            (
                format!("{{reason=\"{}\"}}", k.as_str()),
                t.tls_failures.get(*k),
            )
        })
        .collect();
    let tls_lines: Vec<(&str, u64)> = tls_failures.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        "socklab_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed, by reason (not_tls: plain TCP on a TLS port; alert: the \
         device refused the handshake, mostly an untrusted certificate; timeout: no handshake \
         within --tls-handshake-timeout; closed, reset: the connection ended during it).",
        &tls_lines,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

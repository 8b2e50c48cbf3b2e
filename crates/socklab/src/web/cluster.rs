//! The HTTP API of a cluster node (`--cluster`): the same routes and shapes as a single
//! node, answered for the whole cluster. Session ids are global (`NODE:ID`, a bare `ID`
//! means this node's), every session names its `node`, listings and metrics are
//! scatter-gathered with a deadline and name the nodes that did not answer
//! (`missing_nodes`), and actions on another node's session go to that node.
//!
//! [`router`] wraps the single-node router: the routes here take precedence and
//! everything else (listeners, link profiles, assets) falls through to it. The OpenAPI
//! document of a cluster node is [`super::cluster_doc`]'s.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::from_fn_with_state;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};
use tower::ServiceExt;

pub use super::cluster_state::ClusterState;
use super::cluster_state::{inline_snippet, reply, request};
use super::{AppState, auth};
use crate::cluster::names::{global_id, parse_session_ref};
use crate::cluster::wire::{ApiReply, ApiRequest, MetricsReply, globalize};
use crate::cluster::{Cluster, LocalApi};
use crate::rules::decode_hex;

/// Deepest page a cluster listing serves (`offset + limit`): each node sends that many
/// sessions, and one NATS message must hold them.
pub const MAX_CLUSTER_DEPTH: u64 = 2000;

/// The cluster routes over `single` (the single-node router), behind the same checks.
pub fn router(cluster: Cluster, app: AppState, single: Router) -> Router {
    let state = ClusterState {
        cluster,
        app: app.clone(),
    };
    Router::new()
        .route("/api/cluster", get(nodes))
        .route("/api/sessions", get(list_sessions))
        .route(
            "/api/sessions/{id}",
            get(get_session).delete(delete_session),
        )
        .route(
            "/api/sessions/{id}/messages",
            get(messages).delete(delete_messages),
        )
        .route("/api/sessions/{id}/label", put(label))
        .route("/api/sessions/{id}/send", post(send))
        .route("/api/sessions/{id}/close", post(close))
        .route("/api/sessions/{id}/fault", post(fault))
        .route("/api/sessions/{id}/link", put(link))
        .route("/api/broadcast", post(broadcast))
        .route("/api/sessions/{id}/periodic", post(periodic))
        .route("/api/periodic/{id}", axum::routing::delete(stop_periodic))
        .route("/api/periodic", get(super::cluster_ops::list_periodic))
        .route(
            "/api/broadcast/periodic",
            post(super::cluster_ops::broadcast_periodic),
        )
        .route("/api/rates", get(super::cluster_ops::rates))
        .route("/api/events", get(events))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route_layer(from_fn_with_state(app, auth::check))
        .with_state(state)
        .fallback_service(single)
}

/// How other nodes' calls run here: through `single`, this node's own router (built
/// without a token: the call already passed the checks of the node that took it).
pub fn local_api(single: Router) -> LocalApi {
    Arc::new(move |req: ApiRequest| {
        let single = single.clone();
        Box::pin(async move {
            let uri = if req.query.is_empty() {
                req.path.clone()
            } else {
                format!("{}?{}", req.path, req.query)
            };
            let request = Request::builder()
                .method(req.method.as_str())
                .uri(uri)
                .header(header::HOST, HeaderValue::from_static("127.0.0.1"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(req.body));
            let Ok(request) = request else {
                return ApiReply::error(400, "malformed cluster request");
            };
            let Ok(response) = single.oneshot(request).await;
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let body = serde_json::from_slice(&body).unwrap_or_else(
                |_| json!({ "error": String::from_utf8_lossy(&body).into_owned() }),
            );
            ApiReply { status, body }
        })
    })
}

fn bad_request(message: impl Into<String>) -> Response {
    reply(ApiReply::error(400, message))
}

/// Sends a session route to the node holding the session.
async fn to_owner(
    st: &ClusterState,
    method: Method,
    raw_id: &str,
    suffix: &str,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let r = match parse_session_ref(raw_id) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return bad_request("invalid JSON body: not UTF-8");
    };
    let node = r.node.unwrap_or_else(|| st.cluster.node().to_string());
    let path = format!("/api/sessions/{}{suffix}", r.id);
    let req = request(method.clone(), path, query.unwrap_or_default(), body);
    let mut answer = st.cluster.call(&node, req).await;
    // A node that does not answer: its session from the cache, marked unreachable.
    if answer.status == 503
        && method == Method::GET
        && suffix.is_empty()
        && let Some(mut cached) = st.cluster.unreachable_session(&node, r.id)
    {
        cached["missing_nodes"] = json!([node]);
        answer = ApiReply {
            status: 200,
            body: cached,
        };
    }
    reply(answer)
}

/// `GET /api/sessions/{id}`.
async fn get_session(State(st): State<ClusterState>, Path(id): Path<String>) -> Response {
    to_owner(&st, Method::GET, &id, "", None, Bytes::new()).await
}

/// `GET /api/sessions/{id}/messages`.
async fn messages(
    State(st): State<ClusterState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    to_owner(&st, Method::GET, &id, "/messages", q, Bytes::new()).await
}

/// `DELETE /api/sessions/{id}` (history housekeeping on the session's node).
async fn delete_session(State(st): State<ClusterState>, Path(id): Path<String>) -> Response {
    to_owner(&st, Method::DELETE, &id, "", None, Bytes::new()).await
}

/// `DELETE /api/sessions/{id}/messages`.
async fn delete_messages(State(st): State<ClusterState>, Path(id): Path<String>) -> Response {
    to_owner(&st, Method::DELETE, &id, "/messages", None, Bytes::new()).await
}

/// `PUT /api/sessions/{id}/label`.
async fn label(State(st): State<ClusterState>, Path(id): Path<String>, body: Bytes) -> Response {
    to_owner(&st, Method::PUT, &id, "/label", None, body).await
}

/// `POST /api/sessions/{id}/send`.
async fn send(State(st): State<ClusterState>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = match inline_snippet(&st, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    to_owner(&st, Method::POST, &id, "/send", None, body).await
}

/// `POST /api/sessions/{id}/close`.
async fn close(State(st): State<ClusterState>, Path(id): Path<String>, body: Bytes) -> Response {
    to_owner(&st, Method::POST, &id, "/close", None, body).await
}

/// `POST /api/sessions/{id}/fault`.
async fn fault(State(st): State<ClusterState>, Path(id): Path<String>, body: Bytes) -> Response {
    to_owner(&st, Method::POST, &id, "/fault", None, body).await
}

/// `PUT /api/sessions/{id}/link`.
async fn link(State(st): State<ClusterState>, Path(id): Path<String>, body: Bytes) -> Response {
    to_owner(&st, Method::PUT, &id, "/link", None, body).await
}

fn number(params: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, String> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("invalid value {v:?} for {name}")),
    }
}

/// One per-node metric: name, kind, help, and how to read it from a node's answer.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&MetricsReply) -> u64,
);

/// `GET /api/sessions?state=online|all&limit&offset`: the cluster's sessions newest first
/// (by start time), `total` across nodes, `missing_nodes` for those that did not answer
/// (their sessions listed from the last events seen, `"unreachable": true`).
async fn list_sessions(
    State(st): State<ClusterState>,
    params: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return bad_request("malformed query string");
    };
    let (limit, offset) = match (number(&params, "limit", 100), number(&params, "offset", 0)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    if limit == 0 || limit > super::api::MAX_PAGE {
        return bad_request(format!("limit must be 1..={}", super::api::MAX_PAGE));
    }
    if offset.saturating_add(limit) > MAX_CLUSTER_DEPTH {
        return bad_request(format!(
            "offset + limit must be at most {MAX_CLUSTER_DEPTH} on a cluster"
        ));
    }
    if params.contains_key("label") {
        return bad_request("filtering by label is not available on a cluster listing");
    }
    let state = params.get("state").map_or("all", String::as_str);
    if state != "online" && state != "all" {
        return bad_request(format!("state must be online or all, not {state:?}"));
    }
    match st.cluster.sessions(state, limit, offset).await {
        Ok(page) => Json(json!({
            "sessions": page.sessions,
            "total": page.total,
            "missing_nodes": page.missing,
        }))
        .into_response(),
        Err(e) => reply(ApiReply::error(503, e)),
    }
}

/// `POST /api/broadcast` with `{"text"|"hex", "listener_id"?}`: every node's devices.
async fn broadcast(State(st): State<ClusterState>, body: Bytes) -> Response {
    let body = match inline_snippet(&st, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("invalid JSON body: {e}")),
    };
    let data = match (body["text"].as_str(), body["hex"].as_str()) {
        (Some(t), None) => t.as_bytes().to_vec(),
        (None, Some(h)) => match decode_hex(h) {
            Ok(d) => d,
            Err(e) => return bad_request(e.to_string()),
        },
        _ => return bad_request("give exactly one of \"text\" and \"hex\""),
    };
    if data.is_empty() {
        return bad_request("nothing to send: payload is empty");
    }
    let listener_id = match &body["listener_id"] {
        Value::Null => None,
        v => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => return bad_request("listener_id must be a listener number"),
        },
    };
    let got = st.cluster.broadcast(listener_id, data.into()).await;
    let sessions: u64 = got.replies.iter().map(|r| r.sessions).sum();
    let bytes: u64 = got.replies.iter().map(|r| r.bytes).sum();
    Json(json!({
        "sessions": sessions,
        "bytes": bytes,
        "nodes": got.replies,
        "missing_nodes": got.missing,
    }))
    .into_response()
}

/// `GET /api/openapi.json`: the API as a cluster node answers it.
async fn openapi() -> Json<Value> {
    Json(super::cluster_doc::spec(MAX_CLUSTER_DEPTH))
}

/// `GET /api/cluster`: this node, the others, and whether each answers.
async fn nodes(State(st): State<ClusterState>) -> Json<Value> {
    Json(st.cluster.nodes())
}

/// `GET /metrics`: this node's metrics, then per-node series for the whole cluster
/// (`socklab_cluster_*{node="..."}`, `socklab_cluster_node_up` 0 for a missing node).
async fn metrics(State(st): State<ClusterState>) -> Response {
    let local = super::metrics::metrics(State(st.app.clone()))
        .await
        .into_response();
    let mut text = axum::body::to_bytes(local.into_body(), 1 << 20)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let got = st.cluster.metrics().await;
    let series: [Series; 5] = [
        (
            "socklab_cluster_sessions_online",
            "gauge",
            "Sessions online, per node.",
            |m| m.online,
        ),
        (
            "socklab_cluster_bytes_up_total",
            "counter",
            "Bytes from devices, per node.",
            |m| m.bytes_up,
        ),
        (
            "socklab_cluster_bytes_down_total",
            "counter",
            "Bytes to devices, per node.",
            |m| m.bytes_down,
        ),
        (
            "socklab_cluster_messages_up_total",
            "counter",
            "Messages from devices, per node.",
            |m| m.msgs_up,
        ),
        (
            "socklab_cluster_events_skipped_total",
            "counter",
            "Events a node could not publish to the cluster (they are in its history).",
            |m| m.events_skipped,
        ),
    ];
    use std::fmt::Write;
    for (name, kind, help, value) in series {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for m in &got.replies {
            let _ = writeln!(text, "{name}{{node=\"{}\"}} {}", m.node, value(m));
        }
    }
    let name = "socklab_cluster_node_up";
    let _ = writeln!(
        text,
        "# HELP {name} 1 if the node answered this scrape in time.\n# TYPE {name} gauge"
    );
    for m in &got.replies {
        let _ = writeln!(text, "{name}{{node=\"{}\"}} 1", m.node);
    }
    for node in &got.missing {
        let _ = writeln!(text, "{name}{{node=\"{node}\"}} 0");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /api/events`: this node's events and every other node's (ids global, each with
/// its `node`), node notices, and a cluster-wide `stats` event each second.
async fn events(
    State(st): State<ClusterState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let node = st.cluster.node().to_string();
    let lagged = |skipped: u64| json!({ "type": "lagged", "skipped": skipped }).to_string();
    let local = BroadcastStream::new(st.app.hub.subscribe()).map(move |item| match item {
        Ok(event) => {
            let mut v = serde_json::to_value(&*event).unwrap_or_default();
            globalize(&mut v, &node);
            v["node"] = Value::String(node.clone());
            v.to_string()
        }
        Err(BroadcastStreamRecvError::Lagged(n)) => lagged(n),
    });
    // Other nodes publish their data events once asked: asked before the stream starts,
    // so that what a device sends after it started shows.
    let remote = BroadcastStream::new(st.cluster.watch().await).map(move |item| match item {
        Ok(text) => text.to_string(),
        Err(BroadcastStreamRecvError::Lagged(n)) => lagged(n),
    });
    let cluster = st.cluster.clone();
    let mut ticker = tokio::time::interval(super::sse::STATS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stats = IntervalStream::new(ticker).map(move |_| {
        let (online, up, down) = cluster.totals();
        json!({
            "type": "stats", "ts_ms": crate::clock::now_ms(), "cluster": true,
            "bytes_up": up, "bytes_down": down, "online": online,
        })
        .to_string()
    });
    let mut shutdown = st.app.shutdown.clone();
    let stream = futures_util::stream::select(futures_util::stream::select(local, remote), stats)
        .take_until(async move { shutdown.wait().await })
        .map(|data| Ok(SseEvent::default().data(data)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /api/sessions/{id}/periodic`: the periodic send runs on the node holding the
/// session (the snippet, if any, is read here); its id comes back as `NODE:ID`, which
/// `DELETE /api/periodic/NODE:ID` stops.
async fn periodic(State(st): State<ClusterState>, Path(id): Path<String>, body: Bytes) -> Response {
    let r = match parse_session_ref(&id) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let body = match inline_snippet(&st, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return bad_request("invalid JSON body: not UTF-8");
    };
    let node = r.node.unwrap_or_else(|| st.cluster.node().to_string());
    let path = format!("/api/sessions/{}/periodic", r.id);
    periodic_on(&st, &node, request(Method::POST, path, String::new(), body)).await
}

/// `DELETE /api/periodic/{id}`: `NODE:ID` stops a periodic send running on that node, a
/// bare id one running here.
async fn stop_periodic(State(st): State<ClusterState>, Path(id): Path<String>) -> Response {
    let Ok(r) = parse_session_ref(&id) else {
        return bad_request(format!(
            "invalid periodic send id {id:?}: use NODE:ID or ID"
        ));
    };
    let node = r.node.unwrap_or_else(|| st.cluster.node().to_string());
    let path = format!("/api/periodic/{}", r.id);
    periodic_on(
        &st,
        &node,
        request(Method::DELETE, path, String::new(), String::new()),
    )
    .await
}

/// Runs a periodic-send call on `node` and answers with the send's id made global
/// (`NODE:ID`).
async fn periodic_on(st: &ClusterState, node: &str, req: ApiRequest) -> Response {
    let mut answer = st.cluster.call(node, req).await;
    if let Some(pid) = answer.body.get("id").and_then(Value::as_u64) {
        answer.body["id"] = Value::String(global_id(node, pid));
    }
    reply(answer)
}

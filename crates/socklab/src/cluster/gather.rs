//! The requests a node makes and answers: a call to the node holding a session, and
//! scatter-gather over every node with a deadline. The local part never goes through
//! NATS, so a node answers for itself even while NATS is down; the nodes that did not
//! answer in time are named (`missing_nodes`) and their sessions come from the cache,
//! marked unreachable.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire::{
    ApiReply, ApiRequest, BroadcastReply, BroadcastRequest, MetricsReply, NodeReply, SessionsQuery,
    SessionsReply, globalize,
};
use super::{Cluster, GATHER_DEADLINE, Inner, names};
use crate::hub::SEND_WAIT;

/// The answers of every node that answered, and the nodes that did not.
#[derive(Debug)]
pub struct Gathered<T> {
    /// One answer per node, this node's first.
    pub replies: Vec<T>,
    /// Nodes known to be in the cluster that did not answer in time.
    pub missing: Vec<String>,
}

/// A page of sessions across the cluster.
#[derive(Debug)]
pub struct SessionPage {
    /// Newest first (by start time, then node, then id).
    pub sessions: Vec<Value>,
    /// Sessions in that state across the answering nodes, plus the cached ones of the
    /// missing nodes.
    pub total: u64,
    /// Nodes that did not answer in time.
    pub missing: Vec<String>,
}

/// Runs an API call on this node and makes the ids in its answer global. A call that
/// comes while the node is still starting (it announces itself before its API routes
/// exist) waits for them, at most the gather deadline.
pub(super) async fn call_local(inner: &Inner, req: ApiRequest) -> ApiReply {
    let ready = inner.local_api_ready.notified();
    if inner.local_api.get().is_none() {
        let _ = tokio::time::timeout(GATHER_DEADLINE, ready).await;
    }
    let Some(api) = inner.local_api.get() else {
        return ApiReply::error(503, format!("node {} is starting", inner.node));
    };
    let mut reply = api(req).await;
    globalize(&mut reply.body, &inner.node);
    reply
}

/// This node's newest `depth` sessions in `state` (`online` or `all`), ids global.
pub(super) async fn local_sessions(
    inner: &Inner,
    state: &str,
    depth: u64,
) -> Result<SessionsReply, String> {
    let hub = &inner.hub;
    let (sessions, total) = match state {
        "online" => {
            // Snapshots only of the newest `depth`: a node may hold tens of thousands of
            // sessions, and a listing asks for a page.
            let mut handles = hub.sessions_of(None);
            let total = handles.len() as u64;
            let newest =
                |h: &std::sync::Arc<crate::session::SessionHandle>| std::cmp::Reverse(h.meta.id);
            let keep = (depth as usize).min(handles.len());
            if keep < handles.len() {
                handles.select_nth_unstable_by_key(keep, newest);
                handles.truncate(keep);
            }
            handles.sort_unstable_by_key(newest);
            (handles.iter().map(|h| h.info(None)).collect(), total)
        }
        "all" => {
            let store = hub.store();
            store.flush_sessions().await;
            let (mut rows, total) = store.sessions(depth, 0).await.map_err(|e| e.to_string())?;
            for row in rows.iter_mut() {
                if let Some(live) = hub.online(row.id) {
                    *row = live.info(None);
                }
            }
            (rows, total)
        }
        other => return Err(format!("state must be online or all, not {other:?}")),
    };
    let mut values: Vec<Value> = sessions
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect();
    values.iter_mut().for_each(|v| globalize(v, &inner.node));
    Ok(SessionsReply {
        node: inner.node.clone(),
        sessions: values,
        total,
    })
}

/// This node's counters.
pub(super) fn local_metrics(inner: &Inner) -> MetricsReply {
    let t = &inner.hub.totals;
    MetricsReply {
        node: inner.node.clone(),
        online: inner.hub.online_count() as u64,
        sessions: t.sessions.load(Ordering::Relaxed),
        bytes_up: t.bytes_up.load(Ordering::Relaxed),
        bytes_down: t.bytes_down.load(Ordering::Relaxed),
        msgs_up: t.msgs_up.load(Ordering::Relaxed),
        msgs_down: t.msgs_down.load(Ordering::Relaxed),
        events_skipped: inner.events_skipped.load(Ordering::Relaxed),
    }
}

/// Sends `data` to this node's devices.
pub(super) async fn local_broadcast(
    inner: &Inner,
    listener_id: Option<u32>,
    data: Bytes,
) -> BroadcastReply {
    let (sessions, bytes, error) = match inner.hub.broadcast(listener_id, data).await {
        Ok((s, b)) => (s as u64, b as u64, None),
        Err(e) => (0, 0, Some(e.to_string())),
    };
    BroadcastReply {
        node: inner.node.clone(),
        sessions,
        bytes,
        error,
    }
}

/// Sends `payload` to every other node on `subject` and collects their answers until each
/// live node has answered or the deadline passes.
async fn scatter<T: DeserializeOwned + HasNode>(
    inner: &Inner,
    subject: String,
    payload: Bytes,
) -> Gathered<T> {
    scatter_within(inner, subject, payload, GATHER_DEADLINE).await
}

/// [`scatter`] with a deadline of its own.
async fn scatter_within<T: DeserializeOwned + HasNode>(
    inner: &Inner,
    subject: String,
    payload: Bytes,
    wait: Duration,
) -> Gathered<T> {
    let (alive, known) = {
        let peers = inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        (peers.alive(), peers.known())
    };
    let mut replies: Vec<T> = Vec::new();
    let mut answered = BTreeSet::new();
    if inner.connected.load(Ordering::Relaxed) {
        let client = &inner.client;
        let inbox = client.new_inbox();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(names::ORIGIN_HEADER, inner.node.as_str());
        if let Ok(mut sub) = client.subscribe(inbox.clone()).await
            && client
                .publish_with_reply_and_headers(subject, inbox, headers, payload)
                .await
                .is_ok()
        {
            let deadline = tokio::time::Instant::now() + wait;
            while !alive.iter().all(|n| answered.contains(n)) {
                match tokio::time::timeout_at(deadline, sub.next()).await {
                    Ok(Some(msg)) => {
                        if let Ok(reply) = serde_json::from_slice::<T>(&msg.payload)
                            && reply.node() != inner.node
                            && answered.insert(reply.node().to_string())
                        {
                            replies.push(reply);
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            let _ = sub.unsubscribe().await;
        }
    }
    let missing = known
        .into_iter()
        .filter(|n| !answered.contains(n))
        .collect();
    Gathered { replies, missing }
}

/// Answers that name the node they come from.
trait HasNode {
    fn node(&self) -> &str;
}

impl HasNode for SessionsReply {
    fn node(&self) -> &str {
        &self.node
    }
}

impl HasNode for MetricsReply {
    fn node(&self) -> &str {
        &self.node
    }
}

impl HasNode for NodeReply {
    fn node(&self) -> &str {
        &self.node
    }
}

/// How long a node that starts showing events waits for the others to say they publish
/// their data events (one that answers later publishes them from then on).
pub const WATCH_ASK_DEADLINE: Duration = Duration::from_millis(500);

/// Asks every live node to publish its data events (this node shows them now); returns
/// once each answered or the deadline passed.
pub(super) async fn ask_to_watch(inner: &Inner) {
    let _: Gathered<NodeReply> =
        scatter_within(inner, names::all("watch"), Bytes::new(), WATCH_ASK_DEADLINE).await;
}

impl HasNode for BroadcastReply {
    fn node(&self) -> &str {
        &self.node
    }
}

/// Re-reads the online sessions of `node` (or of every node) into the cache.
pub(super) async fn refresh_cache(inner: Arc<Inner>, node: Option<String>) {
    let query = SessionsQuery {
        state: "online".into(),
        depth: CACHE_REFRESH_DEPTH,
        node: node.clone(),
    };
    let payload = serde_json::to_vec(&query).unwrap_or_default();
    let got: Gathered<SessionsReply> =
        scatter(&inner, names::all("sessions"), payload.into()).await;
    let mut peers = inner.peers.lock().unwrap_or_else(|e| e.into_inner());
    for reply in got.replies {
        if node.as_deref().is_none_or(|n| n == reply.node) {
            peers.replace_sessions(&reply.node, &reply.sessions);
        }
    }
}

/// How many online sessions per node a cache refresh reads: as many as the cache keeps.
pub const CACHE_REFRESH_DEPTH: u64 = super::peers::CACHE_PER_NODE as u64;

/// Sort key of a session across nodes: newest start first, then node, then newest id.
fn newest_first(a: &Value, b: &Value) -> std::cmp::Ordering {
    let started = |v: &Value| v["started_at_ms"].as_i64().unwrap_or(0);
    let node = |v: &Value| v["node"].as_str().unwrap_or("").to_string();
    let id = |v: &Value| {
        v["id"]
            .as_str()
            .and_then(|s| names::parse_session_ref(s).ok())
            .map_or(0, |r| r.id)
    };
    started(b)
        .cmp(&started(a))
        .then_with(|| node(a).cmp(&node(b)))
        .then_with(|| id(b).cmp(&id(a)))
}

impl Cluster {
    /// Runs an API call on `node` (this one directly, another by NATS request/reply).
    /// A node that does not answer gives a 503 naming it; an unknown one a 404.
    pub async fn call(&self, node: &str, req: ApiRequest) -> ApiReply {
        let inner = &self.inner;
        if node == inner.node {
            return call_local(inner, req).await;
        }
        let (known, alive) = {
            let peers = inner.peers.lock().unwrap_or_else(|e| e.into_inner());
            (
                peers.get(node).is_some(),
                peers.alive().iter().any(|n| n == node),
            )
        };
        let unreachable = || {
            let mut r = ApiReply::error(
                503,
                format!("node {node} is not answering (its sessions are unreachable)"),
            );
            r.body["missing_nodes"] = serde_json::json!([node]);
            r
        };
        if known && !alive {
            return unreachable();
        }
        if !inner.connected.load(Ordering::Relaxed) {
            let mut r = ApiReply::error(503, "not connected to NATS: other nodes are out of reach");
            r.body["missing_nodes"] = serde_json::json!([node]);
            return r;
        }
        let wait = call_deadline(&req.method);
        let payload = serde_json::to_vec(&req).unwrap_or_default();
        let request = inner.client.request(names::api(node), payload.into());
        match tokio::time::timeout(wait, request).await {
            Ok(Ok(msg)) => serde_json::from_slice(&msg.payload)
                .unwrap_or_else(|e| ApiReply::error(502, format!("bad answer from {node}: {e}"))),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                if known {
                    unreachable()
                } else {
                    ApiReply::error(404, format!("no node {node} in the cluster"))
                }
            }
            Ok(Err(_)) | Err(_) => unreachable(),
        }
    }

    /// Runs an API call on every node at once: this one directly, each other live node by
    /// request/reply. Answers come this node's first, each with its node; nodes that did
    /// not answer (or are known but silent) are missing.
    pub async fn call_every(&self, req: ApiRequest) -> Gathered<(String, ApiReply)> {
        let inner = &self.inner;
        let (alive, known) = {
            let peers = inner.peers.lock().unwrap_or_else(|e| e.into_inner());
            (peers.alive(), peers.known())
        };
        let remote = alive.iter().map(|node| {
            let req = req.clone();
            async move { (node.clone(), self.call(node, req).await) }
        });
        let (local, remote) = tokio::join!(
            call_local(inner, req.clone()),
            futures_util::future::join_all(remote)
        );
        let mut replies = vec![(inner.node.clone(), local)];
        let mut answered = BTreeSet::new();
        for (node, reply) in remote {
            // `call` marks a node that did not answer: 503 naming it in missing_nodes.
            if reply.status == 503 && reply.body.get("missing_nodes").is_some() {
                continue;
            }
            answered.insert(node.clone());
            replies.push((node, reply));
        }
        let missing = known
            .into_iter()
            .filter(|n| !answered.contains(n))
            .collect();
        Gathered { replies, missing }
    }

    /// A page of sessions in `state` across the cluster: each node gives its newest
    /// `offset + limit`, they are merged newest first and the page is cut from that.
    pub async fn sessions(
        &self,
        state: &str,
        limit: u64,
        offset: u64,
    ) -> Result<SessionPage, String> {
        let inner = &self.inner;
        let depth = offset + limit;
        let local = local_sessions(inner, state, depth).await?;
        let query = SessionsQuery {
            state: state.into(),
            depth,
            node: None,
        };
        let payload = serde_json::to_vec(&query).unwrap_or_default();
        let got: Gathered<SessionsReply> =
            scatter(inner, names::all("sessions"), payload.into()).await;
        let mut total = local.total;
        let mut all = local.sessions;
        for reply in got.replies {
            total += reply.total;
            all.extend(reply.sessions);
        }
        {
            let peers = inner.peers.lock().unwrap_or_else(|e| e.into_inner());
            for node in &got.missing {
                let (cached, count) = peers.unreachable_sessions(node, depth as usize);
                total += count;
                all.extend(cached);
            }
        }
        all.sort_by(newest_first);
        let sessions = all
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        Ok(SessionPage {
            sessions,
            total,
            missing: got.missing,
        })
    }

    /// A cached session of a node that is not answering, marked unreachable.
    pub fn unreachable_session(&self, node: &str, id: u64) -> Option<Value> {
        let peers = self.inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.unreachable_session(node, id)
    }

    /// Every node's counters, this node's first.
    pub async fn metrics(&self) -> Gathered<MetricsReply> {
        let mut got: Gathered<MetricsReply> =
            scatter(&self.inner, names::all("metrics"), Bytes::new()).await;
        got.replies.insert(0, local_metrics(&self.inner));
        got
    }

    /// Sends `data` to the devices of every node (of listener `listener_id` on each).
    pub async fn broadcast(
        &self,
        listener_id: Option<u32>,
        data: Bytes,
    ) -> Gathered<BroadcastReply> {
        let req = BroadcastRequest {
            hex: hex::encode(&data),
            listener_id,
        };
        let payload = serde_json::to_vec(&req).unwrap_or_default();
        // The other nodes fill their devices' outboxes while this one fills its own.
        let inner = self.inner.clone();
        let local = tokio::spawn(async move { local_broadcast(&inner, listener_id, data).await });
        let mut got: Gathered<BroadcastReply> =
            scatter(&self.inner, names::all("broadcast"), payload.into()).await;
        let local = local.await.unwrap_or_else(|e| BroadcastReply {
            node: self.inner.node.clone(),
            sessions: 0,
            bytes: 0,
            error: Some(format!("broadcast task failed: {e}")),
        });
        got.replies.insert(0, local);
        got
    }

    /// The nodes: this one, and every other heard of, with whether they answer.
    pub fn nodes(&self) -> Value {
        let inner = &self.inner;
        let peers = inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        let alive = peers.alive();
        let mut nodes = vec![serde_json::json!({
            "node": inner.node, "http": inner.http.to_string(), "self": true,
            "reachable": true, "online": inner.hub.online_count(),
        })];
        for (name, peer) in peers.iter() {
            nodes.push(serde_json::json!({
                "node": name, "http": peer.http, "self": false,
                "reachable": alive.contains(name), "online": peer.presence.online,
            }));
        }
        serde_json::json!({
            "node": inner.node,
            "connected": inner.connected.load(Ordering::Relaxed),
            "events_published": inner.events_published.load(Ordering::Relaxed),
            "events_skipped": inner.events_skipped.load(Ordering::Relaxed),
            "nodes": nodes,
        })
    }

    /// Cluster totals for the dashboard's chart: this node's counters plus the last
    /// heartbeat of each live node (online, bytes up, bytes down).
    pub fn totals(&self) -> (u64, u64, u64) {
        let inner = &self.inner;
        let t = &inner.hub.totals;
        let mut online = inner.hub.online_count() as u64;
        let mut up = t.bytes_up.load(Ordering::Relaxed);
        let mut down = t.bytes_down.load(Ordering::Relaxed);
        let peers = inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        let alive = peers.alive();
        for (name, peer) in peers.iter() {
            if alive.contains(name) {
                online += peer.presence.online;
                up += peer.presence.bytes_up;
                down += peer.presence.bytes_down;
            }
        }
        (online, up, down)
    }
}

/// How long a call waits for a remote node: lookups the gather deadline, actions also
/// the time a send may wait for room in a device's outbox.
pub fn call_deadline(method: &str) -> Duration {
    if method == "GET" {
        GATHER_DEADLINE
    } else {
        SEND_WAIT + GATHER_DEADLINE
    }
}

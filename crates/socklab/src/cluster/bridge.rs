//! The bridge's tasks, all on its own runtime: connect and claim the node name, publish
//! this node's events and heartbeats, take in the other nodes', and answer their requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Message, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::burst::{self, Deliveries};
use super::names;
use super::peers::{PeerChange, Peers};
use super::wire::{
    ApiReply, ApiRequest, BroadcastReply, BroadcastRequest, PingReply, Presence, SessionsQuery,
};
use super::{
    CONNECT_TIMEOUT, Cluster, ClusterConfig, ClusterError, Inner, NOTICE_BUFFER, PING_TIMEOUT,
};
use crate::hub::Hub;
use crate::model::Event;

/// How often a node says it is there.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// How long a node publishes its data events after another node last said it watches
/// them (in a heartbeat, each second, or a watch request).
pub const WATCH_TTL: Duration = Duration::from_secs(3);

/// How long a node waits for NATS to confirm its data subscription before it asks the
/// others to publish (NATS down: not at all longer than this).
const WATCH_FLUSH_WAIT: Duration = Duration::from_millis(500);

/// How long a node keeps the other nodes' data events subscribed once nobody here shows
/// them (a dashboard reloading comes back within that).
pub const WATCH_LINGER: Duration = Duration::from_secs(5);

/// Connects, checks the name, subscribes and spawns every task on the current runtime.
pub(super) async fn start(
    config: ClusterConfig,
    hub: Arc<Hub>,
    http: SocketAddr,
    stop: oneshot::Sender<()>,
) -> Result<Cluster, ClusterError> {
    let node = config.node.clone().unwrap_or_default();
    let (conn_tx, conn_rx) = mpsc::unbounded_channel();
    let (watch_tx, watch_rx) = mpsc::unbounded_channel();
    let client = connect(&config, &node, conn_tx).await?;
    check_name(&client, &node).await?;
    let (notices, _) = broadcast::channel(NOTICE_BUFFER);
    let inner = Arc::new(Inner {
        node: node.clone(),
        instance: hex::encode(rand::random::<[u8; 8]>()),
        http,
        client: client.clone(),
        hub: hub.clone(),
        peers: Mutex::new(Peers::default()),
        notices,
        local_api: OnceLock::new(),
        local_api_ready: tokio::sync::Notify::new(),
        runtime: tokio::runtime::Handle::current(),
        connected: AtomicBool::new(true),
        events_published: AtomicU64::new(0),
        events_skipped: AtomicU64::new(0),
        view: config.view,
        watched_until_ms: AtomicI64::new(0),
        watch_tx,
        stop: Mutex::new(Some(stop)),
    });
    let sub = |subject: String| {
        let client = client.clone();
        async move {
            client
                .subscribe(subject.clone())
                .await
                .map_err(|e| ClusterError::Setup(format!("cannot subscribe to {subject}: {e}")))
        }
    };
    let ping = sub(names::ping(&node)).await?;
    let api = sub(names::api(&node)).await?;
    let presence = sub(names::presence()).await?;
    let events = sub(names::all_events()).await?;
    let sessions = sub(names::all("sessions")).await?;
    let metrics = sub(names::all("metrics")).await?;
    let broadcasts = sub(names::all("broadcast")).await?;
    let watches = sub(names::all("watch")).await?;
    // Subscribed before the listeners run: no event of this node is missed.
    let hub_events = hub.subscribe();
    tokio::spawn(answer_pings(inner.clone(), ping));
    tokio::spawn(serve(inner.clone(), api, answer_api));
    tokio::spawn(serve(inner.clone(), sessions, answer_sessions));
    tokio::spawn(serve(inner.clone(), metrics, answer_metrics));
    tokio::spawn(serve(inner.clone(), broadcasts, answer_broadcast));
    tokio::spawn(serve(inner.clone(), watches, answer_watch));
    tokio::spawn(take_presence(inner.clone(), presence));
    tokio::spawn(take_events(inner.clone(), events, watch_rx));
    tokio::spawn(publish_events(inner.clone(), hub_events));
    tokio::spawn(heartbeat(inner.clone()));
    tokio::spawn(watch_connection(inner.clone(), conn_rx));
    // Announce ourselves now, so peers learn of this node before its first second is up.
    publish_presence(&inner, "up").await;
    let _ = client.flush().await;
    tracing::info!(
        "cluster: node {} joined via {}",
        node,
        names::redact_url(&config.url)
    );
    Ok(Cluster { inner })
}

async fn connect(
    config: &ClusterConfig,
    node: &str,
    conn_tx: mpsc::UnboundedSender<async_nats::Event>,
) -> Result<Client, ClusterError> {
    let fail = |reason: String| ClusterError::Connect {
        url: names::redact_url(&config.url),
        reason,
    };
    let mut options = ConnectOptions::new()
        .name(format!("socklab {node}"))
        .connection_timeout(CONNECT_TIMEOUT)
        // Reconnect forever, quickly: an outage of NATS must not outlast itself here.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((250 * attempts as u64).min(1000))
        })
        .event_callback(move |event| {
            let conn_tx = conn_tx.clone();
            async move {
                let _ = conn_tx.send(event);
            }
        });
    let addrs = config
        .url
        .split(',')
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    // Credentials in the URL (the client itself does not read them): `USER:PASSWORD@`,
    // or `TOKEN@`, percent-encoded. --cluster-token wins over a token in the URL.
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    match addrs.first().map(|a| (a.username(), a.password())) {
        Some((Some(user), Some(password))) => {
            options = options.user_and_password(decode(user), decode(password));
        }
        Some((Some(token), None)) if config.token.is_none() => {
            options = options.token(decode(token));
        }
        _ => {}
    }
    if let Some(token) = &config.token {
        options = options.token(token.clone());
    }
    if let Some(creds) = &config.creds {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| fail(format!("credentials file {}: {e}", creds.display())))?;
    }
    if let Some(ca) = &config.ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    match tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(addrs)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail(format!("no answer within {CONNECT_TIMEOUT:?}"))),
    }
}

/// Asks whether a live node already answers to `node`; any answer means the name is taken.
async fn check_name(client: &Client, node: &str) -> Result<(), ClusterError> {
    let probe = client.request(names::ping(node), Bytes::new());
    match tokio::time::timeout(PING_TIMEOUT, probe).await {
        Ok(Ok(reply)) => {
            let other: PingReply = serde_json::from_slice(&reply.payload).unwrap_or(PingReply {
                node: node.into(),
                http: "?".into(),
                pid: 0,
            });
            Err(ClusterError::NameTaken {
                node: node.into(),
                http: other.http,
                pid: other.pid,
            })
        }
        // No responders or no answer in time: the name is free.
        Ok(Err(_)) | Err(_) => Ok(()),
    }
}

async fn answer_pings(inner: Arc<Inner>, mut sub: Subscriber) {
    while let Some(msg) = sub.next().await {
        let reply = PingReply {
            node: inner.node.clone(),
            http: inner.http.to_string(),
            pid: std::process::id(),
        };
        respond(&inner, &msg, &reply).await;
    }
}

async fn respond(inner: &Inner, msg: &Message, body: &impl serde::Serialize) {
    let Some(reply) = msg.reply.clone() else {
        return;
    };
    let payload = serde_json::to_vec(body).unwrap_or_default();
    if let Err(e) = inner.client.publish(reply, payload.into()).await {
        tracing::debug!("cluster: reply not sent: {e}");
    }
}

type Handler =
    fn(Arc<Inner>, Bytes) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>>;

/// Answers each request on `sub` in a task of its own (a slow one holds up no other),
/// except this node's own scatter-gather requests ([`names::ORIGIN_HEADER`]).
async fn serve(inner: Arc<Inner>, mut sub: Subscriber, handler: Handler) {
    while let Some(msg) = sub.next().await {
        let from_here = msg.headers.as_ref().is_some_and(|h| {
            h.get(names::ORIGIN_HEADER)
                .is_some_and(|origin| origin.as_str() == inner.node)
        });
        if from_here {
            continue;
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            let body = handler(inner.clone(), msg.payload.clone()).await;
            respond(&inner, &msg, &body).await;
        });
    }
}

fn answer_api(
    inner: Arc<Inner>,
    payload: Bytes,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>> {
    Box::pin(async move {
        let reply = match serde_json::from_slice::<ApiRequest>(&payload) {
            Err(e) => ApiReply::error(400, format!("bad cluster request: {e}")),
            Ok(req) if !allowed(&req) => ApiReply::error(
                404,
                format!("{} {} is not served to other nodes", req.method, req.path),
            ),
            Ok(req) => super::gather::call_local(&inner, req).await,
        };
        serde_json::to_value(reply).unwrap_or(Value::Null)
    })
}

/// The API calls other nodes may make here: session lookups and operator actions.
pub(super) fn allowed(req: &ApiRequest) -> bool {
    // The routes a cluster answers for every node, each node for itself.
    if matches!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/api/rates" | "/api/periodic") | ("POST", "/api/broadcast/periodic")
    ) {
        return true;
    }
    // Stopping a periodic send this node runs (started through another node).
    if let Some(id) = req.path.strip_prefix("/api/periodic/") {
        return req.method == "DELETE" && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    }
    let Some(rest) = req.path.strip_prefix("/api/sessions/") else {
        return false;
    };
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    matches!(
        (req.method.as_str(), action),
        ("GET", "" | "messages")
            | ("POST", "send" | "close" | "fault" | "periodic")
            | ("PUT", "link" | "label")
            | ("DELETE", "" | "messages")
    )
}

fn answer_sessions(
    inner: Arc<Inner>,
    payload: Bytes,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>> {
    Box::pin(async move {
        let Ok(q) = serde_json::from_slice::<SessionsQuery>(&payload) else {
            return json!({ "node": inner.node, "error": "bad query" });
        };
        if q.node.as_ref().is_some_and(|n| *n != inner.node) {
            return json!({ "node": inner.node, "sessions": [], "total": 0 });
        }
        match super::gather::local_sessions(&inner, &q.state, q.depth).await {
            Ok(reply) => serde_json::to_value(reply).unwrap_or(Value::Null),
            Err(e) => json!({ "node": inner.node, "error": e }),
        }
    })
}

fn answer_metrics(
    inner: Arc<Inner>,
    _payload: Bytes,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>> {
    Box::pin(async move {
        serde_json::to_value(super::gather::local_metrics(&inner)).unwrap_or(Value::Null)
    })
}

fn answer_broadcast(
    inner: Arc<Inner>,
    payload: Bytes,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>> {
    Box::pin(async move {
        let reply = match serde_json::from_slice::<BroadcastRequest>(&payload) {
            Ok(req) => match hex::decode(&req.hex) {
                Ok(data) => {
                    super::gather::local_broadcast(&inner, req.listener_id, data.into()).await
                }
                Err(e) => BroadcastReply {
                    node: inner.node.clone(),
                    sessions: 0,
                    bytes: 0,
                    error: Some(format!("bad hex: {e}")),
                },
            },
            Err(e) => BroadcastReply {
                node: inner.node.clone(),
                sessions: 0,
                bytes: 0,
                error: Some(format!("bad request: {e}")),
            },
        };
        serde_json::to_value(reply).unwrap_or(Value::Null)
    })
}

/// Another node starts showing events: publish data events from now on (for
/// [`WATCH_TTL`], renewed by its heartbeats).
fn answer_watch(
    inner: Arc<Inner>,
    _payload: Bytes,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>> {
    Box::pin(async move {
        extend_watch(&inner);
        json!({ "node": inner.node })
    })
}

/// Another node watches this node's data events: publish them for [`WATCH_TTL`] more.
fn extend_watch(inner: &Inner) {
    let until = crate::clock::now_ms() + WATCH_TTL.as_millis() as i64;
    inner.watched_until_ms.fetch_max(until, Ordering::Relaxed);
}

/// Whether another node watches this node's data events.
fn watched(inner: &Inner) -> bool {
    crate::clock::now_ms() < inner.watched_until_ms.load(Ordering::Relaxed)
}

/// Whether this node shows other nodes' events (an event stream or console view open).
fn watching(inner: &Inner) -> bool {
    inner.notices.receiver_count() > 0
}

/// Holds the data subscription and asks every live node to publish its data events;
/// returns once they answered or the gather deadline passed.
pub(super) async fn start_watching(inner: &Arc<Inner>) {
    let (done_tx, done_rx) = oneshot::channel();
    if inner.watch_tx.send(done_tx).is_ok() {
        let _ = done_rx.await;
    }
    super::gather::ask_to_watch(inner).await;
}

/// Most bytes of events put in one NATS message (well under NATS's default 1 MiB limit).
pub const EVENT_BATCH_BYTES: usize = 256 * 1024;

/// NATS header on an events message that holds a session coming online or going
/// offline: the only events a receiving node must read for its session cache.
pub const SESSIONS_HEADER: &str = "Socklab-Sessions";

/// Events gathered for one NATS message.
#[derive(Default)]
struct Batch {
    /// The events, JSON, one per line.
    lines: Vec<u8>,
    /// How many.
    count: u64,
    /// Whether one is an online or offline event.
    sessions_changed: bool,
    /// Whether they are data events (published on the data subject); a batch holds one
    /// kind, so that events keep their order across the two subjects.
    data: bool,
}

/// Publishes this node's events, ids made global. It is an ordinary hub subscriber: when
/// it falls behind (or NATS is down) it skips events and counts them; they are in the
/// local store, and it sends a `resync` line so that peers' dashboards reload.
///
/// Events already waiting when one is published go with it, one JSON object per line in
/// one NATS message: a broadcast to thousands of devices makes thousands of data events at
/// once, and one message per event would make NATS and every other node carry each alone.
/// Deliveries of one payload among them go as one `deliveries` line ([`burst`]). A lone
/// event still leaves at once.
///
/// Data events (what devices send and get, most of the traffic under load) go on a
/// subject of their own and only while another node watches them ([`WATCH_TTL`]):
/// nobody showing them, nothing is encoded or sent.
async fn publish_events(inner: Arc<Inner>, mut events: broadcast::Receiver<Arc<Event>>) {
    let subjects = Subjects {
        events: names::events(&inner.node),
        data: names::data(&inner.node),
    };
    let subject = &subjects;
    let mut batch = Batch::default();
    let mut group = Deliveries::default();
    loop {
        let first = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                skipped(&inner, subject, &mut batch, n).await;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let publish_data = watched(&inner);
        let mut next = Some(first);
        while let Some(event) = next.take() {
            if matches!(&*event, Event::Data(..)) && !publish_data {
                // Nobody watches: not encoded, not sent (it is in the local store).
            } else if group.matches(&event) {
                group.push(event);
            } else {
                flush_group(&inner, subject, &mut batch, &mut group).await;
                if Deliveries::candidate(&event) {
                    group.push(event);
                } else {
                    add_event(&inner, subject, &mut batch, &event).await;
                }
            }
            next = match events.try_recv() {
                Ok(event) => Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    skipped(&inner, subject, &mut batch, n).await;
                    events.try_recv().ok()
                }
                Err(_) => None,
            };
        }
        flush_group(&inner, subject, &mut batch, &mut group).await;
        publish_batch(&inner, subject, &mut batch).await;
        // A steady stream of events must not keep the heartbeat (same thread) waiting:
        // three missed seconds and the other nodes think this one is gone.
        tokio::task::yield_now().await;
    }
}

/// The two subjects a node publishes its events on.
struct Subjects {
    /// Every event but data ([`names::events`]).
    events: String,
    /// Data events ([`names::data`]).
    data: String,
}

/// Counts `n` events this node could not send (the bridge fell behind) and tells the
/// other nodes, whose dashboards then reload what they show.
async fn skipped(inner: &Inner, subject: &Subjects, batch: &mut Batch, n: u64) {
    inner.events_skipped.fetch_add(n, Ordering::Relaxed);
    let line = json!({ "type": "resync", "node": inner.node, "skipped": n });
    add_line(
        inner,
        subject,
        batch,
        &line.to_string().into_bytes(),
        0,
        false,
    )
    .await;
}

/// Adds one line to the batch (publishing the batch first when it would grow too big or
/// holds the other kind of event).
async fn add_line(
    inner: &Inner,
    subject: &Subjects,
    batch: &mut Batch,
    line: &[u8],
    events: u64,
    data: bool,
) {
    if !batch.lines.is_empty()
        && (batch.data != data || batch.lines.len() + line.len() >= EVENT_BATCH_BYTES)
    {
        publish_batch(inner, subject, batch).await;
    }
    batch.data = data;
    push_line(batch, line, events);
}

fn push_line(batch: &mut Batch, line: &[u8], events: u64) {
    if !batch.lines.is_empty() {
        batch.lines.push(b'\n');
    }
    batch.lines.extend_from_slice(line);
    batch.count += events;
}

/// Adds one event to the batch as its own line.
async fn add_event(inner: &Inner, subject: &Subjects, batch: &mut Batch, event: &Event) {
    if let Some(line) = encode_event(inner, event) {
        let data = matches!(event, Event::Data(..));
        add_line(inner, subject, batch, &line, 1, data).await;
        batch.sessions_changed |= matches!(event, Event::Online(_) | Event::Offline(_));
    }
}

/// Adds the waiting deliveries of one payload: one `deliveries` line when there are
/// enough of them, else one data event each.
async fn flush_group(inner: &Inner, subject: &Subjects, batch: &mut Batch, group: &mut Deliveries) {
    if group.is_empty() {
        return;
    }
    let events = group.take();
    if events.len() >= burst::GROUP_MIN
        && let Some(first) = encode_value(inner, &events[0])
        && let Some(line) = burst::encode_group(&inner.node, &first, &events)
    {
        add_line(inner, subject, batch, &line, events.len() as u64, true).await;
        return;
    }
    for event in &events {
        add_event(inner, subject, batch, event).await;
    }
}

/// One event as it crosses NATS (`None`: it stays local): JSON, ids global, with its node
/// and the time it left.
fn encode_event(inner: &Inner, event: &Event) -> Option<Vec<u8>> {
    serde_json::to_vec(&encode_value(inner, event)?).ok()
}

/// [`encode_event`] before it is written out.
fn encode_value(inner: &Inner, event: &Event) -> Option<Value> {
    // Per-piece link reports (delayed, throttled) stay local: they carry no session.
    if let Event::Link(link) = event
        && link.session.is_none()
    {
        return None;
    }
    let mut value = serde_json::to_value(event).ok()?;
    super::wire::globalize(&mut value, &inner.node);
    value["node"] = Value::String(inner.node.clone());
    value["sent_ms"] = json!(crate::clock::now_ms());
    Some(value)
}

/// Publishes the events in `batch` (or counts them skipped while NATS is down) and
/// empties it.
async fn publish_batch(inner: &Inner, subject: &Subjects, batch: &mut Batch) {
    if batch.lines.is_empty() {
        return;
    }
    let Batch {
        lines,
        count,
        sessions_changed,
        data,
    } = std::mem::take(batch);
    let subject = if data { &subject.data } else { &subject.events }.clone();
    let sent = inner.connected.load(Ordering::Relaxed)
        && if sessions_changed {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(SESSIONS_HEADER, "changed");
            let published = inner
                .client
                .publish_with_headers(subject, headers, lines.into());
            published.await.is_ok()
        } else {
            inner.client.publish(subject, lines.into()).await.is_ok()
        };
    let counter = if sent {
        &inner.events_published
    } else {
        &inner.events_skipped
    };
    counter.fetch_add(count, Ordering::Relaxed);
}

/// Takes in the other nodes' events (one or more per message, one per line): updates the
/// session cache and passes each on. Their data events come on a second subscription,
/// held while this node shows events ([`Cluster::watch`]) and for [`WATCH_LINGER`] after
/// the last viewer left; both are read here, in the order NATS delivered them.
async fn take_events(
    inner: Arc<Inner>,
    mut sub: Subscriber,
    mut watch_rx: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    let mut data: Option<Subscriber> = None;
    let mut unwatched_since: Option<tokio::time::Instant> = None;
    let mut ticker = tokio::time::interval(HEARTBEAT_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let next_data = async {
            match data.as_mut() {
                Some(data) => data.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some(done) = watch_rx.recv() => {
                if data.is_none() {
                    data = inner.client.subscribe(names::all_data()).await.ok();
                    // Bounded: while NATS is down a flush would wait for its return.
                    let _ = tokio::time::timeout(WATCH_FLUSH_WAIT, inner.client.flush()).await;
                }
                unwatched_since = None;
                let _ = done.send(());
            }
            msg = sub.next() => match msg {
                Some(msg) => take_message(&inner, msg),
                None => return,
            },
            Some(msg) = next_data => take_message(&inner, msg),
            _ = ticker.tick() => {
                if data.is_some() && !watching(&inner) {
                    let since = *unwatched_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= WATCH_LINGER
                        && let Some(mut gone) = data.take()
                    {
                        let _ = gone.unsubscribe().await;
                        unwatched_since = None;
                    }
                } else {
                    unwatched_since = None;
                }
            }
        }
    }
}

/// One message of another node's events.
fn take_message(inner: &Arc<Inner>, msg: Message) {
    let Some(node) = names::node_of_events_subject(msg.subject.as_str()) else {
        return;
    };
    if node == inner.node {
        return;
    }
    let lines = msg.payload.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let sessions_changed = msg
        .headers
        .as_ref()
        .is_some_and(|h| h.get(SESSIONS_HEADER).is_some());
    if sessions_changed {
        let mut peers = inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        for line in lines.clone() {
            peers.apply_event(node, line);
        }
    }
    // Nobody listening (no dashboard, no console view): nothing to copy.
    if inner.notices.receiver_count() == 0 {
        return;
    }
    let mut grouped = false;
    for line in lines {
        grouped |= burst::is_group_line(line);
        if let Ok(text) = std::str::from_utf8(line) {
            let _ = inner.notices.send(Arc::from(text));
        }
    }
    // A `deliveries` line stands for many data events a dashboard does not get one by
    // one: it reloads what it shows instead.
    if grouped {
        notice(inner, json!({ "type": "resync", "node": node }));
    }
}

async fn take_presence(inner: Arc<Inner>, mut sub: Subscriber) {
    while let Some(msg) = sub.next().await {
        let Ok(p) = serde_json::from_slice::<Presence>(&msg.payload) else {
            continue;
        };
        if p.watching && p.node != inner.node {
            extend_watch(&inner);
        }
        if p.node == inner.node {
            if p.instance != inner.instance {
                tracing::error!(
                    "cluster: another socklab (http://{}) also calls itself {:?}",
                    p.http,
                    p.node
                );
            }
            continue;
        }
        let (node, bye) = (p.node.clone(), p.state == "bye");
        let change = inner
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .heard(p);
        if change == PeerChange::Up {
            let state = if bye { "gone" } else { "up" };
            notice(
                &inner,
                json!({ "type": "node", "node": node, "state": state }),
            );
            if !bye {
                tokio::spawn(super::gather::refresh_cache(inner.clone(), Some(node)));
            }
        }
    }
}

fn notice(inner: &Inner, value: Value) {
    let _ = inner.notices.send(Arc::from(value.to_string()));
}

pub(super) async fn publish_presence(inner: &Inner, state: &str) {
    let t = &inner.hub.totals;
    let p = Presence {
        node: inner.node.clone(),
        instance: inner.instance.clone(),
        http: inner.http.to_string(),
        state: state.into(),
        online: inner.hub.online_count() as u64,
        bytes_up: t.bytes_up.load(Ordering::Relaxed),
        bytes_down: t.bytes_down.load(Ordering::Relaxed),
        watching: state != "bye" && watching(inner),
    };
    let payload = serde_json::to_vec(&p).unwrap_or_default();
    let _ = inner
        .client
        .publish(names::presence(), payload.into())
        .await;
}

/// Heartbeats, and the notice that a node went silent (its sessions: unreachable).
async fn heartbeat(inner: Arc<Inner>) {
    let mut ticker = tokio::time::interval(HEARTBEAT_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        if inner.connected.load(Ordering::Relaxed) {
            publish_presence(&inner, "up").await;
        }
        let silent = inner
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .went_silent(HEARTBEAT_EVERY);
        for node in silent {
            tracing::warn!("cluster: node {node} is not answering");
            notice(
                &inner,
                json!({ "type": "node", "node": node, "state": "unreachable" }),
            );
            notice(&inner, json!({ "type": "resync" }));
        }
    }
}

/// Follows the NATS connection: a reconnect re-announces this node, refreshes what it
/// knows of the others and tells dashboards to resync.
async fn watch_connection(
    inner: Arc<Inner>,
    mut events: mpsc::UnboundedReceiver<async_nats::Event>,
) {
    while let Some(event) = events.recv().await {
        match event {
            async_nats::Event::Connected => {
                inner.connected.store(true, Ordering::Relaxed);
                tracing::info!("cluster: connected to NATS");
                publish_presence(&inner, "up").await;
                notice(&inner, json!({ "type": "cluster", "state": "connected" }));
                notice(&inner, json!({ "type": "resync" }));
                tokio::spawn(super::gather::refresh_cache(inner.clone(), None));
            }
            async_nats::Event::Disconnected => {
                inner.connected.store(false, Ordering::Relaxed);
                tracing::warn!("cluster: lost NATS; devices are served and stored locally");
                notice(
                    &inner,
                    json!({ "type": "cluster", "state": "disconnected" }),
                );
            }
            async_nats::Event::SlowConsumer(_) => {
                tracing::warn!("cluster: this node falls behind other nodes' events");
                notice(&inner, json!({ "type": "resync" }));
            }
            other => tracing::debug!("cluster: {other}"),
        }
    }
}

/// Tells the others this node is leaving on purpose, and flushes.
pub(super) async fn say_goodbye(inner: &Inner) {
    publish_presence(inner, "bye").await;
    let _ = tokio::time::timeout(Duration::from_secs(1), inner.client.flush()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str) -> ApiRequest {
        ApiRequest {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            body: String::new(),
        }
    }

    /// Only session lookups and actions are served to other nodes.
    #[test]
    fn allowlist() {
        assert!(allowed(&req("POST", "/api/sessions/3/send")));
        assert!(allowed(&req("GET", "/api/sessions/3/messages")));
        assert!(allowed(&req("PUT", "/api/sessions/3/link")));
        assert!(allowed(&req("GET", "/api/sessions/3")));
        assert!(!allowed(&req("GET", "/api/sessions")));
        assert!(!allowed(&req("POST", "/api/broadcast")));
        // History housekeeping and labels of a session go to its node too.
        assert!(allowed(&req("DELETE", "/api/sessions/3")));
        assert!(allowed(&req("DELETE", "/api/sessions/3/messages")));
        assert!(allowed(&req("PUT", "/api/sessions/3/label")));
        assert!(!allowed(&req("DELETE", "/api/sessions/3/send")));
        assert!(!allowed(&req("DELETE", "/api/messages")));
        assert!(!allowed(&req("POST", "/api/sessions/x/send")));
        assert!(allowed(&req("POST", "/api/sessions/3/periodic")));
        assert!(allowed(&req("DELETE", "/api/periodic/7")));
        assert!(!allowed(&req("GET", "/api/periodic/7")));
        assert!(!allowed(&req("DELETE", "/api/periodic/")));
        assert!(!allowed(&req("DELETE", "/api/snippets/x")));
        assert!(!allowed(&req("PUT", "/api/listeners/0/echo")));
        assert!(allowed(&req("GET", "/api/rates")));
        assert!(allowed(&req("GET", "/api/periodic")));
        assert!(allowed(&req("POST", "/api/broadcast/periodic")));
        assert!(!allowed(&req("POST", "/api/periodic")));
        assert!(!allowed(&req("DELETE", "/api/rates")));
    }
}

//! The hub: the registry of online sessions, the fan-out of events, the recording of
//! everything that moves, and every operator action, shared by the console, the API,
//! schedules and any other front end.
//!
//! Data from devices goes to the store through a bounded queue the device task awaits
//! (nothing is lost), and to subscribers through a `broadcast` channel that never waits:
//! a slow subscriber (a stalled browser, a console piped to a slow terminal) lags and
//! skips events, while the device keeps being read. The hub never touches a socket:
//! data for a device goes into the session's outbox (TCP) or its listener's down queue
//! (UDP), and the listener loop writes it.
//!
//! Layout: `mod.rs` (registry, events, recording), [`actions`] (send, broadcast, close,
//! echo, auto-replies), `link` (set a link, inject a fault), [`listeners`] (listeners
//! added and removed at run time, the [`listeners::Sockets`] seam to the listener layer),
//! [`connect`] (client mode: sessions socklab opens to a device), [`history`] (delete
//! history), [`labels`] (device labels, `--label-from`), [`error`] ([`ActionError`]),
//! [`snippets`] (saved send snippets), [`periodic`] (send every N ms).

pub mod actions;
pub mod connect;
pub mod error;
pub mod history;
pub mod labels;
mod link;
pub mod listeners;
pub mod periodic;
pub mod snippets;
mod tls;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::clock;
use crate::listener_state::ListenerState;
use crate::model::{
    Direction, EndReason, Event, LinkAction, LinkEvent, ListenerInfo, LiveCounters, MessageInfo,
    MessageStatus, SessionInfo, SessionMeta,
};
use crate::session::{Outbox, SessionHandle};
use crate::store::{Store, StoreOp};

pub use actions::{MAX_UDP_PAYLOAD, SEND_WAIT};
pub use error::ActionError;
pub use history::HistoryError;

/// Events a subscriber may fall behind by before it starts skipping.
pub const EVENT_BUFFER: usize = 1024;

/// Process-wide counters for `/metrics`: sessions started, and the traffic of all
/// sessions (the same [`LiveCounters`] each session has, reachable as `totals.bytes_up`).
#[derive(Debug, Default)]
pub struct Totals {
    /// Sessions started since socklab started.
    pub sessions: AtomicU64,
    /// Traffic of every session together.
    pub traffic: LiveCounters,
    /// Failed TLS handshakes, by kind.
    pub tls_failures: crate::model::TlsFailureCounts,
}

impl std::ops::Deref for Totals {
    type Target = LiveCounters;
    fn deref(&self) -> &LiveCounters {
        &self.traffic
    }
}

/// Owns the online sessions and fans their events out.
#[derive(Debug)]
pub struct Hub {
    /// Online sessions by id. A std mutex: held only for map operations, never across
    /// an await.
    sessions: Mutex<HashMap<u64, Arc<SessionHandle>>>,
    /// Listeners by id: command-line ones (numbered in order from 0), those added at run
    /// time and the entries of outgoing connections. Held only for map operations.
    listeners: RwLock<BTreeMap<u32, Arc<ListenerState>>>,
    /// Next id for a run-time listener or outgoing connection (after every id in use or
    /// in the history).
    next_listener_id: AtomicU32,
    /// The listener layer's way to bind and connect at run time (set by the server).
    sockets: OnceLock<Arc<dyn listeners::Sockets>>,
    /// Live events; `send` never blocks, lagging receivers skip.
    events: broadcast::Sender<Arc<Event>>,
    /// History.
    store: Arc<Store>,
    /// Next session id (continues after the database's largest).
    next_session_id: AtomicU64,
    /// Next message id (continues after the database's largest).
    next_message_id: AtomicU64,
    /// Counters for metrics.
    pub totals: Totals,
    /// Bytes dropped by emulated links.
    link_dropped: AtomicU64,
    /// `--label-from`: takes a label from a device's first upload.
    label_from: std::sync::OnceLock<regex::bytes::Regex>,
    /// Periodic sends running.
    periodic: periodic::Periodics,
}

impl Hub {
    /// Creates a hub for these listeners, writing to `store`.
    pub fn new(listeners: Vec<Arc<ListenerState>>, store: Arc<Store>) -> Hub {
        let (session_max, message_max) = store.max_ids();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let next_listener_id = listeners
            .iter()
            .map(|l| l.id.saturating_add(1))
            .chain(store.max_listener_id().map(|id| id.saturating_add(1)))
            .max()
            .unwrap_or(0);
        Hub {
            sessions: Mutex::new(HashMap::new()),
            listeners: RwLock::new(listeners.into_iter().map(|l| (l.id, l)).collect()),
            next_listener_id: AtomicU32::new(next_listener_id),
            sockets: OnceLock::new(),
            events,
            store,
            next_session_id: AtomicU64::new(session_max + 1),
            next_message_id: AtomicU64::new(message_max + 1),
            totals: Totals::default(),
            link_dropped: AtomicU64::new(0),
            label_from: std::sync::OnceLock::new(),
            periodic: periodic::Periodics::default(),
        }
    }

    /// The store this hub writes to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Subscribes to live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Bytes the emulated links dropped, both ways (a metric).
    pub fn link_dropped_bytes(&self) -> u64 {
        self.link_dropped.load(Ordering::Relaxed)
    }

    /// Whether anyone listens to live events.
    pub fn has_subscribers(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// Publishes a link event when someone listens (building it costs nothing otherwise).
    pub fn link_event(&self, make: impl FnOnce() -> LinkEvent) {
        if self.has_subscribers() {
            self.publish(Event::Link(Arc::new(make())));
        }
    }

    /// Publishes a link state change of `handle` (with its snapshot).
    pub fn link_state(&self, handle: &SessionHandle, action: LinkAction, delay: Duration) {
        self.link_event(|| LinkEvent::state(handle.info(None), action, delay));
    }

    /// The online sessions (of one listener).
    pub fn sessions_of(&self, listener: Option<u32>) -> Vec<Arc<SessionHandle>> {
        self.registry()
            .values()
            .filter(|h| listener.is_none_or(|l| h.meta.listener_id == l))
            .cloned()
            .collect()
    }

    fn publish(&self, event: Event) {
        // An error only means nobody is subscribed right now.
        let _ = self.events.send(Arc::new(event));
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<SessionHandle>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new session of `listener` with the device at `peer`, records it and
    /// announces it. TCP sessions pass their `outbox`.
    pub async fn open_session(
        &self,
        listener: &ListenerState,
        peer: std::net::SocketAddr,
        outbox: Option<Outbox>,
    ) -> Arc<SessionHandle> {
        self.open_session_with(listener, peer, outbox, None).await
    }

    /// [`Hub::open_session`] for a session with TLS details (a TLS listener's).
    pub async fn open_session_with(
        &self,
        listener: &ListenerState,
        peer: std::net::SocketAddr,
        outbox: Option<Outbox>,
        tls: Option<Arc<crate::model::TlsInfo>>,
    ) -> Arc<SessionHandle> {
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let meta = SessionMeta {
            id,
            listener_id: listener.id,
            proto: listener.proto,
            peer,
            local: listener.addr,
            started_ms: clock::now_ms(),
            tls,
            outgoing: listener.remote.is_some(),
        };
        let handle = Arc::new(SessionHandle::new(meta, listener.link(), outbox));
        self.registry().insert(id, handle.clone());
        self.totals.sessions.fetch_add(1, Ordering::Relaxed);
        let info = handle.info(None);
        self.store
            .submit(StoreOp::SessionStart(Box::new(info.clone())))
            .await;
        self.publish(Event::Online(info));
        handle
    }

    /// Records data that went up or down: counters, store (waiting for room, which is the
    /// back-pressure on the device), then the live event.
    pub async fn record(&self, handle: &SessionHandle, direction: Direction, data: Bytes) {
        if direction == Direction::Up && handle.counters.msgs_up.load(Ordering::Relaxed) == 0 {
            self.label_first_upload(handle, &data).await;
        }
        handle.count(direction, data.len());
        self.totals.traffic.count(direction, data.len());
        self.store_and_publish(handle, direction, data, MessageStatus::Ok)
            .await;
    }

    /// Records data the emulated link dropped: stored and announced (marked `dropped`),
    /// but not counted as traffic, since it never reached the other side.
    pub async fn record_dropped(&self, handle: &SessionHandle, dir: Direction, data: Bytes) {
        self.link_dropped
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.store_and_publish(handle, dir, data, MessageStatus::Dropped)
            .await;
    }

    /// Records data accepted for the device that was never written (the session ended
    /// first): stored and announced as `undelivered`, not counted as traffic.
    pub async fn record_undelivered(&self, handle: &SessionHandle, data: Bytes) {
        self.store_and_publish(handle, Direction::Down, data, MessageStatus::Undelivered)
            .await;
    }

    /// Records data for the device the socket refused: stored and announced as `failed`.
    pub async fn record_failed(&self, handle: &SessionHandle, data: Bytes) {
        self.store_and_publish(handle, Direction::Down, data, MessageStatus::Failed)
            .await;
    }

    async fn store_and_publish(
        &self,
        handle: &SessionHandle,
        direction: Direction,
        data: Bytes,
        status: MessageStatus,
    ) {
        let message = Arc::new(MessageInfo::new(
            self.next_message_id.fetch_add(1, Ordering::Relaxed),
            handle.id(),
            clock::now_ms(),
            direction,
            data,
            status,
        ));
        self.store.submit(StoreOp::Message(message.clone())).await;
        if self.events.receiver_count() > 0 {
            self.publish(Event::Data(message, handle.info(None)));
        }
    }

    /// Ends a session once: records the end, unregisters, announces it and wakes waiters.
    /// Later calls for the same session do nothing. The end is queued for the store before
    /// the session leaves the registry, so a reader that no longer finds it online finds
    /// its end in the history (after a flush), never a session that looks online.
    pub async fn end_session(&self, handle: &SessionHandle, reason: EndReason) {
        if !handle.begin_end() {
            return;
        }
        let info = handle.info(Some((clock::now_ms(), reason)));
        self.store
            .submit(StoreOp::SessionEnd(Box::new(info.clone())))
            .await;
        self.registry().remove(&handle.id());
        self.publish(Event::Offline(info));
        handle.mark_ended();
    }

    /// The online session with this id.
    pub fn online(&self, id: u64) -> Option<Arc<SessionHandle>> {
        self.registry().get(&id).cloned()
    }

    /// Snapshots of all online sessions, newest first.
    pub fn online_sessions(&self) -> Vec<SessionInfo> {
        self.online_page(0, usize::MAX).0
    }

    /// One page of the online sessions, newest first (`offset` sessions skipped, at most
    /// `limit` shown), and how many are online. Only the page's sessions are snapshotted,
    /// and not under the registry's lock, so a listing costs little while devices come and
    /// go, however many are online.
    pub fn online_page(&self, offset: usize, limit: usize) -> (Vec<SessionInfo>, usize) {
        let (page, total) = {
            let registry = self.registry();
            let mut ids: Vec<u64> = registry.keys().copied().collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            let page: Vec<Arc<SessionHandle>> = ids
                .iter()
                .skip(offset)
                .take(limit)
                .filter_map(|id| registry.get(id).cloned())
                .collect();
            (page, ids.len())
        };
        (page.iter().map(|h| h.info(None)).collect(), total)
    }

    /// Number of online sessions.
    pub fn online_count(&self) -> usize {
        self.registry().len()
    }

    fn listener_map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Arc<ListenerState>>> {
        self.listeners.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The listener with this id.
    pub fn listener(&self, id: u32) -> Result<Arc<ListenerState>, ActionError> {
        self.listener_map()
            .get(&id)
            .cloned()
            .ok_or(ActionError::NoListener(id))
    }

    /// Snapshots of all listeners, by id.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        let mut online: HashMap<u32, usize> = HashMap::new();
        for h in self.registry().values() {
            *online.entry(h.meta.listener_id).or_default() += 1;
        }
        self.listener_map()
            .values()
            .map(|l| l.info(online.get(&l.id).copied().unwrap_or(0)))
            .collect()
    }

    /// The ids of all listeners, in order.
    pub fn listener_ids(&self) -> Vec<u32> {
        self.listener_map().keys().copied().collect()
    }

    /// Number of listeners.
    pub fn listener_count(&self) -> usize {
        self.listener_map().len()
    }
}

//! The hub: the registry of online sessions, the fan-out of events, and the operator
//! actions (send, broadcast, close, echo, auto-reply) shared by the console and the API.
//!
//! Data from devices goes to the store through a bounded queue the device task awaits
//! (nothing is lost), and to subscribers through a `broadcast` channel that never waits:
//! a slow subscriber (a stalled browser, a console piped to a slow terminal) lags and
//! skips events, while the device keeps being read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::clock;
use crate::model::{Direction, EndReason, Event, ListenerInfo, MessageInfo, SessionInfo};
use crate::rules::Rule;
use crate::session::{ListenerState, OutboxError, Outlet, SessionHandle};
use crate::store::{Store, StoreOp};

/// How long a send waits for room in a TCP session's outbox before giving up.
pub const SEND_WAIT: Duration = Duration::from_secs(5);

/// Events a subscriber may fall behind by before it starts skipping.
pub const EVENT_BUFFER: usize = 1024;

/// Why an operator action could not be done.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such session is online (it may exist in history: the API tells 404 from 409).
    #[error("session {0} is not online")]
    NotOnline(u64),
    /// No listener has that id.
    #[error("no listener with id {0}")]
    NoListener(u32),
    /// The session's outbox stayed full for [`SEND_WAIT`]: the device is not reading.
    #[error("session {0} is not reading: its outbox is full")]
    Busy(u64),
}

/// Process-wide counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Totals {
    /// Sessions started since socklab started.
    pub sessions: AtomicU64,
    /// Bytes from devices.
    pub bytes_up: AtomicU64,
    /// Bytes to devices.
    pub bytes_down: AtomicU64,
    /// Messages from devices.
    pub msgs_up: AtomicU64,
    /// Messages to devices.
    pub msgs_down: AtomicU64,
}

/// Owns the online sessions and fans their events out.
#[derive(Debug)]
pub struct Hub {
    /// Online sessions by id. A std mutex: held only for map operations, never across
    /// an await.
    sessions: Mutex<HashMap<u64, Arc<SessionHandle>>>,
    /// Listeners in command-line order (index = id).
    listeners: Vec<Arc<ListenerState>>,
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
}

impl Hub {
    /// Creates a hub for these listeners, writing to `store`.
    pub fn new(listeners: Vec<Arc<ListenerState>>, store: Arc<Store>) -> Hub {
        let (session_max, message_max) = store.max_ids();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Hub {
            sessions: Mutex::new(HashMap::new()),
            listeners,
            events,
            store,
            next_session_id: AtomicU64::new(session_max + 1),
            next_message_id: AtomicU64::new(message_max + 1),
            totals: Totals::default(),
            link_dropped: AtomicU64::new(0),
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
    pub(crate) fn has_subscribers(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// Fans an event out (for the link module).
    pub(crate) fn publish_event(&self, event: Event) {
        self.publish(event);
    }

    /// The online sessions (of one listener).
    pub(crate) fn sessions_of(&self, listener: Option<u32>) -> Vec<Arc<SessionHandle>> {
        self.registry()
            .values()
            .filter(|h| listener.is_none_or(|l| h.listener_id == l))
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

    /// Registers a new session, records it and announces it.
    pub(crate) async fn open_session(
        &self,
        listener: &ListenerState,
        peer: std::net::SocketAddr,
        outlet: Outlet,
    ) -> Arc<SessionHandle> {
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::new(SessionHandle::new(
            id,
            listener,
            peer,
            clock::now_ms(),
            outlet,
        ));
        self.registry().insert(id, handle.clone());
        self.totals.sessions.fetch_add(1, Ordering::Relaxed);
        let info = handle.info(None);
        self.store.submit(StoreOp::SessionStart(info.clone())).await;
        self.publish(Event::Online(info));
        handle
    }

    /// Records data that went up or down: counters, store (waiting for room, which is the
    /// back-pressure on the device), then the live event.
    pub(crate) async fn record(&self, handle: &SessionHandle, direction: Direction, data: Bytes) {
        self.record_message(handle, direction, data, false).await;
    }

    /// Records data the emulated link dropped: stored and announced (marked `dropped`),
    /// but not counted as traffic, since it never reached the other side.
    pub(crate) async fn record_dropped(&self, handle: &SessionHandle, dir: Direction, data: Bytes) {
        self.record_message(handle, dir, data, true).await;
    }

    async fn record_message(
        &self,
        handle: &SessionHandle,
        direction: Direction,
        data: Bytes,
        dropped: bool,
    ) {
        if dropped {
            self.link_dropped
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            return self.store_and_publish(handle, direction, data, true).await;
        }
        handle.count(direction, data.len());
        let (bytes, msgs) = match direction {
            Direction::Up => (&self.totals.bytes_up, &self.totals.msgs_up),
            Direction::Down => (&self.totals.bytes_down, &self.totals.msgs_down),
        };
        bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        msgs.fetch_add(1, Ordering::Relaxed);
        self.store_and_publish(handle, direction, data, false).await;
    }

    async fn store_and_publish(
        &self,
        handle: &SessionHandle,
        direction: Direction,
        data: Bytes,
        dropped: bool,
    ) {
        let message = Arc::new(MessageInfo {
            id: self.next_message_id.fetch_add(1, Ordering::Relaxed),
            session_id: handle.id,
            ts_ms: clock::now_ms(),
            direction,
            data,
            dropped,
        });
        self.store.submit(StoreOp::Message(message.clone())).await;
        if self.events.receiver_count() > 0 {
            self.publish(Event::Data(message, handle.info(None)));
        }
    }

    /// Ends a session once: records the end, unregisters, announces it and wakes waiters.
    /// Later calls for the same session do nothing. The end is queued for the store before
    /// the session leaves the registry, so a reader that no longer finds it online finds
    /// its end in the history (after a flush), never a session that looks online.
    pub(crate) async fn end_session(&self, handle: &SessionHandle, reason: EndReason) {
        if !handle.begin_end() {
            return;
        }
        let info = handle.info(Some((clock::now_ms(), reason)));
        self.store.submit(StoreOp::SessionEnd(info.clone())).await;
        self.registry().remove(&handle.id);
        self.publish(Event::Offline(info));
        handle.mark_ended();
    }

    /// The online session with this id.
    pub fn online(&self, id: u64) -> Option<Arc<SessionHandle>> {
        self.registry().get(&id).cloned()
    }

    /// Snapshots of all online sessions, newest first.
    pub fn online_sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self.registry().values().map(|h| h.info(None)).collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.id));
        all
    }

    /// Number of online sessions.
    pub fn online_count(&self) -> usize {
        self.registry().len()
    }

    /// Sends `data` to one online session. For TCP it waits up to [`SEND_WAIT`] for room in
    /// the session's outbox (bounded; full when the device stops reading); the session task
    /// records and writes it in order.
    pub async fn send(&self, id: u64, data: Bytes) -> Result<usize, ActionError> {
        let handle = self.online(id).ok_or(ActionError::NotOnline(id))?;
        self.send_to(&handle, data, SEND_WAIT).await
    }

    async fn send_to(
        &self,
        handle: &SessionHandle,
        data: Bytes,
        wait: Duration,
    ) -> Result<usize, ActionError> {
        if handle.is_ending() {
            return Err(ActionError::NotOnline(handle.id));
        }
        let len = data.len();
        match &handle.outlet {
            Outlet::Tcp(outbox) => match outbox.send_timeout(data, wait).await {
                Ok(()) => {}
                Err(OutboxError::Full) => return Err(ActionError::Busy(handle.id)),
                Err(OutboxError::Closed) => return Err(ActionError::NotOnline(handle.id)),
            },
            Outlet::Udp(socket) => {
                // With an active link the listener task sends it through the link.
                let Err(data) = crate::link::udp::divert(self, handle, data).await else {
                    return Ok(len);
                };
                self.record(handle, Direction::Down, data.clone()).await;
                if let Err(e) = socket.send_to(&data, handle.peer).await {
                    tracing::warn!("session {}: udp send to {}: {e}", handle.id, handle.peer);
                }
            }
        }
        Ok(len)
    }

    /// Sends `data` to every online session, or those of one listener. Returns the number
    /// of sessions reached and the bytes sent in total. A TCP device whose outbox is full
    /// (it does not read) is skipped rather than waited for, so one stalled device cannot
    /// hold up a broadcast to thousands.
    pub async fn broadcast(
        &self,
        listener_id: Option<u32>,
        data: Bytes,
    ) -> Result<(usize, usize), ActionError> {
        if let Some(id) = listener_id {
            self.listener(id)?;
        }
        let targets: Vec<Arc<SessionHandle>> = self
            .registry()
            .values()
            .filter(|h| listener_id.is_none_or(|l| h.listener_id == l))
            .cloned()
            .collect();
        let (mut sessions, mut bytes) = (0, 0);
        for handle in targets {
            if let Ok(n) = self.send_to(&handle, data.clone(), Duration::ZERO).await {
                sessions += 1;
                bytes += n;
            }
        }
        Ok((sessions, bytes))
    }

    /// Closes an online session and returns once it has ended.
    pub async fn close(&self, id: u64) -> Result<(), ActionError> {
        let handle = self.online(id).ok_or(ActionError::NotOnline(id))?;
        match handle.outlet {
            // The connection task owns the socket: ask it, then wait for its end.
            Outlet::Tcp(_) => {
                handle.close_requested.notify_one();
                handle.wait_ended().await;
            }
            // UDP has nothing to tear down; the listener forgets the peer when it sees
            // the handle ended.
            Outlet::Udp(_) => self.end_session(&handle, EndReason::ClosedByOperator).await,
        }
        Ok(())
    }

    /// The listener with this id.
    pub fn listener(&self, id: u32) -> Result<&Arc<ListenerState>, ActionError> {
        self.listeners
            .get(id as usize)
            .ok_or(ActionError::NoListener(id))
    }

    /// Snapshots of all listeners.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        let mut online = vec![0usize; self.listeners.len()];
        for h in self.registry().values() {
            if let Some(n) = online.get_mut(h.listener_id as usize) {
                *n += 1;
            }
        }
        self.listeners
            .iter()
            .map(|l| l.info(online[l.id as usize]))
            .collect()
    }

    pub(crate) fn listener_changed(&self, id: u32) -> ListenerInfo {
        let info = self.listeners().swap_remove(id as usize);
        self.publish(Event::Listener(info.clone()));
        info
    }

    /// Turns a listener's echo mode on or off.
    pub fn set_echo(&self, id: u32, on: bool) -> Result<ListenerInfo, ActionError> {
        self.listener(id)?.set_echo(on);
        Ok(self.listener_changed(id))
    }

    /// Replaces a listener's auto-reply rules.
    pub fn set_rules(&self, id: u32, rules: Vec<Rule>) -> Result<ListenerInfo, ActionError> {
        self.listener(id)?.set_rules(rules);
        Ok(self.listener_changed(id))
    }

    /// Number of listeners.
    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }
}

//! Per-session and per-listener live state held by the hub.
//!
//! A [`SessionHandle`] is what the hub keeps for an online session: identity, live
//! counters, and the way to reach the device ([`Outlet`]). It is deliberately small
//! (a few atomics and an inline bounded queue, [`Outbox`]) because socklab aims at tens of
//! thousands of idle connections; read buffers are allocated only while data is being read.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

use crate::link::{LinkCell, LinkControl, LinkSpec};

use crate::model::{Counters, Direction, ListenerInfo, Proto, SessionInfo};
use crate::rules::Rule;

/// How the hub reaches a device.
#[derive(Debug)]
pub enum Outlet {
    /// Data for a TCP device goes through its connection task, which owns the socket and
    /// writes in order; the outbox is bounded so a device that stops reading pushes back
    /// on the sender instead of growing a queue.
    Tcp(Outbox),
    /// UDP datagrams are sent straight from the shared listener socket.
    Udp(Arc<UdpSocket>),
}

/// Why a send to an [`Outbox`] failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OutboxError {
    /// Still full when the wait ran out: the device is not reading.
    Full,
    /// The connection task has finished; nothing will be written any more.
    Closed,
}

/// A TCP session's queue of data for the device: bounded, many senders, one reader (the
/// connection task).
///
/// It replaces a `tokio::sync::mpsc::channel(OUTBOX_CAPACITY)`, which allocates ~1.5 KiB up
/// front (the shared channel plus a block of 32 slots) even for the many devices nobody
/// ever sends to. This lives inline in the session handle and allocates only when data is
/// queued (the `VecDeque` grows to at most the capacity).
#[derive(Debug)]
pub struct Outbox {
    /// Queued data, oldest first; locked only to push or pop, never across an await.
    queue: Mutex<VecDeque<Bytes>>,
    /// Most entries `queue` may hold.
    capacity: usize,
    /// Set when the connection task is done: sends fail instead of queueing.
    closed: AtomicBool,
    /// Wakes the reader after a push (a stored permit if it is not waiting).
    data_ready: Notify,
    /// Wakes a sender waiting for room after a pop; all of them on close.
    room: Notify,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` entries (no allocation yet).
    pub(crate) fn new(capacity: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            closed: AtomicBool::new(false),
            data_ready: Notify::new(),
            room: Notify::new(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Bytes>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `data`, waiting up to `wait` for room (with `Duration::ZERO`: only if there
    /// is room now).
    pub(crate) async fn send_timeout(
        &self,
        data: Bytes,
        wait: Duration,
    ) -> Result<(), OutboxError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut data = Some(data);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Register before checking, so a pop or close in between is not missed.
            room.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return Err(OutboxError::Closed);
            }
            {
                let mut queue = self.queue();
                if queue.len() < self.capacity {
                    queue.extend(data.take());
                }
            }
            if data.is_none() {
                self.data_ready.notify_one();
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(OutboxError::Full);
            }
        }
    }

    /// Waits for the oldest queued entry and takes it. Cancel-safe: an entry is taken only
    /// in the poll that returns it, so a `select!` that picks another branch loses nothing.
    pub(crate) async fn recv(&self) -> Bytes {
        loop {
            let ready = self.data_ready.notified();
            tokio::pin!(ready);
            // Register before checking, so a push in between is not missed.
            ready.as_mut().enable();
            let popped = self.queue().pop_front();
            if let Some(data) = popped {
                self.room.notify_one();
                return data;
            }
            ready.await;
        }
    }

    /// Refuses further sends, wakes the senders waiting for room (they fail as closed) and
    /// frees what is still queued (it will never be written). Called by the connection
    /// task when it is done with the device.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
        let dropped = std::mem::take(&mut *self.queue());
        drop(dropped);
    }
}

/// Live state of one online session.
#[derive(Debug)]
pub struct SessionHandle {
    /// Session id (unique across restarts).
    pub id: u64,
    /// The listener that accepted it.
    pub listener_id: u32,
    /// Transport.
    pub proto: Proto,
    /// Device address.
    pub peer: SocketAddr,
    /// Local address of the listener.
    pub local: SocketAddr,
    /// Start time, Unix milliseconds.
    pub started_ms: i64,
    /// Bytes/messages each way, updated by whoever moves the data.
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    msgs_up: AtomicU64,
    msgs_down: AtomicU64,
    /// Route to the device.
    pub(crate) outlet: Outlet,
    /// Signalled by an operator close; the TCP task notices it even while blocked in a
    /// write to a device that does not read.
    pub(crate) close_requested: Notify,
    /// Set by the first caller of `end_session`: the guard that makes the end happen once.
    ending: AtomicBool,
    /// Set once the end is recorded and announced.
    ended: AtomicBool,
    /// Wakes everyone waiting for the end (an API close waits so its answer is final).
    ended_notify: Notify,
    /// The emulated link: operators write it, the session's task watches it.
    pub(crate) link: LinkCell,
    /// The emulated carrier NAT has dropped this connection.
    pub(crate) nat_dropped: AtomicBool,
    /// An operator asked the link to reset the connection (the TCP task acts on it).
    pub(crate) reset_requested: AtomicBool,
}

impl SessionHandle {
    /// Creates the live state of a new session.
    pub(crate) fn new(
        id: u64,
        listener: &ListenerState,
        peer: SocketAddr,
        started_ms: i64,
        outlet: Outlet,
    ) -> SessionHandle {
        SessionHandle {
            id,
            listener_id: listener.id,
            proto: listener.proto,
            peer,
            local: listener.addr,
            started_ms,
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            msgs_up: AtomicU64::new(0),
            msgs_down: AtomicU64::new(0),
            outlet,
            close_requested: Notify::new(),
            ending: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            ended_notify: Notify::new(),
            link: LinkCell::new(LinkControl {
                spec: listener.link(),
                outage_until: None,
            }),
            nat_dropped: AtomicBool::new(false),
            reset_requested: AtomicBool::new(false),
        }
    }

    /// Adds one message of `len` bytes to the counters.
    pub(crate) fn count(&self, direction: Direction, len: usize) {
        let len = len as u64;
        match direction {
            Direction::Up => {
                self.bytes_up.fetch_add(len, Ordering::Relaxed);
                self.msgs_up.fetch_add(1, Ordering::Relaxed);
            }
            Direction::Down => {
                self.bytes_down.fetch_add(len, Ordering::Relaxed);
                self.msgs_down.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Current counters.
    pub fn counters(&self) -> Counters {
        Counters {
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            msgs_up: self.msgs_up.load(Ordering::Relaxed),
            msgs_down: self.msgs_down.load(Ordering::Relaxed),
        }
    }

    /// A snapshot for the API and events; `ended` fills in the end when it is known.
    pub fn info(&self, ended: Option<(i64, crate::model::EndReason)>) -> SessionInfo {
        SessionInfo {
            id: self.id,
            listener_id: self.listener_id,
            proto: self.proto,
            peer: self.peer,
            local: self.local,
            started_ms: self.started_ms,
            ended_ms: ended.map(|e| e.0),
            end_reason: ended.map(|e| e.1),
            counters: self.counters(),
            link: crate::link::view(self),
        }
    }

    /// Whether the session has ended.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Claims the right to end the session; `false` if someone already did.
    pub(crate) fn begin_end(&self) -> bool {
        !self.ending.swap(true, Ordering::AcqRel)
    }

    /// Whether the session is ending or has ended (sends to it are refused).
    pub fn is_ending(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    /// Marks the session ended and wakes the waiters.
    pub(crate) fn mark_ended(&self) {
        self.ended.store(true, Ordering::Release);
        self.ended_notify.notify_waiters();
    }

    /// Waits until the session has ended (returns at once if it already has).
    pub async fn wait_ended(&self) {
        loop {
            let notified = self.ended_notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag so a concurrent `mark_ended` is not missed.
            notified.as_mut().enable();
            if self.is_ended() {
                return;
            }
            notified.await;
        }
    }
}

/// Live state of one listener: its address and the modes operators can change.
#[derive(Debug)]
pub struct ListenerState {
    /// Index in command-line order.
    pub id: u32,
    /// Transport.
    pub proto: Proto,
    /// Bound address (real port).
    pub addr: SocketAddr,
    /// Echo mode: send every incoming chunk back.
    echo: AtomicBool,
    /// Auto-reply rules; replaced whole, read by every incoming chunk (cheap `Arc` clone).
    rules: RwLock<Arc<Vec<Rule>>>,
    /// The link new sessions start with (read once per session start).
    link: RwLock<Option<Arc<LinkSpec>>>,
    /// `--seed`: makes the links' jitter and loss reproducible.
    seed: Option<u64>,
    /// UDP listeners: where operator sends to a session with an active link go (the
    /// listener task owns the link state); set once the task runs.
    pub(crate) udp_link_tx: std::sync::OnceLock<mpsc::Sender<(u64, Bytes)>>,
}

impl ListenerState {
    /// Creates a listener's state with its initial modes.
    pub fn new(id: u32, proto: Proto, addr: SocketAddr, echo: bool, rules: Vec<Rule>) -> Self {
        ListenerState {
            id,
            proto,
            addr,
            echo: AtomicBool::new(echo),
            rules: RwLock::new(Arc::new(rules)),
            link: RwLock::new(None),
            seed: None,
            udp_link_tx: std::sync::OnceLock::new(),
        }
    }

    /// Sets the initial link and the link seed (builder style, at bind time).
    pub fn with_link(mut self, link: Option<LinkSpec>, seed: Option<u64>) -> Self {
        self.link = RwLock::new(link.map(Arc::new));
        self.seed = seed;
        self
    }

    /// Replaces the link new sessions start with.
    pub fn set_link(&self, link: Option<Arc<LinkSpec>>) {
        *self.link.write().unwrap_or_else(|e| e.into_inner()) = link;
    }

    /// The link new sessions start with.
    pub fn link(&self) -> Option<Arc<LinkSpec>> {
        self.link.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The link seed, if one was given.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Turns echo mode on or off.
    pub fn set_echo(&self, on: bool) {
        self.echo.store(on, Ordering::Relaxed);
    }

    /// Replaces the auto-reply rules.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    /// The current auto-reply rules.
    pub fn rules(&self) -> Arc<Vec<Rule>> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What to send back for one incoming chunk: the echo (if on), then the reply of the
    /// first matching rule.
    pub fn replies(&self, data: &Bytes) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.echo.load(Ordering::Relaxed) && !data.is_empty() {
            out.push(data.clone());
        }
        if let Some(rule) = self.rules().iter().find(|r| r.matches(data)) {
            out.push(rule.reply());
        }
        out
    }

    /// A snapshot for the API, with the number of sessions online on it.
    pub fn info(&self, online: usize) -> ListenerInfo {
        ListenerInfo {
            id: self.id,
            proto: self.proto,
            addr: self.addr.to_string(),
            echo: self.echo.load(Ordering::Relaxed),
            auto_replies: self.rules().iter().map(|r| r.spec().clone()).collect(),
            online,
            link: self.link().map(|l| l.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// The outbox keeps order, refuses a send when full after the wait, lets a waiting
    /// sender in once the reader makes room, and fails waiting senders on close.
    #[tokio::test]
    async fn outbox_bounded_ordered_closable() {
        let outbox = Arc::new(Outbox::new(2));
        let zero = Duration::ZERO;
        outbox.send_timeout(Bytes::from("a"), zero).await.unwrap();
        outbox.send_timeout(Bytes::from("b"), zero).await.unwrap();
        let full = outbox.send_timeout(Bytes::from("x"), Duration::from_millis(20));
        assert_eq!(full.await, Err(OutboxError::Full));
        let waiter = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                let wait = Duration::from_secs(5);
                outbox.send_timeout(Bytes::from("c"), wait).await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(outbox.recv().await, "a");
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(outbox.recv().await, "b");
        assert_eq!(outbox.recv().await, "c");
        // A recv that loses a select takes nothing.
        tokio::select! {
            biased;
            _ = std::future::ready(()) => {}
            _ = outbox.recv() => unreachable!(),
        }
        outbox.send_timeout(Bytes::from("d"), zero).await.unwrap();
        outbox.send_timeout(Bytes::from("e"), zero).await.unwrap();
        let blocked = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                let wait = Duration::from_secs(5);
                outbox.send_timeout(Bytes::from("f"), wait).await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        outbox.close();
        let closed = tokio::time::timeout(Duration::from_secs(1), blocked).await;
        assert_eq!(closed.unwrap().unwrap(), Err(OutboxError::Closed));
        let after = outbox.send_timeout(Bytes::from("g"), zero).await;
        assert_eq!(after, Err(OutboxError::Closed));
    }
}

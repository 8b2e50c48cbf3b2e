//! UDP devices: one task per socket, the only code that writes it. A session is a peer
//! address that sent something within the idle timeout; it ends with `idle_timeout` after
//! that much silence.
//!
//! The loop takes datagrams from devices (up) and from its listener's down queue
//! (operator sends and broadcasts), passes them through the session's link when it has an
//! active one ([`UdpLinks`], the engine, says when each comes out), answers data from
//! devices through [`upstream`], and sends and records what goes down.
//!
//! UDP cannot make a device wait, so the loop never waits for the store on a device's
//! behalf: each peer's datagrams go to that peer's own *hold*, which a small task per peer
//! stores (waiting for the store's room in turn with the other peers) and answers in
//! order. A store that falls behind therefore slows only the peers whose data is waiting,
//! the loop keeps receiving (the kernel never drops for want of a reader), and a peer
//! whose hold is full has its datagram refused: not stored, not answered, counted
//! (`socklab_udp_unstored_datagrams_total`) and logged. A session ends from its task,
//! after everything it held was stored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{TaskGuard, sleep_opt, upstream};
use crate::hub::Hub;
use crate::link::engine::udp::{Released, UdpLinks};
use crate::listener_state::{DownOutcome, ListenerState, UdpDown};
use crate::model::{Direction, EndReason, LinkAction, LinkEvent};
use crate::session::SessionHandle;
use crate::shutdown::Shutdown;

/// The largest UDP payload (IPv4 limit); one receive buffer per socket.
const MAX_DATAGRAM_BYTES: usize = 65_535;

/// Most bytes one peer may have waiting for the store (each datagram counted with
/// [`HELD_OVERHEAD_BYTES`]); one datagram is always accepted into an empty hold.
const PEER_HOLD_BYTES: usize = 64 * 1024;

/// Most bytes all peers of one socket may have waiting for the store.
const SOCKET_HOLD_BYTES: usize = 8 * 1024 * 1024;

/// What holding one datagram costs besides its payload (its `Bytes`, the queue slot).
const HELD_OVERHEAD_BYTES: usize = 96;

/// How long UDP sessions live and how many one socket keeps.
#[derive(Clone, Copy, Debug)]
pub struct UdpLimits {
    /// A peer silent this long goes offline (`idle_timeout`).
    pub idle_timeout: Duration,
    /// Most sessions at once; a new peer beyond it evicts the least recently heard.
    pub max_sessions: usize,
}

/// A known peer: its session, when it last sent, and its hold.
struct Peer {
    handle: Arc<SessionHandle>,
    last_seen: Instant,
    /// Datagrams for the peer's task to store and answer (bounded by `held`).
    hold: mpsc::UnboundedSender<Bytes>,
    /// Bytes in `hold` (with [`HELD_OVERHEAD_BYTES`] each), shared with the task.
    held: Arc<AtomicUsize>,
    /// How the session ends once the task has stored what it holds.
    end: Arc<OnceLock<EndReason>>,
    /// Refusing datagrams since the last one accepted (logged once per episode).
    refusing: bool,
}

impl Peer {
    /// Ends the session with `reason`: at once when its task holds nothing (so the end
    /// comes before anything that follows, as a newcomer's start), else once the task has
    /// stored what it holds (dropping the hold's sender lets the task finish).
    async fn finish(self, hub: &Hub, reason: EndReason) {
        if self.held.load(Ordering::Acquire) == 0 {
            hub.end_session(&self.handle, reason).await;
        } else {
            let _ = self.end.set(reason);
        }
    }
}

/// One UDP socket's loop state.
struct UdpLoop {
    socket: Arc<UdpSocket>,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    peers: HashMap<SocketAddr, Peer>,
    /// Most entries in `peers`.
    max_sessions: usize,
    /// Emulated links of this socket's sessions (empty, and never woken, without links).
    links: UdpLinks<Arc<SessionHandle>>,
    /// Bytes held for the store over all peers (shared with their tasks).
    held: Arc<AtomicUsize>,
    /// The peers' tasks (each stores and answers one peer's hold).
    recorders: JoinSet<()>,
}

/// Serves one UDP socket until shutdown, then ends its sessions with `server_shutdown`,
/// or until its listener is stopped (removed at run time, or the end of an outgoing flow),
/// then ends them with the reason the hub set (`listener_removed`). `first` is a session
/// opened before the loop started (an outgoing flow's).
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    limits: UdpLimits,
    mut shutdown: Shutdown,
    _guard: TaskGuard,
    first: Option<Arc<SessionHandle>>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    // Check for idle peers often enough that a session ends soon after its timeout.
    let idle_timeout = limits.idle_timeout;
    let sweep_every = (idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lp = UdpLoop {
        socket: socket.clone(),
        listener: listener.clone(),
        hub,
        peers: HashMap::new(),
        max_sessions: limits.max_sessions.max(1),
        links: UdpLinks::default(),
        held: Arc::new(AtomicUsize::new(0)),
        recorders: JoinSet::new(),
    };
    if let Some(handle) = first {
        lp.add_peer(handle);
    }
    let mut stopped = listener.stopped();
    let mut reason = EndReason::ServerShutdown;
    loop {
        let link_due = lp.links.next_at();
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = stopped.wait() => {
                reason = EndReason::ListenerRemoved;
                break;
            }
            _ = sweep.tick() => lp.sweep(idle_timeout).await,
            _ = sleep_opt(link_due) => lp.deliver_due().await,
            down = listener.udp_down.recv() => lp.down(down).await,
            Some(_) = lp.recorders.join_next(), if !lp.recorders.is_empty() => {}
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, addr)) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    lp.up(addr, data).await;
                }
                // Linux may report an ICMP error from an earlier send here; it belongs
                // to no session we could end reliably, so it is only logged.
                Err(e) => tracing::debug!("udp {}: receive: {e}", listener.addr),
            },
        }
    }
    lp.shutdown(reason).await;
}

impl UdpLoop {
    /// The live session of `addr`, starting a new one when there is none (or the last one
    /// was closed by an operator).
    async fn session_for(&mut self, addr: SocketAddr) -> Arc<SessionHandle> {
        let now = Instant::now();
        if let Some(peer) = self.peers.get_mut(&addr).filter(|p| !p.handle.is_ended()) {
            peer.last_seen = now;
            return peer.handle.clone();
        }
        if self.peers.len() >= self.max_sessions {
            self.evict().await;
        }
        let handle = self.hub.open_session(&self.listener, addr, None).await;
        self.add_peer(handle.clone());
        handle
    }

    /// Lists the peer of a new session and starts its task. A peer whose last session an
    /// operator closed is replaced: dropping it lets its task store what it held.
    fn add_peer(&mut self, handle: Arc<SessionHandle>) {
        let (hold, held_rx) = mpsc::unbounded_channel();
        let held = Arc::new(AtomicUsize::new(0));
        let end = Arc::new(OnceLock::new());
        self.recorders.spawn(record_peer(
            Recorder {
                hub: self.hub.clone(),
                listener: self.listener.clone(),
                socket: self.socket.clone(),
                handle: handle.clone(),
                held: held.clone(),
                socket_held: self.held.clone(),
                end: end.clone(),
            },
            held_rx,
        ));
        self.peers.insert(
            handle.meta.peer,
            Peer {
                handle,
                last_seen: Instant::now(),
                hold,
                held,
                end,
                refusing: false,
            },
        );
    }

    /// Makes room in a full session table: ends the least recently heard sessions (one in
    /// a hundred of them at once, so a flood of new sources costs a scan per hundred, not
    /// per datagram) with `evicted`. Ended sessions still listed go first.
    async fn evict(&mut self) {
        let mut by_age: Vec<(bool, Instant, SocketAddr)> = self
            .peers
            .iter()
            .map(|(addr, p)| (!p.handle.is_ended(), p.last_seen, *addr))
            .collect();
        let count = (by_age.len() / 100).max(1).min(by_age.len());
        by_age.select_nth_unstable(count - 1);
        for (_, _, addr) in by_age.into_iter().take(count) {
            if let Some(peer) = self.peers.remove(&addr) {
                peer.finish(&self.hub, EndReason::Evicted).await;
            }
        }
    }

    /// A datagram from a device: through its session's link if it has one, else into the
    /// peer's hold (its task stores and answers it), or refused when the hold is full.
    async fn up(&mut self, addr: SocketAddr, data: Bytes) {
        let handle = self.session_for(addr).await;
        if handle.link_engaged() {
            self.via_link(&handle, Direction::Up, data).await;
            return;
        }
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        let cost = data.len() + HELD_OVERHEAD_BYTES;
        let peer_held = peer.held.load(Ordering::Acquire);
        let peer_full = peer_held > 0 && peer_held + cost > PEER_HOLD_BYTES;
        if peer_full || self.held.load(Ordering::Acquire) + cost > SOCKET_HOLD_BYTES {
            self.hub.store().note_unstored();
            if !peer.refusing {
                peer.refusing = true;
                tracing::warn!(
                    "udp {}: the store is behind and {}'s hold is full; its datagrams are \
                     refused (not stored, not answered) until there is room",
                    self.listener.addr,
                    addr
                );
            }
            return;
        }
        peer.refusing = false;
        peer.held.fetch_add(cost, Ordering::AcqRel);
        self.held.fetch_add(cost, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(data)) = peer.hold.send(data) {
            // The task is gone (only if it panicked): store and answer here instead.
            peer.held.fetch_sub(cost, Ordering::AcqRel);
            self.held.fetch_sub(cost, Ordering::AcqRel);
            for reply in upstream(&self.hub, &self.listener, &handle, None, data).await {
                self.send_down(&handle, reply).await;
            }
        }
    }

    /// A datagram for a device from the down queue: through its link if it has one.
    async fn down(&mut self, down: UdpDown) {
        let UdpDown {
            session,
            data,
            done,
        } = down;
        let outcome = if session.is_ending() {
            self.hub.record_undelivered(&session, data).await;
            DownOutcome::Ended
        } else if session.link_engaged() {
            self.via_link(&session, Direction::Down, data).await;
            DownOutcome::Sent
        } else {
            self.send_down(&session, data).await
        };
        if let Some(done) = done {
            let _ = done.send(outcome);
        }
    }

    /// Hands a datagram to the session's link; a datagram the link loses or cannot hold
    /// is recorded as dropped.
    async fn via_link(&mut self, handle: &Arc<SessionHandle>, dir: Direction, data: Bytes) {
        let now = Instant::now();
        let (spec, outage) = handle
            .link
            .with(|ctl| (ctl.spec_or_perfect(), ctl.outage(now).is_some()));
        let sent = self.links.send(
            handle.id(),
            handle,
            &spec,
            self.listener.seed(),
            dir,
            data,
            outage,
            now,
        );
        if let Err((_, data)) = sent {
            self.dropped(handle, dir, data).await;
        }
    }

    async fn dropped(&self, handle: &SessionHandle, dir: Direction, data: Bytes) {
        let len = data.len();
        self.hub.record_dropped(handle, dir, data).await;
        self.hub.link_event(|| {
            LinkEvent::data(handle.id(), LinkAction::Dropped, dir, len, Duration::ZERO)
        });
    }

    /// Sends one datagram to the device and records the outcome.
    async fn send_down(&self, handle: &SessionHandle, data: Bytes) -> DownOutcome {
        send_to_device(&self.socket, &self.listener, &self.hub, handle, data).await
    }

    /// Delivers every datagram whose time has come: up ones go to [`upstream`] (their
    /// answers enter the link), down ones to the device.
    async fn deliver_due(&mut self) {
        let now = Instant::now();
        while let Some(Released {
            tag: handle,
            dir,
            data,
            delay,
        }) = self.links.pop_due(now)
        {
            if handle.is_ending() {
                continue;
            }
            let len = data.len();
            self.hub
                .link_event(|| LinkEvent::data(handle.id(), LinkAction::Delayed, dir, len, delay));
            match dir {
                Direction::Up => {
                    for reply in upstream(&self.hub, &self.listener, &handle, None, data).await {
                        self.via_link(&handle, Direction::Down, reply).await;
                    }
                }
                Direction::Down => {
                    self.send_down(&handle, data).await;
                }
            }
        }
    }

    /// Ends sessions silent for the idle timeout or whose NAT mapping timed out, and
    /// forgets sessions closed by an operator.
    async fn sweep(&mut self, idle_timeout: Duration) {
        let now = Instant::now();
        let stale: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.handle.is_ended() || now.duration_since(p.last_seen) >= idle_timeout)
            .map(|(addr, _)| *addr)
            .collect();
        for addr in stale {
            if let Some(peer) = self.peers.remove(&addr) {
                peer.finish(&self.hub, EndReason::IdleTimeout).await;
            }
        }
        for handle in self.links.sweep(now, |h| !h.is_ending()) {
            handle.nat_dropped.store(true, Ordering::Relaxed);
            self.hub
                .link_state(&handle, LinkAction::NatDropped, Duration::ZERO);
            self.hub.end_session(&handle, EndReason::NatDropped).await;
        }
    }

    /// At shutdown: what the links still hold is recorded as dropped (it never arrived),
    /// queued sends as undelivered, and every session ends with `reason` once its hold is
    /// stored (on a stopped listener, one with a close reason of its own keeps it).
    async fn shutdown(mut self, reason: EndReason) {
        for held in self.links.drain(Instant::now()) {
            self.hub
                .record_dropped(&held.tag, held.dir, held.data)
                .await;
        }
        for down in self.listener.udp_down.close() {
            self.hub.record_undelivered(&down.session, down.data).await;
            if let Some(done) = down.done {
                let _ = done.send(DownOutcome::Ended);
            }
        }
        for (_, peer) in std::mem::take(&mut self.peers) {
            let reason = match reason {
                EndReason::ServerShutdown => reason,
                _ => peer.handle.close_reason_or(reason),
            };
            peer.finish(&self.hub, reason).await;
        }
        while self.recorders.join_next().await.is_some() {}
    }
}

/// Sends one datagram to the device and records the outcome.
async fn send_to_device(
    socket: &UdpSocket,
    listener: &ListenerState,
    hub: &Hub,
    handle: &SessionHandle,
    data: Bytes,
) -> DownOutcome {
    match socket.send_to(&data, handle.meta.peer).await {
        Ok(_) => {
            hub.record(handle, Direction::Down, data).await;
            DownOutcome::Sent
        }
        Err(e) => {
            tracing::warn!("udp {}: send to {}: {e}", listener.addr, handle.meta.peer);
            hub.record_failed(handle, data).await;
            DownOutcome::Failed(e.to_string())
        }
    }
}

/// What one peer's task works with.
struct Recorder {
    hub: Arc<Hub>,
    listener: Arc<ListenerState>,
    socket: Arc<UdpSocket>,
    handle: Arc<SessionHandle>,
    /// The peer's held bytes and the socket's, released as each datagram is stored.
    held: Arc<AtomicUsize>,
    socket_held: Arc<AtomicUsize>,
    end: Arc<OnceLock<EndReason>>,
}

/// One peer's task: stores and answers its held datagrams in order (waiting for the
/// store's room pauses only this peer), then, once the loop let go of the hold, ends the
/// session if the loop said how.
async fn record_peer(r: Recorder, mut hold: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(data) = hold.recv().await {
        let cost = data.len() + HELD_OVERHEAD_BYTES;
        let replies = upstream(&r.hub, &r.listener, &r.handle, None, data).await;
        r.socket_held.fetch_sub(cost, Ordering::AcqRel);
        for reply in replies {
            send_to_device(&r.socket, &r.listener, &r.hub, &r.handle, reply).await;
        }
        // Released only once answered: a hold at 0 means the task has nothing in hand.
        r.held.fetch_sub(cost, Ordering::AcqRel);
    }
    if let Some(reason) = r.end.get() {
        r.hub.end_session(&r.handle, *reason).await;
    }
}

//! UDP devices: one task per socket, the only code that writes it. A session is a peer
//! address that sent something within the idle timeout; it ends with `idle_timeout` after
//! that much silence.
//!
//! The loop takes datagrams from devices (up) and from its listener's down queue
//! (operator sends and broadcasts), passes them through the session's link when it has an
//! active one ([`UdpLinks`], the engine, says when each comes out), answers data from
//! devices through [`upstream`], and sends and records what goes down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
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

/// How long UDP sessions live and how many one socket keeps.
#[derive(Clone, Copy, Debug)]
pub struct UdpLimits {
    /// A peer silent this long goes offline (`idle_timeout`).
    pub idle_timeout: Duration,
    /// Most sessions at once; a new peer beyond it evicts the least recently heard.
    pub max_sessions: usize,
}

/// A known peer: its session and when it last sent.
struct Peer {
    handle: Arc<SessionHandle>,
    last_seen: Instant,
}

/// One UDP socket's loop state.
struct UdpLoop<'a> {
    socket: &'a UdpSocket,
    listener: &'a ListenerState,
    hub: &'a Hub,
    peers: HashMap<SocketAddr, Peer>,
    /// Most entries in `peers`.
    max_sessions: usize,
    /// Emulated links of this socket's sessions (empty, and never woken, without links).
    links: UdpLinks<Arc<SessionHandle>>,
}

/// Serves one UDP socket until shutdown, then ends its sessions with `server_shutdown`.
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    limits: UdpLimits,
    mut shutdown: Shutdown,
    _guard: TaskGuard,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    // Check for idle peers often enough that a session ends soon after its timeout.
    let idle_timeout = limits.idle_timeout;
    let sweep_every = (idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lp = UdpLoop {
        socket: &socket,
        listener: &listener,
        hub: &hub,
        peers: HashMap::new(),
        max_sessions: limits.max_sessions.max(1),
        links: UdpLinks::default(),
    };
    loop {
        let link_due = lp.links.next_at();
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = sweep.tick() => lp.sweep(idle_timeout).await,
            _ = sleep_opt(link_due) => lp.deliver_due().await,
            down = listener.udp_down.recv() => lp.down(down).await,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, addr)) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    let handle = lp.session_for(addr).await;
                    lp.up(handle, data).await;
                }
                // Linux may report an ICMP error from an earlier send here; it belongs
                // to no session we could end reliably, so it is only logged.
                Err(e) => tracing::debug!("udp {}: receive: {e}", listener.addr),
            },
        }
    }
    lp.shutdown().await;
}

impl UdpLoop<'_> {
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
        let handle = self.hub.open_session(self.listener, addr, None).await;
        self.peers.insert(
            addr,
            Peer {
                handle: handle.clone(),
                last_seen: now,
            },
        );
        handle
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
                self.hub.end_session(&peer.handle, EndReason::Evicted).await;
            }
        }
    }

    /// A datagram from a device: through its link if it has one, else answered now.
    async fn up(&mut self, handle: Arc<SessionHandle>, data: Bytes) {
        if handle.link_engaged() {
            self.via_link(&handle, Direction::Up, data).await;
            return;
        }
        for reply in upstream(self.hub, self.listener, &handle, data).await {
            self.send_down(&handle, reply).await;
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
        match self.socket.send_to(&data, handle.meta.peer).await {
            Ok(_) => {
                self.hub.record(handle, Direction::Down, data).await;
                DownOutcome::Sent
            }
            Err(e) => {
                tracing::warn!(
                    "udp {}: send to {}: {e}",
                    self.listener.addr,
                    handle.meta.peer
                );
                self.hub.record_failed(handle, data).await;
                DownOutcome::Failed(e.to_string())
            }
        }
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
                    for reply in upstream(self.hub, self.listener, &handle, data).await {
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
                self.hub
                    .end_session(&peer.handle, EndReason::IdleTimeout)
                    .await;
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
    /// queued sends as undelivered, and every session ends with `server_shutdown`.
    async fn shutdown(mut self) {
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
        for (_, peer) in self.peers.drain() {
            self.hub
                .end_session(&peer.handle, EndReason::ServerShutdown)
                .await;
        }
    }
}

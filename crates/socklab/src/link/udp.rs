//! Links on UDP sessions, inside the listener's task (one task serves every peer of a
//! socket). Datagrams may be lost (Gilbert–Elliott), are delayed by latency ± jitter
//! (reordering allowed, as on a real network) and paced by the bandwidth cap; an outage
//! loses what arrives in it; a NAT idle timeout ends the session (the device's next
//! datagram is a new mapping, hence a new session).
//!
//! Operator sends to a UDP session with an active link are handed to this task through a
//! bounded queue (`divert`), so they take the session's down link like echo and
//! auto-replies do.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::control::{LinkAction, LinkEvent};
use super::shaper::{DirShaper, session_seed};
use super::{LinkControl, LinkSpec, perfect};
use crate::hub::Hub;
use crate::model::{Direction, EndReason};
use crate::session::{ListenerState, SessionHandle};

/// Most datagrams held in flight per socket; beyond it new ones are dropped (a full
/// router queue).
const MAX_PENDING: usize = 65_536;

/// A datagram inside the link.
struct Pending {
    at: Instant,
    seq: u64,
    handed: Instant,
    handle: Arc<SessionHandle>,
    dir: Direction,
    data: Bytes,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// One session's shapers, rebuilt when its link changes.
struct PeerLink {
    spec: Arc<LinkSpec>,
    up: DirShaper,
    down: DirShaper,
    last_traffic: Instant,
    handle: Arc<SessionHandle>,
}

/// The link state of every UDP session of one socket.
#[derive(Default)]
pub(crate) struct UdpLinks {
    heap: BinaryHeap<Reverse<Pending>>,
    peers: HashMap<u64, PeerLink>,
    seq: u64,
}

impl UdpLinks {
    /// When the next datagram comes out of the link.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|p| p.0.at)
    }

    fn peer(
        &mut self,
        handle: &Arc<SessionHandle>,
        spec: &Arc<LinkSpec>,
        seed: Option<u64>,
    ) -> &mut PeerLink {
        let now = Instant::now();
        let stale = self
            .peers
            .get(&handle.id)
            .is_none_or(|p| !Arc::ptr_eq(&p.spec, spec));
        if stale {
            self.peers.insert(
                handle.id,
                PeerLink {
                    spec: spec.clone(),
                    up: DirShaper::new(spec.up.clone(), session_seed(seed, handle.id, true), now),
                    down: DirShaper::new(
                        spec.down.clone(),
                        session_seed(seed, handle.id, false),
                        now,
                    ),
                    last_traffic: now,
                    handle: handle.clone(),
                },
            );
        }
        self.peers.get_mut(&handle.id).expect("inserted above")
    }

    /// Hands a datagram from the device to the link. Returns it back when the session has
    /// no active link (the caller handles it as usual); otherwise the link owns it.
    pub(crate) async fn up(
        &mut self,
        handle: &Arc<SessionHandle>,
        data: Bytes,
        listener: &ListenerState,
        hub: &Hub,
    ) -> Option<Bytes> {
        let Some((spec, outage)) = handle.link.with(|ctl| {
            ctl.active()
                .then(|| (ctl.spec.clone(), ctl.outage(Instant::now())))
        }) else {
            return Some(data);
        };
        let spec = spec.unwrap_or_else(perfect);
        self.send(
            handle,
            &spec,
            Direction::Up,
            data,
            outage.is_some(),
            listener.seed(),
            hub,
        )
        .await;
        None
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &mut self,
        handle: &Arc<SessionHandle>,
        spec: &Arc<LinkSpec>,
        dir: Direction,
        data: Bytes,
        in_outage: bool,
        seed: Option<u64>,
        hub: &Hub,
    ) {
        let full = self.heap.len() >= MAX_PENDING;
        let now = Instant::now();
        let peer = self.peer(handle, spec, seed);
        peer.last_traffic = now;
        let shaper = match dir {
            Direction::Up => &mut peer.up,
            Direction::Down => &mut peer.down,
        };
        if in_outage || full || shaper.lose() {
            let len = data.len();
            hub.record_dropped(handle, dir, data).await;
            hub.link_event(|| {
                LinkEvent::data(handle.id, LinkAction::Dropped, dir, len, Duration::ZERO)
            });
            return;
        }
        let mut plan = shaper.plan(now, data.len(), false);
        if let Some(period) = spec.batch {
            plan.at = super::tcp::round_up(plan.at, now, period);
        }
        self.seq += 1;
        self.heap.push(Reverse(Pending {
            at: plan.at,
            seq: self.seq,
            handed: now,
            handle: handle.clone(),
            dir,
            data,
        }));
    }

    /// Delivers every datagram whose time has come: up ones are recorded and answered
    /// (echo, auto-reply; the answers enter the link), down ones are sent to the device.
    pub(crate) async fn deliver_due(
        &mut self,
        socket: &UdpSocket,
        listener: &ListenerState,
        hub: &Hub,
    ) {
        let now = Instant::now();
        while self.heap.peek().is_some_and(|p| p.0.at <= now) {
            let Some(Reverse(p)) = self.heap.pop() else {
                break;
            };
            if p.handle.is_ending() {
                continue;
            }
            let delay = now.saturating_duration_since(p.handed);
            let len = p.data.len();
            hub.link_event(|| LinkEvent::data(p.handle.id, LinkAction::Delayed, p.dir, len, delay));
            match p.dir {
                Direction::Up => {
                    let replies = listener.replies(&p.data);
                    hub.record(&p.handle, Direction::Up, p.data).await;
                    let ctl = p.handle.link.get();
                    let outage = ctl.outage(Instant::now()).is_some();
                    let spec = ctl.spec;
                    let spec = spec.unwrap_or_else(perfect);
                    for reply in replies {
                        self.send(
                            &p.handle,
                            &spec,
                            Direction::Down,
                            reply,
                            outage,
                            listener.seed(),
                            hub,
                        )
                        .await;
                    }
                }
                Direction::Down => {
                    hub.record(&p.handle, Direction::Down, p.data.clone()).await;
                    send_to(socket, p.handle.peer, &p.data).await;
                }
            }
        }
    }

    /// Hands an operator send (diverted by [`divert`]) to the session's down link.
    pub(crate) async fn down(&mut self, id: u64, data: Bytes, listener: &ListenerState, hub: &Hub) {
        let Some(handle) = hub.online(id) else { return };
        let ctl = handle.link.get();
        let outage = ctl.outage(Instant::now()).is_some();
        let spec = ctl.spec;
        let spec = spec.unwrap_or_else(perfect);
        self.send(
            &handle,
            &spec,
            Direction::Down,
            data,
            outage,
            listener.seed(),
            hub,
        )
        .await;
    }

    /// Ends sessions whose NAT mapping timed out and forgets sessions that ended.
    pub(crate) async fn sweep(&mut self, hub: &Hub) {
        let now = Instant::now();
        let mut expired = Vec::new();
        self.peers.retain(|_, p| {
            if p.handle.is_ending() {
                return false;
            }
            let idle = p
                .spec
                .nat_idle
                .is_some_and(|t| now.duration_since(p.last_traffic) >= t);
            if idle {
                expired.push(p.handle.clone());
            }
            !idle
        });
        for handle in expired {
            handle
                .nat_dropped
                .store(true, std::sync::atomic::Ordering::Relaxed);
            hub.link_event(|| LinkEvent::state(&handle, LinkAction::NatDropped, Duration::ZERO));
            hub.end_session(&handle, EndReason::NatDropped).await;
        }
    }
}

/// Operator sends queued for the listener task, per socket.
pub(crate) const DIVERT_QUEUE: usize = 1024;

/// Hands an operator send to a UDP session to its listener task when the session has an
/// active link (`Ok`); gives the data back otherwise (`Err`: send it directly). A full
/// queue drops the datagram, as a full router queue would.
pub(crate) async fn divert(hub: &Hub, handle: &SessionHandle, data: Bytes) -> Result<(), Bytes> {
    if !handle.link.with(LinkControl::active) {
        return Err(data);
    }
    let Some(tx) = hub
        .listener(handle.listener_id)
        .ok()
        .and_then(|l| l.udp_link_tx.get())
    else {
        return Err(data);
    };
    match tx.try_send((handle.id, data)) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full((_, data)))
        | Err(mpsc::error::TrySendError::Closed((_, data))) => {
            hub.record_dropped(handle, Direction::Down, data).await;
            Ok(())
        }
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
pub(crate) async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn send_to(socket: &UdpSocket, peer: SocketAddr, data: &[u8]) {
    if let Err(e) = socket.send_to(data, peer).await {
        tracing::debug!("udp link: send to {peer}: {e}");
    }
}

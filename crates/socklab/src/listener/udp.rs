//! UDP devices: one task per socket. A session is a peer address that sent something
//! within the idle timeout; it ends with `idle_timeout` after that much silence.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::tcp::TaskGuard;
use crate::hub::Hub;
use crate::link::udp::{DIVERT_QUEUE, UdpLinks, sleep_opt};
use crate::model::{Direction, EndReason};
use crate::session::{ListenerState, Outlet, SessionHandle};
use crate::shutdown::Shutdown;

/// The largest UDP payload (IPv4 limit); one receive buffer per socket.
const MAX_DATAGRAM_BYTES: usize = 65_535;

/// A known peer: its session and when it last sent.
struct Peer {
    handle: Arc<SessionHandle>,
    last_seen: Instant,
}

/// Serves one UDP socket until shutdown, then ends its sessions with `server_shutdown`.
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    idle_timeout: Duration,
    mut shutdown: Shutdown,
    _guard: TaskGuard,
) {
    let mut peers: HashMap<SocketAddr, Peer> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    // Check for idle peers often enough that a session ends soon after its timeout.
    let sweep_every = (idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Emulated links of this socket's sessions (empty, and never woken, without links).
    let mut links = UdpLinks::default();
    let (divert_tx, mut diverted) = tokio::sync::mpsc::channel(DIVERT_QUEUE);
    let _ = listener.udp_link_tx.set(divert_tx);
    loop {
        let link_due = links.next_at();
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = sweep.tick() => {
                expire(&mut peers, &hub, idle_timeout).await;
                links.sweep(&hub).await;
            }
            _ = sleep_opt(link_due) => links.deliver_due(&socket, &listener, &hub).await,
            Some((id, data)) = diverted.recv() => links.down(id, data, &listener, &hub).await,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, addr)) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    let handle = session_for(&mut peers, addr, &socket, &listener, &hub).await;
                    // With an active link the link takes the datagram (and answers it later).
                    let Some(data) = links.up(&handle, data, &listener, &hub).await else {
                        continue;
                    };
                    let replies = listener.replies(&data);
                    hub.record(&handle, Direction::Up, data).await;
                    for reply in replies {
                        hub.record(&handle, Direction::Down, reply.clone()).await;
                        if let Err(e) = socket.send_to(&reply, addr).await {
                            tracing::warn!("udp {}: reply to {addr}: {e}", listener.addr);
                        }
                    }
                }
                // Linux may report an ICMP error from an earlier send here; it belongs
                // to no session we could end reliably, so it is only logged.
                Err(e) => tracing::debug!("udp {}: receive: {e}", listener.addr),
            },
        }
    }
    for (_, peer) in peers.drain() {
        hub.end_session(&peer.handle, EndReason::ServerShutdown)
            .await;
    }
}

/// The live session of `addr`, starting a new one when there is none (or the last one was
/// closed by an operator).
async fn session_for(
    peers: &mut HashMap<SocketAddr, Peer>,
    addr: SocketAddr,
    socket: &Arc<UdpSocket>,
    listener: &ListenerState,
    hub: &Hub,
) -> Arc<SessionHandle> {
    let now = Instant::now();
    if let Some(peer) = peers.get_mut(&addr).filter(|p| !p.handle.is_ended()) {
        peer.last_seen = now;
        return peer.handle.clone();
    }
    let handle = hub
        .open_session(listener, addr, Outlet::Udp(socket.clone()))
        .await;
    peers.insert(
        addr,
        Peer {
            handle: handle.clone(),
            last_seen: now,
        },
    );
    handle
}

/// Ends sessions silent for `idle_timeout` and forgets sessions closed by an operator.
async fn expire(peers: &mut HashMap<SocketAddr, Peer>, hub: &Hub, idle_timeout: Duration) {
    let now = Instant::now();
    let stale: Vec<SocketAddr> = peers
        .iter()
        .filter(|(_, p)| p.handle.is_ended() || now.duration_since(p.last_seen) >= idle_timeout)
        .map(|(addr, _)| *addr)
        .collect();
    for addr in stale {
        if let Some(peer) = peers.remove(&addr) {
            hub.end_session(&peer.handle, EndReason::IdleTimeout).await;
        }
    }
}

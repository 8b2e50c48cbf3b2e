//! Client mode: socklab connects to a device that is the server. A TCP connection, once
//! established, runs in the same connection loop as an accepted one ([`tcp::run_session`]);
//! a UDP flow is a socket of its own, connected to the device, served by the same datagram
//! loop as a listener ([`udp::serve`]) with the session already open. Each gets a listener
//! entry of kind `outgoing` (holding its echo, auto-replies and link) that is dropped when
//! the session ends.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpStream, UdpSocket};

use super::{Started, tcp, udp};
use crate::hub::connect::{ConnectRequest, split_target};
use crate::hub::listeners::OpenError;
use crate::listener_state::ListenerState;
use crate::model::{Proto, SessionInfo};
use crate::session::{OUTBOX_BYTES, Outbox};

/// Resolves the target and picks the first address the policy allows.
async fn resolve(started: &Started, target: &str) -> Result<SocketAddr, OpenError> {
    let (host, port) = split_target(target)?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| OpenError::BadAddress(format!("cannot resolve {host:?}: {e}")))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| OpenError::BadAddress(format!("{host:?} has no address")))?;
    match addrs.iter().find(|a| started.config.policy.allows(a)) {
        Some(addr) => Ok(*addr),
        None => Err(OpenError::NotAllowed { addr: first }),
    }
}

/// Opens the connection of `req` as listener entry `id` and starts its session.
pub(crate) async fn connect(
    started: Started,
    req: ConnectRequest,
) -> Result<SessionInfo, OpenError> {
    let addr = resolve(&started, &req.target).await?;
    match req.proto {
        Proto::Tcp => connect_tcp(started, req, addr).await,
        Proto::Udp => open_udp(started, req, addr).await,
    }
}

/// The listener entry of a connection from `local` to the device at `remote`.
fn entry(
    started: &Started,
    req: &ConnectRequest,
    local: SocketAddr,
    remote: SocketAddr,
) -> Arc<ListenerState> {
    let s = &req.settings;
    let id = started.hub.allocate_listener_id();
    Arc::new(
        ListenerState::new(id, req.proto, local, s.echo, s.rules.clone())
            .with_framing(started.config.reply_framing.clone())
            .with_link(s.link.clone(), started.config.link_seed)
            .outgoing_to(remote),
    )
}

async fn connect_tcp(
    started: Started,
    req: ConnectRequest,
    addr: SocketAddr,
) -> Result<SessionInfo, OpenError> {
    let stream = match tokio::time::timeout(req.timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            return Err(OpenError::Refused { addr });
        }
        Ok(Err(source)) => return Err(OpenError::Connect { addr, source }),
        Err(_) => {
            return Err(OpenError::TimedOut {
                addr,
                after: req.timeout,
            });
        }
    };
    let _ = stream.set_nodelay(true);
    if let Some(idle) = started.config.tcp_keepalive
        && let Err(e) = tcp::set_keepalive(&stream, idle)
    {
        tracing::warn!("outgoing tcp to {addr}: keepalive: {e}");
    }
    let local = stream
        .local_addr()
        .map_err(|source| OpenError::Connect { addr, source })?;
    let state = entry(&started, &req, local, addr);
    let id = state.id;
    let Started {
        hub,
        shutdown,
        guard,
        ..
    } = started;
    hub.insert_listener(state.clone());
    let handle = hub
        .open_session(&state, addr, Some(Outbox::new(OUTBOX_BYTES)))
        .await;
    let info = handle.info(None);
    tokio::spawn(async move {
        tcp::run_session(stream, handle, state, hub.clone(), shutdown, guard).await;
        hub.forget_listener(id);
    });
    Ok(info)
}

async fn open_udp(
    started: Started,
    req: ConnectRequest,
    addr: SocketAddr,
) -> Result<SessionInfo, OpenError> {
    let any = if addr.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    };
    let connect_error = |source| OpenError::Connect { addr, source };
    let socket = UdpSocket::bind(any).await.map_err(connect_error)?;
    // Connected: the kernel picks the source address for the device's network and passes
    // up only the device's datagrams.
    socket.connect(addr).await.map_err(connect_error)?;
    let local = socket.local_addr().map_err(connect_error)?;
    let state = entry(&started, &req, local, addr);
    let id = state.id;
    let Started {
        hub,
        shutdown,
        guard,
        config,
    } = started;
    hub.insert_listener(state.clone());
    let handle = hub.open_session(&state, addr, None).await;
    let info = handle.info(None);
    // The flow is this one session: when it ends (idle, closed), its loop stops.
    let (watched, watcher) = (handle.clone(), state.clone());
    tokio::spawn(async move {
        watched.wait_ended().await;
        watcher.stop();
    });
    tokio::spawn(async move {
        udp::serve(
            Arc::new(socket),
            state,
            hub.clone(),
            config.udp,
            shutdown,
            guard,
            Some(handle),
        )
        .await;
        hub.forget_listener(id);
    });
    Ok(info)
}

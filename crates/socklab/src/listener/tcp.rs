//! TCP devices: an accept loop per listener and one task per connection.
//!
//! The connection task owns its socket and is the only writer to it, so data from the
//! operator, echo and auto-replies go out in order. It waits for the store to accept each
//! chunk before reading the next one: when the store falls behind, socklab stops reading
//! and TCP flow control slows the device down. While the session has an active link the
//! task runs [`super::tcp_link::drive`] instead, which applies the link engine's output.
//! The same loop serves TLS connections ([`super::tls`]), generic over [`DeviceStream`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::tcp_write::{DeviceStream, closed_or_reset, read_chunk, reason_for, write};
use super::{READ_CHUNK_BYTES, TaskGuard, upstream};
use crate::hub::Hub;
use crate::listener_state::ListenerState;
use crate::model::{EndReason, TlsInfo};
use crate::session::{OUTBOX_BYTES, Outbox, SessionHandle};
use crate::shutdown::Shutdown;

/// The most time an orderly close may take to write (TLS close_notify).
const SHUTDOWN_WRITE: Duration = Duration::from_secs(2);

/// Accept backlog for device listeners. Bursts of thousands of devices connecting at once
/// must not overflow it while the accept task waits for a CPU (an overflow drops the SYN
/// and costs the device a 1 s retransmit); the kernel caps it at `net.core.somaxconn`.
const DEVICE_BACKLOG: u32 = 65_535;

/// Binds a device listener (`SO_REUSEADDR` as `TcpListener::bind` sets it on Unix, so a
/// restart may rebind while old connections linger) with a deep backlog.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(DEVICE_BACKLOG)
}

/// Accepts connections until shutdown, spawning a connection task for each.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<ListenerState>,
    keepalive: Option<Duration>,
    hub: Arc<Hub>,
    mut shutdown: Shutdown,
    guard: TaskGuard,
) {
    // Removing the listener at run time stops accepting; its connections end on their own
    // terms (the hub closes them with `listener_removed`).
    let mut stopped = state.stopped();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            _ = stopped.wait() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                if let Some(idle) = keepalive
                    && let Err(e) = set_keepalive(&stream, idle)
                {
                    tracing::warn!("tcp {}: keepalive on {peer}: {e}", state.addr);
                }
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    None,
                    state.clone(),
                    hub.clone(),
                    shutdown.clone(),
                    guard.clone(),
                ));
            }
            Err(e) => {
                // Usually EMFILE/ENFILE: back off instead of spinning; the pending
                // connections stay in the kernel's backlog.
                tracing::warn!("tcp {}: accept failed: {e}", state.addr);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Turns on TCP keepalive: probes after `idle` of silence, then every quarter of it (at
/// least a second), four unanswered probes end the connection with ETIMEDOUT (which the
/// session records as `keepalive_timeout`).
pub fn set_keepalive(stream: &TcpStream, idle: Duration) -> io::Result<()> {
    let every = (idle / 4).max(Duration::from_secs(1));
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(every)
        .with_retries(4);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// One device connection from start to end (`tls`: what its TLS handshake negotiated).
pub(crate) async fn serve_connection<S: DeviceStream>(
    stream: S,
    peer: SocketAddr,
    tls: Option<Arc<TlsInfo>>,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    shutdown: Shutdown,
    guard: TaskGuard,
) {
    let handle = hub
        .open_session_with(&listener, peer, Some(Outbox::new(OUTBOX_BYTES)), tls)
        .await;
    run_session(stream, handle, listener, hub, shutdown, guard).await;
}

/// Runs an opened TCP session (accepted, or connected by socklab in client mode) until it
/// ends, then records the end.
pub(crate) async fn run_session<S: DeviceStream>(
    mut stream: S,
    handle: Arc<SessionHandle>,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    mut shutdown: Shutdown,
    _guard: TaskGuard,
) {
    let Some(outbox) = &handle.outbox else {
        unreachable!("a TCP session has an outbox");
    };
    let reason = drive(&mut stream, &handle, outbox, &listener, &hub, &mut shutdown).await;
    // Nothing reads the outbox any more: later sends fail as not online, senders waiting
    // for room are released, and what was accepted but never written is recorded as such.
    for data in outbox.close() {
        hub.record_undelivered(&handle, data).await;
    }
    if matches!(
        reason,
        EndReason::ClosedByOperator
            | EndReason::ServerShutdown
            | EndReason::ClosedByDevice
            | EndReason::ListenerRemoved
    ) {
        // An orderly FIN (over TLS: close_notify first) so the device's recv() returns b""
        // rather than an error. Bounded: TLS has bytes to write, and a device that does not
        // read must not keep the task.
        let _ = tokio::time::timeout(SHUTDOWN_WRITE, stream.shutdown()).await;
    }
    hub.end_session(&handle, reason).await;
}

/// Moves data both ways until the session ends; returns why it ended.
async fn drive<S: DeviceStream>(
    stream: &mut S,
    handle: &SessionHandle,
    outbox: &Outbox,
    listener: &ListenerState,
    hub: &Hub,
    shutdown: &mut Shutdown,
) -> EndReason {
    let mut seen = handle.link.version();
    let mut check_link = true;
    // An operator send taken from the outbox just as the link changed: the link gets it.
    let mut pending: Option<Bytes> = None;
    // Data from the device read just as the link changed: the link gets it.
    let mut pending_up: Option<Bytes> = None;
    loop {
        // An emulated link (or a fault) takes the session through the link loop. With none,
        // or `perfect`, this plain loop pays one atomic load per read or send for it; an idle
        // session wakes for a change through the last `select!` branch.
        if (std::mem::take(&mut check_link) || handle.link.version() != seen)
            && handle.check_link(&mut seen)
        {
            let cx = super::tcp_link::Ctx {
                stream: &mut *stream,
                handle,
                outbox,
                listener,
                hub,
                shutdown: &mut *shutdown,
                seen: &mut seen,
                pending: pending.take(),
                pending_up: pending_up.take(),
            };
            // Boxed: the link loop's state lives on the heap only while it runs, so sessions
            // without a link do not carry it in their task (about 1.4 KiB each).
            if let Some(reason) = Box::pin(super::tcp_link::drive(cx)).await {
                return reason;
            }
        }
        if let Some(data) = pending.take()
            && let Err(reason) = write(stream, handle, hub, shutdown, data).await
        {
            return reason;
        }
        if let Some(data) = pending_up.take() {
            // The link let go again before taking it: answer it here.
            for reply in upstream(hub, listener, handle, data).await {
                if let Err(reason) = write(stream, handle, hub, shutdown, reply).await {
                    return reason;
                }
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.wait() => return EndReason::ServerShutdown,
            _ = handle.close_requested.notified() => {
                return closed_or_reset(stream.tcp(), handle, hub);
            }
            data = outbox.recv() => {
                if handle.link.version() != seen {
                    pending = Some(data);
                    check_link = true;
                    continue;
                }
                if let Err(reason) = write(stream, handle, hub, shutdown, data).await {
                    return reason;
                }
            }
            // The read buffer exists only while data is there (see `read_chunk`), sized
            // to what arrived: the queues then hold bytes, not mostly-empty 16 KiB blocks.
            read = read_chunk(stream, READ_CHUNK_BYTES) => {
                match read {
                    Ok(None) => return EndReason::ClosedByDevice,
                    Ok(Some(data)) if handle.link.version() != seen => {
                        // Data that arrived after a link change: the link takes it.
                        pending_up = Some(data);
                        check_link = true;
                    }
                    Ok(Some(data)) => {
                        // Awaits room in the store queue: the back-pressure point.
                        for reply in upstream(hub, listener, handle, data).await {
                            if let Err(reason) = write(stream, handle, hub, shutdown, reply).await {
                                return reason;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return reason_for(&e),
                }
            }
            // Last on purpose: `biased` never polls it while data flows, so a busy session
            // pays nothing for it; an idle one wakes when its link is changed.
            _ = handle.link.changed(seen) => check_link = true,
        }
    }
}

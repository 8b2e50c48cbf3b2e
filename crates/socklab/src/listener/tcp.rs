//! TCP devices: an accept loop per listener and one task per connection.
//!
//! The connection task owns its socket and is the only writer to it, so data from the
//! operator, echo and auto-replies go out in order. It waits for the store to accept each
//! chunk before reading the next one: when the store falls behind, socklab stops reading
//! and TCP flow control slows the device down.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{OUTBOX_CAPACITY, READ_CHUNK_BYTES};
use crate::hub::Hub;
use crate::model::{Direction, EndReason};
use crate::session::{ListenerState, Outbox, Outlet, SessionHandle};
use crate::shutdown::Shutdown;

/// Reads up to this size are copied out of the read buffer (see `drive`).
const SMALL_READ_BYTES: usize = 2048;

/// Held by every task `run` must wait for; dropped when the task ends.
pub(crate) type TaskGuard = mpsc::Sender<()>;

/// Accepts connections until shutdown, spawning a connection task for each.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<ListenerState>,
    hub: Arc<Hub>,
    mut shutdown: Shutdown,
    guard: TaskGuard,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(
                    stream,
                    peer,
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

/// One device connection from start to end.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    mut shutdown: Shutdown,
    _guard: TaskGuard,
) {
    let handle = hub
        .open_session(&listener, peer, Outlet::Tcp(Outbox::new(OUTBOX_CAPACITY)))
        .await;
    let Outlet::Tcp(outbox) = &handle.outlet else {
        unreachable!("a TCP session has a TCP outlet");
    };
    let reason = drive(&mut stream, &handle, outbox, &listener, &hub, &mut shutdown).await;
    // Nothing reads the outbox any more: later sends fail as not online, and senders
    // waiting for room are released instead of timing out.
    outbox.close();
    if matches!(
        reason,
        EndReason::ClosedByOperator | EndReason::ServerShutdown
    ) {
        // An orderly FIN so the device's recv() returns b"" rather than an error.
        let _ = stream.shutdown().await;
    }
    hub.end_session(&handle, reason).await;
}

/// Moves data both ways until the session ends; returns why it ended.
async fn drive(
    stream: &mut TcpStream,
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
    loop {
        // An emulated link (or a fault) takes the session through the link loop. With none,
        // or `perfect`, this plain loop pays one atomic load per read or send for it; an idle
        // session wakes for a change through the last `select!` branch.
        if (std::mem::take(&mut check_link) || handle.link.version() != seen)
            && crate::link::check(handle, &mut seen)
        {
            let cx = crate::link::tcp::Ctx {
                stream: &mut *stream,
                handle,
                outbox,
                listener,
                hub,
                shutdown: &mut *shutdown,
                seen: &mut seen,
                pending: pending.take(),
            };
            // Boxed: the link loop's state lives on the heap only while it runs, so sessions
            // without a link do not carry it in their task (about 1.4 KiB each).
            if let Some(reason) = Box::pin(crate::link::tcp::drive(cx)).await {
                return reason;
            }
        }
        if let Some(data) = pending.take()
            && let Err(reason) = write(stream, handle, hub, shutdown, data).await
        {
            return reason;
        }
        tokio::select! {
            biased;
            _ = shutdown.wait() => return EndReason::ServerShutdown,
            _ = handle.close_requested.notified() => return EndReason::ClosedByOperator,
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
            ready = stream.readable() => {
                if ready.is_err() {
                    return EndReason::Reset;
                }
                if handle.link.version() != seen {
                    // Data arrived after a link change: the link reads it.
                    check_link = true;
                    continue;
                }
                let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
                match stream.try_read_buf(&mut buf) {
                    Ok(0) => return EndReason::ClosedByDevice,
                    Ok(n) => {
                        // A small read gets its own small buffer: the queue and the event
                        // buffer then hold bytes, not mostly-empty 16 KiB blocks.
                        let data = if n <= SMALL_READ_BYTES {
                            Bytes::copy_from_slice(&buf)
                        } else {
                            buf.freeze()
                        };
                        let replies = listener.replies(&data);
                        // Awaits room in the store queue: the back-pressure point.
                        hub.record(handle, Direction::Up, data).await;
                        for reply in replies {
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

/// Records and writes one message to the device. The record comes first so that anyone who
/// sees the device receive it also finds it in the history.
pub(crate) async fn write(
    stream: &mut TcpStream,
    handle: &SessionHandle,
    hub: &Hub,
    shutdown: &mut Shutdown,
    data: Bytes,
) -> Result<(), EndReason> {
    hub.record(handle, Direction::Down, data.clone()).await;
    // A device that does not read can block this write forever; operator close and
    // shutdown must still get through.
    tokio::select! {
        r = stream.write_all(&data) => r.map_err(|e| reason_for(&e)),
        _ = shutdown.wait() => Err(EndReason::ServerShutdown),
        _ = handle.close_requested.notified() => Err(EndReason::ClosedByOperator),
    }
}

/// Maps a socket error to an end reason: everything but an orderly close is a reset.
fn reason_for(e: &io::Error) -> EndReason {
    tracing::debug!("tcp session error: {e}");
    EndReason::Reset
}

//! Writing to a TCP device, shared by the plain loop ([`super::tcp`]) and the link loop
//! ([`super::tcp_link`]): one write that an operator close, an injected reset or shutdown
//! can interrupt, and the reset itself.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::hub::Hub;
use crate::model::{Direction, EndReason, LinkAction};
use crate::session::SessionHandle;
use crate::shutdown::Shutdown;

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
        _ = handle.close_requested.notified() => Err(closed_or_reset(stream, handle, hub)),
    }
}

/// An operator close or an injected reset woke the task (both signal `close_requested`):
/// carries out a pending reset and says which it was.
pub(crate) fn closed_or_reset(stream: &TcpStream, handle: &SessionHandle, hub: &Hub) -> EndReason {
    if handle.reset_requested.swap(false, Ordering::Relaxed) {
        reset_now(stream, handle, hub)
    } else {
        EndReason::ClosedByOperator
    }
}

/// The link resets the connection: closing with SO_LINGER 0 makes the kernel send an RST
/// (the device sees ECONNRESET).
pub(crate) fn reset_now(stream: &TcpStream, handle: &SessionHandle, hub: &Hub) -> EndReason {
    if let Err(e) = stream.set_zero_linger() {
        tracing::warn!("session {}: SO_LINGER 0: {e}", handle.id());
    }
    hub.link_state(handle, LinkAction::Reset, Duration::ZERO);
    EndReason::LinkReset
}

/// Maps a socket error to an end reason: everything but an orderly close is a reset.
pub(crate) fn reason_for(e: &io::Error) -> EndReason {
    tracing::debug!("tcp session error: {e}");
    match e.raw_os_error() {
        // Only keepalive makes a read or write on an established connection time out.
        Some(libc::ETIMEDOUT) => EndReason::KeepaliveTimeout,
        _ => EndReason::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keepalive timeout has its own end reason; other errors are resets.
    #[test]
    fn end_reasons_of_socket_errors() {
        let timed_out = io::Error::from_raw_os_error(libc::ETIMEDOUT);
        assert_eq!(reason_for(&timed_out), EndReason::KeepaliveTimeout);
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_eq!(reason_for(&reset), EndReason::Reset);
    }
}

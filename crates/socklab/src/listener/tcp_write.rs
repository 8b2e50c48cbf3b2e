//! Writing to a TCP device, shared by the plain loop ([`super::tcp`]) and the link loop
//! ([`super::tcp_link`]): one write that an operator close, an injected reset or shutdown
//! can interrupt, and the reset itself. Both loops run over a [`DeviceStream`]: a plain
//! TCP connection or a TLS one ([`super::tls`]).

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A device connection the TCP loops serve: bytes both ways, and the TCP socket underneath
/// (for a reset).
pub trait DeviceStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP socket the connection runs on.
    fn tcp(&self) -> &TcpStream;
}

impl DeviceStream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl DeviceStream for TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Reads what the device sent, at most `max` bytes, into a buffer that exists only while
/// data is there: waiting costs an idle connection no buffer. `Ok(None)`: end of stream.
pub(crate) async fn read_chunk<S: DeviceStream>(
    stream: &mut S,
    max: usize,
) -> io::Result<Option<Bytes>> {
    std::future::poll_fn(|cx| poll_chunk(Pin::new(&mut *stream), cx, max)).await
}

fn poll_chunk<S: AsyncRead>(
    stream: Pin<&mut S>,
    cx: &mut Context<'_>,
    max: usize,
) -> Poll<io::Result<Option<Bytes>>> {
    // On the stack and left uninitialised: a wake-up without data costs no allocation and
    // no 16 KiB memset.
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); super::READ_CHUNK_BYTES];
    let mut buf = ReadBuf::uninit(&mut space[..max.clamp(1, super::READ_CHUNK_BYTES)]);
    match stream.poll_read(cx, &mut buf) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Ok(None)),
        Poll::Ready(Ok(())) => Poll::Ready(Ok(Some(Bytes::copy_from_slice(buf.filled())))),
    }
}

use crate::hub::Hub;
use crate::model::{Direction, EndReason, LinkAction};
use crate::session::SessionHandle;
use crate::shutdown::Shutdown;

/// Records and writes one message to the device. The record comes first so that anyone who
/// sees the device receive it also finds it in the history.
pub(crate) async fn write<S: DeviceStream>(
    stream: &mut S,
    handle: &SessionHandle,
    hub: &Hub,
    shutdown: &mut Shutdown,
    data: Bytes,
) -> Result<(), EndReason> {
    hub.record(handle, Direction::Down, data.clone()).await;
    // A device that does not read can block this write forever; operator close and
    // shutdown must still get through.
    // The flush pushes out what TLS still holds (a no-op on plain TCP).
    let written = async {
        stream.write_all(&data).await?;
        stream.flush().await
    };
    tokio::select! {
        r = written => r.map_err(|e| reason_for(&e)),
        _ = shutdown.wait() => Err(EndReason::ServerShutdown),
        _ = handle.close_requested.notified() => Err(closed_or_reset(stream.tcp(), handle, hub)),
    }
}

/// An operator close or an injected reset woke the task (both signal `close_requested`):
/// carries out a pending reset and says which it was.
pub(crate) fn closed_or_reset(stream: &TcpStream, handle: &SessionHandle, hub: &Hub) -> EndReason {
    if handle.reset_requested.swap(false, Ordering::Relaxed) {
        reset_now(stream, handle, hub)
    } else {
        handle.close_reason()
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
    if e.kind() == io::ErrorKind::UnexpectedEof {
        // TLS: the device closed the connection without close_notify, as most do.
        return EndReason::ClosedByDevice;
    }
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
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(reason_for(&eof), EndReason::ClosedByDevice);
    }
}

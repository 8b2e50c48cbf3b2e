//! TCP devices: an accept loop per listener and one task per connection, the one loop
//! that moves a device's data ([`serve_connection`]).
//!
//! The connection task owns its stream and is the only writer to it, so data from the
//! operator, echo and auto-replies go out in order. It waits for the store to accept each
//! chunk before reading the next one: when the store falls behind, socklab stops reading
//! and TCP flow control slows the device down.
//!
//! A session with an active link (or a fault) runs the same loop with the link engine
//! ([`TcpLink`]) between the socket and the rest: data read from the device enters the
//! engine's up lane, data for the device its down lane, and the loop sleeps until the
//! engine says a piece is due, then applies it (up: recorded and answered through
//! [`upstream`]; down: written). Reading stops while the up lane holds its budget, and the
//! outbox is only drained while the down lane has room, so back-pressure stays intact.
//! Without a link (or with `perfect`/`none`) the engine is not there at all: data goes
//! straight through, and the link costs one atomic load per read or send.
//!
//! Data for the device is recorded once the write has an outcome: `ok` when the stream
//! took it, `undelivered` when the session ended first (with what is still queued).
//!
//! The loop is generic over the stream ([`DeviceStream`]): a plain [`TcpStream`], or a
//! TLS stream over one ([`super::tls`] hands it over after the handshake).

use std::future::{Future, poll_fn};
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;

use super::{READ_CHUNK_BYTES, TaskGuard, upstream};
use crate::clock;
use crate::framing::FrameBuffer;
use crate::hub::Hub;
use crate::link::engine::Delivered;
use crate::link::engine::tcp::TcpLink;
use crate::listener_state::ListenerState;
use crate::model::{Direction, EndReason, LinkAction, LinkEvent, TlsInfo};
use crate::session::{OUTBOX_BYTES, Outbox, SessionHandle};
use crate::shutdown::Shutdown;

/// How long an orderly close may take to send its last bytes (a TLS close_notify to a
/// device that does not read must not hold the task).
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A device connection the TCP loop serves: a [`TcpStream`], or a stream over one (TLS).
pub trait DeviceStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The TCP socket underneath (an injected reset closes it with SO_LINGER 0).
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
    shutdown: Shutdown,
    guard: TaskGuard,
) {
    let serve_state = state.clone();
    let conn_shutdown = shutdown.clone();
    accept_each(listener, state, keepalive, shutdown, move |stream, peer| {
        serve_connection(
            stream,
            peer,
            None,
            serve_state.clone(),
            hub.clone(),
            conn_shutdown.clone(),
            guard.clone(),
        )
    })
    .await;
}

/// The accept loop of every TCP-based listener (plain and TLS): accepts until shutdown or
/// until the listener is removed at run time, gives each connection the device socket
/// options ([`prepare`]) and spawns `serve` for it. Removing the listener stops accepting
/// only; its connections end on their own terms (the hub closes them with
/// `listener_removed`).
pub(crate) async fn accept_each<F, Fut>(
    listener: TcpListener,
    state: Arc<ListenerState>,
    keepalive: Option<Duration>,
    mut shutdown: Shutdown,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut stopped = state.stopped();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            _ = stopped.wait() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                prepare(&stream, keepalive, &state, peer);
                tokio::spawn(serve(stream, peer));
            }
            Err(e) => {
                // Usually EMFILE/ENFILE: back off instead of spinning; the pending
                // connections stay in the kernel's backlog.
                tracing::warn!(
                    "{} {}: accept failed: {e}",
                    state.proto.as_str(),
                    state.addr
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The socket options every device connection gets, before anything is layered over it:
/// no Nagle delay, and keepalive probes after `keepalive` of silence when set.
pub fn prepare(
    stream: &TcpStream,
    keepalive: Option<Duration>,
    listener: &ListenerState,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    if let Some(idle) = keepalive
        && let Err(e) = set_keepalive(stream, idle)
    {
        tracing::warn!("tcp {}: keepalive on {peer}: {e}", listener.addr);
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

/// Serves one device connection of `listener` from start to end: opens its session, moves
/// data both ways until it ends, records what was never delivered and ends the session.
/// `stream` has been through [`prepare`]; `tls` is what its TLS handshake negotiated.
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
/// ends, then records what was never delivered and the end.
pub(crate) async fn run_session<S: DeviceStream>(
    mut stream: S,
    handle: Arc<SessionHandle>,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    shutdown: Shutdown,
    _guard: TaskGuard,
) {
    let Some(outbox) = &handle.outbox else {
        unreachable!("a TCP session has an outbox");
    };
    let mut conn = Conn {
        stream: &mut stream,
        handle: &handle,
        outbox,
        listener: &listener,
        hub: &hub,
        shutdown,
        seen: handle.link.version(),
        link: None,
        frames: None,
        eof: false,
        wrote_after_fin: false,
    };
    let reason = conn.run().await;
    if let Some(link) = conn.link.as_mut() {
        for data in link.engine.drain(Direction::Up) {
            hub.record_dropped(&handle, Direction::Up, data).await;
        }
        for data in link.engine.drain(Direction::Down) {
            hub.record_undelivered(&handle, data).await;
        }
    }
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
            | EndReason::HalfClosedByDevice
            | EndReason::ListenerRemoved
    ) {
        // An orderly close (FIN, and a TLS close_notify) so the device's recv() returns
        // b"" rather than an error.
        let _ = tokio::time::timeout(CLOSE_WAIT, stream.shutdown()).await;
    }
    hub.end_session(&handle, reason).await;
}

/// The link engine of a session while its link is active, boxed in [`Conn`] so sessions
/// without one do not carry it.
struct LinkRun {
    engine: TcpLink,
    /// Fires at `due`.
    timer: Pin<Box<Sleep>>,
    /// When the engine next has something to do (a piece due, an outage ending, the NAT
    /// timing out, a scheduled reset); `None`: nothing planned.
    due: Option<Instant>,
    /// The NAT drop has been acted on (data queued for the device dropped).
    nat_seen: bool,
}

/// One connection's loop state.
struct Conn<'a, S> {
    stream: &'a mut S,
    handle: &'a SessionHandle,
    outbox: &'a Outbox,
    listener: &'a ListenerState,
    hub: &'a Hub,
    shutdown: Shutdown,
    /// The version of the session's link control last taken in.
    seen: u64,
    /// The link engine, while the session has an active link or a fault.
    link: Option<Box<LinkRun>>,
    /// The part of an auto-reply frame collected so far (only with line or delimiter
    /// framing).
    frames: Option<Box<FrameBuffer>>,
    /// The device has sent its FIN: nothing more to read.
    eof: bool,
    /// Something was written to the device after its FIN: it had only half-closed.
    wrote_after_fin: bool,
}

impl<S: DeviceStream> Conn<'_, S> {
    /// Moves data both ways until the session ends; returns why it ended.
    async fn run(&mut self) -> EndReason {
        // A session starts with its listener's link.
        if self.handle.link_engaged() {
            self.link = Some(self.start_link(Instant::now()));
        }
        loop {
            if let Some(reason) = self.take_link_changes().await {
                return reason;
            }
            if self.eof && self.nothing_in_flight() {
                return self.end_after_fin();
            }
            let down_room = self
                .link
                .as_ref()
                .is_none_or(|l| l.engine.has_room(Direction::Down));
            let read_max = self.read_max();
            let timed = self.link.as_ref().is_some_and(|l| l.due.is_some());
            tokio::select! {
                biased;
                _ = self.shutdown.wait() => return EndReason::ServerShutdown,
                _ = self.handle.close_requested.notified() => {
                    return self.closed_or_reset().await;
                }
                _ = link_timer(&mut self.link), if timed => {
                    if let Some(reason) = self.link_due().await {
                        return reason;
                    }
                }
                data = self.outbox.recv(), if down_room => {
                    if let Err(reason) = self.down(data).await {
                        return reason;
                    }
                }
                read = read_chunk(&mut *self.stream, read_max.unwrap_or(1)), if read_max.is_some() => {
                    match read {
                        Ok(Some(data)) => {
                            if let Err(reason) = self.up(data).await {
                                return reason;
                            }
                        }
                        Ok(None) => self.eof = true,
                        // TLS: the device closed without close_notify, as most do.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.eof = true,
                        Err(e) => return self.ended(reason_for(&e)),
                    }
                }
                // Last on purpose: `biased` never polls it while data flows, so a busy
                // session pays nothing for it; an idle one wakes when its link is changed.
                _ = self.handle.link.changed(self.seen) => {}
            }
        }
    }

    /// How much to read from the device now: nothing after its FIN, during an outage or
    /// while the link's up lane holds its budget.
    fn read_max(&self) -> Option<usize> {
        if self.eof {
            return None;
        }
        let Some(l) = &self.link else {
            return Some(READ_CHUNK_BYTES);
        };
        let outage = self.handle.link.with(|c| c.outage(Instant::now()));
        (outage.is_none() && l.engine.has_room(Direction::Up))
            .then(|| l.engine.read_room(READ_CHUNK_BYTES))
    }

    /// Takes in what operators changed (a link, a fault): starts or updates the engine,
    /// carries out a reset or a NAT drop, and leaves the engine once the link is a no-op
    /// again with nothing in flight. Returns an end reason when the session must end.
    async fn take_link_changes(&mut self) -> Option<EndReason> {
        let handle = self.handle;
        let version = handle.link.version();
        if version != self.seen {
            self.seen = version;
            if handle.reset_requested.swap(false, Ordering::Relaxed) {
                return Some(self.reset().await);
            }
            let now = Instant::now();
            match &mut self.link {
                Some(l) => l.engine.set_spec(handle.link.get().spec_or_perfect(), now),
                None if handle.link_engaged() => self.link = Some(self.start_link(now)),
                None => {}
            }
        }
        let l = self.link.as_mut()?;
        let nat = handle.nat_dropped.load(Ordering::Relaxed);
        if nat && !l.nat_seen {
            l.nat_seen = true;
            // The carrier NAT sits next to the device: data the device already sent crossed
            // it before it forgot the flow and still arrives; data still queued for the
            // device would cross it afterwards and goes nowhere.
            for data in l.engine.drain(Direction::Down) {
                self.hub.record_dropped(handle, Direction::Down, data).await;
            }
        }
        let now = Instant::now();
        let ctl = handle.link.get();
        if ctl.spec.as_ref().is_none_or(|s| s.is_noop())
            && !ctl.active_at(now)
            && !nat
            && l.engine.is_empty(Direction::Up)
            && l.engine.is_empty(Direction::Down)
        {
            self.link = None;
            return None;
        }
        let outage = ctl.outage(now);
        let due = [
            l.engine.next_at(Direction::Up, outage),
            l.engine.next_at(Direction::Down, outage),
            l.engine.nat_deadline(nat),
            l.engine.reset_deadline(),
            outage,
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = due
            && l.due != Some(at)
        {
            l.timer.as_mut().reset(at);
        }
        l.due = due;
        None
    }

    fn start_link(&self, now: Instant) -> Box<LinkRun> {
        let spec = self.handle.link.get().spec_or_perfect();
        let start = started_instant(self.handle.meta.started_ms);
        let engine = TcpLink::new(spec, self.listener.seed(), self.handle.id(), start, now);
        Box::new(LinkRun {
            engine,
            timer: Box::pin(tokio::time::sleep_until(now)),
            due: None,
            nat_seen: false,
        })
    }

    /// Carries out what the engine has due now: a scheduled reset, the NAT timing out, the
    /// next piece each way.
    async fn link_due(&mut self) -> Option<EndReason> {
        let now = Instant::now();
        let handle = self.handle;
        let l = self.link.as_mut()?;
        if l.engine.reset_deadline().is_some_and(|at| at <= now) {
            return Some(self.reset().await);
        }
        let nat = handle.nat_dropped.load(Ordering::Relaxed);
        if l.engine.nat_deadline(nat).is_some_and(|at| at <= now) {
            handle.nat_dropped.store(true, Ordering::Relaxed);
            self.hub
                .link_state(handle, LinkAction::NatDropped, Duration::ZERO);
            return None; // the drop is taken in at the top of the loop
        }
        let outage = handle.link.with(|c| c.outage(now));
        if l.engine
            .next_at(Direction::Up, outage)
            .is_some_and(|at| at <= now)
            && let Some(p) = l.engine.pop(Direction::Up, now)
        {
            report(self.hub, handle.id(), Direction::Up, &p);
            for reply in upstream(
                self.hub,
                self.listener,
                handle,
                Some(&mut self.frames),
                p.data,
            )
            .await
            {
                self.push_link(Direction::Down, reply).await;
            }
            if self
                .link
                .as_ref()
                .is_some_and(|l| l.engine.reset_by_bytes())
            {
                return Some(self.reset().await);
            }
        }
        let l = self.link.as_mut()?;
        if l.engine
            .next_at(Direction::Down, outage)
            .is_some_and(|at| at <= now)
            && let Some(p) = l.engine.pop(Direction::Down, now)
        {
            report(self.hub, handle.id(), Direction::Down, &p);
            if let Err(reason) = self.write(p.data).await {
                return Some(reason);
            }
            if self
                .link
                .as_ref()
                .is_some_and(|l| l.engine.reset_by_bytes())
            {
                return Some(self.reset().await);
            }
        }
        None
    }

    /// Data from the device: through the link if there is one, else recorded and answered.
    async fn up(&mut self, data: Bytes) -> Result<(), EndReason> {
        self.catch_link_change();
        if self.link.is_some() {
            self.push_link(Direction::Up, data).await;
            return Ok(());
        }
        for reply in upstream(
            self.hub,
            self.listener,
            self.handle,
            Some(&mut self.frames),
            data,
        )
        .await
        {
            self.write(reply).await?;
        }
        Ok(())
    }

    /// Data for the device from the outbox: through the link if there is one, else written.
    async fn down(&mut self, data: Bytes) -> Result<(), EndReason> {
        self.catch_link_change();
        if self.link.is_some() {
            self.push_link(Direction::Down, data).await;
            return Ok(());
        }
        self.write(data).await
    }

    /// A link set while data was arriving applies to that data: starts the engine now
    /// rather than at the top of the next turn.
    fn catch_link_change(&mut self) {
        if self.link.is_none()
            && self.handle.link.version() != self.seen
            && self.handle.link_engaged()
        {
            self.link = Some(self.start_link(Instant::now()));
        }
    }

    /// Hands data to the link engine; after a NAT drop it goes nowhere (recorded dropped).
    async fn push_link(&mut self, dir: Direction, data: Bytes) {
        let nat = self.handle.nat_dropped.load(Ordering::Relaxed);
        match self.link.as_mut() {
            Some(l) if !nat => l.engine.push(dir, data, Instant::now()),
            _ => self.hub.record_dropped(self.handle, dir, data).await,
        }
    }

    /// Writes one message to the device, then records it with its outcome: sent, or
    /// undelivered when the session ended first (an operator close, an injected reset or
    /// shutdown interrupt a write to a device that does not read).
    async fn write(&mut self, data: Bytes) -> Result<(), EndReason> {
        let written = tokio::select! {
            r = write_all_flush(&mut *self.stream, &data) => r.map_err(|e| reason_for(&e)),
            _ = self.shutdown.wait() => Err(EndReason::ServerShutdown),
            _ = self.handle.close_requested.notified() => Err(self.closed_or_reset().await),
        };
        match written {
            Ok(()) => {
                self.wrote_after_fin |= self.eof;
                self.hub.record(self.handle, Direction::Down, data).await;
                Ok(())
            }
            Err(reason) => {
                self.hub.record_undelivered(self.handle, data).await;
                Err(self.ended(reason))
            }
        }
    }

    /// An operator close or an injected reset woke the task (both signal
    /// `close_requested`): carries out a pending reset, or ends as closed by the operator.
    async fn closed_or_reset(&mut self) -> EndReason {
        if self.handle.reset_requested.swap(false, Ordering::Relaxed) {
            self.reset().await
        } else {
            self.handle.close_reason()
        }
    }

    /// The link resets the connection: what is in flight is recorded as dropped, then the
    /// socket is closed with SO_LINGER 0, which makes the kernel send an RST (the device
    /// sees ECONNRESET).
    async fn reset(&mut self) -> EndReason {
        if let Some(l) = self.link.as_mut() {
            for dir in [Direction::Up, Direction::Down] {
                for data in l.engine.drain(dir) {
                    self.hub.record_dropped(self.handle, dir, data).await;
                }
            }
        }
        if let Err(e) = self.stream.tcp().set_zero_linger() {
            tracing::warn!("session {}: SO_LINGER 0: {e}", self.handle.id());
        }
        self.hub
            .link_state(self.handle, LinkAction::Reset, Duration::ZERO);
        EndReason::LinkReset
    }

    /// Whether nothing is left to deliver either way (after the device's FIN, the session
    /// ends once this holds).
    fn nothing_in_flight(&self) -> bool {
        self.outbox.queued_bytes() == 0
            && self.link.as_ref().is_none_or(|l| {
                l.engine.is_empty(Direction::Up) && l.engine.is_empty(Direction::Down)
            })
    }

    /// Why a session ends once the device has sent its FIN and everything is delivered:
    /// `half_closed_by_device` when socklab went on writing to it after the FIN (the device
    /// still read: it had closed only its sending side), else `closed_by_device`.
    fn end_after_fin(&self) -> EndReason {
        let reset_seen = matches!(self.stream.tcp().take_error(), Ok(Some(_)));
        if self.handle.nat_dropped.load(Ordering::Relaxed) {
            EndReason::NatDropped
        } else if self.wrote_after_fin && !reset_seen {
            EndReason::HalfClosedByDevice
        } else {
            EndReason::ClosedByDevice
        }
    }

    /// After a NAT drop every end is reported as the NAT drop: that is what ended it.
    fn ended(&self, reason: EndReason) -> EndReason {
        let nat = self.link.is_some() && self.handle.nat_dropped.load(Ordering::Relaxed);
        match reason {
            EndReason::Reset | EndReason::KeepaliveTimeout if nat => EndReason::NatDropped,
            reason => reason,
        }
    }
}

/// Sleeps until the link engine's next event (never without a link or without one due).
fn link_timer(link: &mut Option<Box<LinkRun>>) -> impl Future<Output = ()> + '_ {
    poll_fn(move |cx| match link {
        Some(l) if l.due.is_some() => l.timer.as_mut().poll(cx),
        _ => Poll::Pending,
    })
}

/// Reads what the device has sent, at most `max` bytes; `None` at the end of the stream.
/// The read goes into a stack buffer left uninitialised and is copied out at its size: a
/// connection waiting here holds no buffer, a wake-up without data allocates nothing, and
/// what is queued (store, events, the link) holds bytes, not mostly-empty 16 KiB blocks.
fn read_chunk<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
) -> impl Future<Output = io::Result<Option<Bytes>>> + '_ {
    poll_fn(move |cx| {
        let mut space = [MaybeUninit::<u8>::uninit(); READ_CHUNK_BYTES];
        let mut buf = ReadBuf::uninit(&mut space[..max.clamp(1, READ_CHUNK_BYTES)]);
        match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Ok(None)),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Some(Bytes::copy_from_slice(buf.filled())))),
        }
    })
}

/// Writes all of `data` and flushes it (a TLS stream holds records until flushed).
async fn write_all_flush<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) -> io::Result<()> {
    stream.write_all(data).await?;
    stream.flush().await
}

/// Maps a socket error to an end reason: everything but an orderly close is a reset.
fn reason_for(e: &io::Error) -> EndReason {
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

/// Reports a piece the link delivered: throttled, stalled or only delayed.
fn report(hub: &Hub, id: u64, dir: Direction, p: &Delivered) {
    hub.link_event(|| LinkEvent::data(id, p.action, dir, p.data.len(), p.delay));
}

/// The tokio instant of a Unix-milliseconds start time.
fn started_instant(started_ms: i64) -> Instant {
    let ago = (clock::now_ms() - started_ms).max(0) as u64;
    Instant::now()
        .checked_sub(Duration::from_millis(ago))
        .unwrap_or_else(Instant::now)
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

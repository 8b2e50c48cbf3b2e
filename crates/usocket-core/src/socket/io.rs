//! Sending, receiving, accepting and connecting, all through one wait driver ([`Socket::io`]).

use super::spin::{self, SPIN_BUDGET, SPIN_MAX_BYTES};
use super::{Mode, Socket};
use crate::addr;
use crate::error::{Error, Result, errno};
use crate::fd::Guard;
use crate::interrupt::{self, Checkpoint, Waiter};
use crate::profile::{self, Profile};
use crate::state::Phase;
use crate::sys::{self, Errno};
use socket2::SockAddr;
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Socket {
    /// Runs `op` until it completes, in the socket's mode (or non-blocking when `dontwait`).
    ///
    /// Blocking: `op` is a blocking syscall the kernel ends after one slice; EAGAIN/EINTR
    /// run the checkpoint and retry. Timed: poll one slice (bounded by `w`'s deadline) then
    /// `op` with `MSG_DONTWAIT`; the deadline gives `OSError(110)` at once, without the
    /// checkpoint (see [`Waiter::between_slices`]). Non-blocking: `op` once,
    /// EAGAIN is `OSError(11)`. If `close()` ran meanwhile, a failure is `OSError(9)`; a
    /// transfer that completed stands (the bytes went out, or arrived, before the close), and
    /// the 0-byte read that `close()`'s shutdown causes is turned into `OSError(9)` by
    /// [`Socket::on_eof`].
    pub(super) fn io<T>(
        &self,
        g: &Guard<'_>,
        w: &Waiter,
        events: i16,
        dontwait: bool,
        check: Checkpoint<'_>,
        mut op: impl FnMut(i32) -> std::result::Result<T, Errno>,
    ) -> Result<T> {
        let closed_or = |r: Result<T>| match r {
            Err(_) if g.closed() => Err(Error::Os(errno::EBADF)),
            r => r,
        };
        let current_mode = || {
            if dontwait {
                Mode::NonBlocking
            } else {
                self.mode()
            }
        };
        if current_mode() != Mode::NonBlocking {
            interrupt::check_thread_stop()?;
        }
        loop {
            // Re-read each slice: another thread may switch the socket to non-blocking.
            let interrupted = match current_mode() {
                Mode::NonBlocking => return closed_or(op(libc::MSG_DONTWAIT).map_err(Error::os)),
                Mode::Blocking => match op(0) {
                    Err(libc::EAGAIN) => false,
                    Err(libc::EINTR) => true,
                    r => return closed_or(r.map_err(Error::os)),
                },
                Mode::Timeout(_) => match sys::poll_one(g.fd(), events, w.next_slice()?) {
                    Ok(0) => false,
                    Err(libc::EINTR) => true,
                    Ok(_) => match op(libc::MSG_DONTWAIT) {
                        Err(libc::EAGAIN) => false,
                        Err(libc::EINTR) => true,
                        r => return closed_or(r.map_err(Error::os)),
                    },
                    Err(e) => return closed_or(Err(Error::os(e))),
                },
            };
            if g.closed() {
                return Err(Error::Os(errno::EBADF));
            }
            w.between_slices(interrupted, check)?;
        }
    }

    /// `send(data)`: loops until every byte is written, the timeout expires (returns the
    /// partial count, or `OSError(110)` if nothing went out) or, non-blocking, the buffer is
    /// full (partial count, or `OSError(11)`). `send(b'')` is 0, or `OSError(110)` in the
    /// legacy profile. `flags` are extra `MSG_*` flags (micropython profile).
    pub fn send(&self, data: &[u8], flags: i32, check: Checkpoint<'_>) -> Result<usize> {
        self.send_from(data, 0, flags, check)
    }

    /// The rest of a [`send`](Self::send) whose first `start` bytes already went out (see
    /// [`try_send_now`](Self::try_send_now)): the same loop and results, counting those
    /// bytes, so a timeout or a full buffer after them returns the partial count.
    pub fn send_from(
        &self,
        data: &[u8],
        start: usize,
        flags: i32,
        check: Checkpoint<'_>,
    ) -> Result<usize> {
        let g = self.handle.enter()?;
        if data.is_empty() {
            return if profile::current() == Profile::Legacy {
                Err(Error::Os(errno::ETIMEDOUT))
            } else {
                Ok(0)
            };
        }
        let w = self.waiter();
        let dontwait = flags & libc::MSG_DONTWAIT != 0;
        let mut sent = start.min(data.len());
        while sent < data.len() {
            let rest = &data[sent..];
            match self.io(&g, &w, libc::POLLOUT, dontwait, check, |f| {
                sys::send(g.fd(), rest, f | flags)
            }) {
                Ok(n) => sent += n,
                Err(Error::Os(errno::EAGAIN | errno::ETIMEDOUT)) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// `sendall(data)`: like [`send`](Self::send), but a partial write is `OSError(110)`
    /// (`OSError(11)` on a non-blocking socket).
    pub fn sendall(&self, data: &[u8], check: Checkpoint<'_>) -> Result<()> {
        self.sendall_from(data, 0, check)
    }

    /// The rest of a [`sendall`](Self::sendall) whose first `start` bytes already went out.
    pub fn sendall_from(&self, data: &[u8], start: usize, check: Checkpoint<'_>) -> Result<()> {
        let sent = self.send_from(data, start, 0, check)?;
        if sent < data.len() {
            let code = if self.mode() == Mode::NonBlocking {
                errno::EAGAIN
            } else {
                errno::ETIMEDOUT
            };
            return Err(Error::Os(code));
        }
        Ok(())
    }

    /// `sendto(data, (host, port))`: one datagram. The host must be numeric (a name is
    /// `ValueError("invalid arguments")`) unless an address-map rule rewrote it.
    pub fn sendto(
        &self,
        data: &[u8],
        host: &str,
        port: u16,
        flags: i32,
        check: Checkpoint<'_>,
    ) -> Result<usize> {
        let g = self.handle.enter()?;
        let dest = addr::destination(self.family, host, port, true, check)?;
        let w = self.waiter();
        let dontwait = flags & libc::MSG_DONTWAIT != 0;
        self.io(&g, &w, libc::POLLOUT, dontwait, check, |f| {
            sys::sendto(g.fd(), data, f | flags, &dest)
        })
    }

    /// `recv(bufsize)` into `buf`: waits for at least one byte, returns how many arrived.
    ///
    /// Bytes `readline` buffered come first. On a stream whose peer closed, the FIN rule
    /// applies (see [`Socket::end_of_stream`]). A stream read first takes the socket's read
    /// turn ([`ReadTurn`](super::ReadTurn)): while another thread reads, it waits (counted in
    /// the timeout; non-blocking: `OSError(11)`). Timeout: `OSError(110)`; non-blocking with nothing to
    /// read: `OSError(11)`; reset: `OSError(104)`; closed: `OSError(9)`.
    pub fn recv(
        &self,
        buf: &mut [MaybeUninit<u8>],
        flags: i32,
        check: Checkpoint<'_>,
    ) -> Result<usize> {
        self.recv_by(buf, flags, &self.waiter(), check)
    }

    /// [`recv`](Self::recv) against a deadline taken earlier (`w`, from
    /// [`waiter`](Self::waiter)), so the binding can start the timeout when the call
    /// starts, before it lets go of the GIL, as CPython does.
    pub fn recv_by(
        &self,
        buf: &mut [MaybeUninit<u8>],
        flags: i32,
        w: &Waiter,
        check: Checkpoint<'_>,
    ) -> Result<usize> {
        self.recv_from(buf, flags, w, check).map(|(n, _)| n)
    }

    /// `recvfrom(bufsize)` into `buf`: the count and the sender (the peer for TCP).
    pub fn recvfrom(
        &self,
        buf: &mut [MaybeUninit<u8>],
        flags: i32,
        check: Checkpoint<'_>,
    ) -> Result<(usize, Option<(String, u16)>)> {
        let (n, addr) = self.recv_from(buf, flags, &self.waiter(), check)?;
        let addr = match addr {
            Some(a) => Some(a),
            None => {
                let g = self.handle.enter()?;
                sys::peer_addr(g.fd()).ok()
            }
        };
        Ok((n, addr.as_ref().map(addr::split)))
    }

    fn recv_from(
        &self,
        buf: &mut [MaybeUninit<u8>],
        flags: i32,
        w: &Waiter,
        check: Checkpoint<'_>,
    ) -> Result<(usize, Option<SockAddr>)> {
        let g = self.handle.enter()?;
        let dontwait = flags & libc::MSG_DONTWAIT != 0;
        let _turn = if self.is_stream() {
            let nonblocking = dontwait || self.mode() == Mode::NonBlocking;
            Some(self.read_gate.take(w, nonblocking, &|| g.closed(), check)?)
        } else {
            None
        };
        let peek = flags & libc::MSG_PEEK != 0;
        if self.maybe_buffered.load(Ordering::Acquire) {
            let mut rb = self.rbuf.lock().unwrap_or_else(|e| e.into_inner());
            if !rb.is_empty() {
                return Ok((rb.copy_out(buf, peek), None));
            }
            self.maybe_buffered.store(false, Ordering::Release);
        }
        if buf.is_empty() && self.is_stream() {
            return Ok((0, None));
        }
        let stream = self.is_stream();
        let small = buf.len() <= SPIN_MAX_BYTES;
        let mut op = |f: i32| {
            if stream {
                sys::recv(g.fd(), buf, f | flags).map(|n| (n, None))
            } else {
                sys::recvfrom(g.fd(), buf, f | flags)
            }
        };
        let spins = small && !dontwait && self.mode() != Mode::NonBlocking;
        let spun = if spins {
            self.spin_recv(&g, w, &mut op)
        } else {
            None
        };
        let (n, from) = match spun {
            Some(r) => r?,
            None if spins => {
                let started = Instant::now();
                let r = self.io(&g, w, libc::POLLIN, dontwait, check, &mut op)?;
                spin::after_wait(&self.recv_spin, started.elapsed());
                r
            }
            None => self.io(&g, w, libc::POLLIN, dontwait, check, &mut op)?,
        };
        if n == 0 {
            self.on_eof()?;
        }
        Ok((n, from))
    }

    /// The spin before a blocking receive sleeps (see [`super::spin`]): retries `op` with
    /// `MSG_DONTWAIT`, yielding the CPU between tries, for up to the spin budget (less if the deadline is
    /// nearer) when recent receives on this socket found their data that soon. `Some` is
    /// the receive's result (data, end of stream, an error, or `OSError(9)` once `close()`
    /// ran); `None`: nothing came, or this receive does not spin; the caller waits.
    fn spin_recv<T>(
        &self,
        g: &Guard<'_>,
        w: &Waiter,
        op: &mut impl FnMut(i32) -> std::result::Result<T, Errno>,
    ) -> Option<Result<T>> {
        if !self.recv_spin.should_try() {
            return None;
        }
        let budget = w.next_slice().ok()?.min(SPIN_BUDGET);
        interrupt::check_thread_stop().ok()?; // the wait after returns the error
        let started = Instant::now();
        loop {
            match op(libc::MSG_DONTWAIT) {
                Err(libc::EAGAIN) => {}
                Err(libc::EINTR) => return None,
                Err(_) if g.closed() => return Some(Err(Error::Os(errno::EBADF))),
                r => {
                    self.recv_spin.hit();
                    return Some(r.map_err(Error::os));
                }
            }
            if g.closed() {
                return Some(Err(Error::Os(errno::EBADF)));
            }
            if started.elapsed() >= budget {
                self.recv_spin.missed();
                return None;
            }
            // Let a runnable peer (or another thread of this program) have the CPU.
            std::thread::yield_now();
        }
    }

    /// `accept()`: the new connection (blocking, no timeout, whatever the listener's mode)
    /// and the peer's `(ip, port)`. Timeout: `OSError(110)`; non-blocking with no pending
    /// connection: `OSError(11)`; closed (also from another thread): `OSError(9)`.
    pub fn accept(&self, check: Checkpoint<'_>) -> Result<(Socket, (String, u16))> {
        let g = self.handle.enter()?;
        let w = self.waiter();
        let (fd, peer) = self.io(&g, &w, libc::POLLIN, false, check, |_| sys::accept(g.fd()))?;
        let conn = Socket::from_accepted(fd, self.family, self.kind)?;
        Ok((conn, addr::split(&peer)))
    }

    /// `connect((host, port))`: host names are resolved (after the address map).
    ///
    /// Device profiles: a second `connect()` on a stream socket (after success or failure)
    /// is `OSError(114)`; refused is `OSError(104)`; a DNS failure `OSError(-202)` (202 in
    /// legacy). Timeout: `OSError(110)`; non-blocking: `OSError(115)` once started; closed
    /// (also from another thread while connecting): `OSError(9)`.
    pub fn connect(&self, host: &str, port: u16, check: Checkpoint<'_>) -> Result<()> {
        let g = self.handle.enter()?;
        if self.is_stream()
            && profile::current().is_device()
            && self.connect_attempted.swap(true, Ordering::SeqCst)
        {
            return Err(Error::Os(errno::EALREADY));
        }
        let dest = addr::destination(self.family, host, port, false, check)?;
        let r = self.connect_to(&g, &dest, check);
        self.set_phase(match r {
            Ok(()) => Phase::Connected,
            Err(Error::Os(errno::EINPROGRESS)) => Phase::Connecting,
            Err(_) => Phase::New,
        });
        r
    }

    fn connect_to(&self, g: &Guard<'_>, dest: &SockAddr, check: Checkpoint<'_>) -> Result<()> {
        let mode = self.mode();
        if mode == Mode::NonBlocking || !self.is_stream() {
            return sys::connect(g.fd(), dest).map_err(Error::os);
        }
        sys::set_nonblocking(g.fd(), true).map_err(Error::os)?;
        self.set_phase(Phase::Connecting);
        let started = sys::connect(g.fd(), dest);
        sys::set_nonblocking(g.fd(), false).map_err(Error::os)?;
        match started {
            Ok(()) => return Ok(()),
            Err(libc::EINPROGRESS) => {}
            Err(e) => return Err(Error::os(e)),
        }
        let w = self.waiter();
        interrupt::check_thread_stop()?;
        loop {
            let revents = sys::poll_one(g.fd(), libc::POLLOUT, w.next_slice()?);
            if g.closed() {
                return Err(Error::Os(errno::EBADF));
            }
            match revents {
                Ok(0) => w.between_slices(false, check)?,
                Err(libc::EINTR) => w.between_slices(true, check)?,
                Ok(_) => break,
                Err(e) => return Err(Error::os(e)),
            }
        }
        match sys::getsockopt_int(g.fd(), libc::SOL_SOCKET, libc::SO_ERROR) {
            Ok(0) => Ok(()),
            Ok(e) | Err(e) => Err(Error::os(e)),
        }
    }
}

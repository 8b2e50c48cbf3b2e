//! The fast paths: what a call can do without waiting, so the binding can run it while
//! still holding the GIL and release the GIL (and wait) only when the call would block.
//! They only shorten the path; every result is the one the waiting path would give.

use super::{Mode, Socket};
use crate::error::{Error, Result, errno};
use crate::{interrupt, sys};
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;

impl Socket {
    /// One `send` attempt that never waits: the bytes the kernel takes right now (0 when
    /// its buffer is full, or for an empty `data`, which the waiting path handles). For
    /// the binding's GIL-held first try; [`send_from`](Self::send_from) finishes the rest.
    /// A closed socket is `OSError(9)`; other errors are the OS's, as `send` gives them.
    pub fn try_send_now(&self, data: &[u8], flags: i32) -> Result<usize> {
        let g = self.handle.enter()?;
        if data.is_empty() {
            return Ok(0);
        }
        if flags & libc::MSG_DONTWAIT == 0 && self.mode() != Mode::NonBlocking {
            interrupt::check_thread_stop()?; // as the waiting path does before it starts
        }
        match sys::send(g.fd(), data, flags | libc::MSG_DONTWAIT) {
            Ok(n) => Ok(n),
            Err(libc::EAGAIN) | Err(libc::EINTR) => Ok(0),
            Err(e) => Err(Error::os(e)),
        }
    }

    /// Whether a receive with `flags` never waits: a non-blocking socket, or `MSG_DONTWAIT`.
    pub fn never_waits(&self, flags: i32) -> bool {
        flags & libc::MSG_DONTWAIT != 0 || self.mode() == Mode::NonBlocking
    }

    /// One `recv` attempt that never waits, with the full `recv` rules (read turn,
    /// buffered bytes, FIN rule). `None` when the call would have to wait (no data yet,
    /// another reader's turn): the caller then runs [`recv`](Self::recv), detached.
    /// On a non-blocking socket "no data" is the final `OSError(11)`. After a try that
    /// found nothing, the next few blocking receives skip it (`None` at once).
    pub fn try_recv_now(&self, buf: &mut [MaybeUninit<u8>], flags: i32) -> Option<Result<usize>> {
        let nonblocking = self.never_waits(flags);
        if !nonblocking && !self.recv_probe.should_try() {
            // Recent tries found nothing (a request/response exchange): wait directly,
            // without touching the descriptor or the read turn here.
            return None;
        }
        let g = match self.handle.enter() {
            Ok(g) => g,
            Err(e) => return Some(Err(e)),
        };
        let _turn = if self.is_stream() {
            Some(self.read_gate.try_take()?)
        } else {
            None
        };
        if self.maybe_buffered.load(Ordering::Acquire) || (buf.is_empty() && self.is_stream()) {
            return None; // rare: the full path handles buffered bytes and empty reads
        }
        if !nonblocking && let Err(e) = interrupt::check_thread_stop() {
            return Some(Err(e)); // as the waiting path does before it starts
        }
        let r = if self.is_stream() {
            sys::recv(g.fd(), buf, flags | libc::MSG_DONTWAIT)
        } else {
            sys::recvfrom(g.fd(), buf, flags | libc::MSG_DONTWAIT).map(|(n, _)| n)
        };
        match r {
            Ok(0) => Some(self.on_eof().map(|()| 0)),
            Ok(n) => {
                self.recv_probe.hit();
                Some(Ok(n))
            }
            Err(libc::EAGAIN) if nonblocking => Some(Err(Error::Os(errno::EAGAIN))),
            Err(libc::EAGAIN) | Err(libc::EINTR) => {
                self.recv_probe.missed();
                None
            }
            Err(e) => Some(Err(Error::os(e))),
        }
    }
}

//! The stream reads (`read`, `readinto`, `readline`): loop until the size is reached,
//! apply the FIN rule only when nothing was read, and give non-blocking results per
//! profile (`None`, or `OSError(11)` in legacy).

use super::{Mode, ReadTurn, Socket};
use crate::error::{Error, Result, errno};
use crate::fd::Guard;
use crate::interrupt::{Checkpoint, Waiter};
use crate::profile;
use crate::stream::FILL_BYTES;
use crate::sys;
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;

/// What a stream read produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome<T> {
    /// Data (possibly short at end of stream or at a timeout after partial data).
    Data(T),
    /// Non-blocking socket with nothing to read: the script gets `None`.
    WouldBlock,
}

/// Maps a non-blocking "nothing yet" to the profile's result.
fn would_block<T>() -> Result<ReadOutcome<T>> {
    if profile::current().streams_raise_eagain() {
        Err(Error::Os(errno::EAGAIN))
    } else {
        Ok(ReadOutcome::WouldBlock)
    }
}

impl Socket {
    /// `read([n])`: reads until `n` bytes (or, with `None`, until end of stream).
    ///
    /// At end of stream returns what was read; if that is nothing, the FIN rule applies.
    /// A timeout after partial data returns the partial data, before any data
    /// `OSError(110)`. Non-blocking: partial data, or [`ReadOutcome::WouldBlock`].
    pub fn read(&self, want: Option<usize>, check: Checkpoint<'_>) -> Result<ReadOutcome<Vec<u8>>> {
        let g = self.handle.enter()?;
        let w = self.waiter();
        let _turn = match self.turn_for(&w, &g, check)? {
            ReadOutcome::Data(t) => t,
            ReadOutcome::WouldBlock => return would_block(),
        };
        let mut out = Vec::new();
        {
            let mut rb = self.rbuf.lock().unwrap_or_else(|e| e.into_inner());
            let take = want.map_or(rb.available().len(), |n| n.min(rb.available().len()));
            out.extend_from_slice(&rb.available()[..take]);
            rb.consume(take);
        }
        while want.is_none_or(|n| out.len() < n) {
            let chunk = want.map_or(FILL_BYTES, |n| (n - out.len()).min(FILL_BYTES));
            out.reserve(chunk);
            let spare = &mut out.spare_capacity_mut()[..chunk];
            match self.io(&g, &w, libc::POLLIN, false, check, |f| {
                sys::recv(g.fd(), spare, f)
            }) {
                Ok(0) => {
                    if out.is_empty() {
                        self.on_eof()?;
                    }
                    break;
                }
                // SAFETY: recv initialised k bytes of the spare capacity.
                Ok(k) => unsafe { out.set_len(out.len() + k) },
                Err(Error::Os(errno::EAGAIN)) if out.is_empty() => return would_block(),
                Err(Error::Os(errno::EAGAIN | errno::ETIMEDOUT)) if !out.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(ReadOutcome::Data(out))
    }

    /// `readinto(buf)`: fills `buf` completely unless the stream ends, the timeout expires
    /// after partial data, or (non-blocking) no more data is there; same rules as
    /// [`read`](Self::read).
    pub fn readinto(
        &self,
        buf: &mut [MaybeUninit<u8>],
        check: Checkpoint<'_>,
    ) -> Result<ReadOutcome<usize>> {
        let g = self.handle.enter()?;
        let w = self.waiter();
        let _turn = match self.turn_for(&w, &g, check)? {
            ReadOutcome::Data(t) => t,
            ReadOutcome::WouldBlock => return would_block(),
        };
        let mut got = {
            let mut rb = self.rbuf.lock().unwrap_or_else(|e| e.into_inner());
            rb.copy_out(buf, false)
        };
        while got < buf.len() {
            let spare = &mut buf[got..];
            match self.io(&g, &w, libc::POLLIN, false, check, |f| {
                sys::recv(g.fd(), spare, f)
            }) {
                Ok(0) => {
                    if got == 0 {
                        self.on_eof()?;
                    }
                    break;
                }
                Ok(k) => got += k,
                Err(Error::Os(errno::EAGAIN)) if got == 0 => return would_block(),
                Err(Error::Os(errno::EAGAIN | errno::ETIMEDOUT)) if got > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(ReadOutcome::Data(got))
    }

    /// The first buffered line (through `\n`, at most `limit` bytes), handed to `f` and
    /// consumed; `None` when no complete line is buffered. Never blocks or enters the kernel.
    pub fn buffered_line<R>(&self, limit: Option<usize>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let mut rb = self.rbuf.lock().unwrap_or_else(|e| e.into_inner());
        let n = rb.line_len(limit)?;
        let r = f(&rb.available()[..n]);
        rb.consume(n);
        Some(r)
    }

    /// Everything buffered (at most `limit` bytes), handed to `f` and consumed; `None` when
    /// the buffer is empty.
    pub fn take_buffered<R>(&self, limit: Option<usize>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let mut rb = self.rbuf.lock().unwrap_or_else(|e| e.into_inner());
        let avail = rb.available();
        if avail.is_empty() {
            return None;
        }
        let n = limit.map_or(avail.len(), |l| l.min(avail.len()));
        let r = f(&avail[..n]);
        rb.consume(n);
        Some(r)
    }

    /// One refill of the read buffer for `readline`: waits (per `w`) for the read turn and
    /// for data, and returns how many bytes arrived, 0 at end of stream. The buffer is taken
    /// out of its mutex while waiting; the read turn keeps other readers out meanwhile.
    pub fn fill_buffer(&self, w: &Waiter, check: Checkpoint<'_>) -> Result<ReadOutcome<usize>> {
        let g = self.handle.enter()?;
        let _turn = match self.turn_for(w, &g, check)? {
            ReadOutcome::Data(t) => t,
            ReadOutcome::WouldBlock => return would_block(),
        };
        let mut rb = std::mem::take(&mut *self.rbuf.lock().unwrap_or_else(|e| e.into_inner()));
        let spare = rb.spare();
        let r = self.io(&g, w, libc::POLLIN, false, check, |f| {
            sys::recv(g.fd(), spare, f)
        });
        if let Ok(n) = r {
            rb.commit(n);
        }
        {
            let mut slot = self.rbuf.lock().unwrap_or_else(|e| e.into_inner());
            if !slot.is_empty() {
                // Another thread buffered bytes meanwhile; keep stream order as best we can.
                let later = slot.available().to_vec();
                let spare = rb.spare();
                let n = later.len().min(spare.len());
                for (d, s) in spare.iter_mut().zip(&later[..n]) {
                    d.write(*s);
                }
                rb.commit(n);
            }
            if !rb.is_empty() {
                self.maybe_buffered.store(true, Ordering::Release);
            }
            *slot = rb;
        }
        match r {
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(Error::Os(errno::EAGAIN)) => would_block(),
            Err(e) => Err(e),
        }
    }

    /// Takes the socket's read turn for a whole stream read made of several calls (a
    /// `readline` that refills): waits per `w` while another thread reads (`OSError(110)`
    /// at the deadline, `OSError(9)` if closed meanwhile); on a non-blocking socket a busy
    /// turn is [`ReadOutcome::WouldBlock`] (legacy: `OSError(11)`). Re-entrant: the reads
    /// this thread makes while holding it go straight through.
    pub fn read_turn(
        &self,
        w: &Waiter,
        check: Checkpoint<'_>,
    ) -> Result<ReadOutcome<ReadTurn<'_>>> {
        let g = self.handle.enter()?;
        match self.turn_for(w, &g, check)? {
            ReadOutcome::Data(t) => Ok(ReadOutcome::Data(t)),
            ReadOutcome::WouldBlock => would_block(),
        }
    }

    /// The read turn if it is free (or already this thread's), without waiting; for
    /// callers that hold the GIL and must not block on another reader.
    pub fn try_read_turn(&self) -> Option<ReadTurn<'_>> {
        self.read_gate.try_take()
    }

    fn turn_for(
        &self,
        w: &Waiter,
        g: &Guard<'_>,
        check: Checkpoint<'_>,
    ) -> Result<ReadOutcome<ReadTurn<'_>>> {
        let nonblocking = self.mode() == Mode::NonBlocking;
        match self.read_gate.take(w, nonblocking, &|| g.closed(), check) {
            Ok(t) => Ok(ReadOutcome::Data(t)),
            Err(Error::Os(errno::EAGAIN)) => Ok(ReadOutcome::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// The FIN rule for a `readline` that found the stream ended with nothing buffered:
    /// `OSError(107)` the first time in device profiles, then `Ok` (the script gets `b''`).
    pub fn end_of_stream(&self) -> Result<()> {
        self.on_eof()
    }
}

//! The stream reads (`read`, `readinto`, `readline`): loop until the size is reached,
//! apply the FIN rule only when nothing was read, and give non-blocking results per
//! profile (`None`, or `OSError(11)` in legacy).

use super::Socket;
use crate::error::{Error, Result, errno};
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
        let mut out = Vec::new();
        {
            let mut rb = self.rbuf.lock().unwrap_or_else(|e| e.into_inner());
            let take = want.map_or(rb.available().len(), |n| n.min(rb.available().len()));
            out.extend_from_slice(&rb.available()[..take]);
            rb.consume(take);
        }
        let w = self.waiter();
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
        let mut got = {
            let mut rb = self.rbuf.lock().unwrap_or_else(|e| e.into_inner());
            rb.copy_out(buf, false)
        };
        let w = self.waiter();
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

    /// One refill of the read buffer for `readline`: waits (per `w`) for data and returns
    /// how many bytes arrived, 0 at end of stream. The buffer is taken out of its mutex
    /// while waiting, so no lock is held across the blocking syscall.
    pub fn fill_buffer(&self, w: &Waiter, check: Checkpoint<'_>) -> Result<ReadOutcome<usize>> {
        let g = self.handle.enter()?;
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

    /// The FIN rule for a `readline` that found the stream ended with nothing buffered:
    /// `OSError(107)` the first time in device profiles, then `Ok` (the script gets `b''`).
    pub fn end_of_stream(&self) -> Result<()> {
        self.on_eof()
    }
}

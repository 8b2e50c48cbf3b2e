//! The socket's stream methods (`read`, `readinto`, `readline`, `write`): argument rules
//! from MicroPython's stream protocol, and `readline`'s fast path that serves buffered lines
//! without releasing the GIL or entering the kernel.

use crate::args::{Data, RawBuffer, int_arg, size_arg};
use crate::errors::to_py;
use crate::limits;
use crate::run::detached;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use usocket_core::socket::ReadOutcome;
use usocket_core::{Error, Socket, profile};

/// `read([n])`'s size: `None` (absent, `None` or negative) reads to the end of the stream.
pub(crate) fn read_size(size: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    Ok(match size {
        Some(s) if !s.is_none() && int_arg(s, "size")? >= 0 => Some(size_arg(s, "size")?),
        _ => None,
    })
}

/// `readline([limit])`'s limit: `None` (absent, `None`, negative) means no limit. The
/// caller answers `Some(0)` with `b''` without reading.
pub(crate) fn readline_limit(limit: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    Ok(match limit {
        Some(l) if !l.is_none() => usize::try_from(int_arg(l, "limit")?).ok(),
        _ => None,
    })
}

/// `readinto(buf[, nbytes])`'s target: a writable export of `buf` (`TypeError` if it is
/// not writable) and how many of its bytes to fill, `nbytes` at most.
pub(crate) struct WritableTarget {
    /// The export, held until the read is done.
    raw: RawBuffer,
    /// How many bytes of it to fill.
    len: usize,
}

/// Takes `readinto`'s arguments apart (see [`WritableTarget`]).
pub(crate) fn writable_target(
    buf: &Bound<'_, PyAny>,
    nbytes: Option<&Bound<'_, PyAny>>,
) -> PyResult<WritableTarget> {
    let mut raw = RawBuffer::get(buf, true)?;
    let limit = nbytes.map(|n| size_arg(n, "nbytes")).transpose()?;
    let whole = raw.as_uninit_mut().len();
    let len = limit.map_or(whole, |l| l.min(whole));
    Ok(WritableTarget { raw, len })
}

impl WritableTarget {
    /// The bytes to fill, as memory a receive may write.
    pub(crate) fn uninit(&mut self) -> &mut [MaybeUninit<u8>] {
        &mut self.raw.as_uninit_mut()[..self.len]
    }

    /// The bytes to fill, as bytes (a Python buffer's bytes are always initialised).
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        let target = self.uninit();
        // SAFETY: a Python buffer's bytes are always initialised, and u8 has the layout of
        // MaybeUninit<u8>.
        unsafe { &mut *(target as *mut [MaybeUninit<u8>] as *mut [u8]) }
    }
}

/// `read([n])`: `None`/negative reads to the end of the stream.
pub(crate) fn read<'py>(
    py: Python<'py>,
    sock: &Socket,
    size: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let want = read_size(size)?;
    if let Some(n) = want {
        limits::check_buffer(py, n, "read");
    }
    Ok(match detached(py, |check| sock.read(want, check))? {
        ReadOutcome::Data(v) => {
            if want.is_none() {
                limits::check_buffer(py, v.len(), "read");
            }
            Some(PyBytes::new(py, &v))
        }
        ReadOutcome::WouldBlock => None,
    })
}

/// `readinto(buf[, nbytes])`: `buf` must be writable.
pub(crate) fn readinto(
    py: Python<'_>,
    sock: &Socket,
    buf: &Bound<'_, PyAny>,
    nbytes: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<usize>> {
    let mut target = writable_target(buf, nbytes)?;
    let target = target.uninit();
    Ok(match detached(py, |check| sock.readinto(target, check))? {
        ReadOutcome::Data(n) => Some(n),
        ReadOutcome::WouldBlock => None,
    })
}

/// `readline([limit])`: buffered lines are returned straight away; otherwise the buffer is
/// refilled (GIL released) until a line, the limit or the end of the stream. One reader at
/// a time per socket (the read turn), as on the device.
pub(crate) fn readline<'py>(
    py: Python<'py>,
    sock: &Socket,
    limit: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let limit = readline_limit(limit)?;
    if limit == Some(0) {
        return Ok(Some(PyBytes::new(py, b"")));
    }
    let line = |s: &[u8]| PyBytes::new(py, s);
    // A whole line already buffered is taken out in one piece under the buffer's lock, so
    // it needs no read turn: the common case stays a lock and a copy.
    if let Some(found) = sock.buffered_line(limit, line) {
        return Ok(Some(found));
    }
    let w = sock.waiter();
    // Refilling holds the socket's read turn, so lines from several threads never splice;
    // waiting for it happens detached, never holding the GIL.
    let _turn = match sock.try_read_turn() {
        Some(turn) => turn,
        None => match detached(py, |check| sock.read_turn(&w, check))? {
            ReadOutcome::Data(turn) => turn,
            ReadOutcome::WouldBlock => return Ok(None),
        },
    };
    if let Some(found) = sock.buffered_line(limit, line) {
        return Ok(Some(found));
    }
    loop {
        match detached(py, |check| sock.fill_buffer(&w, check))? {
            ReadOutcome::Data(0) => {
                if let Some(rest) = sock.take_buffered(limit, line) {
                    return Ok(Some(rest));
                }
                sock.end_of_stream().map_err(|e| to_py(py, e, None))?;
                return Ok(Some(PyBytes::new(py, b"")));
            }
            ReadOutcome::Data(_) => {
                if let Some(found) = sock.buffered_line(limit, line) {
                    return Ok(Some(found));
                }
            }
            ReadOutcome::WouldBlock => return Ok(sock.take_buffered(limit, line)),
        }
    }
}

/// `write(buf)`, `write(buf, max_len)` or `write(buf, off, max_len)` (MicroPython's
/// stream write); a non-blocking socket that can take nothing gives `None` (legacy: 11).
pub(crate) fn write(
    py: Python<'_>,
    sock: &Socket,
    buf: &Bound<'_, PyAny>,
    off_or_len: Option<&Bound<'_, PyAny>>,
    max_len: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<usize>> {
    let data = Data::extract(buf)?;
    let bytes = data.as_bytes()?;
    let (off, len) = match (off_or_len, max_len) {
        (None, _) => (0, bytes.len()),
        (Some(l), None) => (0, size_arg(l, "length")?),
        (Some(o), Some(l)) => (
            size_arg(o, "offset")?.min(bytes.len()),
            size_arg(l, "length")?,
        ),
    };
    let rest = &bytes[off..];
    let part = &rest[..len.min(rest.len())];
    if sock.is_closed() {
        return Err(to_py(py, Error::Os(9), None));
    }
    if part.is_empty() {
        return Ok(Some(0));
    }
    let would_block = AtomicBool::new(false);
    let r = detached(py, |check| match sock.send(part, 0, check) {
        Err(Error::Os(11)) if !profile::current().streams_raise_eagain() => {
            would_block.store(true, Ordering::Relaxed);
            Ok(0)
        }
        other => other,
    })?;
    Ok(if would_block.load(Ordering::Relaxed) {
        None
    } else {
        Some(r)
    })
}

//! Running a core call detached from the interpreter, and what the binding does between
//! wait slices (signal handlers), plus the output helpers that go through `sys`.

use crate::errors::to_py;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use usocket_core::{Checkpoint, Error};

/// Runs `f` with the GIL released; between wait slices it re-attaches and runs Python's
/// signal handlers, so Ctrl-C (`KeyboardInterrupt`) ends a blocking call in the main thread.
pub(crate) fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce(Checkpoint<'_>) -> usocket_core::Result<T> + Send,
) -> PyResult<T> {
    let mut interrupted: Option<PyErr> = None;
    let slot = &mut interrupted;
    let result = py.detach(move || {
        let mut check = || -> usocket_core::Result<()> {
            // Python runs signal handlers only in the main thread; elsewhere check_signals
            // does nothing, so other threads skip taking the GIL between slices (with many
            // threads blocked, those grabs would delay everyone's return from a wait).
            if !on_main_thread() {
                return Ok(());
            }
            Python::attach(|py| py.check_signals()).map_err(|e| {
                *slot = Some(e);
                Error::Interrupted
            })
        };
        f(&mut check)
    });
    result.map_err(|e| to_py(py, e, interrupted))
}

/// The interpreter's main thread (`threading.main_thread().ident`), 0 until known.
static MAIN_THREAD: AtomicU64 = AtomicU64::new(0);

/// Records the main thread (at module import).
pub(crate) fn remember_main_thread(py: Python<'_>) -> PyResult<()> {
    let ident: u64 = py
        .import("threading")?
        .call_method0("main_thread")?
        .getattr("ident")?
        .extract()?;
    MAIN_THREAD.store(ident, Ordering::Relaxed);
    Ok(())
}

/// Whether the calling thread is the main thread (true while unknown, to stay safe).
fn on_main_thread() -> bool {
    let main = MAIN_THREAD.load(Ordering::Relaxed);
    main == 0 || main == usocket_core::interrupt::current_thread_ident()
}

/// Prints the address map's pending announcements on `sys.stderr`.
pub(crate) fn announce_mappings(py: Python<'_>) {
    for line in usocket_core::addrmap::take_announcements() {
        write_to(py, "stderr", &format!("{line}\n"));
    }
}

/// Writes `text` to `sys.<stream>`, ignoring failures (a closed stream must not turn a
/// socket call into an error).
pub(crate) fn write_to(py: Python<'_>, stream: &str, text: &str) {
    let written = py
        .import("sys")
        .and_then(|sys| sys.getattr(stream))
        .and_then(|s| s.call_method1("write", (text,)));
    if written.is_err() {
        PyErr::take(py);
    }
}

/// A `bytes` object being filled by a receive: allocated once, shrunk to the received
/// length without a copy (CPython's own recv does the same).
pub(crate) struct BytesOut {
    /// The CPython (or compat) bytes writer; owned until finished or discarded.
    writer: *mut ffi::compat::PyBytesWriter,
    /// Its capacity in bytes.
    len: usize,
}

impl BytesOut {
    /// Allocates room for `len` bytes (`MemoryError` if that fails).
    pub(crate) fn new(py: Python<'_>, len: usize) -> PyResult<BytesOut> {
        // SAFETY: attached to the interpreter; len fits Py_ssize_t (checked by the caller).
        let writer = unsafe { ffi::compat::PyBytesWriter_Create(len as ffi::Py_ssize_t) };
        if writer.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(BytesOut { writer, len })
    }

    /// The storage to receive into.
    pub(crate) fn as_uninit_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: the writer owns at least len bytes of storage at GetData until finished.
        unsafe {
            let data = ffi::compat::PyBytesWriter_GetData(self.writer);
            std::slice::from_raw_parts_mut(data.cast::<MaybeUninit<u8>>(), self.len)
        }
    }

    /// The `bytes` object holding the first `got` bytes.
    pub(crate) fn finish(mut self, py: Python<'_>, got: usize) -> PyResult<Bound<'_, PyBytes>> {
        let writer = std::mem::replace(&mut self.writer, std::ptr::null_mut());
        let got = got.min(self.len);
        // SAFETY: writer is live and `got` bytes of it were initialised by the receive.
        let obj =
            unsafe { ffi::compat::PyBytesWriter_FinishWithSize(writer, got as ffi::Py_ssize_t) };
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: FinishWithSize returns a new reference to a bytes object.
        Ok(unsafe { Bound::from_owned_ptr(py, obj).cast_into_unchecked() })
    }
}

impl Drop for BytesOut {
    fn drop(&mut self) {
        if !self.writer.is_null() {
            // SAFETY: an unfinished writer is discarded once, with the interpreter attached
            // (BytesOut never leaves the attached thread: it is not Send).
            unsafe { ffi::compat::PyBytesWriter_Discard(self.writer) };
        }
    }
}

//! Core errors to Python exceptions, in one place, and the warn-once helper.
//!
//! [`os_error`] is the only constructor of socket `OSError`s: `OSError(n)` with one
//! argument, then `.errno` and (for names in MicroPython's uerrno table) `.strerror`, so
//! `type(e) is OSError`, `e.args == (n,)` and `str(e) == '[Errno 110] ETIMEDOUT'`. PyO3's
//! `From<io::Error>` is never used: it would pick `TimeoutError` and friends.

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PySystemExit, PyUserWarning, PyValueError};
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use usocket_core::Error;
use usocket_core::error::uerrno_name;

pyo3::create_exception!(
    usocket,
    DeviceCompatibilityWarning,
    PyUserWarning,
    "Something worked on the PC that fails on a real QuecPython device."
);

/// `OSError(errno)` shaped like the device's.
///
/// The instance is made here, with the GIL held, and the error built from it. Building a
/// lazy `PyErr` and then asking for its value would make PyO3 normalise it, and PyO3 lets
/// the GIL go and takes it back to do that: under GIL contention that is one more switch
/// interval (5 ms) before a timeout or an `EAGAIN` reaches Python.
pub(crate) fn os_error(py: Python<'_>, errno: i32) -> PyErr {
    let value = match py.get_type::<PyOSError>().call1((errno,)) {
        Ok(value) => value,
        Err(e) => return e,
    };
    // Setting attributes on a fresh OSError instance cannot fail.
    let _ = value.setattr("errno", errno);
    if let Some(name) = uerrno_name(errno) {
        let _ = value.setattr("strerror", name);
    }
    PyErr::from_value(value)
}

/// Converts a core error; `interrupted` is the exception a checkpoint stored, if any.
pub(crate) fn to_py(py: Python<'_>, err: Error, interrupted: Option<PyErr>) -> PyErr {
    match err {
        Error::Os(n) => os_error(py, n),
        Error::Value(msg) => PyValueError::new_err(msg),
        Error::Interrupted => interrupted.unwrap_or_else(|| PyKeyboardInterrupt::new_err(())),
        Error::ThreadStopped => PySystemExit::new_err(()),
    }
}

/// The places where the PC is more lenient than the device; each warns once per process.
#[derive(Clone, Copy)]
pub(crate) enum Leniency {
    /// `sock.getaddrinfo(...)` on an instance (the tutorial's step 2).
    InstanceGetaddrinfo = 0,
    /// `send(b'')` returns 0 where the device raises `OSError(110)`.
    SendEmpty = 1,
    /// More sockets open at once than the device holds.
    SocketLimit = 2,
    /// A receive size the device's heap cannot hold.
    LargeBuffer = 3,
}

static WARNED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];

impl Leniency {
    fn message(self) -> String {
        match self {
            Leniency::InstanceGetaddrinfo => "usocket: socket objects on a QuecPython device have no getaddrinfo() method (AttributeError there); call usocket.getaddrinfo() instead".into(),
            Leniency::SendEmpty => "usocket: send(b'') returns 0 here, but raises OSError(110) on a QuecPython device".into(),
            Leniency::SocketLimit | Leniency::LargeBuffer => String::new(),
        }
    }

    /// Emits this leniency's `DeviceCompatibilityWarning` the first time it happens.
    pub(crate) fn warn_once(self, py: Python<'_>) -> PyResult<()> {
        if WARNED[self as usize].swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        warn(py, &self.message())
    }

    /// A device limit passed: warns once with `message` (built only then), and never
    /// fails the call, even when warnings are turned into errors: the run goes on, and the
    /// warning is printed on stderr instead.
    pub(crate) fn warn_once_lenient(self, py: Python<'_>, message: impl FnOnce() -> String) {
        if WARNED[self as usize].swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = warn(py, &message()) {
            e.print(py);
        }
    }
}

fn warn(py: Python<'_>, message: &str) -> PyResult<()> {
    let category = py.get_type::<DeviceCompatibilityWarning>();
    let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    PyErr::warn(py, &category, &text, 1)
}

/// Forgets which warnings were given (tests use it to see each warning again).
pub(crate) fn reset_warnings() {
    for w in &WARNED {
        w.store(false, Ordering::SeqCst);
    }
}

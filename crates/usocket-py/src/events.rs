//! The device's "socket readable" callback: `setsockopt(SOL_SOCKET, 20, callback)`.
//!
//! As on the device, `callback(sock)` is called whenever a registered socket is readable
//! (data, a FIN, an incoming connection, a datagram), from one place shared by all sockets:
//! here one background daemon thread (`usocket-events`), started by the first registration.
//! So a callback never runs twice at once, for the same socket or for different ones. The
//! callback reads the data itself (nothing is read for it), and it is called again while
//! the socket stays readable, after a short pause. `None` unregisters; `close()` drops the
//! registration too. An exception in a callback is printed with its traceback on stdout,
//! as the device prints it, and the dispatcher goes on.

use crate::sock::PySocket;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use usocket_core::interrupt::SLICE;
use usocket_core::socket::ready::wait_readable;

/// The pause after a round of callbacks, so a callback that leaves the data unread is
/// called again a few hundred times a second at most (the device polls every few VM ticks).
const REPEAT_PAUSE: Duration = Duration::from_millis(5);

/// How long the dispatcher sleeps with nothing registered (a registration wakes it).
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// One registration.
struct Entry {
    /// The socket, kept alive while registered (as the device's list does).
    sock: Py<PySocket>,
    /// What `setsockopt(..., 20, callback)` gave.
    callback: Py<PyAny>,
}

/// Every registration, in registration order.
static REGISTRY: Mutex<Vec<Arc<Entry>>> = Mutex::new(Vec::new());
/// Set once the dispatcher thread is started.
static STARTED: AtomicBool = AtomicBool::new(false);
/// A socket pair whose first end the dispatcher polls beside the sockets; a byte written to
/// the second end makes it re-read the registry.
static WAKE: OnceLock<(UnixStream, UnixStream)> = OnceLock::new();

fn wake_pair() -> Option<&'static (UnixStream, UnixStream)> {
    if let Some(pair) = WAKE.get() {
        return Some(pair);
    }
    let (a, b) = UnixStream::pair().ok()?;
    a.set_nonblocking(true).ok()?;
    b.set_nonblocking(true).ok()?;
    Some(WAKE.get_or_init(|| (a, b)))
}

fn wake_dispatcher() {
    if let Some((_, tx)) = WAKE.get() {
        let _ = (&*tx).write(&[1]); // a full pipe already means "wake up"
    }
}

fn registry() -> std::sync::MutexGuard<'static, Vec<Arc<Entry>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// `setsockopt(level, 20, value)`: registers `value` as `sock`'s readable callback
/// (replacing an earlier one), or unregisters with `None`. Anything else that is not
/// callable is a `TypeError`.
pub(crate) fn set_callback(sock: &Bound<'_, PySocket>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = sock.py();
    let key = sock.as_ptr();
    if value.is_none() {
        let removed: Vec<Arc<Entry>> = {
            let mut reg = registry();
            let (gone, kept) = reg.drain(..).partition(|e| e.sock.as_ptr() == key);
            *reg = kept;
            gone
        };
        drop(removed); // with the GIL held
        wake_dispatcher();
        return Ok(());
    }
    if !value.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "socket callback must be callable or None, not {}",
            crate::args::type_name(value)
        )));
    }
    if wake_pair().is_none() {
        return Err(crate::errors::os_error(py, 24)); // EMFILE: no room for the wake pair
    }
    let entry = Arc::new(Entry {
        sock: sock.clone().unbind(),
        callback: value.clone().unbind(),
    });
    let replaced = {
        let mut reg = registry();
        match reg.iter_mut().find(|e| e.sock.as_ptr() == key) {
            Some(slot) => Some(std::mem::replace(slot, entry)),
            None => {
                reg.push(entry);
                None
            }
        }
    };
    drop(replaced);
    if !STARTED.swap(true, Ordering::SeqCst) {
        let start = || -> PyResult<()> {
            let target = py.import("usocket._usocket")?.getattr("_events_loop")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("target", target)?;
            kwargs.set_item("daemon", true)?;
            kwargs.set_item("name", "usocket-events")?;
            let thread = py
                .import("threading")?
                .getattr("Thread")?
                .call((), Some(&kwargs))?;
            thread.call_method0("start")?;
            Ok(())
        };
        if let Err(e) = start() {
            STARTED.store(false, Ordering::SeqCst);
            return Err(e);
        }
    }
    wake_dispatcher();
    Ok(())
}

/// Prints an exception a callback raised the way the device does: the traceback on stdout.
fn print_exception(py: Python<'_>, err: PyErr) {
    let printed = (|| -> PyResult<()> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("file", py.import("sys")?.getattr("stdout")?)?;
        py.import("traceback")?.getattr("print_exception")?.call(
            (err.get_type(py), err.value(py), err.traceback(py)),
            Some(&kwargs),
        )?;
        Ok(())
    })();
    if printed.is_err() {
        PyErr::take(py);
    }
}

/// The dispatcher (runs on the `usocket-events` daemon thread): waits, detached, until a
/// registered socket is readable, then calls its callback with the GIL held.
#[pyfunction]
pub fn _events_loop(py: Python<'_>) -> PyResult<()> {
    let Some((rx, _)) = wake_pair() else {
        return Ok(());
    };
    let wake_fd = rx.as_raw_fd();
    loop {
        let entries: Vec<Arc<Entry>> = {
            let mut reg = registry();
            reg.retain(|e| !e.sock.get().inner().is_closed()); // close() unregisters
            reg.clone()
        };
        let ready = py.detach(|| {
            let socks: Vec<_> = entries.iter().map(|e| e.sock.get().inner()).collect();
            // Registrations and close() wake the poll, so an empty registry can sleep long.
            let wait = if socks.is_empty() { IDLE_WAIT } else { SLICE };
            let ready = wait_readable(&socks, wake_fd, wait);
            let mut sink = [0u8; 64];
            while matches!((&*rx).read(&mut sink), Ok(n) if n > 0) {}
            ready
        });
        let mut called = false;
        for (entry, readable) in entries.iter().zip(ready) {
            let registered = registry().iter().any(|e| Arc::ptr_eq(e, entry));
            if !readable || !registered || entry.sock.get().inner().is_closed() {
                continue;
            }
            called = true;
            let sock = entry.sock.clone_ref(py);
            if let Err(err) = entry.callback.bind(py).call1((sock,)) {
                print_exception(py, err);
            }
        }
        drop(entries);
        if called {
            py.detach(|| std::thread::sleep(REPEAT_PAUSE));
        }
    }
}

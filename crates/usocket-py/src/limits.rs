//! Device limits as warnings: more sockets open at once than a module holds, and receive
//! sizes its heap cannot hold, each warn once (`DeviceCompatibilityWarning`) and never fail
//! the call. The numbers and the `USOCKET_MAX_SOCKETS` override live in
//! `usocket_core::limits`.

use crate::errors::{Leniency, to_py};
use pyo3::prelude::*;
use usocket_core::limits::{self, MAX_DEVICE_BUFFER_BYTES, MAX_SOCKETS_ENV};
use usocket_core::profile;

/// After a socket was created or accepted: warns once when more are open than the
/// device holds. A malformed `USOCKET_MAX_SOCKETS` is a `ValueError`.
pub(crate) fn check_socket_count(py: Python<'_>) -> PyResult<()> {
    let limit = limits::max_sockets(profile::current()).map_err(|e| to_py(py, e, None))?;
    let open = limits::open_sockets();
    if let Some(limit) = limit.filter(|&l| open > l) {
        Leniency::SocketLimit.warn_once_lenient(py, || {
            format!(
                "usocket: {open} sockets are open at once, but a QuecPython device holds at \
                 most {limit} (creating more fails there with OSError); documented limits: \
                 EC200A 64, ECxxxG/ECxxxU 15, BG95 20; set {MAX_SOCKETS_ENV} for your module"
            )
        });
    }
    Ok(())
}

/// Before a receive of `size` bytes (`recv`, `recvfrom`, `read`): warns once when the
/// device's heap could not hold one buffer that large (device profiles only).
pub(crate) fn check_buffer(py: Python<'_>, size: usize, method: &str) {
    if size > MAX_DEVICE_BUFFER_BYTES && profile::current().is_device() {
        Leniency::LargeBuffer.warn_once_lenient(py, || {
            format!(
                "usocket: {method}() of {size} bytes works here, but a QuecPython device \
                 allocates the buffer on a MicroPython heap of a few hundred KiB and may \
                 raise MemoryError above {MAX_DEVICE_BUFFER_BYTES} bytes; read in smaller \
                 pieces"
            )
        });
    }
}

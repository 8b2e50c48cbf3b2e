//! `usocket._usocket`: the PyO3 layer over `usocket-core`. It extracts arguments, releases
//! the GIL around every call that can block, and turns core errors into the device's
//! exceptions. The Python package `usocket` re-exports it per profile.
//!
//! # Layout
//!
//! * `sock`: the `socket` class, one method per device method.
//! * `stream`: the stream methods (`read`, `readinto`, `readline`, `write`).
//! * `hooks`: `getaddrinfo`, `inet_pton`/`inet_ntop` and the private hooks (profile,
//!   thread stop, address map, constant tables).
//! * `limits`: device limits (sockets at once, receive sizes) as warnings.
//! * `args`: argument extraction (addresses, send data, sizes, buffers).
//! * `run`: running a core call detached with a signal checkpoint; receive buffers.
//! * `tls`: `ussl`'s `SSLSocket` and `_ssl_wrap` (TLS from the core's rustls layer).
//! * `errors`: the one `OSError` constructor and `DeviceCompatibilityWarning`.
//! * `events`: the readable callback (`setsockopt(SOL_SOCKET, 20, cb)`) and its one
//!   dispatcher thread.

mod args;
mod errors;
mod events;
mod hooks;
mod limits;
mod run;
mod sock;
mod stream;
mod tls;

use pyo3::prelude::*;

/// The whole Python surface of the extension, in one place.
#[pymodule]
mod _usocket {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::sock::PySocket;

    #[pymodule_export]
    use crate::events::_events_loop;

    #[pymodule_export]
    use crate::tls::{_ssl_wrap, PySSLSocket};

    #[pymodule_export]
    use crate::hooks::{
        _clear_thread_stop, _constants, _get_profile, _request_thread_stop, _reset_warnings,
        _set_address_guard, _set_address_map, _set_profile, getaddrinfo, inet_ntop, inet_pton,
    };

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let py = m.py();
        crate::run::remember_main_thread(py)?;
        m.add(
            "DeviceCompatibilityWarning",
            py.get_type::<crate::errors::DeviceCompatibilityWarning>(),
        )?;
        Ok(())
    }
}

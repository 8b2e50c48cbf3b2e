//! `ussl`'s TLS socket: `_ssl_wrap` (what `ussl.wrap_socket` calls once the Python face
//! has settled the keyword arguments) and the `SSLSocket` class, one method per device
//! method, each a core call with the GIL released.

use crate::args::{Data, size_arg};
use crate::errors::to_py;
use crate::run::{BytesOut, detached};
use crate::sock::PySocket;
use crate::stream::{read_size, readline_limit, writable_target};
use pyo3::exceptions::{PyNotImplementedError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};
use std::mem::MaybeUninit;
use usocket_core::socket::ReadOutcome;
use usocket_core::tls::{TlsOptions, TlsStream};
use usocket_core::{Error, Socket, profile};

/// `SOCK_STREAM`, the only kind of socket TLS runs over.
const SOCK_STREAM: i32 = 1;

/// The most one `recv` returns (one TLS record's plaintext).
const RECV_MAX: usize = 16 * 1024;

/// A TLS stream over a `usocket.socket`, as `ussl.wrap_socket` returns it.
#[pyclass(name = "SSLSocket", module = "ussl", frozen)]
pub struct PySSLSocket {
    /// The wrapped socket (kept alive; its mode and state are the stream's).
    sock: Py<PySocket>,
    /// The TLS connection.
    tls: TlsStream,
}

/// PEM (or DER) input: `str` as UTF-8, or any bytes-like object.
fn pem_arg(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Vec<u8>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(s.to_str()?.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Some(b.to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be str or bytes, not {}",
        crate::args::type_name(obj)
    )))
}

/// Zero-fills a receive buffer so the core can treat it as initialised bytes.
fn zeroed(buf: &mut [MaybeUninit<u8>]) -> &mut [u8] {
    for b in buf.iter_mut() {
        b.write(0);
    }
    // SAFETY: every element was just initialised.
    unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) }
}

/// `_ssl_wrap(sock, server_side, key, cert, ca, server_hostname, do_handshake,
/// verify_without_ca, tls13)`: the checked arguments of `ussl.wrap_socket`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (sock, server_side, key, cert, ca, server_hostname, do_handshake, verify_without_ca, tls13))]
pub(crate) fn _ssl_wrap(
    py: Python<'_>,
    sock: &Bound<'_, PyAny>,
    server_side: bool,
    key: Option<&Bound<'_, PyAny>>,
    cert: Option<&Bound<'_, PyAny>>,
    ca: Option<&Bound<'_, PyAny>>,
    server_hostname: Option<&Bound<'_, PyAny>>,
    do_handshake: bool,
    verify_without_ca: bool,
    tls13: bool,
) -> PyResult<PySSLSocket> {
    let sock = sock.cast::<PySocket>().map_err(|_| {
        PyTypeError::new_err(format!(
            "wrap_socket() needs a usocket.socket, not {}",
            crate::args::type_name(sock)
        ))
    })?;
    if sock.get().inner().kind() != SOCK_STREAM {
        return Err(PyTypeError::new_err(
            "wrap_socket() needs a stream socket (SOCK_STREAM)",
        ));
    }
    let server_hostname = match server_hostname.filter(|h| !h.is_none()) {
        None => None,
        Some(h) => Some(
            h.cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("server_hostname must be str"))?
                .to_str()?
                .to_owned(),
        ),
    };
    let options = TlsOptions {
        server_side,
        key: pem_arg(key, "key")?,
        cert: pem_arg(cert, "cert")?,
        ca: pem_arg(ca, "ca")?,
        server_hostname,
        verify_without_ca,
        tls13,
    };
    let config = options.build().map_err(|e| to_py(py, e, None))?;
    let tls = TlsStream::new(config).map_err(|e| to_py(py, e, None))?;
    let wrapped = PySSLSocket {
        sock: sock.clone().unbind(),
        tls,
    };
    if do_handshake {
        let (core, tls) = (wrapped.core(), &wrapped.tls);
        detached(py, |check| tls.handshake(core, check))?;
    }
    Ok(wrapped)
}

impl PySSLSocket {
    fn core(&self) -> &Socket {
        self.sock.get().inner()
    }
}

#[pymethods]
impl PySSLSocket {
    /// `read([n])`: `n` bytes (fewer only at the end of the stream or a timeout after
    /// some data), or everything until the end; `None` when non-blocking and nothing came.
    #[pyo3(signature = (size = None, /))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let (sock, tls) = (self.core(), &self.tls);
        let Some(n) = read_size(size)? else {
            return Ok(match detached(py, |check| tls.read_to_end(sock, check))? {
                ReadOutcome::Data(v) => Some(PyBytes::new(py, &v)),
                ReadOutcome::WouldBlock => None,
            });
        };
        let mut out = BytesOut::new(py, n)?;
        let buf = zeroed(out.as_uninit_mut());
        match detached(py, |check| tls.read_into(sock, buf, check))? {
            ReadOutcome::Data(got) => Ok(Some(out.finish(py, got)?)),
            ReadOutcome::WouldBlock => Ok(None),
        }
    }

    /// `readinto(buf[, nbytes])` → bytes read into the writable `buf`.
    #[pyo3(signature = (buf, nbytes = None, /))]
    fn readinto(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<usize>> {
        let mut target = writable_target(buf, nbytes)?;
        let target = target.bytes();
        let (sock, tls) = (self.core(), &self.tls);
        Ok(
            match detached(py, |check| tls.read_into(sock, target, check))? {
                ReadOutcome::Data(n) => Some(n),
                ReadOutcome::WouldBlock => None,
            },
        )
    }

    /// `readline([limit])`: one line including `\n`.
    #[pyo3(signature = (limit = None, /))]
    fn readline<'py>(
        &self,
        py: Python<'py>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let limit = readline_limit(limit)?;
        if limit == Some(0) {
            return Ok(Some(PyBytes::new(py, b"")));
        }
        let (sock, tls) = (self.core(), &self.tls);
        Ok(
            match detached(py, |check| tls.readline(sock, limit, check))? {
                ReadOutcome::Data(v) => Some(PyBytes::new(py, &v)),
                ReadOutcome::WouldBlock => None,
            },
        )
    }

    /// `write(buf[, length])` → plaintext bytes taken; `None` when non-blocking and the
    /// socket can take nothing (`OSError(11)` in the legacy profile). `str` is UTF-8.
    #[pyo3(signature = (buf, length = None, /))]
    fn write(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        length: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<usize>> {
        let data = Data::extract(buf)?;
        let bytes = data.as_bytes()?;
        let len = match length {
            Some(l) if !l.is_none() => size_arg(l, "length")?.min(bytes.len()),
            _ => bytes.len(),
        };
        let part = &bytes[..len];
        let (sock, tls) = (self.core(), &self.tls);
        if part.is_empty() {
            tls_check_open(py, sock)?;
            return Ok(Some(0));
        }
        match detached(py, |check| tls.write(sock, part, check))? {
            None if profile::current().streams_raise_eagain() => {
                Err(to_py(py, Error::Os(11), None))
            }
            r => Ok(r),
        }
    }

    /// `send(data)` → plaintext bytes sent; would-block is `OSError(11)`.
    #[pyo3(signature = (data, /))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let data = Data::extract(data)?;
        let bytes = data.as_bytes()?;
        let (sock, tls) = (self.core(), &self.tls);
        if bytes.is_empty() {
            tls_check_open(py, sock)?;
            return Ok(0);
        }
        detached(py, |check| tls.write(sock, bytes, check))?
            .ok_or_else(|| to_py(py, Error::Os(11), None))
    }

    /// `recv(bufsize)` → `bytes`: at least one byte, `b''` at the end of the stream (after
    /// the profile's FIN rule).
    #[pyo3(signature = (bufsize, /))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        bufsize: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        // One call returns at most what one step decrypts; a record is at most 16 KiB,
        // so a larger buffer would only be cleared and shrunk again.
        let n = size_arg(bufsize, "buffersize")?.min(RECV_MAX);
        let (sock, tls) = (self.core(), &self.tls);
        let mut out = BytesOut::new(py, n)?;
        let buf = zeroed(out.as_uninit_mut());
        let got = detached(py, |check| tls.recv(sock, buf, check))?;
        out.finish(py, got)
    }

    /// `settimeout(value)`: the wrapped socket's (same rules).
    #[pyo3(signature = (value, /))]
    fn settimeout(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sock.bind(py).call_method1("settimeout", (value,))?;
        Ok(())
    }

    /// `setblocking(flag)`: the wrapped socket's.
    #[pyo3(signature = (flag, /))]
    fn setblocking(&self, py: Python<'_>, flag: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sock.bind(py).call_method1("setblocking", (flag,))?;
        Ok(())
    }

    /// `getsocketsta()`: the wrapped socket's TCP state (lwIP numbering), -1 after close.
    fn getsocketsta(&self) -> i32 {
        self.core().tcp_state()
    }

    /// `getpeercert(binary_form)`: the peer's certificate as DER `bytes` (`None` if it
    /// sent none or the handshake has not happened); only the binary form exists.
    #[pyo3(signature = (binary_form, /))]
    fn getpeercert<'py>(
        &self,
        py: Python<'py>,
        binary_form: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if !binary_form.is_truthy()? {
            return Err(PyNotImplementedError::new_err(
                "only getpeercert(True) is supported",
            ));
        }
        Ok(self
            .tls
            .peer_certificate()
            .map(|der| PyBytes::new(py, &der)))
    }

    /// Closes TLS (close_notify when it can be sent at once) and the socket; wakes
    /// threads blocked on it with `OSError(9)`. Idempotent.
    fn close(&self, py: Python<'_>) {
        let (sock, tls) = (self.core(), &self.tls);
        py.detach(|| tls.close(sock));
    }

    /// The negotiated protocol (`'TLSv1.2'` or `'TLSv1.3'`), `None` before the handshake.
    /// Not on the device; for tests and diagnostics.
    fn _version(&self) -> Option<&'static str> {
        self.tls.protocol_version()
    }

    fn __repr__(&self) -> String {
        format!(
            "<SSLSocket fd={} state={}>",
            self.core().fileno(),
            self.core().tcp_state()
        )
    }
}

fn tls_check_open(py: Python<'_>, sock: &Socket) -> PyResult<()> {
    if sock.is_closed() {
        return Err(to_py(py, Error::Os(9), None));
    }
    Ok(())
}

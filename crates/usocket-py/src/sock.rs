//! The `usocket.socket` class: argument extraction, then the core call detached.

use crate::args::{self, Data, RawBuffer, int_arg, size_arg};
use crate::errors::{Leniency, to_py};
use crate::run::{BytesOut, announce_mappings, detached, write_to};
use crate::{events, limits, stream};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use std::mem::MaybeUninit;
use usocket_core::profile::{self, Profile};
use usocket_core::socket::{OptValue, SetOpt};
use usocket_core::{Mode, Socket};

/// A QuecPython socket: TCP or UDP, IPv4 or IPv6, and a byte stream itself.
#[pyclass(name = "socket", module = "usocket", frozen)]
pub struct PySocket {
    /// The engine; every method below is one call into it.
    inner: Socket,
}

/// The device's "register a readable callback" option number (any level).
const READABLE_CALLBACK: i32 = 20;

/// `recv` sizes up to this go through a stack buffer, and first try to receive with the
/// GIL held. Larger ones go straight to the waiting receive with the GIL released, as
/// CPython's do: for them the GIL round trip saved is small next to the copy, and a
/// blocking receive that finds data takes in the segments arriving meanwhile in the same
/// call, where a `MSG_DONTWAIT` one returns early and leaves that work for later.
const SMALL_RECV_BYTES: usize = 1024;

/// Rejects the `flags` argument outside the micropython profile (the device's methods
/// take no flags), and returns it as an int.
fn flags_arg(flags: Option<&Bound<'_, PyAny>>, method: &str, max_args: usize) -> PyResult<i32> {
    match flags {
        None => Ok(0),
        Some(_) if profile::current() != Profile::MicroPython => {
            Err(PyTypeError::new_err(format!(
                "function {method}() takes {max_args} positional arguments but {} were given",
                max_args + 1
            )))
        }
        Some(f) => Ok(int_arg(f, "flags")?.clamp(0, i64::from(i32::MAX)) as i32),
    }
}

fn core_err(py: Python<'_>, e: usocket_core::Error) -> PyErr {
    to_py(py, e, None)
}

impl PySocket {
    /// The engine behind this object.
    pub(crate) fn inner(&self) -> &Socket {
        &self.inner
    }

    fn wrap(py: Python<'_>, inner: Socket) -> PyResult<Bound<'_, PySocket>> {
        Bound::new(py, PySocket { inner })
    }
}

#[pymethods]
impl PySocket {
    /// `socket(af=AF_INET, type=SOCK_STREAM, proto=0)`: positional only, like the device.
    #[new]
    #[pyo3(signature = (af = 2, r#type = 1, proto = 0, /))]
    fn py_new(py: Python<'_>, af: i32, r#type: i32, proto: i32) -> PyResult<PySocket> {
        let inner = Socket::new(af, r#type, proto).map_err(|e| core_err(py, e))?;
        let sock = PySocket { inner };
        limits::check_socket_count(py)?;
        Ok(sock)
    }

    /// Closes the socket (idempotent); wakes threads blocked on it with `OSError(9)`.
    fn close(&self) {
        self.inner.close();
    }

    /// `bind((host, port))`; `''` is every interface.
    #[pyo3(signature = (address, /))]
    fn bind(&self, py: Python<'_>, address: &Bound<'_, PyAny>) -> PyResult<()> {
        let a = args::address(address)?;
        let sock = &self.inner;
        detached(py, |check| sock.bind(&a.host, a.port, check))
    }

    /// `listen([backlog])`.
    #[pyo3(signature = (backlog = None, /))]
    fn listen(&self, py: Python<'_>, backlog: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let backlog = match backlog {
            Some(b) => int_arg(b, "backlog")?.clamp(0, i64::from(i32::MAX)) as i32,
            None => 0,
        };
        self.inner.listen(backlog).map_err(|e| core_err(py, e))
    }

    /// `accept()` → `(conn, ip, port)`; `(conn, (ip, port))` in the micropython profile.
    fn accept<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let sock = &self.inner;
        let (conn, (ip, port)) = detached(py, |check| sock.accept(check))?;
        let conn = PySocket::wrap(py, conn)?;
        limits::check_socket_count(py)?;
        if profile::current().accept_three_tuple() {
            PyTuple::new(
                py,
                [
                    conn.into_any(),
                    ip.into_pyobject(py)?.into_any(),
                    port.into_pyobject(py)?.into_any(),
                ],
            )
        } else {
            let addr = (ip, port).into_pyobject(py)?.into_any();
            PyTuple::new(py, [conn.into_any(), addr])
        }
    }

    /// `connect((host, port))`; host names are resolved.
    #[pyo3(signature = (address, /))]
    fn connect(&self, py: Python<'_>, address: &Bound<'_, PyAny>) -> PyResult<()> {
        let a = args::address(address)?;
        let sock = &self.inner;
        let r = detached(py, |check| sock.connect(&a.host, a.port, check));
        announce_mappings(py);
        r
    }

    /// `send(data)` → bytes written; `str` is sent as UTF-8.
    #[pyo3(signature = (data, flags = None, /))]
    fn send(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let flags = flags_arg(flags, "send", 2)?;
        let data = Data::extract(data)?;
        let bytes = data.as_bytes()?;
        if bytes.is_empty() && profile::current() == Profile::QuecPython && !self.inner.is_closed()
        {
            Leniency::SendEmpty.warn_once_lenient(py, || {
                "usocket: send(b'') returns 0 here (quecpython profile), but raises \
                 OSError(110) on a QuecPython device"
                    .into()
            });
        }
        let sock = &self.inner;
        // Try first with the GIL held; release it only if the kernel cannot take it all.
        let now = sock
            .try_send_now(bytes, flags)
            .map_err(|e| core_err(py, e))?;
        if now == bytes.len() && now > 0 {
            return Ok(now);
        }
        detached(py, |check| sock.send_from(bytes, now, flags, check))
    }

    /// `sendall(data)`.
    #[pyo3(signature = (data, /))]
    fn sendall(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = Data::extract(data)?;
        let bytes = data.as_bytes()?;
        let sock = &self.inner;
        let now = sock.try_send_now(bytes, 0).map_err(|e| core_err(py, e))?;
        if now == bytes.len() && now > 0 {
            return Ok(());
        }
        detached(py, |check| sock.sendall_from(bytes, now, check))
    }

    /// `sendto(data, (ip, port))` (`sendto(data, flags, address)` in micropython).
    #[pyo3(signature = (data, flags_or_address, address = None, /))]
    fn sendto(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        flags_or_address: &Bound<'_, PyAny>,
        address: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let (flags, address) = match address {
            None => (0, flags_or_address),
            Some(a) => (flags_arg(Some(flags_or_address), "sendto", 3)?, a),
        };
        let data = Data::extract(data)?;
        let a = args::address(address)?;
        let bytes = data.as_bytes()?;
        let sock = &self.inner;
        let r = detached(py, |check| {
            sock.sendto(bytes, &a.host, a.port, flags, check)
        });
        announce_mappings(py);
        r
    }

    /// `recv(bufsize)` → `bytes`.
    #[pyo3(signature = (bufsize, flags = None, /))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        bufsize: &Bound<'py, PyAny>,
        flags: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let n = size_arg(bufsize, "buffersize")?;
        let flags = flags_arg(flags, "recv", 2)?;
        limits::check_buffer(py, n, "recv");
        let sock = &self.inner;
        // The timeout starts now, before the GIL is let go (as CPython's does).
        let w = sock.waiter();
        if n <= SMALL_RECV_BYTES {
            // Small reads (the common device case) go through the stack: no allocation
            // besides the bytes object itself.
            let mut small = [MaybeUninit::<u8>::uninit(); SMALL_RECV_BYTES];
            let buf = &mut small[..n];
            let got = match sock.try_recv_now(buf, flags) {
                Some(r) => r.map_err(|e| core_err(py, e))?,
                None => detached(py, |check| sock.recv_by(buf, flags, &w, check))?,
            };
            // SAFETY: recv initialised the first `got` bytes of `small`.
            let data = unsafe { std::slice::from_raw_parts(small.as_ptr().cast::<u8>(), got) };
            return Ok(PyBytes::new(py, data));
        }
        let mut out = BytesOut::new(py, n)?;
        let buf = out.as_uninit_mut();
        let tried = if sock.never_waits(flags) {
            sock.try_recv_now(buf, flags) // the final answer, unless another reader's turn
        } else {
            None
        };
        let got = match tried {
            Some(r) => r.map_err(|e| core_err(py, e))?,
            None => detached(py, |check| sock.recv_by(buf, flags, &w, check))?,
        };
        out.finish(py, got)
    }

    /// `recvfrom(bufsize)` → `(bytes, (ip, port))`.
    #[pyo3(signature = (bufsize, flags = None, /))]
    fn recvfrom<'py>(
        &self,
        py: Python<'py>,
        bufsize: &Bound<'py, PyAny>,
        flags: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let n = size_arg(bufsize, "buffersize")?;
        let flags = flags_arg(flags, "recvfrom", 2)?;
        limits::check_buffer(py, n, "recvfrom");
        let mut out = BytesOut::new(py, n)?;
        let buf = out.as_uninit_mut();
        let sock = &self.inner;
        let (got, from) = detached(py, |check| sock.recvfrom(buf, flags, check))?;
        let data = out.finish(py, got)?;
        let addr = from.unwrap_or_default().into_pyobject(py)?;
        PyTuple::new(py, [data.into_any(), addr.into_any()])
    }

    /// `read([n])`: `n` bytes (fewer only at end of stream), or everything until the end.
    #[pyo3(signature = (size = None, /))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        stream::read(py, &self.inner, size)
    }

    /// `readinto(buf[, nbytes])` → bytes read into `buf`.
    #[pyo3(signature = (buf, nbytes = None, /))]
    fn readinto(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<usize>> {
        stream::readinto(py, &self.inner, buf, nbytes)
    }

    /// `readline([limit])`: one line including `\n` (or `limit` bytes, or what is left at
    /// the end of the stream).
    #[pyo3(signature = (limit = None, /))]
    fn readline<'py>(
        &self,
        py: Python<'py>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        stream::readline(py, &self.inner, limit)
    }

    /// `write(buf[, max_len])` or `write(buf, off, max_len)` → bytes written.
    #[pyo3(signature = (buf, off_or_len = None, max_len = None, /))]
    fn write(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        off_or_len: Option<&Bound<'_, PyAny>>,
        max_len: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<usize>> {
        stream::write(py, &self.inner, buf, off_or_len, max_len)
    }

    /// `makefile(...)` → the socket itself (the socket is its own stream).
    #[pyo3(signature = (*args))]
    fn makefile<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, Self>> {
        if args.len() > 2 {
            return Err(PyTypeError::new_err(format!(
                "function makefile() takes at most 3 positional arguments but {} were given",
                args.len() + 1
            )));
        }
        Ok(slf.clone())
    }

    /// The OS descriptor (-1 after close), usable with `select`/`selectors`.
    fn fileno(&self) -> i32 {
        self.inner.fileno()
    }

    /// `setblocking(flag)`: true blocks without limit, false never blocks.
    #[pyo3(signature = (flag, /))]
    fn setblocking(&self, py: Python<'_>, flag: &Bound<'_, PyAny>) -> PyResult<()> {
        let mode = if flag.is_truthy()? {
            Mode::Blocking
        } else {
            Mode::NonBlocking
        };
        self.inner.set_mode(mode).map_err(|e| core_err(py, e))
    }

    /// `settimeout(value)`: `None` blocks, 0 never blocks, x > 0 waits x seconds.
    #[pyo3(signature = (value, /))]
    fn settimeout(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let seconds = if value.is_none() {
            None
        } else if value.is_instance_of::<pyo3::types::PyString>()
            || value.is_instance_of::<PyBytes>()
        {
            return Err(PyTypeError::new_err(format!(
                "can't convert {} to float",
                args::type_name(value)
            )));
        } else {
            Some(value.extract::<f64>()?)
        };
        let mode = Mode::from_timeout_secs(seconds).map_err(|e| core_err(py, e))?;
        self.inner.set_mode(mode).map_err(|e| core_err(py, e))
    }

    /// `setsockopt(level, optname, value)`; unknown device options print a warning line.
    /// Option 20 with a callable (or `None`) registers (or removes) the readable callback.
    #[pyo3(signature = (level, optname, value, /))]
    fn setsockopt(
        slf: &Bound<'_, Self>,
        level: &Bound<'_, PyAny>,
        optname: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let level = int_arg(level, "level")?.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let optname =
            int_arg(optname, "optname")?.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let device = profile::current().is_device();
        if optname == READABLE_CALLBACK && (device || value.is_none() || value.is_callable()) {
            if this.inner.is_closed() {
                return Err(core_err(py, usocket_core::Error::Os(9)));
            }
            return events::set_callback(slf, value);
        }
        let holder;
        let value = if args::is_int(value) {
            OptValue::Int(int_arg(value, "value")?)
        } else if device && optname != 2 && optname != 4 {
            OptValue::Int(0) // the device ignores the value of options it does not implement
        } else if device {
            return Err(PyTypeError::new_err(format!(
                "value must be int, not {}",
                args::type_name(value)
            )));
        } else {
            holder = RawBuffer::get(value, false)?;
            OptValue::Bytes(holder.as_slice())
        };
        match this
            .inner
            .setsockopt(level, optname, value)
            .map_err(|e| core_err(py, e))?
        {
            SetOpt::Applied => Ok(()),
            SetOpt::NotImplemented => {
                write_to(
                    py,
                    "stdout",
                    "Warning: lwip.setsockopt() option not implemented\n",
                );
                Ok(())
            }
        }
    }

    /// `getsocketsta()`: the TCP state in lwIP numbering (0–10), 0 for UDP, -1 after close.
    fn getsocketsta(&self) -> i32 {
        self.inner.tcp_state()
    }

    /// `sock.getaddrinfo(host, port)`: the tutorial's call on an instance. It works here
    /// (delegating to `usocket.getaddrinfo`) and warns once: the device has no such method.
    #[pyo3(signature = (*args))]
    fn getaddrinfo<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Leniency::InstanceGetaddrinfo.warn_once(py)?;
        let module = py.import("usocket")?;
        module.getattr("getaddrinfo")?.call1(args.clone())
    }

    fn __repr__(&self) -> String {
        format!(
            "<socket fd={} state={}>",
            self.inner.fileno(),
            self.inner.tcp_state()
        )
    }
}

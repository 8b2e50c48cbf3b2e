//! Argument extraction: Python values to owned (or GIL-independent) Rust values, with the
//! device's exception types (wrong type → `TypeError`, wrong shape → `ValueError`) and no
//! panics on any input.

use pyo3::exceptions::{PyMemoryError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use std::mem::MaybeUninit;

/// The largest buffer one call allocates up front; larger sizes are a `MemoryError`, as
/// they would be on the device's small heap.
pub(crate) const MAX_BUFFER_BYTES: usize = 1 << 30;

/// A `(host, port)` address argument.
pub(crate) struct Address {
    /// The host as the script passed it (`''` for every interface).
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
}

/// Extracts an address: a tuple or list (else `TypeError`) of length 2 (else
/// `ValueError`) holding a `str` host and an `int` port (else `TypeError`).
pub(crate) fn address(obj: &Bound<'_, PyAny>) -> PyResult<Address> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else {
        return Err(PyTypeError::new_err(format!(
            "address must be a tuple or list, not {}",
            type_name(obj)
        )));
    };
    if items.len() != 2 {
        return Err(PyValueError::new_err("tuple/list has wrong length"));
    }
    let host = items[0]
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err(format!("host must be str, not {}", type_name(&items[0])))
        })?
        .to_str()?
        .to_owned();
    Ok(Address {
        host,
        port: port(&items[1])?,
    })
}

/// A port: an `int` (else `TypeError`) in 0–65535 (else `OverflowError`).
pub(crate) fn port(obj: &Bound<'_, PyAny>) -> PyResult<u16> {
    if !is_int(obj) {
        return Err(PyTypeError::new_err(format!(
            "port must be int, not {}",
            type_name(obj)
        )));
    }
    let value: i64 = obj
        .extract()
        .map_err(|_| PyOverflowError::new_err("port must be 0-65535"))?;
    u16::try_from(value).map_err(|_| PyOverflowError::new_err("port must be 0-65535"))
}

/// Whether `obj` is an `int` (bools included, as on the device).
pub(crate) fn is_int(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: PyLong_Check only reads the type of a valid object.
    unsafe { ffi::PyLong_Check(obj.as_ptr()) != 0 }
}

/// The name of `obj`'s type, for messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// An integer argument: `TypeError` unless it is an `int`; `OverflowError` beyond i64.
pub(crate) fn int_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<i64> {
    if !is_int(obj) {
        return Err(PyTypeError::new_err(format!(
            "{what} must be int, not {}",
            type_name(obj)
        )));
    }
    obj.extract::<i64>()
        .map_err(|_| PyOverflowError::new_err(format!("{what} is too large")))
}

/// A buffer size: an `int`, not negative (`ValueError`), at most [`MAX_BUFFER_BYTES`]
/// (`MemoryError`).
pub(crate) fn size_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    let n = int_arg(obj, what)?;
    if n < 0 {
        return Err(PyValueError::new_err(format!("negative {what}")));
    }
    let n = n as u64;
    if n > MAX_BUFFER_BYTES as u64 {
        return Err(PyMemoryError::new_err(format!(
            "{what} too large: {n} bytes"
        )));
    }
    Ok(n as usize)
}

/// Data to send: `bytes`, any contiguous buffer (`bytearray`, `memoryview`, ...) or `str`
/// (sent as UTF-8, as the device does). Anything else is a `TypeError`.
pub(crate) enum Data<'py> {
    /// A `bytes` object (borrowed directly).
    Bytes(Bound<'py, PyBytes>),
    /// A `str`, sent as its UTF-8 encoding.
    Str(Bound<'py, PyString>),
    /// Any other object exporting a buffer.
    Buffer(RawBuffer),
}

impl<'py> Data<'py> {
    /// Extracts send data from `obj`.
    pub(crate) fn extract(obj: &Bound<'py, PyAny>) -> PyResult<Data<'py>> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Data::Bytes(b.clone()));
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Data::Str(s.clone()));
        }
        Ok(Data::Buffer(RawBuffer::get(obj, false)?))
    }

    /// The bytes; valid while `self` lives (no Python code runs in between).
    pub(crate) fn as_bytes(&self) -> PyResult<&[u8]> {
        match self {
            Data::Bytes(b) => Ok(b.as_bytes()),
            Data::Str(s) => Ok(s.to_str()?.as_bytes()),
            Data::Buffer(b) => Ok(b.as_slice()),
        }
    }
}

/// A held `Py_buffer` export (released on drop).
pub(crate) struct RawBuffer {
    /// Boxed so its address stays fixed between get and release.
    view: Box<ffi::Py_buffer>,
}

impl RawBuffer {
    /// Gets a contiguous byte view of `obj`; `writable` requests a writable one.
    /// Objects without the buffer protocol are a `TypeError`.
    pub(crate) fn get(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<RawBuffer> {
        // SAFETY: PyObject_CheckBuffer only inspects the type of a valid object.
        if unsafe { ffi::PyObject_CheckBuffer(obj.as_ptr()) } == 0 {
            let what = if writable {
                "writable buffer"
            } else {
                "object with buffer protocol"
            };
            return Err(PyTypeError::new_err(format!(
                "{what} required, not {}",
                type_name(obj)
            )));
        }
        // SAFETY: Py_buffer is plain data; zeroed is a valid "empty" value before filling.
        let mut view: Box<ffi::Py_buffer> = Box::new(unsafe { std::mem::zeroed() });
        let flags = if writable {
            ffi::PyBUF_WRITABLE
        } else {
            ffi::PyBUF_SIMPLE
        };
        // SAFETY: obj is valid; view points at writable storage that outlives the export.
        if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut *view, flags) } != 0 {
            let err = PyErr::fetch(obj.py());
            if writable {
                return Err(PyTypeError::new_err(format!(
                    "writable buffer required, not {}",
                    type_name(obj)
                )));
            }
            return Err(err);
        }
        Ok(RawBuffer { view })
    }

    /// The buffer's bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.view.buf.is_null() || self.view.len <= 0 {
            return &[];
        }
        // SAFETY: a successful PyBUF_SIMPLE export is buf..buf+len contiguous bytes, alive
        // until release.
        unsafe { std::slice::from_raw_parts(self.view.buf as *const u8, self.view.len as usize) }
    }

    /// The buffer as writable, possibly uninitialised memory (writable exports only).
    pub(crate) fn as_uninit_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        if self.view.buf.is_null() || self.view.len <= 0 {
            return &mut [];
        }
        // SAFETY: a successful PyBUF_WRITABLE export is len writable contiguous bytes.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.view.buf.cast::<MaybeUninit<u8>>(),
                self.view.len as usize,
            )
        }
    }
}

impl Drop for RawBuffer {
    fn drop(&mut self) {
        // SAFETY: the view was filled by a successful PyObject_GetBuffer and is released
        // exactly once, with the interpreter attached.
        Python::attach(|_| unsafe { ffi::PyBuffer_Release(&mut *self.view) });
    }
}

//! Module-level functions: `getaddrinfo`, the upstream extras (`inet_pton`/`inet_ntop`),
//! and the private hooks other parts of usocket-rs use (profile switch, thread stop,
//! address map, constant tables).

use crate::args::{self, RawBuffer};
use crate::errors::{reset_warnings, to_py};
use crate::run::{announce_mappings, detached};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use usocket_core::addr::{self, Port};
use usocket_core::addrmap::{self, Rule};
use usocket_core::{Profile, interrupt, profile};

/// `getaddrinfo(host, port[, af, type, proto, flags])` → `[(family, type, proto,
/// canonname, (ip, port))]`. The device keeps one result and ignores the extra arguments;
/// a DNS failure is `OSError(-202)` (legacy: `[]`).
#[pyfunction]
#[pyo3(signature = (host, port, af = 0, r#type = 0, proto = 0, flags = 0, /))]
pub fn getaddrinfo<'py>(
    py: Python<'py>,
    host: &Bound<'py, PyAny>,
    port: &Bound<'py, PyAny>,
    af: i32,
    r#type: i32,
    proto: i32,
    flags: i32,
) -> PyResult<Bound<'py, PyList>> {
    let host: String = host
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err(format!("host must be str, not {}", args::type_name(host)))
        })?
        .to_str()?
        .to_owned();
    let service: Option<String> = if args::is_int(port) {
        None
    } else if let Ok(s) = port.cast::<PyString>() {
        Some(s.to_str()?.to_owned())
    } else {
        return Err(PyTypeError::new_err(format!(
            "port must be int or str, not {}",
            args::type_name(port)
        )));
    };
    let port = match &service {
        Some(s) => Port::Service(s),
        None => Port::Number(args::port(port)?),
    };
    let result = detached(py, |check| {
        addr::getaddrinfo(&host, port, af, r#type, proto, flags, check)
    });
    announce_mappings(py);
    let entries = result?;
    let list = PyList::empty(py);
    for e in entries {
        let sockaddr = (e.addr.ip().to_string(), e.addr.port());
        list.append((e.family, e.socktype, e.proto, e.canonname, sockaddr))?;
    }
    Ok(list)
}

/// `inet_pton(af, text)` → packed address bytes (micropython profile).
#[pyfunction]
#[pyo3(signature = (af, text, /))]
pub fn inet_pton<'py>(
    py: Python<'py>,
    af: i32,
    text: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let text = text.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "address must be str, not {}",
            args::type_name(text)
        ))
    })?;
    let packed = addr::inet_pton(af, text.to_str()?).map_err(|e| to_py(py, e, None))?;
    Ok(PyBytes::new(py, &packed))
}

/// `inet_ntop(af, packed)` → address text (micropython profile).
#[pyfunction]
#[pyo3(signature = (af, packed, /))]
pub fn inet_ntop(py: Python<'_>, af: i32, packed: &Bound<'_, PyAny>) -> PyResult<String> {
    let buf = RawBuffer::get(packed, false)?;
    addr::inet_ntop(af, buf.as_slice()).map_err(|e| to_py(py, e, None))
}

fn parse_profile(name: &str) -> PyResult<Profile> {
    Profile::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown usocket profile {name:?} (use quecpython, legacy or micropython)"
        ))
    })
}

/// Switches the process-wide profile (the package's `_apply_profile` also rebuilds the
/// module namespace). Unknown names are a `ValueError`.
#[pyfunction]
pub fn _set_profile(name: &str) -> PyResult<()> {
    profile::set_current(parse_profile(name)?);
    Ok(())
}

/// The current profile's name.
#[pyfunction]
pub fn _get_profile() -> &'static str {
    profile::current().name()
}

/// The module constants of profile `name`, as a list of `(name, value)`.
#[pyfunction]
pub fn _constants(name: &str) -> PyResult<Vec<(&'static str, i32)>> {
    Ok(parse_profile(name)?.constants().to_vec())
}

/// Marks thread `ident` (`threading.get_ident()`): its blocking usocket calls raise
/// `SystemExit` within one 100 ms slice, until `_clear_thread_stop(ident)`.
#[pyfunction]
pub fn _request_thread_stop(ident: u64) {
    interrupt::request_thread_stop(ident);
}

/// Removes thread `ident`'s stop mark.
#[pyfunction]
pub fn _clear_thread_stop(ident: u64) {
    interrupt::clear_thread_stop(ident);
}

fn optional_port(obj: &Bound<'_, PyAny>) -> PyResult<Option<u16>> {
    if obj.is_none() {
        Ok(None)
    } else {
        args::port(obj).map(Some)
    }
}

/// Replaces the address-map rules: `[(from_host, from_port|None, to_host, to_port|None)]`.
/// An empty list clears the map.
#[pyfunction]
pub fn _set_address_map(rules: &Bound<'_, PyAny>) -> PyResult<()> {
    let mut parsed = Vec::new();
    for item in rules.try_iter()? {
        let item = item?;
        let t = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(
                "each rule must be a tuple (from_host, from_port, to_host, to_port)",
            )
        })?;
        if t.len() != 4 {
            return Err(PyValueError::new_err("each rule must have 4 items"));
        }
        let from_host: String = t.get_item(0)?.extract()?;
        let to_host: String = t.get_item(2)?.extract()?;
        parsed.push(Rule::new(
            &from_host,
            optional_port(&t.get_item(1)?)?,
            &to_host,
            optional_port(&t.get_item(3)?)?,
        ));
    }
    addrmap::set_rules(parsed);
    Ok(())
}

/// Sets what happens to connections to non-loopback addresses no map rule covers:
/// `'off'` (nothing), `'warn'` (one warning per destination) or `'strict'` (refused with
/// `OSError(113)`). Other names are a `ValueError`.
#[pyfunction]
pub fn _set_address_guard(mode: &str) -> PyResult<()> {
    let guard = match mode {
        "off" => addrmap::Guard::Off,
        "warn" => addrmap::Guard::Warn,
        "strict" => addrmap::Guard::Strict,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown address guard {other:?} (use off, warn or strict)"
            )));
        }
    };
    addrmap::set_guard(guard);
    Ok(())
}

/// Forgets which `DeviceCompatibilityWarning`s were given, so tests see them again.
#[pyfunction]
pub fn _reset_warnings() {
    reset_warnings();
}

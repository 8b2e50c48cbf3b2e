//! Errors as a device script sees them: an errno (device numbering) or a bad argument.
//!
//! The OS errno is kept all the way up; [`Error::os`] applies the only translations the
//! device makes (lwIP reports a refused connection as `ECONNRESET`, never `ECONNREFUSED`).

use crate::profile::{self, Profile};
use std::fmt;

/// errno values the device produces (MicroPython/lwIP numbering, equal to Linux's).
pub mod errno {
    /// Operation on a closed socket.
    pub const EBADF: i32 = 9;
    /// Non-blocking call that would block.
    pub const EAGAIN: i32 = 11;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Broken pipe (Linux only; the device reports a reset instead).
    pub const EPIPE: i32 = 32;
    /// Address already in use.
    pub const EADDRINUSE: i32 = 98;
    /// Connection aborted.
    pub const ECONNABORTED: i32 = 103;
    /// Connection reset (also lwIP's code for a refused connect).
    pub const ECONNRESET: i32 = 104;
    /// Already connected.
    pub const EISCONN: i32 = 106;
    /// Not connected; also the device's "peer closed" signal (the FIN rule).
    pub const ENOTCONN: i32 = 107;
    /// Timed out.
    pub const ETIMEDOUT: i32 = 110;
    /// Connection refused (only the micropython profile shows it).
    pub const ECONNREFUSED: i32 = 111;
    /// No route to host.
    pub const EHOSTUNREACH: i32 = 113;
    /// A connect was already attempted on this socket.
    pub const EALREADY: i32 = 114;
    /// A non-blocking connect has started.
    pub const EINPROGRESS: i32 = 115;
    /// DNS failure as N firmware and upstream MicroPython raise it (lwIP EAI_FAIL, negated).
    pub const DNS_FAILURE: i32 = -202;
    /// DNS failure inside `connect()` on legacy firmware (positive EAI_FAIL).
    pub const DNS_FAILURE_LEGACY: i32 = 202;
}

/// MicroPython's uerrno table: the names `str(OSError)` prints instead of strerror text.
const UERRNO_NAMES: &[(i32, &str)] = &[
    (1, "EPERM"),
    (2, "ENOENT"),
    (5, "EIO"),
    (9, "EBADF"),
    (11, "EAGAIN"),
    (12, "ENOMEM"),
    (13, "EACCES"),
    (17, "EEXIST"),
    (19, "ENODEV"),
    (21, "EISDIR"),
    (22, "EINVAL"),
    (95, "EOPNOTSUPP"),
    (98, "EADDRINUSE"),
    (103, "ECONNABORTED"),
    (104, "ECONNRESET"),
    (105, "ENOBUFS"),
    (107, "ENOTCONN"),
    (110, "ETIMEDOUT"),
    (111, "ECONNREFUSED"),
    (113, "EHOSTUNREACH"),
    (114, "EALREADY"),
    (115, "EINPROGRESS"),
];

/// The symbolic name MicroPython prints for `errno`, if its uerrno table has one.
pub fn uerrno_name(errno: i32) -> Option<&'static str> {
    UERRNO_NAMES
        .iter()
        .find(|(n, _)| *n == errno)
        .map(|(_, name)| *name)
}

/// Why a `usocket` call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `OSError(errno)` for the script; the number is already in device numbering.
    Os(i32),
    /// A bad argument value (`ValueError` on the Python side), with its message.
    Value(String),
    /// The caller's [`Checkpoint`](crate::Checkpoint) asked the call to stop; the caller
    /// holds the reason (for example a pending `KeyboardInterrupt`).
    Interrupted,
    /// The calling thread was marked by [`request_thread_stop`](crate::interrupt::request_thread_stop).
    ThreadStopped,
}

/// The result of every fallible core call.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Translates an OS errno to what the current profile's device would report.
    ///
    /// Device profiles report a refused connect as 104 and a broken pipe as a reset;
    /// the micropython profile keeps the OS value, as upstream's unix port does.
    pub fn os(raw: i32) -> Error {
        if profile::current() == Profile::MicroPython {
            return Error::Os(raw);
        }
        Error::Os(match raw {
            errno::ECONNREFUSED | errno::EPIPE => errno::ECONNRESET,
            other => other,
        })
    }

    /// The errno of an [`Error::Os`], if it is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os(n) => Some(*n),
            _ => None,
        }
    }

    /// A `ValueError` with `msg`.
    pub fn value(msg: impl Into<String>) -> Error {
        Error::Value(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os(n) => match uerrno_name(*n) {
                Some(name) => write!(f, "[Errno {n}] {name}"),
                None => write!(f, "{n}"),
            },
            Error::Value(msg) => f.write_str(msg),
            Error::Interrupted => f.write_str("interrupted"),
            Error::ThreadStopped => f.write_str("thread stopped"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_uses_uerrno_names_or_the_bare_number() {
        assert_eq!(Error::Os(110).to_string(), "[Errno 110] ETIMEDOUT");
        assert_eq!(Error::Os(114).to_string(), "[Errno 114] EALREADY");
        assert_eq!(Error::Os(-202).to_string(), "-202");
        assert_eq!(Error::Os(106).to_string(), "106");
    }
}

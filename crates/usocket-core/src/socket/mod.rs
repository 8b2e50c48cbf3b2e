//! [`Socket`]: one OS socket with the device's modes, options, state and close rules.
//!
//! The descriptor always stays in blocking mode with `SO_RCVTIMEO`/`SO_SNDTIMEO` set to one
//! [`SLICE`](crate::interrupt), except in non-blocking mode (`settimeout(0)`), where
//! it has `O_NONBLOCK`. So a blocking `recv` is a single syscall, as in CPython, that the
//! kernel ends after at most 100 ms to let the checkpoint run. The I/O methods live in
//! `io` (send, recv, accept, connect) and `reads` (the stream reads); `fast` holds the
//! attempts that never wait (run by the binding with the GIL held), `gate` the read turn
//! (one stream reader at a time), `spin` the short spin of a small blocking receive before
//! it sleeps (`backoff` turns both shortcuts off while they find nothing), and [`ready`] the wait for the readable callback.

mod backoff;
mod fast;
mod gate;
mod io;
mod reads;
pub mod ready;
mod spin;

pub use gate::ReadTurn;
pub use reads::ReadOutcome;

use crate::error::{Error, Result, errno};
use crate::fd::Handle;
use crate::interrupt::{Checkpoint, SLICE, Waiter};
use crate::profile::{self, Profile};
use crate::state::{Phase, TcpState};
use crate::stream::ReadBuf;
use crate::{addr, sys};
use backoff::Backoff;
use gate::ReadGate;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

/// How a socket waits (`settimeout`/`setblocking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Wait without limit (a new socket, `settimeout(None)`, `setblocking(True)`).
    Blocking,
    /// Never wait: would-block is `OSError(11)` (`settimeout(0)`, `setblocking(False)`).
    NonBlocking,
    /// Wait at most this long, then `OSError(110)` (`settimeout(x)`, x > 0).
    Timeout(Duration),
}

const MODE_BLOCKING: u64 = u64::MAX;
const MODE_NONBLOCKING: u64 = 0;

impl Mode {
    fn encode(self) -> u64 {
        match self {
            Mode::Blocking => MODE_BLOCKING,
            Mode::NonBlocking => MODE_NONBLOCKING,
            Mode::Timeout(d) => (d.as_nanos().min(u128::from(MODE_BLOCKING - 1)) as u64).max(1),
        }
    }

    fn decode(raw: u64) -> Mode {
        match raw {
            MODE_BLOCKING => Mode::Blocking,
            MODE_NONBLOCKING => Mode::NonBlocking,
            ns => Mode::Timeout(Duration::from_nanos(ns)),
        }
    }

    /// The mode `settimeout(seconds)` selects: `None` blocks, 0 is non-blocking, infinity
    /// blocks. Negative or NaN is a `ValueError`.
    pub fn from_timeout_secs(seconds: Option<f64>) -> Result<Mode> {
        match seconds {
            None => Ok(Mode::Blocking),
            Some(s) if s.is_nan() || s < 0.0 => Err(Error::value("Timeout value out of range")),
            Some(s) if s <= 0.0 => Ok(Mode::NonBlocking),
            Some(s) => Ok(Duration::try_from_secs_f64(s).map_or(Mode::Blocking, Mode::Timeout)),
        }
    }
}

/// The result of a device `setsockopt` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOpt {
    /// The option was applied.
    Applied,
    /// The device does not implement the option: print its warning line and go on.
    NotImplemented,
}

/// A `setsockopt` value: an integer or packed bytes (micropython profile).
#[derive(Debug, Clone, Copy)]
pub enum OptValue<'a> {
    /// An `int` option value.
    Int(i64),
    /// A packed structure (e.g. `SO_LINGER`, `IP_ADD_MEMBERSHIP`).
    Bytes(&'a [u8]),
}

/// One `usocket.socket` object.
#[derive(Debug)]
pub struct Socket {
    /// The descriptor, closable from any thread.
    handle: Handle,
    /// `AF_INET` or `AF_INET6` (OS numbering, which equals the device's).
    family: i32,
    /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_RAW`.
    kind: i32,
    /// The [`Mode`], encoded so reading it costs one atomic load.
    mode: AtomicU64,
    /// Set by the first `connect()` (or `listen()`): a second connect raises 114 on N.
    connect_attempted: AtomicBool,
    /// The [`Phase`] (as `u8`): what `getsocketsta()` estimates from where the system has
    /// no TCP state query.
    phase: AtomicU8,
    /// Set once a read has seen the peer's FIN: the FIN rule raised, later reads get b''.
    fin_seen: AtomicBool,
    /// Bytes `readline` read ahead; see [`crate::stream`].
    rbuf: Mutex<ReadBuf>,
    /// Set when `rbuf` may hold bytes, so `recv` skips the lock in the common case.
    maybe_buffered: AtomicBool,
    /// One stream read at a time (see [`ReadTurn`]).
    read_gate: ReadGate,
    /// Whether a blocking receive first tries with the GIL held (see `fast`).
    recv_probe: Backoff,
    /// Whether a blocking receive spins a little before it sleeps (see `spin`).
    recv_spin: Backoff,
}

impl Socket {
    /// `usocket.socket(af, type, proto)`: a new blocking socket with no timeout.
    ///
    /// Protos 7 (`IPPROTO_TCP_SER`) and 8 (`TCP_CUSTOMIZE_PORT`), like 6 and 17, create
    /// ordinary sockets (lwIP ignores the protocol of stream and datagram sockets). An
    /// `AF_INET6` socket is dual stack (see [`crate::addr`]). An unsupported family or type
    /// is the OS's `OSError`.
    pub fn new(family: i32, kind: i32, proto: i32) -> Result<Socket> {
        let os_proto = if kind == libc::SOCK_STREAM || kind == libc::SOCK_DGRAM {
            0
        } else {
            proto
        };
        let fd = sys::socket(family, kind, os_proto).map_err(Error::os)?;
        let sock = Socket::from_fd(fd, family, kind)?;
        if family == libc::AF_INET6 {
            // Dual stack like lwIP, whatever the host's net.ipv6.bindv6only says.
            sys::setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0).map_err(Error::os)?;
        }
        Ok(sock)
    }

    fn from_fd(fd: RawFd, family: i32, kind: i32) -> Result<Socket> {
        let handle = Handle::new(fd); // closes fd if the setup below fails
        sys::set_kernel_timeouts(fd, SLICE).map_err(Error::os)?;
        Ok(Socket {
            handle,
            family,
            kind,
            mode: AtomicU64::new(MODE_BLOCKING),
            connect_attempted: AtomicBool::new(false),
            phase: AtomicU8::new(Phase::New as u8),
            fin_seen: AtomicBool::new(false),
            rbuf: Mutex::new(ReadBuf::default()),
            maybe_buffered: AtomicBool::new(false),
            read_gate: ReadGate::default(),
            recv_probe: Backoff::default(),
            recv_spin: Backoff::default(),
        })
    }

    fn from_accepted(fd: OwnedFd, family: i32, kind: i32) -> Result<Socket> {
        let s = Socket::from_fd(fd.into_raw_fd(), family, kind)?;
        s.connect_attempted.store(true, Ordering::Relaxed);
        s.set_phase(Phase::Connected);
        Ok(s)
    }

    /// The address family (2 or 10).
    pub fn family(&self) -> i32 {
        self.family
    }

    /// The socket type (1 stream, 2 datagram, 3 raw).
    pub fn kind(&self) -> i32 {
        self.kind
    }

    fn is_stream(&self) -> bool {
        self.kind == libc::SOCK_STREAM
    }

    /// The current [`Mode`].
    pub fn mode(&self) -> Mode {
        Mode::decode(self.mode.load(Ordering::Relaxed))
    }

    /// `settimeout`/`setblocking`. On a closed socket it does nothing (as on the device).
    pub fn set_mode(&self, mode: Mode) -> Result<()> {
        let Ok(g) = self.handle.enter() else {
            return Ok(());
        };
        let was_nonblocking = self.mode() == Mode::NonBlocking;
        let now_nonblocking = mode == Mode::NonBlocking;
        if was_nonblocking != now_nonblocking {
            sys::set_nonblocking(g.fd(), now_nonblocking).map_err(Error::os)?;
        }
        self.mode.store(mode.encode(), Ordering::Relaxed);
        Ok(())
    }

    /// A [`Waiter`] for one operation starting now under the current mode.
    pub fn waiter(&self) -> Waiter {
        Waiter::new(match self.mode() {
            Mode::Timeout(d) => Some(d),
            _ => None,
        })
    }

    /// `fileno()`: the OS descriptor, -1 after `close()`.
    pub fn fileno(&self) -> RawFd {
        self.handle.raw()
    }

    /// Whether `close()` has been called.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// `close()`: idempotent. Wakes any thread blocked on this socket (it gets
    /// `OSError(9)`); the descriptor is released once no call is using it.
    pub fn close(&self) {
        self.handle.close();
    }

    /// `bind((host, port))`: `''` is every interface; host names are resolved (`check`
    /// runs while a name resolves).
    pub fn bind(&self, host: &str, port: u16, check: Checkpoint<'_>) -> Result<()> {
        let g = self.handle.enter()?;
        let sa = addr::resolve_for(self.family, host, port, false, check)?;
        sys::bind(g.fd(), &sa).map_err(Error::os)
    }

    /// `listen([backlog])`; a negative backlog counts as 0.
    pub fn listen(&self, backlog: i32) -> Result<()> {
        let g = self.handle.enter()?;
        sys::listen(g.fd(), backlog.max(0)).map_err(Error::os)?;
        self.connect_attempted.store(true, Ordering::Relaxed);
        self.set_phase(Phase::Listening);
        Ok(())
    }

    /// `getsocketsta()`: lwIP's number for the real TCP state; 0 for UDP; -1 after close.
    /// Where the system cannot report the kernel's state (no `TCP_INFO`), the state is
    /// [`estimated`](Self::estimated_tcp_state) from what the socket has seen.
    pub fn tcp_state(&self) -> i32 {
        let Ok(g) = self.handle.enter() else {
            return -1;
        };
        if !self.is_stream() {
            return 0;
        }
        match sys::tcp_state(g.fd()) {
            Ok(s) => TcpState::from_linux(s).lwip_code(),
            Err(_) => self.estimated_tcp_state(),
        }
    }

    /// The TCP state estimated from this socket's own calls (new 0, connecting 2,
    /// connected 4, peer's FIN read 7, listening 1; UDP 0; -1 after close): the fallback of
    /// [`tcp_state`](Self::tcp_state) on systems without a TCP state query.
    pub fn estimated_tcp_state(&self) -> i32 {
        if self.handle.is_closed() {
            return -1;
        }
        if !self.is_stream() {
            return 0;
        }
        let phase = Phase::from_u8(self.phase.load(Ordering::Relaxed));
        TcpState::estimate(phase, self.fin_seen.load(Ordering::Relaxed)).lwip_code()
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// `setsockopt(level, optname, value)`.
    ///
    /// Device profiles ignore `level`: `SO_REUSEADDR` (4) sets the OS option,
    /// `TCP_KEEPALIVE` (2) enables keepalive with an idle time of `value` minutes (25 s
    /// interval, 3 probes; 0 or less turns it off; ignored on UDP), anything else is
    /// [`SetOpt::NotImplemented`]. The micropython profile passes `level`/`optname`/`value`
    /// to the OS. A closed socket is `OSError(9)` for implemented options.
    pub fn setsockopt(&self, level: i32, optname: i32, value: OptValue<'_>) -> Result<SetOpt> {
        if profile::current() == Profile::MicroPython {
            let g = self.handle.enter()?;
            let r = match value {
                OptValue::Int(v) => sys::setsockopt_int(g.fd(), level, optname, clamp_i32(v)),
                OptValue::Bytes(b) => sys::setsockopt_bytes(g.fd(), level, optname, b),
            };
            return r.map(|_| SetOpt::Applied).map_err(Error::os);
        }
        let int_value = match value {
            OptValue::Int(v) => v,
            OptValue::Bytes(_) => return Err(Error::value("option value must be an int")),
        };
        match optname {
            4 => {
                let g = self.handle.enter()?;
                sys::setsockopt_int(
                    g.fd(),
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    clamp_i32(int_value),
                )
                .map_err(Error::os)?;
            }
            2 => {
                let g = self.handle.enter()?;
                if self.is_stream() {
                    set_keepalive_minutes(g.fd(), int_value).map_err(Error::os)?;
                }
            }
            _ => return Ok(SetOpt::NotImplemented),
        }
        Ok(SetOpt::Applied)
    }

    /// The FIN rule, applied when a read finds the peer closed with nothing buffered:
    /// the first time raises `OSError(107)` in device profiles; afterwards (and always in
    /// the micropython profile, and for datagrams) the read returns empty.
    fn on_eof(&self) -> Result<()> {
        // close() from another thread shuts the socket down, which ends a blocked read
        // with 0 bytes: that is the close, not the peer's FIN.
        if self.handle.is_closed() {
            return Err(Error::Os(errno::EBADF));
        }
        if self.is_stream()
            && !self.fin_seen.swap(true, Ordering::SeqCst)
            && profile::current().fin_raises()
        {
            return Err(Error::Os(errno::ENOTCONN));
        }
        Ok(())
    }
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn set_keepalive_minutes(fd: RawFd, minutes: i64) -> std::result::Result<(), sys::Errno> {
    if minutes <= 0 {
        return sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0);
    }
    let idle_secs = minutes.saturating_mul(60).min(32767) as i32; // Linux's MAX_TCP_KEEPIDLE
    sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    sys::setsockopt_int(
        fd,
        libc::IPPROTO_TCP,
        sys::keepalive_idle_option(),
        idle_secs,
    )?;
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 25)?;
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_values_select_modes() {
        assert_eq!(Mode::from_timeout_secs(None), Ok(Mode::Blocking));
        assert_eq!(Mode::from_timeout_secs(Some(0.0)), Ok(Mode::NonBlocking));
        assert_eq!(
            Mode::from_timeout_secs(Some(0.25)),
            Ok(Mode::Timeout(Duration::from_millis(250)))
        );
        assert_eq!(
            Mode::from_timeout_secs(Some(f64::INFINITY)),
            Ok(Mode::Blocking)
        );
        assert!(Mode::from_timeout_secs(Some(-1.0)).is_err());
        assert!(Mode::from_timeout_secs(Some(f64::NAN)).is_err());
        for m in [
            Mode::Blocking,
            Mode::NonBlocking,
            Mode::Timeout(Duration::from_millis(1)),
        ] {
            assert_eq!(Mode::decode(m.encode()), m);
        }
    }
}

//! The socket engine behind QuecPython's `usocket` on a PC: OS sockets with the device's
//! semantics (modes and timeouts, errno numbering, the FIN rule, lwIP TCP states), and no
//! knowledge of Python.
//!
//! # Layout
//!
//! * [`error`]: [`Error`], the device errno numbers and their uerrno names.
//! * [`profile`]: the process-wide [`Profile`] (quecpython, legacy, micropython) and the
//!   constant tables each profile exposes.
//! * [`interrupt`]: the 100 ms wait slice, the caller's [`Checkpoint`] and the per-thread
//!   stop marks used by `_thread.stop_thread`.
//! * `fd`: the descriptor with an in-flight count, so `close()` from another thread wakes
//!   blocked calls and the real `close(2)` waits until none is inside a syscall.
//! * `sys`: the thin `libc` wrappers; one choke point turns `-1` into an errno. What
//!   differs between systems is in `sys::linux` and `sys::other` (macOS, the BSDs), so a
//!   port fills in one module.
//! * [`addr`]: address parsing, resolution and formatting (`getaddrinfo`).
//! * [`addrmap`]: the runner's `--map` rules applied before resolution.
//! * [`limits`]: what a real module holds (sockets at once, one receive buffer), for the
//!   binding's device-compatibility warnings.
//! * [`socket`]: [`Socket`], one method per `usocket` method; `socket::io` holds the wait
//!   driver (send, recv, accept, connect), `socket::reads` the stream reads, `socket::fast`
//!   the attempts that never wait, `socket::gate` the per-socket read turn and
//!   [`socket::ready`] the readiness wait behind the readable callback.
//! * `stream`: the read buffer shared by `recv`, `read` and `readline`.
//! * [`state`]: Linux `TCP_INFO` states translated to lwIP's numbering, and the estimate
//!   used where the system has no TCP state query.
//! * `tls` (feature `tls`, on by default): `ussl`'s TLS (rustls) over a [`Socket`], with
//!   the device's verification rules.
#![deny(missing_docs)]

pub mod addr;
pub mod addrmap;
pub mod error;
mod fd;
pub mod interrupt;
pub mod limits;
pub mod profile;
pub mod socket;
pub mod state;
mod stream;
mod sys;
#[cfg(feature = "tls")]
pub mod tls;

pub use error::{Error, Result};
pub use interrupt::{Checkpoint, Waiter};
pub use profile::Profile;
pub use socket::{Mode, Socket};

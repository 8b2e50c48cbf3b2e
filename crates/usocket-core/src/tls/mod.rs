//! TLS over a [`Socket`](crate::Socket), as QuecPython's `ussl` gives it: rustls with the
//! device's verification rules and mbedTLS-style error codes, and the same blocking,
//! timeout, non-blocking and FIN rules as the plain socket.
//!
//! # Layout
//!
//! * [`config`]: [`TlsOptions`] (PEM strings as a script passes them) turned into a rustls
//!   client or server configuration; bad PEM is a `ValueError` before any byte is sent.
//! * `verify`: the certificate verifiers: none at all without `ca` (the device's default),
//!   chain plus hostname with `ca`, and the system roots in strict mode.
//! * [`stream`]: [`TlsStream`], the connection state driven through the socket's public
//!   `recv`/`send`, so close-from-another-thread, timeouts and Ctrl-C work as on the socket;
//!   its handshake, `write` and `close`.
//! * `wire`: moving bytes between rustls and the socket (one place for every wait).
//! * `reads`: the read methods (`recv`, `read`, `readinto`, `readline`) and the FIN rule.
//! * [`codes`]: the negative mbedTLS codes a failed handshake or record raises.

pub mod codes;
pub mod config;
mod reads;
pub mod stream;
mod verify;
mod wire;

pub use config::TlsOptions;
pub use stream::TlsStream;

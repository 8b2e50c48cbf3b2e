//! socklab: the TCP/UDP server a device talks to. It shows devices coming online, what
//! they send (text and hex, timestamped), lets an operator send data down to one device or
//! all, shows them going offline, and keeps the whole history in SQLite. Operators use the
//! terminal console, the HTTP API or the web dashboard; all three go through the same hub.
//!
//! # Layout
//!
//! * [`server`] binds everything ([`Server::bind`]) and runs it until a shutdown future
//!   completes ([`Server::run`], [`run`]); the binary only parses flags ([`cli`]) into a
//!   [`Config`] ([`config`]) and passes [`shutdown::signal`].
//! * [`listener`]: [`listener::tcp`] runs one task per connection, [`listener::udp`] one
//!   task per socket that turns peer addresses into sessions with an idle timeout.
//! * [`hub`]: the registry of online sessions ([`session`]), the event fan-out, and the
//!   operator actions (send, broadcast, close, echo, auto-reply [`rules`]).
//! * [`store`]: SQLite history behind a writer thread with a bounded queue; device tasks
//!   wait for room before reading more, which turns a slow disk into TCP back-pressure.
//! * [`web`]: the axum router — JSON API, Server-Sent Events, OpenAPI, metrics, the
//!   embedded dashboard — with one error type and token/Origin checks.
//! * [`link`]: link emulation (cellular profiles, faults, schedules) applied by each
//!   session's task; skipped entirely while a session has no link.
//! * [`console`]: live events on stdout, commands on stdin.
//! * [`model`] and [`clock`]: the shared data shapes and time formats.
//!
//! Data flows one way: listener task → hub → store and subscribers; commands flow back:
//! API/console → hub → the session's task. The control plane never blocks the data plane:
//! subscribers that fall behind skip events, they are never waited on.

#![deny(missing_docs)]
#![recursion_limit = "512"]

pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod hub;
pub mod link;
pub mod listener;
pub mod model;
pub mod rules;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod store;
pub mod web;

pub use config::Config;
pub use server::{BoundAddrs, Server, ServerError, run};

//! socklab: the TCP/UDP server a device talks to. It shows devices coming online, what
//! they send (text and hex, timestamped), lets an operator send data down to one device or
//! all, shows them going offline, and keeps the whole history in SQLite. Operators use the
//! terminal console, the HTTP API or the web dashboard; all three go through the same hub.
//!
//! # Layout
//!
//! socklab is layered one way down: each module imports only the layers below it, never
//! one above, and there are no cycles (`scripts/check-layers.py`, run by `make lint`,
//! refuses a change that breaks this). From the bottom:
//!
//! 1. [`clock`], [`rules`], [`framing`], [`shutdown`]: time formats; reply rules, escapes
//!    and hex; how incoming data is cut into frames for the rules; the shutdown signal.
//! 2. [`model`]: the shapes every part speaks — [`model::SessionMeta`] (a session's
//!    identity, shared by the live handle and every snapshot), [`model::Counters`],
//!    session, message and listener views, events, the link's view and events.
//! 3. [`link`]: a pure engine — link spec, profiles, the one fault parser, shaper, the
//!    control cell and the TCP/UDP state machines that take bytes and instants and say
//!    what is due when. No socket, no task.
//! 4. [`session`], [`listener_state`]: the live handle of a session (meta, counters,
//!    outbox, link cell) and a listener's settings (echo, rules, default link, seed) with
//!    the one [`listener_state::ListenerState::replies`].
//! 5. [`store`]: SQLite history behind a writer thread with a bounded queue; device tasks
//!    wait for room before reading more, which turns a slow disk into TCP back-pressure.
//! 6. [`hub`]: the registry of online sessions, the event fan-out, recording, and every
//!    operator action (send, broadcast, close, echo, auto-reply, link, fault). It never
//!    writes a socket.
//! 7. [`listener`]: the only code that owns sockets — [`listener::tcp`] one task per
//!    connection, [`listener::udp`] one task per socket — applying the link engine's
//!    outputs; echo and auto-replies happen in one place, [`listener::upstream`].
//! 8. Front ends over the hub: [`console`] (live events on stdout, commands on stdin),
//!    [`web`] (the axum router: JSON API, Server-Sent Events, OpenAPI, metrics, the
//!    embedded dashboard), [`schedule`] (fault schedule files), and with `--cluster`
//!    [`cluster`], the bridge to other nodes over NATS (events out and in, remote actions,
//!    scatter-gather listings), whose HTTP side is [`web::cluster`].
//! 9. Wiring: [`server`] binds everything ([`Server::bind`]) and runs it until a shutdown
//!    future completes ([`Server::run`], [`run`]); the binary only parses flags ([`cli`])
//!    into a [`Config`] ([`config`]) and passes [`shutdown::signal`].
//!
//! Device bytes: listener → hub (record) → store and event fan-out → console / SSE.
//! Commands: API / console / schedule → hub → the session's outbox or its listener's down
//! queue → the listener loop → the socket. The control plane never blocks the data plane:
//! queues are bounded in bytes, subscribers that fall behind skip events, and what cannot
//! be delivered is recorded as such.

#![deny(missing_docs)]
#![recursion_limit = "512"]

pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod export;
pub mod framing;
pub mod hub;
pub mod link;
pub mod listener;
pub mod listener_state;
pub mod model;
pub mod rules;
pub mod schedule;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod store;
pub mod web;

pub use config::Config;
pub use server::{BoundAddrs, Server, ServerError, run};

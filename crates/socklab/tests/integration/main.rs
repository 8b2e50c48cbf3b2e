//! socklab's integration tests: real servers on loopback, driven through their sockets, API
//! and events. One test binary holds them all, one module per subject, so the test build
//! compiles and links socklab's dependencies once rather than once per file.

mod common;

mod backpressure;
mod clientmode;
mod framing;
mod hardening;
mod link;
mod periodic;
mod routes;
mod sessions;
mod store;
mod tls;
mod web_edges;

//! Benchmark tools for socklab, driven by `benches/socklab_bench.py`.
//!
//! Two binaries share this library:
//!
//! * `socklab-loadgen` plays the devices: `idle` opens N connections spread over several
//!   127.x source addresses and holds them; `ingest` runs N devices that each send fixed-size
//!   messages as fast as they can for a while; `probe` times socklab's HTTP API while that
//!   happens. Every mode prints its results as one JSON object per line on stdout, so the
//!   orchestrator parses them instead of scraping text.
//! * `bare-echo` is the baseline: a minimal tokio echo server with no storage, reporting
//!   how many bytes it read.
//!
//! # Layout
//!
//! * [`sys`]: raising `RLIMIT_NOFILE`, the one OS limit every mode runs into.
//! * [`sources`]: the pool of local source addresses and connecting from one of them.
//! * [`idle`], [`ingest`], [`probe`]: one module per load generator mode.
//! * [`http`]: a minimal keep-alive HTTP/1.1 client, so the probe measures socklab and
//!   not a client library.
//! * [`stats`]: latency percentiles.
//! * [`report`]: printing JSON result lines.
//!
//! Everything is bounded: every mode has a deadline and a count limit, and stops by itself.

#![deny(missing_docs)]

pub mod http;
pub mod idle;
pub mod ingest;
pub mod probe;
pub mod report;
pub mod sources;
pub mod stats;
pub mod sys;

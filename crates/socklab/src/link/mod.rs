//! Link emulation as a pure engine: socklab applies a cellular-like link to a session's
//! traffic itself — latency with jitter, a bandwidth cap, stalls, datagram loss, outages,
//! resets and a carrier-NAT idle timeout — and this module says what happens to each piece
//! of data and when. It owns no socket and no task, and imports only [`crate::model`] and
//! [`crate::clock`]: the listeners feed it bytes and instants and apply what it returns.
//!
//! # Layout
//!
//! * [`spec`]: [`LinkSpec`], the parameters of a link and the `PROFILE[,param=value]`
//!   syntax; [`profiles`]: the built-in indicative profiles.
//! * [`fault`]: [`Fault`] and its one parser (console, API and schedule files).
//! * [`shaper`]: per-direction arithmetic (token bucket, delay, stalls, Gilbert–Elliott
//!   loss), driven with explicit instants.
//! * [`cell`]: [`LinkControl`] (what operators set) inside a [`LinkCell`] (a small watch).
//! * [`engine`]: the TCP and UDP link state machines: bytes in at an instant, what is due
//!   when out.
//!
//! Concurrency: each session has a [`LinkCell`]. Operators write it (a brief lock, never
//! held across an await); the session's listener loop owns the engine state and notices
//! changes between two reads or writes. Changing a link under load therefore never waits
//! for a session, and a session never waits for the API. While the link is a no-op (none,
//! or `perfect`) the listeners skip the engine entirely.

pub mod cell;
pub mod engine;
pub mod fault;
pub mod profiles;
pub mod shaper;
pub mod spec;

#[cfg(test)]
mod shaper_tests;

pub use cell::{LinkCell, LinkControl};
pub use fault::{Fault, FaultParseError};
pub use spec::{LinkParseError, LinkSpec};

//! Link emulation: socklab applies a cellular-like link to a session's traffic itself —
//! latency with jitter, a bandwidth cap, stalls, datagram loss, outages, resets and a
//! carrier-NAT idle timeout — per listener or per live session, and reports what it did.
//!
//! # Layout
//!
//! * [`model`]: [`LinkSpec`], the parameters of a link and the `PROFILE[,param=value]`
//!   syntax; [`profiles`]: the built-in indicative profiles.
//! * [`shaper`]: per-direction arithmetic (token bucket, delay, stalls, Gilbert–Elliott
//!   loss), owned by one session task and driven with explicit instants.
//! * [`tcp`]: the TCP session loop used while a link is active; [`udp`]: the same for
//!   datagrams inside the UDP listener task.
//! * [`control`]: operator actions on the hub (set a link, inject a fault) and the events
//!   the link emits; [`schedule`]: fault schedule files.
//!
//! Concurrency: each session has a [`LinkCell`] (a small watch) carrying its
//! [`LinkControl`]. Operators write it (a brief lock, never held across an await); the
//! session task owns all shaper state and notices changes between two reads or writes. Changing a link
//! under load therefore never waits for a session, and a session never waits for the API.
//! While the link is a no-op (none, or `perfect`) the session runs socklab's plain loop.

pub mod cell;
pub mod control;
pub mod model;
pub mod profiles;
pub mod schedule;
pub mod shaper;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod shaper_tests;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;
use tokio::time::Instant;

pub use cell::LinkCell;
pub use control::{Fault, LinkAction, LinkEvent};
pub use model::{LinkParseError, LinkSpec};

use crate::session::SessionHandle;

/// What operators have set for one session; the session task watches it.
#[derive(Clone, Debug, Default)]
pub struct LinkControl {
    /// The link in force; `None` is no link at all.
    pub spec: Option<Arc<LinkSpec>>,
    /// An injected outage lasts until then.
    pub outage_until: Option<Instant>,
}

impl LinkControl {
    /// Whether the session must run the link loop: a real link, a pending fault.
    pub fn active(&self) -> bool {
        self.spec.as_ref().is_some_and(|s| !s.is_noop())
            || self.outage_until.is_some_and(|t| t > Instant::now())
    }

    /// The outage in progress, if any.
    pub fn outage(&self, now: Instant) -> Option<Instant> {
        self.outage_until.filter(|t| *t > now)
    }
}

/// Whether a TCP session must leave (or not enter) the plain loop: a real link, an
/// outage in progress, or an injected reset or NAT drop waiting to be acted on.
pub fn needs_driver(handle: &SessionHandle, ctl: &LinkControl) -> bool {
    ctl.active()
        || handle.nat_dropped.load(Ordering::Relaxed)
        || handle.reset_requested.load(Ordering::Relaxed)
}

/// The `perfect` link, for a control without a spec that must still run the link loop
/// (an injected fault on a session without a link).
pub fn perfect() -> Arc<LinkSpec> {
    Arc::new(LinkSpec::perfect())
}

/// Takes in the session's current link control (recording its version in `seen`) and
/// tells whether the session must run the link loop.
pub(crate) fn check(handle: &SessionHandle, seen: &mut u64) -> bool {
    *seen = handle.link.version();
    needs_driver(handle, &handle.link.get())
}

/// A session's link as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkView {
    /// The link in canonical `PROFILE[,param=value]` form.
    pub spec: String,
    /// `ok`, `outage` (an injected outage is in progress) or `nat_dropped`.
    pub state: &'static str,
}

/// The link view of a live session (`None` when it has no link and nothing happened).
pub fn view(handle: &SessionHandle) -> Option<LinkView> {
    let nat = handle.nat_dropped.load(Ordering::Relaxed);
    let ctl = handle.link.get();
    let state = if nat {
        "nat_dropped"
    } else if ctl.outage(Instant::now()).is_some() {
        "outage"
    } else {
        "ok"
    };
    match (&ctl.spec, state) {
        (None, "ok") => None,
        (spec, state) => Some(LinkView {
            spec: spec
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into()),
            state,
        }),
    }
}

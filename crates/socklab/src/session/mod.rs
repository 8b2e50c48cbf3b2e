//! The live handle of one online session: who it is ([`SessionMeta`]), its traffic
//! ([`LiveCounters`]), its [`Outbox`] (TCP: data waiting for the connection task) and its
//! link ([`LinkCell`]), plus the flags operators raise and the listener loop acts on.
//!
//! It is deliberately small (a few atomics and an inline queue) because socklab aims at
//! tens of thousands of idle connections; read buffers are allocated only while data is
//! being read, link state only while a link is active.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::link::{LinkCell, LinkControl, LinkSpec};
use crate::model::{
    Counters, Direction, EndReason, LinkView, LiveCounters, SessionInfo, SessionMeta,
};

mod outbox;
mod rates;

pub use outbox::{Outbox, OutboxError, Weighed};
pub use rates::RateMeter;

/// Most bytes (plus a small overhead per message) waiting in one TCP session's outbox.
/// A send that does not fit is refused at once (the API answers 503), and what is still
/// queued when the session ends is recorded as undelivered.
pub const OUTBOX_BYTES: usize = 1024 * 1024;

/// Live state of one online session.
#[derive(Debug)]
pub struct SessionHandle {
    /// Who the session is (also in every [`SessionInfo`] snapshot).
    pub meta: SessionMeta,
    /// Bytes and messages each way, added to by whoever moves the data.
    pub counters: LiveCounters,
    /// TCP: data for the device, written in order by the connection task (the only writer
    /// to its socket). `None` for UDP, whose data goes down the listener's queue.
    pub outbox: Option<Outbox>,
    /// Signalled by an operator close; the TCP task notices it even while blocked in a
    /// write to a device that does not read.
    pub close_requested: Notify,
    /// Set by the first caller of `end_session`: the guard that makes the end happen once.
    ending: AtomicBool,
    /// Set once the end is recorded and announced.
    ended: AtomicBool,
    /// Wakes everyone waiting for the end (an API close waits so its answer is final).
    ended_notify: Notify,
    /// The emulated link: operators write it, the session's listener loop watches it.
    pub link: LinkCell,
    /// The emulated carrier NAT has dropped this connection.
    pub nat_dropped: AtomicBool,
    /// An operator asked the link to reset the connection (the TCP task acts on it).
    pub reset_requested: AtomicBool,
    /// Why a requested close happens when it is not the operator's own close (its
    /// listener was removed); the TCP task ends the session with it.
    close_reason: OnceLock<EndReason>,
    /// Traffic of the last seconds, for the session's rates.
    pub rates: RateMeter,
    /// The device's label (set by an operator or taken from its first upload).
    label: RwLock<Option<Arc<str>>>,
}

impl SessionHandle {
    /// The live state of a new session starting with `link`; `outbox` for TCP sessions.
    pub fn new(
        meta: SessionMeta,
        link: Option<std::sync::Arc<LinkSpec>>,
        outbox: Option<Outbox>,
    ) -> Self {
        let meta_started = meta.started_ms;
        SessionHandle {
            meta,
            counters: LiveCounters::default(),
            outbox,
            close_requested: Notify::new(),
            ending: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            ended_notify: Notify::new(),
            link: LinkCell::new(LinkControl {
                spec: link,
                outage_until: None,
            }),
            nat_dropped: AtomicBool::new(false),
            reset_requested: AtomicBool::new(false),
            close_reason: OnceLock::new(),
            rates: RateMeter::new(meta_started),
            label: RwLock::new(None),
        }
    }

    /// Sets the end reason of a close requested for another cause than an operator close
    /// (the first one set wins).
    pub fn set_close_reason(&self, reason: EndReason) {
        let _ = self.close_reason.set(reason);
    }

    /// The end reason of a requested close: [`EndReason::ClosedByOperator`] unless
    /// [`SessionHandle::set_close_reason`] said otherwise.
    pub fn close_reason(&self) -> EndReason {
        self.close_reason_or(EndReason::ClosedByOperator)
    }

    /// The end reason set by [`SessionHandle::set_close_reason`], else `default`.
    pub fn close_reason_or(&self, default: EndReason) -> EndReason {
        self.close_reason.get().copied().unwrap_or(default)
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.meta.id
    }

    /// Adds one message of `len` bytes to the counters.
    pub fn count(&self, direction: Direction, len: usize) {
        self.counters.count(direction, len);
        self.rates.add(direction, len, crate::clock::now_ms());
    }

    /// The device's label, if it has one.
    pub fn label(&self) -> Option<Arc<str>> {
        self.label.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets (or with `None` removes) the device's label.
    pub fn set_label(&self, label: Option<Arc<str>>) {
        *self.label.write().unwrap_or_else(|e| e.into_inner()) = label;
    }

    /// Sets the label only when the session has none yet; returns whether it did.
    pub fn set_label_if_none(&self, label: Arc<str>) -> bool {
        let mut slot = self.label.write().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return false;
        }
        *slot = Some(label);
        true
    }

    /// Current counters.
    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }

    /// A snapshot for the API and events; `ended` fills in the end when it is known.
    pub fn info(&self, ended: Option<(i64, EndReason)>) -> SessionInfo {
        SessionInfo {
            meta: self.meta.clone(),
            ended_ms: ended.map(|e| e.0),
            end_reason: ended.map(|e| e.1),
            counters: self.counters(),
            link: self.link_view(),
            label: self.label(),
            rates: ended
                .is_none()
                .then(|| self.rates.rates(crate::clock::now_ms())),
        }
    }

    /// The link as the API shows it (`None` when it has no link and nothing happened).
    pub fn link_view(&self) -> Option<LinkView> {
        let nat = self.nat_dropped.load(Ordering::Relaxed);
        let ctl = self.link.get();
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

    /// Whether the session's data must go through the link engine: a real link, an
    /// outage in progress, or an injected reset or NAT drop waiting to be acted on.
    pub fn link_engaged(&self) -> bool {
        self.link.with(|c| c.active_at(Instant::now()))
            || self.nat_dropped.load(Ordering::Relaxed)
            || self.reset_requested.load(Ordering::Relaxed)
    }

    /// Takes in the link's current version (into `seen`) and tells whether the session
    /// must run through the link engine.
    pub fn check_link(&self, seen: &mut u64) -> bool {
        *seen = self.link.version();
        self.link_engaged()
    }

    /// Whether the session has ended.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Claims the right to end the session; `false` if someone already did.
    pub fn begin_end(&self) -> bool {
        !self.ending.swap(true, Ordering::AcqRel)
    }

    /// Whether the session is ending or has ended (sends to it are refused).
    pub fn is_ending(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    /// Marks the session ended and wakes the waiters.
    pub fn mark_ended(&self) {
        self.ended.store(true, Ordering::Release);
        self.ended_notify.notify_waiters();
    }

    /// Waits until the session has ended (returns at once if it already has).
    pub async fn wait_ended(&self) {
        loop {
            let notified = self.ended_notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag so a concurrent `mark_ended` is not missed.
            notified.as_mut().enable();
            if self.is_ended() {
                return;
            }
            notified.await;
        }
    }
}

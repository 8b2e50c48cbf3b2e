//! [`LinkControl`], what operators have set for one session's link, and [`LinkCell`]: that
//! control as a small single-consumer watch. Operators
//! write it ([`LinkCell::modify`]: a std mutex held for the assignment only, a version
//! bump, one wake-up); the session task reads the version with one atomic load per read
//! or send and waits on it only while idle.
//!
//! It replaces a `tokio::sync::watch` channel, whose shared state (eight wait lists for
//! its receivers) cost ~0.37 KiB per session although a session has exactly one reader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::LinkSpec;

/// What operators have set for one session; the session's listener loop watches it.
#[derive(Clone, Debug, Default)]
pub struct LinkControl {
    /// The link in force; `None` is no link at all.
    pub spec: Option<Arc<LinkSpec>>,
    /// An injected outage lasts until then.
    pub outage_until: Option<Instant>,
}

impl LinkControl {
    /// Whether the session must run through the link engine at `now`: a real link, or an
    /// outage in progress.
    pub fn active_at(&self, now: Instant) -> bool {
        self.spec.as_ref().is_some_and(|s| !s.is_noop()) || self.outage(now).is_some()
    }

    /// The outage in progress at `now`, if any.
    pub fn outage(&self, now: Instant) -> Option<Instant> {
        self.outage_until.filter(|t| *t > now)
    }

    /// The spec in force, `perfect` without one (a fault on a session without a link
    /// still runs through the engine).
    pub fn spec_or_perfect(&self) -> Arc<LinkSpec> {
        self.spec
            .clone()
            .unwrap_or_else(|| Arc::new(LinkSpec::perfect()))
    }
}

/// One session's link control and its change signal.
#[derive(Debug, Default)]
pub struct LinkCell {
    /// The control; locked only to copy it out or assign it, never across an await.
    ctl: Mutex<LinkControl>,
    /// Bumped after every change, so the reader notices with one load.
    version: AtomicU64,
    /// Wakes the one reader when it waits in [`LinkCell::changed`].
    wake: Notify,
}

impl LinkCell {
    /// A cell holding `ctl` (version 0).
    pub fn new(ctl: LinkControl) -> LinkCell {
        LinkCell {
            ctl: Mutex::new(ctl),
            version: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    /// Runs `f` on the current control under the lock (keep it short).
    pub fn with<R>(&self, f: impl FnOnce(&LinkControl) -> R) -> R {
        f(&self.ctl.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A copy of the current control.
    pub fn get(&self) -> LinkControl {
        self.with(LinkControl::clone)
    }

    /// Changes the control and signals the reader (also with `|_| {}`: a plain wake-up
    /// after a flag on the session was set).
    pub fn modify(&self, f: impl FnOnce(&mut LinkControl)) {
        f(&mut self.ctl.lock().unwrap_or_else(|e| e.into_inner()));
        self.version.fetch_add(1, Ordering::AcqRel);
        // A stored permit if the reader is not waiting: its next wait returns at once and
        // finds the new version.
        self.wake.notify_one();
    }

    /// The current version; read it before [`LinkCell::get`] so a change in between is
    /// seen as a newer version later.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Waits until the version differs from `seen`.
    pub async fn changed(&self, seen: u64) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            // Register before checking, so a change in between is not missed.
            notified.as_mut().enable();
            if self.version() != seen {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A change wakes a waiting reader; an old version returns at once.
    #[tokio::test]
    async fn changes_wake_the_reader() {
        let cell = Arc::new(LinkCell::default());
        let seen = cell.version();
        let waiter = tokio::spawn({
            let cell = cell.clone();
            async move { cell.changed(seen).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        cell.modify(|c| c.outage_until = Some(tokio::time::Instant::now()));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cell.version(), seen + 1);
        assert!(cell.get().outage_until.is_some());
        tokio::time::timeout(Duration::from_secs(1), cell.changed(seen))
            .await
            .unwrap();
    }
}

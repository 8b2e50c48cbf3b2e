//! Periodic sends ("send every N ms") to one session or as a broadcast.
//!
//! Each periodic send is one task on the main runtime that sends through the same path as
//! an operator's send ([`Hub::send`], [`Hub::broadcast`]), so every byte is recorded and
//! the outbox limits hold. A tick never waits for room: when the device does not read and
//! its outbox is full, that tick is skipped and counted (`skipped`), and the first skip of
//! a run is announced as a `periodic` event with action `skipping` — sends never pile up
//! behind a stalled device. The ticker skips missed ticks too, so a slow UDP send delays
//! the next one instead of bunching them.
//!
//! A periodic send to a session stops by itself when the session goes offline; every stop
//! (operator, offline, shutdown, a send error) is announced as a `periodic` event with the
//! reason. [`Hub::stop_all_periodic`] ends them all when the server shuts down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{ActionError, Hub, MAX_UDP_PAYLOAD};
use crate::clock;
use crate::model::periodic::PeriodicAction;
use crate::model::{Event, PeriodicEnd, PeriodicEvent, PeriodicInfo, PeriodicTarget, Proto};

/// Shortest interval between two sends of one periodic send.
pub const MIN_PERIODIC_MS: u64 = 100;

/// Longest interval (a day).
pub const MAX_PERIODIC_MS: u64 = 86_400_000;

/// The most periodic sends running at once.
pub const MAX_PERIODIC: usize = 64;

/// Why a periodic send could not be started or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodicError {
    /// The interval is outside the bounds.
    #[error("every_ms must be {MIN_PERIODIC_MS}..={MAX_PERIODIC_MS}, not {0}")]
    Interval(u64),
    /// As many periodic sends run as allowed.
    #[error("{0} periodic sends are running, the most allowed: stop one first")]
    TooMany(usize),
    /// No periodic send has that id (it may have stopped by itself).
    #[error("no periodic send {0} is running")]
    NotFound(u64),
    /// The target refused (not online, no such listener, too large for UDP).
    #[error(transparent)]
    Action(#[from] ActionError),
}

/// The running periodic sends.
#[derive(Debug)]
pub struct Periodics {
    /// Next id handed out.
    next_id: AtomicU64,
    /// Running sends by id; an entry leaves when its send stops (whoever stops it).
    running: Mutex<HashMap<u64, Running>>,
    /// The runtime tasks go to: the one the hub was made in (the main runtime), not the
    /// HTTP thread's, which ends before sessions do at shutdown.
    runtime: Option<tokio::runtime::Handle>,
}

impl Default for Periodics {
    fn default() -> Self {
        Periodics {
            next_id: AtomicU64::new(1),
            running: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

/// One running periodic send, as the registry holds it.
#[derive(Debug)]
struct Running {
    shared: Arc<Shared>,
    /// Tells the task to stop, and why.
    stop: oneshot::Sender<PeriodicEnd>,
    task: JoinHandle<()>,
}

/// What the task and the registry share: the fixed settings and the counters.
#[derive(Debug)]
struct Shared {
    id: u64,
    target: PeriodicTarget,
    every_ms: u64,
    data: Bytes,
    snippet: Option<String>,
    started_ms: i64,
    sent: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
}

impl Shared {
    fn info(&self) -> PeriodicInfo {
        PeriodicInfo {
            id: self.id,
            target: self.target,
            every_ms: self.every_ms,
            data: self.data.clone(),
            snippet: self.snippet.clone(),
            started_ms: self.started_ms,
            sent: self.sent.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// What one tick decided.
enum Tick {
    /// Sent (or skipped); carry on. `true` when the device was not reading.
    Continue(bool),
    /// Stop for this reason.
    Stop(PeriodicEnd),
}

impl Periodics {
    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hub {
    /// Starts sending `data` to `target` every `every_ms` milliseconds, the first send at
    /// once. Refused when the interval is out of bounds, when [`MAX_PERIODIC`] run
    /// already, when the session is not online or the listener does not exist, and when
    /// the data cannot fit in a datagram of a UDP target.
    pub fn start_periodic(
        self: &Arc<Self>,
        target: PeriodicTarget,
        data: Bytes,
        every_ms: u64,
        snippet: Option<String>,
    ) -> Result<PeriodicInfo, PeriodicError> {
        if !(MIN_PERIODIC_MS..=MAX_PERIODIC_MS).contains(&every_ms) {
            return Err(PeriodicError::Interval(every_ms));
        }
        let too_large = ActionError::TooLarge {
            len: data.len(),
            max: MAX_UDP_PAYLOAD,
        };
        let session = match target {
            PeriodicTarget::Session(id) => {
                let handle = self.online(id).ok_or(ActionError::NotOnline(id))?;
                if handle.is_ending() {
                    return Err(ActionError::NotOnline(id).into());
                }
                if handle.meta.proto == Proto::Udp && data.len() > MAX_UDP_PAYLOAD {
                    return Err(too_large.into());
                }
                Some(handle)
            }
            PeriodicTarget::Broadcast(listener) => {
                let udp = match listener {
                    Some(l) => self.listener(l)?.proto == Proto::Udp,
                    None => self.listener_map().values().any(|l| l.proto == Proto::Udp),
                };
                if udp && data.len() > MAX_UDP_PAYLOAD {
                    return Err(too_large.into());
                }
                None
            }
        };
        let mut running = self.periodic.registry();
        if running.len() >= MAX_PERIODIC {
            return Err(PeriodicError::TooMany(MAX_PERIODIC));
        }
        let shared = Arc::new(Shared {
            id: self.periodic.next_id.fetch_add(1, Ordering::Relaxed),
            target,
            every_ms,
            data,
            snippet,
            started_ms: clock::now_ms(),
            sent: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let work = run(self.clone(), shared.clone(), session, stopped);
        let task = match &self.periodic.runtime {
            Some(rt) => rt.spawn(work),
            None => tokio::spawn(work),
        };
        let info = shared.info();
        running.insert(info.id, Running { shared, stop, task });
        drop(running);
        self.periodic_event(PeriodicAction::Started, info.clone(), None);
        Ok(info)
    }

    /// The running periodic sends, oldest first.
    pub fn periodic_sends(&self) -> Vec<PeriodicInfo> {
        let mut all: Vec<PeriodicInfo> = self
            .periodic
            .registry()
            .values()
            .map(|r| r.shared.info())
            .collect();
        all.sort_by_key(|p| p.id);
        all
    }

    /// Stops periodic send `id` and returns its final counts once its task has ended
    /// (a send under way finishes first).
    pub async fn stop_periodic(&self, id: u64) -> Result<PeriodicInfo, PeriodicError> {
        let running = self.periodic.registry().remove(&id);
        let Some(running) = running else {
            return Err(PeriodicError::NotFound(id));
        };
        let _ = running.stop.send(PeriodicEnd::Operator);
        let _ = running.task.await;
        Ok(running.shared.info())
    }

    /// Stops every periodic send (at shutdown, with reason `server_shutdown`) and waits for
    /// their tasks.
    pub async fn stop_all_periodic(&self) {
        let all: Vec<Running> = self.periodic.registry().drain().map(|(_, r)| r).collect();
        let mut tasks = Vec::with_capacity(all.len());
        for r in all {
            let _ = r.stop.send(PeriodicEnd::Shutdown);
            tasks.push(r.task);
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    fn periodic_event(&self, action: PeriodicAction, info: PeriodicInfo, end: Option<PeriodicEnd>) {
        self.publish(Event::Periodic(Arc::new(PeriodicEvent {
            ts_ms: clock::now_ms(),
            action,
            periodic: info,
            end,
        })));
    }

    /// One send of a periodic send to a session.
    async fn periodic_tick_session(&self, shared: &Shared, id: u64) -> Tick {
        match self.send(id, shared.data.clone()).await {
            Ok(_) => {
                shared.sent.fetch_add(1, Ordering::Relaxed);
                Tick::Continue(false)
            }
            Err(ActionError::Busy(_)) => {
                shared.skipped.fetch_add(1, Ordering::Relaxed);
                Tick::Continue(true)
            }
            Err(ActionError::SendFailed { .. }) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                Tick::Continue(false)
            }
            Err(ActionError::NotOnline(_) | ActionError::Offline(_)) => {
                Tick::Stop(PeriodicEnd::Offline)
            }
            Err(e) => Tick::Stop(PeriodicEnd::Error(e.to_string())),
        }
    }

    /// One send of a periodic broadcast: sessions skipped (outbox full) are counted.
    async fn periodic_tick_broadcast(&self, shared: &Shared, listener: Option<u32>) -> Tick {
        let targets = self.sessions_of(listener).len();
        match self.broadcast(listener, shared.data.clone()).await {
            Ok((reached, _)) => {
                let skipped = targets.saturating_sub(reached) as u64;
                shared.sent.fetch_add(reached as u64, Ordering::Relaxed);
                shared.skipped.fetch_add(skipped, Ordering::Relaxed);
                Tick::Continue(skipped > 0)
            }
            Err(e) => Tick::Stop(PeriodicEnd::Error(e.to_string())),
        }
    }
}

/// The task of one periodic send: ticks until told to stop, its session ends, or a send
/// fails for good; then leaves the registry (if still there) and announces the stop.
async fn run(
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    session: Option<Arc<crate::session::SessionHandle>>,
    mut stopped: oneshot::Receiver<PeriodicEnd>,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(shared.every_ms));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let ended = async {
        match &session {
            Some(handle) => handle.wait_ended().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(ended);
    let mut skipping = false;
    let end = loop {
        tokio::select! {
            biased;
            reason = &mut stopped => break reason.unwrap_or(PeriodicEnd::Shutdown),
            () = &mut ended => break PeriodicEnd::Offline,
            _ = ticker.tick() => {
                let tick = match shared.target {
                    PeriodicTarget::Session(id) => hub.periodic_tick_session(&shared, id).await,
                    PeriodicTarget::Broadcast(l) => hub.periodic_tick_broadcast(&shared, l).await,
                };
                match tick {
                    Tick::Continue(skip) => {
                        if skip && !skipping {
                            tracing::warn!(
                                "periodic send {}: the device is not reading; skipping sends",
                                shared.id
                            );
                            hub.periodic_event(PeriodicAction::Skipping, shared.info(), None);
                        }
                        skipping = skip;
                    }
                    Tick::Stop(reason) => break reason,
                }
            }
        }
    };
    hub.periodic.registry().remove(&shared.id);
    hub.periodic_event(PeriodicAction::Stopped, shared.info(), Some(end));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interval bounds are checked before anything else.
    #[tokio::test]
    async fn interval_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(&dir.path().join("p.db"), None).unwrap());
        let hub = Arc::new(Hub::new(Vec::new(), store.clone()));
        let data = Bytes::from_static(b"x");
        for ms in [0, MIN_PERIODIC_MS - 1, MAX_PERIODIC_MS + 1] {
            let got = hub.start_periodic(PeriodicTarget::Session(1), data.clone(), ms, None);
            assert_eq!(got, Err(PeriodicError::Interval(ms)));
        }
        let got = hub.start_periodic(PeriodicTarget::Session(1), data.clone(), 1000, None);
        assert_eq!(got, Err(PeriodicError::Action(ActionError::NotOnline(1))));
        let got = hub.start_periodic(PeriodicTarget::Broadcast(Some(4)), data, 1000, None);
        assert_eq!(got, Err(PeriodicError::Action(ActionError::NoListener(4))));
        store.close().await;
    }

    /// A broadcast with nobody online keeps running until stopped, then leaves the list
    /// and says why it stopped; the count limit holds.
    #[tokio::test]
    async fn start_list_stop_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(&dir.path().join("p.db"), None).unwrap());
        let hub = Arc::new(Hub::new(Vec::new(), store.clone()));
        let mut events = hub.subscribe();
        let data = Bytes::from_static(b"tick");
        let first = hub
            .start_periodic(PeriodicTarget::Broadcast(None), data.clone(), 100, None)
            .unwrap();
        for _ in 1..MAX_PERIODIC {
            hub.start_periodic(PeriodicTarget::Broadcast(None), data.clone(), 60_000, None)
                .unwrap();
        }
        let over = hub.start_periodic(PeriodicTarget::Broadcast(None), data, 60_000, None);
        assert_eq!(over, Err(PeriodicError::TooMany(MAX_PERIODIC)));
        assert_eq!(hub.periodic_sends().len(), MAX_PERIODIC);
        let stopped = hub.stop_periodic(first.id).await.unwrap();
        assert_eq!(stopped.id, first.id);
        assert_eq!(
            hub.stop_periodic(first.id).await,
            Err(PeriodicError::NotFound(first.id))
        );
        assert!(hub.periodic_sends().iter().all(|p| p.id != first.id));
        let reason = loop {
            match &*events.recv().await.unwrap() {
                Event::Periodic(e) if e.action == PeriodicAction::Stopped => break e.end.clone(),
                _ => {}
            }
        };
        assert_eq!(reason, Some(PeriodicEnd::Operator));
        hub.stop_all_periodic().await;
        assert!(hub.periodic_sends().is_empty());
        store.close().await;
    }
}

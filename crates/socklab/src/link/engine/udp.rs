//! The UDP link of every datagram session of one socket, in one timer heap. Datagrams may
//! be lost (Gilbert–Elliott), are delayed by latency ± jitter (reordering allowed, as on a
//! real network) and paced by the bandwidth cap; an outage loses what arrives in it; a NAT
//! idle timeout ends the session.
//!
//! What the link holds is capped in bytes ([`MAX_HELD_BYTES`] per socket, counting a small
//! overhead per datagram), not in datagrams, so big datagrams on a slow link cannot grow
//! memory without bound: past the cap a datagram is refused and the caller records it as
//! dropped by the link, as a full router queue would drop it.
//!
//! Each datagram carries a caller's tag `T` (the listener uses its session handle), which
//! comes back with it when it is due.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::round_up;
use crate::link::LinkSpec;
use crate::link::shaper::{DirShaper, session_seed};
use crate::model::Direction;

/// Most bytes one socket's link holds in flight, both ways, all sessions together.
pub const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// Bookkeeping counted per held datagram on top of its payload.
pub const HELD_OVERHEAD_BYTES: usize = 64;

/// Why the link did not take a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Lost on the way (the loss model, or an outage).
    Lost,
    /// The link's queue is full ([`MAX_HELD_BYTES`]).
    Full,
}

/// A datagram inside the link.
#[derive(Debug)]
struct Pending<T> {
    at: Instant,
    seq: u64,
    handed: Instant,
    session_id: u64,
    tag: T,
    dir: Direction,
    data: Bytes,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<T> Eq for Pending<T> {}
impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Pending<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A datagram the link releases (due now, or still held at shutdown).
#[derive(Debug)]
pub struct Released<T> {
    /// The session's tag as given to [`UdpLinks::send`].
    pub tag: T,
    /// Which way it goes.
    pub dir: Direction,
    /// The datagram.
    pub data: Bytes,
    /// How long it spent in the link.
    pub delay: std::time::Duration,
}

/// One session's shapers, rebuilt when its link changes.
#[derive(Debug)]
struct PeerLink<T> {
    spec: Arc<LinkSpec>,
    up: DirShaper,
    down: DirShaper,
    last_traffic: Instant,
    tag: T,
}

/// The link state of every UDP session of one socket.
#[derive(Debug)]
pub struct UdpLinks<T> {
    heap: BinaryHeap<Reverse<Pending<T>>>,
    peers: HashMap<u64, PeerLink<T>>,
    seq: u64,
    /// Bytes held (payload plus [`HELD_OVERHEAD_BYTES`] each).
    held_bytes: usize,
    /// The cap on `held_bytes`.
    max_held_bytes: usize,
}

impl<T: Clone> Default for UdpLinks<T> {
    fn default() -> Self {
        UdpLinks::with_capacity_bytes(MAX_HELD_BYTES)
    }
}

impl<T: Clone> UdpLinks<T> {
    /// An empty link set holding at most `max_held_bytes`.
    pub fn with_capacity_bytes(max_held_bytes: usize) -> Self {
        UdpLinks {
            heap: BinaryHeap::new(),
            peers: HashMap::new(),
            seq: 0,
            held_bytes: 0,
            max_held_bytes,
        }
    }

    /// When the next datagram comes out of the link.
    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|p| p.0.at)
    }

    /// Bytes held now (payload and overhead).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    fn peer(
        &mut self,
        session_id: u64,
        tag: &T,
        spec: &Arc<LinkSpec>,
        seed: Option<u64>,
        now: Instant,
    ) -> &mut PeerLink<T> {
        let stale = self
            .peers
            .get(&session_id)
            .is_none_or(|p| !Arc::ptr_eq(&p.spec, spec));
        if stale {
            self.peers.insert(
                session_id,
                PeerLink {
                    spec: spec.clone(),
                    up: DirShaper::new(spec.up.clone(), session_seed(seed, session_id, true), now),
                    down: DirShaper::new(
                        spec.down.clone(),
                        session_seed(seed, session_id, false),
                        now,
                    ),
                    last_traffic: now,
                    tag: tag.clone(),
                },
            );
        }
        self.peers.get_mut(&session_id).expect("inserted above")
    }

    /// Hands a datagram of session `session_id` going `dir` to its link `spec` at `now`.
    /// `Err` gives it back when the link does not take it: lost (the loss model, or
    /// `in_outage`) or refused because the link is full; the caller records it as dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        session_id: u64,
        tag: &T,
        spec: &Arc<LinkSpec>,
        seed: Option<u64>,
        dir: Direction,
        data: Bytes,
        in_outage: bool,
        now: Instant,
    ) -> Result<(), (Refused, Bytes)> {
        let cost = data.len() + HELD_OVERHEAD_BYTES;
        let full = self.held_bytes + cost > self.max_held_bytes;
        let peer = self.peer(session_id, tag, spec, seed, now);
        peer.last_traffic = now;
        let shaper = match dir {
            Direction::Up => &mut peer.up,
            Direction::Down => &mut peer.down,
        };
        if in_outage || shaper.lose() {
            return Err((Refused::Lost, data));
        }
        if full {
            return Err((Refused::Full, data));
        }
        let mut plan = shaper.plan(now, data.len(), false);
        if let Some(period) = spec.batch {
            plan.at = round_up(plan.at, now, period);
        }
        self.seq += 1;
        self.held_bytes += cost;
        self.heap.push(Reverse(Pending {
            at: plan.at,
            seq: self.seq,
            handed: now,
            session_id,
            tag: tag.clone(),
            dir,
            data,
        }));
        Ok(())
    }

    /// Takes the next datagram due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Released<T>> {
        if self.heap.peek().is_none_or(|p| p.0.at > now) {
            return None;
        }
        let Reverse(p) = self.heap.pop()?;
        Some(self.release(p, now))
    }

    fn release(&mut self, p: Pending<T>, now: Instant) -> Released<T> {
        self.held_bytes -= p.data.len() + HELD_OVERHEAD_BYTES;
        Released {
            tag: p.tag,
            dir: p.dir,
            data: p.data,
            delay: now.saturating_duration_since(p.handed),
        }
    }

    /// Takes everything still held (at shutdown, so the caller can record it).
    pub fn drain(&mut self, now: Instant) -> Vec<Released<T>> {
        let all: Vec<Pending<T>> = std::mem::take(&mut self.heap)
            .into_sorted_vec()
            .into_iter()
            .rev()
            .map(|r| r.0)
            .collect();
        all.into_iter().map(|p| self.release(p, now)).collect()
    }

    /// Forgets sessions `alive` says are gone, and returns the tags of those whose NAT
    /// mapping timed out at `now` (forgotten too; the caller ends them).
    pub fn sweep(&mut self, now: Instant, alive: impl Fn(&T) -> bool) -> Vec<T> {
        let mut expired = Vec::new();
        self.peers.retain(|_, p| {
            if !alive(&p.tag) {
                return false;
            }
            let idle = p
                .spec
                .nat_idle
                .is_some_and(|t| now.duration_since(p.last_traffic) >= t);
            if idle {
                expired.push(p.tag.clone());
            }
            !idle
        });
        expired
    }

    /// Session ids with link state (for tests and metrics).
    pub fn session_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.peers.keys().copied().collect();
        ids.extend(self.heap.iter().map(|p| p.0.session_id));
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(s: &str) -> Arc<LinkSpec> {
        Arc::new(LinkSpec::parse(s).unwrap())
    }

    /// Datagrams come out when due, each with its tag and the time it spent in the link.
    #[test]
    fn releases_when_due() {
        let t0 = Instant::now();
        let mut links: UdpLinks<&str> = UdpLinks::default();
        let s = spec("perfect,latency=1s");
        links
            .send(
                1,
                &"a",
                &s,
                Some(1),
                Direction::Up,
                Bytes::from("x"),
                false,
                t0,
            )
            .unwrap();
        assert_eq!(links.next_at(), Some(t0 + Duration::from_secs(1)));
        assert!(links.pop_due(t0).is_none());
        let r = links.pop_due(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(
            (r.tag, r.dir, r.delay),
            ("a", Direction::Up, Duration::from_secs(1))
        );
        assert_eq!(links.held_bytes(), 0);
    }

    /// The cap is in bytes: big datagrams fill it quickly and are refused as `Full`;
    /// what is held comes back at shutdown.
    #[test]
    fn capped_in_bytes() {
        let t0 = Instant::now();
        let mut links: UdpLinks<u8> = UdpLinks::with_capacity_bytes(200_000);
        let s = spec("perfect,latency=10s");
        let big = Bytes::from(vec![0u8; 60_000]);
        let mut taken = 0;
        let mut refused = 0;
        for _ in 0..10 {
            match links.send(1, &0, &s, None, Direction::Up, big.clone(), false, t0) {
                Ok(()) => taken += 1,
                Err((Refused::Full, _)) => refused += 1,
                Err((Refused::Lost, _)) => unreachable!("no loss configured"),
            }
        }
        assert_eq!((taken, refused), (3, 7));
        assert!(links.held_bytes() <= 200_000);
        let held = links.drain(t0 + Duration::from_secs(1));
        assert_eq!(held.len(), 3);
        assert_eq!(links.held_bytes(), 0);
    }

    /// An outage loses what arrives in it; the NAT idle timer expires silent sessions.
    #[test]
    fn outage_and_nat_idle() {
        let t0 = Instant::now();
        let mut links: UdpLinks<u64> = UdpLinks::default();
        let s = spec("perfect,nat_idle=30s");
        let lost = links.send(1, &1, &s, None, Direction::Up, Bytes::from("x"), true, t0);
        assert!(matches!(lost, Err((Refused::Lost, _))));
        links
            .send(
                2,
                &2,
                &s,
                None,
                Direction::Up,
                Bytes::from("y"),
                false,
                t0 + Duration::from_secs(20),
            )
            .unwrap();
        let expired = links.sweep(t0 + Duration::from_secs(31), |_| true);
        assert_eq!(expired, vec![1]);
        assert_eq!(links.session_ids(), vec![2]);
    }
}

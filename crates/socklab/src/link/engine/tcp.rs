//! The TCP link of one session: both directions' shapers and queues. Data read from the
//! device enters the up lane, operator sends, echo and auto-replies enter the down lane,
//! and each piece comes out at its planned time, in order.
//!
//! Back-pressure stays with the caller: [`TcpLink::has_room`] says when a lane holds its
//! budget (the listener then stops reading the device, or stops taking from the outbox),
//! so a slow link slows the device as a real one would instead of growing a queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{Delivered, round_up};
use crate::link::LinkSpec;
use crate::link::shaper::{DirShaper, Plan, session_seed};
use crate::model::{Direction, LinkAction};

/// Most bytes one direction holds in flight when the rate is unlimited.
pub const MAX_IN_FLIGHT_BYTES: usize = 256 * 1024;

/// A piece of data inside the link.
#[derive(Debug)]
struct Piece {
    plan: Plan,
    handed: Instant,
    data: Bytes,
}

/// One direction: its shaper and what is in flight.
#[derive(Debug)]
struct Lane {
    shaper: DirShaper,
    queue: VecDeque<Piece>,
    bytes: usize,
    /// The link's batch period (arrivals wait up to this much longer).
    batch: Duration,
}

impl Lane {
    fn new(spec: &LinkSpec, dir: Direction, seed: Option<u64>, id: u64, now: Instant) -> Lane {
        let params = match dir {
            Direction::Up => spec.up.clone(),
            Direction::Down => spec.down.clone(),
        };
        Lane {
            shaper: DirShaper::new(params, session_seed(seed, id, dir == Direction::Up), now),
            queue: VecDeque::new(),
            bytes: 0,
            batch: spec.batch.unwrap_or_default(),
        }
    }

    /// How many bytes may be in flight: the bandwidth-delay product (the capped rate times
    /// the longest delay a piece can see, plus 2 s), so a capped link runs at its cap
    /// whatever its latency; a fixed bound when the rate is unlimited.
    fn budget(&self) -> usize {
        let p = self.shaper.params();
        match p.rate_bps {
            Some(bps) => {
                let delay = p.latency + p.jitter + self.batch + Duration::from_secs(2);
                ((bps as f64 / 8.0 * delay.as_secs_f64()) as usize).clamp(4096, MAX_IN_FLIGHT_BYTES)
            }
            None => MAX_IN_FLIGHT_BYTES,
        }
    }

    /// Cuts `data` into pieces and plans each; `batch` rounds arrivals up to its period.
    fn push(&mut self, data: Bytes, now: Instant, batch: Option<(Duration, Instant)>) {
        let step = self.shaper.piece_bytes();
        let mut off = 0;
        while off < data.len() {
            let piece = data.slice(off..(off + step).min(data.len()));
            off += piece.len();
            let mut plan = self.shaper.plan(now, piece.len(), true);
            if let Some((period, origin)) = batch {
                plan.at = round_up(plan.at, origin, period);
            }
            self.bytes += piece.len();
            self.queue.push_back(Piece {
                plan,
                handed: now,
                data: piece,
            });
        }
    }

    fn pop(&mut self) -> Option<Piece> {
        let p = self.queue.pop_front()?;
        self.bytes -= p.data.len();
        Some(p)
    }
}

/// One TCP session's link: feed it with [`TcpLink::push`], sleep until
/// [`TcpLink::next_at`] and take what is due with [`TcpLink::pop`].
#[derive(Debug)]
pub struct TcpLink {
    spec: Arc<LinkSpec>,
    seed: Option<u64>,
    session_id: u64,
    /// When the session started: batch periods and `reset_at` count from it.
    start: Instant,
    up: Lane,
    down: Lane,
    /// Last data either way (the NAT idle timer).
    last_traffic: Instant,
    /// Bytes delivered both ways (`reset_after`).
    moved: u64,
}

impl TcpLink {
    /// The link `spec` for session `session_id` (started at `start`), from `now`.
    pub fn new(
        spec: Arc<LinkSpec>,
        seed: Option<u64>,
        session_id: u64,
        start: Instant,
        now: Instant,
    ) -> TcpLink {
        TcpLink {
            up: Lane::new(&spec, Direction::Up, seed, session_id, now),
            down: Lane::new(&spec, Direction::Down, seed, session_id, now),
            spec,
            seed,
            session_id,
            start,
            last_traffic: now,
            moved: 0,
        }
    }

    /// The link in force.
    pub fn spec(&self) -> &Arc<LinkSpec> {
        &self.spec
    }

    /// Changes the link: new shapers from `now`; what is in flight keeps its plan.
    pub fn set_spec(&mut self, spec: Arc<LinkSpec>, now: Instant) {
        if *spec == *self.spec {
            return;
        }
        self.spec = spec;
        for (lane, dir) in [
            (&mut self.up, Direction::Up),
            (&mut self.down, Direction::Down),
        ] {
            let fresh = Lane::new(&self.spec, dir, self.seed, self.session_id, now);
            (lane.shaper, lane.batch) = (fresh.shaper, fresh.batch);
        }
    }

    fn lane(&mut self, dir: Direction) -> &mut Lane {
        match dir {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }

    /// Hands `data` going `dir` to the link at `now`. Data from the device also restarts
    /// the NAT idle timer.
    pub fn push(&mut self, dir: Direction, data: Bytes, now: Instant) {
        if dir == Direction::Up {
            self.last_traffic = now;
        }
        let batch = self.spec.batch.map(|b| (b, self.start));
        self.lane(dir).push(data, now, batch);
    }

    /// Whether the lane going `dir` can take more (below its in-flight budget).
    pub fn has_room(&self, dir: Direction) -> bool {
        let lane = match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        };
        lane.bytes < lane.budget()
    }

    /// How much to read from the device at most now (at least 1 byte, at most `chunk`).
    pub fn read_room(&self, chunk: usize) -> usize {
        self.up
            .budget()
            .saturating_sub(self.up.bytes)
            .clamp(1, chunk)
    }

    /// Whether nothing is in flight going `dir`.
    pub fn is_empty(&self, dir: Direction) -> bool {
        match dir {
            Direction::Up => self.up.queue.is_empty(),
            Direction::Down => self.down.queue.is_empty(),
        }
    }

    /// When the next piece going `dir` is due; an outage until `outage` holds it until then.
    pub fn next_at(&self, dir: Direction, outage: Option<Instant>) -> Option<Instant> {
        let lane = match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        };
        let at = lane.queue.front()?.plan.at;
        Some(outage.map_or(at, |o| at.max(o)))
    }

    /// When the carrier NAT forgets the connection for lack of traffic (never once it has).
    pub fn nat_deadline(&self, nat_dropped: bool) -> Option<Instant> {
        self.spec
            .nat_idle
            .filter(|_| !nat_dropped)
            .map(|idle| self.last_traffic + idle)
    }

    /// When the link resets the connection by the clock (`reset_at`).
    pub fn reset_deadline(&self) -> Option<Instant> {
        self.spec.reset_at.map(|t| self.start + t)
    }

    /// Takes the next piece going `dir`, delivered at `now` (call when [`TcpLink::next_at`]
    /// has come).
    pub fn pop(&mut self, dir: Direction, now: Instant) -> Option<Delivered> {
        let p = self.lane(dir).pop()?;
        self.last_traffic = now;
        self.moved += p.data.len() as u64;
        let action = if p.plan.stalled {
            LinkAction::Stalled
        } else if p.plan.throttled >= Duration::from_millis(1) {
            LinkAction::Throttled
        } else {
            LinkAction::Delayed
        };
        Some(Delivered {
            data: p.data,
            action,
            delay: now.saturating_duration_since(p.handed),
        })
    }

    /// Whether enough bytes went through for `reset_after` to reset the connection.
    pub fn reset_by_bytes(&self) -> bool {
        self.spec.reset_after_bytes.is_some_and(|n| self.moved >= n)
    }

    /// Takes everything still in flight going `dir` (dropped: a reset or a NAT drop).
    pub fn drain(&mut self, dir: Direction) -> Vec<Bytes> {
        let lane = self.lane(dir);
        lane.bytes = 0;
        lane.queue.drain(..).map(|p| p.data).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(spec: &str, t0: Instant) -> TcpLink {
        TcpLink::new(Arc::new(LinkSpec::parse(spec).unwrap()), Some(1), 7, t0, t0)
    }

    /// Pieces come out after the latency, in order, and only when due.
    #[test]
    fn delivers_in_order_after_latency() {
        let t0 = Instant::now();
        let mut l = link("perfect,latency=100ms", t0);
        l.push(Direction::Up, Bytes::from_static(b"ab"), t0);
        l.push(
            Direction::Up,
            Bytes::from_static(b"cd"),
            t0 + Duration::from_millis(10),
        );
        assert_eq!(
            l.next_at(Direction::Up, None),
            Some(t0 + Duration::from_millis(100))
        );
        assert_eq!(l.next_at(Direction::Down, None), None);
        let t1 = t0 + Duration::from_millis(100);
        let first = l.pop(Direction::Up, t1).unwrap();
        assert_eq!(
            (first.data.as_ref(), first.action),
            (&b"ab"[..], LinkAction::Delayed)
        );
        assert_eq!(first.delay, Duration::from_millis(100));
        assert_eq!(
            l.next_at(Direction::Up, None),
            Some(t0 + Duration::from_millis(110))
        );
        // An outage holds the next piece until it ends.
        let until = t0 + Duration::from_secs(5);
        assert_eq!(l.next_at(Direction::Up, Some(until)), Some(until));
        assert_eq!(l.pop(Direction::Up, until).unwrap().data, "cd");
        assert!(l.is_empty(Direction::Up));
    }

    /// A capped lane fills its budget and refuses more; the rate paces delivery.
    #[test]
    fn budget_and_throttle() {
        let t0 = Instant::now();
        let mut l = link("perfect,rate=8k", t0); // 1000 B/s: budget 2 s of it
        assert!(l.has_room(Direction::Down));
        l.push(Direction::Down, Bytes::from(vec![0u8; 4096]), t0);
        assert!(!l.has_room(Direction::Down));
        assert_eq!(l.read_room(16 * 1024), 4096);
        let mut last = t0;
        let mut throttled = 0;
        while let Some(at) = l.next_at(Direction::Down, None) {
            assert!(at >= last);
            last = at;
            throttled +=
                (l.pop(Direction::Down, at).unwrap().action == LinkAction::Throttled) as u32;
        }
        assert!(throttled > 0);
        // 4096 B at 1000 B/s with 1500 B of burst: the last byte leaves after ~2.6 s.
        assert!(last - t0 >= Duration::from_millis(2500), "{:?}", last - t0);
        assert!(l.has_room(Direction::Down));
    }

    /// The NAT idle timer restarts with traffic; `reset_at` counts from the start and
    /// `reset_after` from the bytes delivered.
    #[test]
    fn timers() {
        let t0 = Instant::now();
        let mut l = link("perfect,nat_idle=30s,reset_at=1m,reset_after=3", t0);
        assert_eq!(l.nat_deadline(false), Some(t0 + Duration::from_secs(30)));
        assert_eq!(l.nat_deadline(true), None);
        let t1 = t0 + Duration::from_secs(10);
        l.push(Direction::Up, Bytes::from_static(b"abcd"), t1);
        assert_eq!(l.nat_deadline(false), Some(t1 + Duration::from_secs(30)));
        assert_eq!(l.reset_deadline(), Some(t0 + Duration::from_secs(60)));
        assert!(!l.reset_by_bytes());
        l.pop(Direction::Up, t1).unwrap();
        assert!(l.reset_by_bytes());
        l.push(Direction::Down, Bytes::from_static(b"xy"), t1);
        assert_eq!(l.drain(Direction::Down), vec![Bytes::from_static(b"xy")]);
        assert!(l.is_empty(Direction::Down));
    }
}

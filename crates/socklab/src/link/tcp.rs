//! The TCP session loop while a link is active. It owns both directions' shapers and
//! queues; data read from the device enters the up queue, operator sends, echo and
//! auto-replies enter the down queue, and each piece comes out at its planned time, in
//! order. The history records a piece when the link delivers it (or drops it).
//!
//! Back-pressure stays intact: reading stops while the up queue holds its budget (the
//! device's own TCP window then fills, as on a slow link), and the outbox is only drained
//! while the down queue has room (operator sends wait, then get 503).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::control::{LinkAction, LinkEvent};
use super::shaper::{DirShaper, Plan, session_seed};
use super::udp::sleep_opt;
use super::{LinkSpec, perfect};
use crate::clock;
use crate::hub::Hub;
use crate::listener::READ_CHUNK_BYTES;
use crate::listener::tcp::write;
use crate::model::{Direction, EndReason};
use crate::session::{ListenerState, Outbox, SessionHandle};
use crate::shutdown::Shutdown;

/// Most bytes one direction holds in flight when the rate is unlimited.
const MAX_IN_FLIGHT_BYTES: usize = 256 * 1024;

/// A piece of data inside the link.
struct Piece {
    plan: Plan,
    handed: Instant,
    data: Bytes,
}

/// One direction: its shaper and what is in flight.
struct Lane {
    shaper: DirShaper,
    queue: VecDeque<Piece>,
    bytes: usize,
    dir: Direction,
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
            dir,
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

    fn has_room(&self) -> bool {
        self.bytes < self.budget()
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

    fn next_at(&self) -> Option<Instant> {
        self.queue.front().map(|p| p.plan.at)
    }
}

/// `at` moved up to the next multiple of `period` after `origin`.
pub fn round_up(at: Instant, origin: Instant, period: Duration) -> Instant {
    if at <= origin || period.is_zero() {
        return at;
    }
    let n = (at - origin).as_secs_f64() / period.as_secs_f64();
    origin + period.mul_f64(n.ceil())
}

/// Everything the loop needs to reach the outside world.
pub(crate) struct Ctx<'a> {
    /// The device socket.
    pub stream: &'a mut TcpStream,
    /// The session.
    pub handle: &'a SessionHandle,
    /// Operator sends.
    pub outbox: &'a Outbox,
    /// Echo and auto-reply rules.
    pub listener: &'a ListenerState,
    /// Records and events.
    pub hub: &'a Hub,
    /// Server shutdown.
    pub shutdown: &'a mut Shutdown,
    /// The version of the session's link control last taken in.
    pub seen: &'a mut u64,
    /// Data for the device taken from the outbox before the link loop started.
    pub pending: Option<Bytes>,
}

/// Runs the session with its link until it ends (`Some(reason)`), or until the link is a
/// no-op again with nothing in flight (`None`: the caller returns to the plain loop).
pub(crate) async fn drive(cx: Ctx<'_>) -> Option<EndReason> {
    let Ctx {
        stream,
        handle,
        outbox,
        listener,
        hub,
        shutdown,
        seen,
        pending,
    } = cx;
    let seed = listener.seed();
    let start = started_instant(handle.started_ms);
    *seen = handle.link.version();
    let mut spec = handle.link.get().spec.unwrap_or_else(perfect);
    let now = Instant::now();
    let mut up = Lane::new(&spec, Direction::Up, seed, handle.id, now);
    let mut down = Lane::new(&spec, Direction::Down, seed, handle.id, now);
    let mut last_traffic = now;
    let mut moved: u64 = 0;
    let mut eof = false;
    let mut nat_seen = false;
    if let Some(data) = pending {
        down.push(data, now, spec.batch.map(|b| (b, start)));
    }
    loop {
        let now = Instant::now();
        let ctl = handle.link.get();
        if handle.reset_requested.swap(false, Ordering::Relaxed) {
            return Some(reset(stream, handle, hub, &mut up, &mut down).await);
        }
        let nat = handle.nat_dropped.load(Ordering::Relaxed);
        if nat && !nat_seen {
            nat_seen = true;
            // The carrier NAT sits next to the device: data the device already sent crossed
            // it before it forgot the flow and still arrives; data still queued for the
            // device would cross it afterwards and goes nowhere.
            while let Some(p) = down.pop() {
                hub.record_dropped(handle, Direction::Down, p.data).await;
            }
        }
        if eof && up.queue.is_empty() {
            return Some(if nat {
                EndReason::NatDropped
            } else {
                EndReason::ClosedByDevice
            });
        }
        let noop = ctl.spec.as_ref().is_none_or(|s| s.is_noop());
        if noop && !ctl.active() && !nat && up.queue.is_empty() && down.queue.is_empty() {
            return None;
        }
        let outage = ctl.outage(now);
        let held = |lane: &Lane| -> Option<Instant> {
            let at = lane.next_at()?;
            Some(outage.map_or(at, |o| at.max(o)))
        };
        let (up_at, down_at) = (held(&up), held(&down));
        let nat_at = spec
            .nat_idle
            .filter(|_| !nat)
            .map(|idle| last_traffic + idle);
        let reset_at = spec.reset_at.map(|t| start + t);
        let wake_at = outage.filter(|_| up_at.is_none() && down_at.is_none());
        let can_read = !eof && outage.is_none() && up.has_room();
        tokio::select! {
            biased;
            _ = shutdown.wait() => return Some(EndReason::ServerShutdown),
            _ = handle.close_requested.notified() => return Some(EndReason::ClosedByOperator),
            _ = handle.link.changed(*seen) => {
                *seen = handle.link.version();
                let new = handle.link.get().spec.unwrap_or_else(perfect);
                if new != spec {
                    spec = new;
                    let now = Instant::now();
                    for lane in [&mut up, &mut down] {
                        let fresh = Lane::new(&spec, lane.dir, seed, handle.id, now);
                        (lane.shaper, lane.batch) = (fresh.shaper, fresh.batch);
                    }
                }
            }
            _ = sleep_opt(reset_at) => {
                return Some(reset(stream, handle, hub, &mut up, &mut down).await);
            }
            _ = sleep_opt(nat_at) => {
                handle.nat_dropped.store(true, Ordering::Relaxed);
                hub.link_event(|| LinkEvent::state(handle, LinkAction::NatDropped, Duration::ZERO));
            }
            _ = sleep_opt(wake_at) => {}
            _ = sleep_opt(up_at) => {
                let Some(p) = up.pop() else { continue };
                last_traffic = Instant::now();
                moved += p.data.len() as u64;
                report(hub, handle.id, Direction::Up, &p);
                let replies = listener.replies(&p.data);
                hub.record(handle, Direction::Up, p.data).await;
                let now = Instant::now();
                for reply in replies {
                    if nat {
                        hub.record_dropped(handle, Direction::Down, reply).await;
                    } else {
                        down.push(reply, now, spec.batch.map(|b| (b, start)));
                    }
                }
                if spec.reset_after_bytes.is_some_and(|n| moved >= n) {
                    return Some(reset(stream, handle, hub, &mut up, &mut down).await);
                }
            }
            _ = sleep_opt(down_at) => {
                let Some(p) = down.pop() else { continue };
                last_traffic = Instant::now();
                moved += p.data.len() as u64;
                report(hub, handle.id, Direction::Down, &p);
                if let Err(reason) = write(stream, handle, hub, shutdown, p.data).await {
                    return Some(reason);
                }
                if spec.reset_after_bytes.is_some_and(|n| moved >= n) {
                    return Some(reset(stream, handle, hub, &mut up, &mut down).await);
                }
            }
            data = outbox.recv(), if down.has_room() => {
                if nat {
                    hub.record_dropped(handle, Direction::Down, data).await;
                } else {
                    down.push(data, Instant::now(), spec.batch.map(|b| (b, start)));
                }
            }
            ready = stream.readable(), if can_read => {
                if ready.is_err() {
                    return Some(ended(nat, EndReason::Reset));
                }
                let room = up.budget().saturating_sub(up.bytes).clamp(1, READ_CHUNK_BYTES);
                let mut buf = BytesMut::with_capacity(room);
                match stream.try_read_buf(&mut buf) {
                    Ok(0) => eof = true,
                    Ok(_) => {
                        let data = buf.freeze();
                        if nat {
                            hub.record_dropped(handle, Direction::Up, data).await;
                        } else {
                            last_traffic = Instant::now();
                            up.push(data, Instant::now(), spec.batch.map(|b| (b, start)));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => return Some(ended(nat, EndReason::Reset)),
                }
            }
        }
    }
}

/// After a NAT drop every end is reported as the NAT drop: that is what ended it.
fn ended(nat: bool, reason: EndReason) -> EndReason {
    if nat { EndReason::NatDropped } else { reason }
}

/// The link resets the connection: undelivered data is recorded as dropped, and closing
/// with SO_LINGER 0 makes the kernel send an RST (the device sees ECONNRESET).
async fn reset(
    stream: &mut TcpStream,
    handle: &SessionHandle,
    hub: &Hub,
    up: &mut Lane,
    down: &mut Lane,
) -> EndReason {
    for lane in [up, down] {
        while let Some(p) = lane.pop() {
            hub.record_dropped(handle, lane.dir, p.data).await;
        }
    }
    if let Err(e) = stream.set_zero_linger() {
        tracing::warn!("session {}: SO_LINGER 0: {e}", handle.id);
    }
    hub.link_event(|| LinkEvent::state(handle, LinkAction::Reset, Duration::ZERO));
    EndReason::LinkReset
}

/// Reports a delivered piece: throttled, stalled or only delayed.
fn report(hub: &Hub, id: u64, dir: Direction, p: &Piece) {
    let action = if p.plan.stalled {
        LinkAction::Stalled
    } else if p.plan.throttled >= Duration::from_millis(1) {
        LinkAction::Throttled
    } else {
        LinkAction::Delayed
    };
    let delay = Instant::now().saturating_duration_since(p.handed);
    hub.link_event(|| LinkEvent::data(id, action, dir, p.data.len(), delay));
}

/// The tokio instant of a Unix-milliseconds start time.
fn started_instant(started_ms: i64) -> Instant {
    let ago = (clock::now_ms() - started_ms).max(0) as u64;
    Instant::now()
        .checked_sub(Duration::from_millis(ago))
        .unwrap_or_else(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch delivery rounds arrivals up to the period, measured from the session start.
    #[test]
    fn batch_rounding() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(round_up(t0 + Duration::from_millis(300), t0, s), t0 + s);
        assert_eq!(round_up(t0 + s, t0, s), t0 + s);
        assert_eq!(
            round_up(t0 + Duration::from_millis(1001), t0, s),
            t0 + 2 * s
        );
        assert_eq!(round_up(t0, t0, s), t0);
    }
}

//! The TCP connection loop while a link is active: it feeds the session's
//! [`TcpLink`] engine with what the device sends (up) and what goes to the device
//! (operator sends, echo, auto-replies: down), sleeps until the engine says something is
//! due, and applies it: up data goes to [`upstream`], down data to the socket. The history
//! records a piece when the link delivers it (or drops it).
//!
//! Back-pressure stays intact: reading stops while the up lane holds its budget (the
//! device's own TCP window then fills, as on a slow link), and the outbox is only drained
//! while the down lane has room.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::tcp_write::{DeviceStream, read_chunk, reason_for, reset_now, write};
use super::{READ_CHUNK_BYTES, sleep_opt, upstream};
use crate::clock;
use crate::hub::Hub;
use crate::link::engine::Delivered;
use crate::link::engine::tcp::TcpLink;
use crate::listener_state::ListenerState;
use crate::model::{Direction, EndReason, LinkAction, LinkEvent};
use crate::session::{Outbox, SessionHandle};
use crate::shutdown::Shutdown;

/// Everything the loop needs to reach the outside world.
pub(crate) struct Ctx<'a, S> {
    /// The device connection.
    pub stream: &'a mut S,
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
    /// Data from the device read before the link loop started.
    pub pending_up: Option<Bytes>,
}

/// Runs the session with its link until it ends (`Some(reason)`), or until the link is a
/// no-op again with nothing in flight (`None`: the caller returns to the plain loop). When
/// the session ends with data still inside the link, data from the device is recorded as
/// dropped by the link and data for it as undelivered.
pub(crate) async fn drive<S: DeviceStream>(cx: Ctx<'_, S>) -> Option<EndReason> {
    let (handle, hub) = (cx.handle, cx.hub);
    let mut link = None;
    let reason = run(cx, &mut link).await;
    if let Some(link) = link.as_mut().filter(|_| reason.is_some()) {
        for data in link.drain(Direction::Up) {
            hub.record_dropped(handle, Direction::Up, data).await;
        }
        for data in link.drain(Direction::Down) {
            hub.record_undelivered(handle, data).await;
        }
    }
    reason
}

async fn run<S: DeviceStream>(cx: Ctx<'_, S>, slot: &mut Option<TcpLink>) -> Option<EndReason> {
    let Ctx {
        stream,
        handle,
        outbox,
        listener,
        hub,
        shutdown,
        seen,
        pending,
        pending_up,
    } = cx;
    let start = started_instant(handle.meta.started_ms);
    *seen = handle.link.version();
    let now = Instant::now();
    let spec = handle.link.get().spec_or_perfect();
    let link = slot.insert(TcpLink::new(spec, listener.seed(), handle.id(), start, now));
    let mut eof = false;
    let mut nat_seen = false;
    if let Some(data) = pending {
        link.push(Direction::Down, data, now);
    }
    if let Some(data) = pending_up {
        link.push(Direction::Up, data, now);
    }
    loop {
        let now = Instant::now();
        let ctl = handle.link.get();
        if handle.reset_requested.swap(false, Ordering::Relaxed) {
            return Some(reset(stream, handle, hub, link).await);
        }
        let nat = handle.nat_dropped.load(Ordering::Relaxed);
        if nat && !nat_seen {
            nat_seen = true;
            // The carrier NAT sits next to the device: data the device already sent crossed
            // it before it forgot the flow and still arrives; data still queued for the
            // device would cross it afterwards and goes nowhere.
            for data in link.drain(Direction::Down) {
                hub.record_dropped(handle, Direction::Down, data).await;
            }
        }
        if eof && link.is_empty(Direction::Up) {
            return Some(if nat {
                EndReason::NatDropped
            } else {
                EndReason::ClosedByDevice
            });
        }
        let noop = ctl.spec.as_ref().is_none_or(|s| s.is_noop());
        if noop
            && !ctl.active_at(now)
            && !nat
            && link.is_empty(Direction::Up)
            && link.is_empty(Direction::Down)
        {
            return None;
        }
        let outage = ctl.outage(now);
        let up_at = link.next_at(Direction::Up, outage);
        let down_at = link.next_at(Direction::Down, outage);
        let nat_at = link.nat_deadline(nat);
        let reset_at = link.reset_deadline();
        let wake_at = outage.filter(|_| up_at.is_none() && down_at.is_none());
        let can_read = !eof && outage.is_none() && link.has_room(Direction::Up);
        tokio::select! {
            biased;
            _ = shutdown.wait() => return Some(EndReason::ServerShutdown),
            _ = handle.close_requested.notified() => {
                if handle.reset_requested.load(Ordering::Relaxed) {
                    continue; // the reset is carried out at the top of the loop
                }
                return Some(handle.close_reason());
            }
            _ = handle.link.changed(*seen) => {
                *seen = handle.link.version();
                link.set_spec(handle.link.get().spec_or_perfect(), Instant::now());
            }
            _ = sleep_opt(reset_at) => {
                return Some(reset(stream, handle, hub, link).await);
            }
            _ = sleep_opt(nat_at) => {
                handle.nat_dropped.store(true, Ordering::Relaxed);
                hub.link_state(handle, LinkAction::NatDropped, Duration::ZERO);
            }
            _ = sleep_opt(wake_at) => {}
            _ = sleep_opt(up_at) => {
                let Some(p) = link.pop(Direction::Up, Instant::now()) else { continue };
                report(hub, handle.id(), Direction::Up, &p);
                for reply in upstream(hub, listener, handle, p.data).await {
                    if nat {
                        hub.record_dropped(handle, Direction::Down, reply).await;
                    } else {
                        link.push(Direction::Down, reply, Instant::now());
                    }
                }
                if link.reset_by_bytes() {
                    return Some(reset(stream, handle, hub, link).await);
                }
            }
            _ = sleep_opt(down_at) => {
                let Some(p) = link.pop(Direction::Down, Instant::now()) else { continue };
                report(hub, handle.id(), Direction::Down, &p);
                if let Err(reason) = write(stream, handle, hub, shutdown, p.data).await {
                    return Some(reason);
                }
                if link.reset_by_bytes() {
                    return Some(reset(stream, handle, hub, link).await);
                }
            }
            data = outbox.recv(), if link.has_room(Direction::Down) => {
                if nat {
                    hub.record_dropped(handle, Direction::Down, data).await;
                } else {
                    link.push(Direction::Down, data, Instant::now());
                }
            }
            read = read_chunk(stream, link.read_room(READ_CHUNK_BYTES)), if can_read => {
                match read {
                    Ok(None) => eof = true,
                    Ok(Some(data)) => {
                        if nat {
                            hub.record_dropped(handle, Direction::Up, data).await;
                        } else {
                            link.push(Direction::Up, data, Instant::now());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Some(ended(nat, reason_for(&e))),
                }
            }
        }
    }
}

/// After a NAT drop every end is reported as the NAT drop: that is what ended it.
fn ended(nat: bool, reason: EndReason) -> EndReason {
    if nat { EndReason::NatDropped } else { reason }
}

/// The link resets the connection: undelivered data is recorded as dropped, then the
/// connection is reset.
async fn reset<S: DeviceStream>(
    stream: &mut S,
    handle: &SessionHandle,
    hub: &Hub,
    link: &mut TcpLink,
) -> EndReason {
    for dir in [Direction::Up, Direction::Down] {
        for data in link.drain(dir) {
            hub.record_dropped(handle, dir, data).await;
        }
    }
    reset_now(stream.tcp(), handle, hub)
}

/// Reports a delivered piece: throttled, stalled or only delayed.
fn report(hub: &Hub, id: u64, dir: Direction, p: &Delivered) {
    hub.link_event(|| LinkEvent::data(id, p.action, dir, p.data.len(), p.delay));
}

/// The tokio instant of a Unix-milliseconds start time.
fn started_instant(started_ms: i64) -> Instant {
    let ago = (clock::now_ms() - started_ms).max(0) as u64;
    Instant::now()
        .checked_sub(Duration::from_millis(ago))
        .unwrap_or_else(Instant::now)
}

//! The data model every part of socklab speaks: sessions, messages, listeners and the
//! events the hub fans out, plus their JSON shapes (the API contract in
//! `docs/api.md`: snake_case fields, RFC 3339 times next to Unix milliseconds).
//!
//! It is the bottom of socklab's layers: it imports only [`crate::clock`] and
//! [`crate::rules`]. [`SessionMeta`] is a session's identity, written once and shared by
//! the live handle and every snapshot; [`Counters`] and [`LiveCounters`] are the one
//! definition of traffic counts; [`link`] holds the link's view and event shapes;
//! [`periodic`] those of periodic sends.

pub mod link;
pub mod periodic;
pub mod rates;
pub mod tls;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::clock;
use crate::framing::FramingSpec;
use crate::rules::RuleSpec;

pub use link::{LinkAction, LinkEvent, LinkView};
pub use periodic::{PeriodicEnd, PeriodicEvent, PeriodicInfo, PeriodicTarget};
pub use rates::{RATE_WINDOW_SECONDS, SessionRates};
pub use tls::{ListenerTls, TlsFailure, TlsFailureCounts, TlsFailureKind, TlsInfo};

/// Transport of a listener and of the sessions it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// A TCP listener; a session is one accepted connection.
    Tcp,
    /// A UDP socket; a session is a peer address seen within the idle timeout.
    Udp,
}

impl Proto {
    /// The lowercase name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// Parses the name written by [`Proto::as_str`].
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// Which way a message travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Device to server.
    Up,
    /// Server to device (operator send, broadcast, echo or auto-reply).
    Down,
}

impl Direction {
    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The device closed the connection in order (TCP FIN, read returned 0) with nothing
    /// left to deliver to it.
    ClosedByDevice,
    /// The device closed only its sending side (TCP FIN) while data for it was still on its
    /// way; socklab went on writing it, then closed.
    HalfClosedByDevice,
    /// The connection broke: reset by the peer or another read/write error.
    Reset,
    /// A UDP peer sent nothing for the idle timeout.
    IdleTimeout,
    /// An operator closed it from the console, the API or the dashboard.
    ClosedByOperator,
    /// socklab shut down (or crashed, found at the next start) while it was online.
    ServerShutdown,
    /// The emulated link reset the connection (see [`crate::link`]).
    LinkReset,
    /// The emulated carrier NAT had dropped the connection; the device then went away.
    NatDropped,
    /// The device answered no TCP keepalive probe: its link is gone (a half-open
    /// connection).
    KeepaliveTimeout,
    /// The UDP session table was full and this session was the least recently heard.
    Evicted,
    /// An operator removed the session's listener while it was online.
    ListenerRemoved,
}

impl EndReason {
    /// The snake_case name used in JSON, in the database and on the console.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::ClosedByDevice => "closed_by_device",
            EndReason::HalfClosedByDevice => "half_closed_by_device",
            EndReason::Reset => "reset",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::ClosedByOperator => "closed_by_operator",
            EndReason::ServerShutdown => "server_shutdown",
            EndReason::LinkReset => "link_reset",
            EndReason::NatDropped => "nat_dropped",
            EndReason::KeepaliveTimeout => "keepalive_timeout",
            EndReason::Evicted => "evicted",
            EndReason::ListenerRemoved => "listener_removed",
        }
    }

    /// Every end reason, in the order the docs list them.
    pub const ALL: [EndReason; 11] = [
        EndReason::ClosedByDevice,
        EndReason::HalfClosedByDevice,
        EndReason::Reset,
        EndReason::IdleTimeout,
        EndReason::ClosedByOperator,
        EndReason::ServerShutdown,
        EndReason::LinkReset,
        EndReason::NatDropped,
        EndReason::KeepaliveTimeout,
        EndReason::Evicted,
        EndReason::ListenerRemoved,
    ];

    /// Parses the name written by [`EndReason::as_str`].
    pub fn parse(s: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Byte and message counts of one session, each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes received from the device.
    pub bytes_up: u64,
    /// Bytes sent to the device.
    pub bytes_down: u64,
    /// Reads (TCP) or datagrams (UDP) received from the device.
    pub msgs_up: u64,
    /// Writes or datagrams sent to the device.
    pub msgs_down: u64,
}

/// Counters that many tasks add to at once (relaxed atomics: each field is exact, a
/// snapshot of all four is not taken at one instant). Used for each session and for the
/// process-wide totals.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Bytes received from devices.
    pub bytes_up: AtomicU64,
    /// Bytes sent to devices.
    pub bytes_down: AtomicU64,
    /// Reads or datagrams received from devices.
    pub msgs_up: AtomicU64,
    /// Writes or datagrams sent to devices.
    pub msgs_down: AtomicU64,
}

impl LiveCounters {
    /// Adds one message of `len` bytes going `direction`.
    pub fn count(&self, direction: Direction, len: usize) {
        let (bytes, msgs) = match direction {
            Direction::Up => (&self.bytes_up, &self.msgs_up),
            Direction::Down => (&self.bytes_down, &self.msgs_down),
        };
        bytes.fetch_add(len as u64, Ordering::Relaxed);
        msgs.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> Counters {
        Counters {
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            msgs_up: self.msgs_up.load(Ordering::Relaxed),
            msgs_down: self.msgs_down.load(Ordering::Relaxed),
        }
    }
}

/// Who a session is: fixed when it starts, shared by the live handle and every snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionMeta {
    /// Unique across restarts (allocated after the largest id in the database).
    pub id: u64,
    /// Index of the listener in the order given on the command line.
    pub listener_id: u32,
    /// Transport of the listener.
    pub proto: Proto,
    /// The device's address.
    pub peer: SocketAddr,
    /// The listener's local address the device reached.
    pub local: SocketAddr,
    /// When the session started, Unix milliseconds.
    pub started_ms: i64,
    /// The TLS connection's details, on a TLS listener (`None`: plain TCP or UDP).
    pub tls: Option<Arc<TlsInfo>>,
    /// socklab opened the connection (client mode: the device is the server); `false`
    /// for a device that reached one of socklab's listeners.
    pub outgoing: bool,
}

/// A snapshot of one session, online or from history. Its identity fields are those of
/// [`SessionMeta`], reachable directly (`info.id`) through `Deref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Who the session is.
    pub meta: SessionMeta,
    /// When it ended; `None` while online.
    pub ended_ms: Option<i64>,
    /// Why it ended; `None` while online.
    pub end_reason: Option<EndReason>,
    /// Traffic so far.
    pub counters: Counters,
    /// The emulated link: live state while online, the last link it had in history
    /// (`None` when it never had one).
    pub link: Option<LinkView>,
    /// The operator's name for the device (or one taken from its first upload).
    pub label: Option<Arc<str>>,
    /// Recent traffic per second while online (`None` in history).
    pub rates: Option<SessionRates>,
}

impl std::ops::Deref for SessionInfo {
    type Target = SessionMeta;
    fn deref(&self) -> &SessionMeta {
        &self.meta
    }
}

impl SessionInfo {
    /// Whether the session is still online.
    pub fn online(&self) -> bool {
        self.ended_ms.is_none()
    }
}

impl Serialize for SessionInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Session", 19)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("label", &self.label.as_deref())?;
        st.serialize_field("listener_id", &self.listener_id)?;
        st.serialize_field("proto", &self.proto)?;
        st.serialize_field("peer", &self.peer.to_string())?;
        st.serialize_field("local", &self.local.to_string())?;
        st.serialize_field(
            "direction",
            if self.outgoing {
                "outgoing"
            } else {
                "incoming"
            },
        )?;
        st.serialize_field("online", &self.online())?;
        st.serialize_field("started_at", &clock::format_ms(self.started_ms))?;
        st.serialize_field("started_at_ms", &self.started_ms)?;
        st.serialize_field("ended_at", &self.ended_ms.map(clock::format_ms))?;
        st.serialize_field("ended_at_ms", &self.ended_ms)?;
        st.serialize_field("end_reason", &self.end_reason)?;
        st.serialize_field("bytes_up", &self.counters.bytes_up)?;
        st.serialize_field("bytes_down", &self.counters.bytes_down)?;
        st.serialize_field("msgs_up", &self.counters.msgs_up)?;
        st.serialize_field("msgs_down", &self.counters.msgs_down)?;
        st.serialize_field("link", &self.link)?;
        st.serialize_field("tls", &self.tls.as_deref())?;
        st.serialize_field("rates", &self.rates)?;
        st.end()
    }
}

/// What became of a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Read from the device, or written to it.
    #[default]
    Ok,
    /// The emulated link dropped it (loss, outage, NAT drop, reset, a full link queue).
    Dropped,
    /// Accepted for the device but never written: the session ended first.
    Undelivered,
    /// The socket refused it (e.g. a datagram too big for the path).
    Failed,
}

impl MessageStatus {
    /// The number stored in the database (`0` is ok, so rows from before statuses read
    /// back right: their `1` meant dropped).
    pub fn code(self) -> i64 {
        match self {
            MessageStatus::Ok => 0,
            MessageStatus::Dropped => 1,
            MessageStatus::Undelivered => 2,
            MessageStatus::Failed => 3,
        }
    }

    /// The status stored as `code` (unknown codes read as dropped: not delivered).
    pub fn from_code(code: i64) -> MessageStatus {
        match code {
            0 => MessageStatus::Ok,
            2 => MessageStatus::Undelivered,
            3 => MessageStatus::Failed,
            _ => MessageStatus::Dropped,
        }
    }
}

/// One read from or write to a device, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// Unique across restarts, increasing in arrival order.
    pub id: u64,
    /// The session it belongs to.
    pub session_id: u64,
    /// When it was read or written, Unix milliseconds.
    pub ts_ms: i64,
    /// Which way it went.
    pub direction: Direction,
    /// The exact bytes (shared, not copied, between the store and the subscribers).
    pub data: Bytes,
    /// It never reached the other side ([`MessageInfo::status`] says why).
    pub dropped: bool,
    /// What became of it.
    pub status: MessageStatus,
}

impl MessageInfo {
    /// A message with `status` (`dropped` follows from it).
    pub fn new(
        id: u64,
        session_id: u64,
        ts_ms: i64,
        direction: Direction,
        data: Bytes,
        status: MessageStatus,
    ) -> MessageInfo {
        MessageInfo {
            id,
            session_id,
            ts_ms,
            direction,
            data,
            dropped: status != MessageStatus::Ok,
            status,
        }
    }
}

/// Largest payload a live event carries; longer messages are cut (with `"truncated":
/// true`, `len` still the full length) so a browser watching a bulk upload gets a preview
/// rather than megabytes of hex. The API's message routes always return everything.
pub const EVENT_PAYLOAD_BYTES: usize = 4096;

/// A message serialised with at most `limit` payload bytes.
struct MessageView<'a> {
    message: &'a MessageInfo,
    limit: usize,
}

impl Serialize for MessageView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.message;
        let shown = &m.data[..m.data.len().min(self.limit)];
        let mut st = s.serialize_struct("Message", 11)?;
        st.serialize_field("id", &m.id)?;
        st.serialize_field("session_id", &m.session_id)?;
        st.serialize_field("ts", &clock::format_ms(m.ts_ms))?;
        st.serialize_field("ts_ms", &m.ts_ms)?;
        st.serialize_field("direction", &m.direction)?;
        st.serialize_field("len", &m.data.len())?;
        st.serialize_field("hex", &hex::encode(shown))?;
        st.serialize_field("text", &String::from_utf8_lossy(shown))?;
        st.serialize_field("truncated", &(shown.len() < m.data.len()))?;
        st.serialize_field("dropped", &m.dropped)?;
        st.serialize_field("status", &m.status)?;
        st.end()
    }
}

impl Serialize for MessageInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MessageView {
            message: self,
            limit: usize::MAX,
        }
        .serialize(s)
    }
}

/// What a listener entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// A socket devices connect or send to (from the command line or added at run time).
    Listen,
    /// One connection socklab opened to a device (client mode); it goes away with its
    /// session.
    Outgoing,
}

/// A listener and its current modes.
#[derive(Clone, Debug, Serialize)]
pub struct ListenerInfo {
    /// Command-line listeners are numbered in order from 0; those added at run time and
    /// outgoing connections get ids after every id in the history.
    pub id: u32,
    /// Transport.
    pub proto: Proto,
    /// A listening socket, or one outgoing connection.
    pub kind: ListenerKind,
    /// Bound local address (with the real port when bound to port 0).
    pub addr: String,
    /// Outgoing connections: the device's address.
    pub remote: Option<String>,
    /// Whether incoming data is sent back.
    pub echo: bool,
    /// Auto-reply rules, first match wins.
    pub auto_replies: Vec<RuleSpec>,
    /// How incoming data is cut into frames for the rules.
    pub framing: FramingSpec,
    /// Sessions online on this listener.
    pub online: usize,
    /// The link new sessions get (`PROFILE[,param=value]`), `None` without one.
    pub link: Option<String>,
    /// A TLS listener's certificate and failed handshakes (`None`: plain).
    pub tls: Option<ListenerTls>,
}

/// What the hub fans out to subscribers (console, live stream).
#[derive(Clone, Debug)]
pub enum Event {
    /// A session started.
    Online(SessionInfo),
    /// Data went up or down; the session snapshot has the updated counters.
    Data(Arc<MessageInfo>, SessionInfo),
    /// A session ended.
    Offline(SessionInfo),
    /// A listener was added, or its echo mode, auto-reply rules or link changed.
    Listener(ListenerInfo),
    /// A listener was removed (its sessions have ended).
    ListenerRemoved(ListenerInfo),
    /// The emulated link did something to a session.
    Link(Arc<LinkEvent>),
    /// A TLS handshake failed: no session was opened.
    TlsFailed(Arc<TlsFailure>),
    /// A periodic send started, began skipping, or stopped.
    Periodic(Arc<PeriodicEvent>),
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Event::Online(session) | Event::Offline(session) => {
                let kind = if matches!(self, Event::Online(_)) {
                    "online"
                } else {
                    "offline"
                };
                let mut st = s.serialize_struct("Event", 2)?;
                st.serialize_field("type", kind)?;
                st.serialize_field("session", session)?;
                st.end()
            }
            Event::Data(message, session) => {
                let mut st = s.serialize_struct("Event", 3)?;
                st.serialize_field("type", "data")?;
                let view = MessageView {
                    message,
                    limit: EVENT_PAYLOAD_BYTES,
                };
                st.serialize_field("message", &view)?;
                st.serialize_field("session", session)?;
                st.end()
            }
            Event::Link(event) => event.serialize(s),
            Event::TlsFailed(failure) => failure.serialize(s),
            Event::Periodic(event) => event.serialize(s),
            Event::Listener(listener) | Event::ListenerRemoved(listener) => {
                let kind = if matches!(self, Event::Listener(_)) {
                    "listener"
                } else {
                    "listener_removed"
                };
                let mut st = s.serialize_struct("Event", 2)?;
                st.serialize_field("type", kind)?;
                st.serialize_field("listener", listener)?;
                st.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Arc<MessageInfo> {
        Arc::new(MessageInfo {
            id: 1,
            session_id: 2,
            ts_ms: 0,
            direction: Direction::Up,
            data: Bytes::from(vec![b'<'; len]),
            dropped: false,
            status: MessageStatus::Ok,
        })
    }

    fn session() -> SessionInfo {
        SessionInfo {
            meta: SessionMeta {
                id: 2,
                listener_id: 0,
                proto: Proto::Tcp,
                peer: "127.0.0.1:1".parse().unwrap(),
                local: "127.0.0.1:2".parse().unwrap(),
                started_ms: 0,
                tls: None,
                outgoing: false,
            },
            ended_ms: None,
            end_reason: None,
            counters: Counters::default(),
            link: None,
            label: None,
            rates: None,
        }
    }

    /// Live events cut big payloads but keep the true length; the API shape does not.
    #[test]
    fn events_truncate_big_payloads() {
        let big = message(EVENT_PAYLOAD_BYTES + 1);
        let event = serde_json::to_value(Event::Data(big.clone(), session())).unwrap();
        assert_eq!(event["type"], "data");
        assert_eq!(event["message"]["len"], EVENT_PAYLOAD_BYTES + 1);
        assert_eq!(event["message"]["truncated"], true);
        assert_eq!(
            event["message"]["text"].as_str().unwrap().len(),
            EVENT_PAYLOAD_BYTES
        );
        let full = serde_json::to_value(&*big).unwrap();
        assert_eq!(full["truncated"], false);
        assert_eq!(
            full["hex"].as_str().unwrap().len(),
            2 * (EVENT_PAYLOAD_BYTES + 1)
        );
        let small = serde_json::to_value(Event::Data(message(3), session())).unwrap();
        assert_eq!(
            (
                small["message"]["text"].as_str(),
                &small["message"]["truncated"]
            ),
            (Some("<<<"), &serde_json::json!(false))
        );
    }

    /// Sessions serialise with the contract's field names and times.
    #[test]
    fn session_shape() {
        let v = serde_json::to_value(session()).unwrap();
        assert_eq!(v["online"], true);
        assert_eq!(v["started_at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["end_reason"], serde_json::Value::Null);
        assert_eq!(v["peer"], "127.0.0.1:1");
    }
}

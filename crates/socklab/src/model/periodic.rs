//! The shapes of periodic sends ("send every N ms"): what one is ([`PeriodicInfo`]), why it
//! stopped ([`PeriodicEnd`]) and the event announcing a change ([`PeriodicEvent`]).

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::clock;

/// Where a periodic send goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodicTarget {
    /// One session; the send stops by itself when it goes offline.
    Session(u64),
    /// Every online session at each tick (or those of one listener).
    Broadcast(Option<u32>),
}

/// Why a periodic send stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeriodicEnd {
    /// An operator stopped it.
    Operator,
    /// Its session went offline.
    Offline,
    /// The server is shutting down.
    Shutdown,
    /// A send failed in a way that will not change by retrying (the message says how).
    Error(String),
}

impl PeriodicEnd {
    /// The reason as the API and events spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            PeriodicEnd::Operator => "stopped_by_operator",
            PeriodicEnd::Offline => "session_offline",
            PeriodicEnd::Shutdown => "server_shutdown",
            PeriodicEnd::Error(_) => "send_error",
        }
    }
}

/// A snapshot of one periodic send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodicInfo {
    /// Its id (stop it with this).
    pub id: u64,
    /// Where it sends.
    pub target: PeriodicTarget,
    /// Milliseconds between two sends.
    pub every_ms: u64,
    /// The bytes sent each time.
    pub data: bytes::Bytes,
    /// The snippet the bytes came from, if any (the bytes were copied when it started).
    pub snippet: Option<String>,
    /// When it started, Unix milliseconds.
    pub started_ms: i64,
    /// Sends accepted so far (a broadcast counts one per session reached).
    pub sent: u64,
    /// Sends skipped because the device was not reading (its outbox was full).
    pub skipped: u64,
    /// Sends the socket refused (recorded as failed in the history).
    pub failed: u64,
}

/// Payload bytes a periodic send's view shows (the whole payload is in each message).
pub const PERIODIC_SHOW_BYTES: usize = 256;

impl Serialize for PeriodicInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shown = &self.data[..self.data.len().min(PERIODIC_SHOW_BYTES)];
        let mut st = s.serialize_struct("Periodic", 14)?;
        st.serialize_field("id", &self.id)?;
        match self.target {
            // An id that does not apply is left out rather than null: a field holds an id
            // whenever it is there.
            PeriodicTarget::Session(id) => {
                st.serialize_field("target", "session")?;
                st.serialize_field("session_id", &id)?;
            }
            PeriodicTarget::Broadcast(listener) => {
                st.serialize_field("target", "broadcast")?;
                if let Some(listener) = listener {
                    st.serialize_field("listener_id", &listener)?;
                }
            }
        }
        st.serialize_field("every_ms", &self.every_ms)?;
        st.serialize_field("len", &self.data.len())?;
        st.serialize_field("hex", &hex::encode(shown))?;
        st.serialize_field("text", &String::from_utf8_lossy(shown))?;
        st.serialize_field("snippet", &self.snippet)?;
        st.serialize_field("started_at", &clock::format_ms(self.started_ms))?;
        st.serialize_field("started_at_ms", &self.started_ms)?;
        st.serialize_field("sent", &self.sent)?;
        st.serialize_field("skipped", &self.skipped)?;
        st.serialize_field("failed", &self.failed)?;
        st.end()
    }
}

/// What happened to a periodic send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodicAction {
    /// It started.
    Started,
    /// The device stopped reading: sends are being skipped (announced once per run).
    Skipping,
    /// It stopped ([`PeriodicEvent::end`] says why).
    Stopped,
}

impl PeriodicAction {
    /// The action as events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodicAction::Started => "started",
            PeriodicAction::Skipping => "skipping",
            PeriodicAction::Stopped => "stopped",
        }
    }
}

/// A periodic send started, began skipping, or stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodicEvent {
    /// When, Unix milliseconds.
    pub ts_ms: i64,
    /// What happened.
    pub action: PeriodicAction,
    /// The periodic send as it is now.
    pub periodic: PeriodicInfo,
    /// Why it stopped (stops only).
    pub end: Option<PeriodicEnd>,
}

impl Serialize for PeriodicEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("PeriodicEvent", 6)?;
        st.serialize_field("type", "periodic")?;
        st.serialize_field("ts_ms", &self.ts_ms)?;
        st.serialize_field("action", self.action.as_str())?;
        st.serialize_field("reason", &self.end.as_ref().map(PeriodicEnd::as_str))?;
        let detail = match &self.end {
            Some(PeriodicEnd::Error(m)) => Some(m.as_str()),
            _ => None,
        };
        st.serialize_field("detail", &detail)?;
        st.serialize_field("periodic", &self.periodic)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view names its target, shows the payload, and events say why a send stopped.
    #[test]
    fn shapes() {
        let info = PeriodicInfo {
            id: 7,
            target: PeriodicTarget::Session(3),
            every_ms: 500,
            data: bytes::Bytes::from_static(b"PING\r\n"),
            snippet: Some("ping".into()),
            started_ms: 0,
            sent: 2,
            skipped: 1,
            failed: 0,
        };
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["target"], "session");
        assert_eq!(v["session_id"], 3);
        assert!(v.get("listener_id").is_none());
        assert_eq!(v["hex"], "50494e470d0a");
        assert_eq!(v["started_at"], "1970-01-01T00:00:00.000Z");
        let e = PeriodicEvent {
            ts_ms: 1,
            action: PeriodicAction::Stopped,
            periodic: PeriodicInfo {
                target: PeriodicTarget::Broadcast(None),
                ..info
            },
            end: Some(PeriodicEnd::Offline),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            (
                v["type"].as_str(),
                v["action"].as_str(),
                v["reason"].as_str()
            ),
            (Some("periodic"), Some("stopped"), Some("session_offline"))
        );
        assert_eq!(v["periodic"]["target"], "broadcast");
        assert!(v["periodic"].get("session_id").is_none());
        assert!(v["periodic"].get("listener_id").is_none());
    }
}

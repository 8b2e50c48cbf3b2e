//! Bursts of deliveries crossing NATS as one line.
//!
//! A broadcast writes the same bytes to every device of a node, and each write is recorded
//! and announced as a data event of its own. Sent over NATS one by one, a broadcast to
//! 16,000 devices made 16,000 JSON events (each with a session snapshot) that the node
//! encoded and every other node took in, on the same two cores the devices are served
//! by: most of a cluster broadcast's time. Here the data events of one burst that carry
//! the same payload, written down to devices, go as one `deliveries` line instead:
//!
//! ```json
//! {"type": "deliveries", "node": "n0", "sent_ms": 1764650000000, "count": 3,
//!  "message": {"direction": "down", "len": 64, "text": "...", "hex": "...", ...},
//!  "deliveries": [["n0:17", 9001, 1764650000000], ...]}
//! ```
//!
//! `deliveries` holds `[global session id, message id, ts_ms]` per device; `message` is
//! the shared payload with the fields of a data event's `message` that are the same for
//! all. Each device's message is in its node's history as usual (nothing changes there).
//! Small bursts (fewer than [`GROUP_MIN`] deliveries) still go as ordinary data events.

use std::sync::Arc;

use serde_json::Value;

use super::names::global_id;
use crate::model::{Direction, Event, MessageStatus};

/// Fewest deliveries of one payload sent as one `deliveries` line; fewer go one by one.
pub const GROUP_MIN: usize = 32;

/// Most deliveries in one line (keeps a line well under NATS's 1 MiB message limit).
pub const GROUP_MAX: usize = 4096;

/// The event type of a grouped line.
pub const DELIVERIES: &str = "deliveries";

/// Data events of one payload written down to devices, waiting to be sent.
#[derive(Default)]
pub(super) struct Deliveries {
    events: Vec<Arc<Event>>,
}

/// What identifies one payload: a broadcast hands every session a clone of the same
/// buffer, so equal data shares its address. The group holds the events (and with them
/// the buffer), so the address cannot be reused by other data while it is open.
fn payload_key(event: &Event) -> Option<(usize, usize)> {
    match event {
        Event::Data(m, _)
            if m.direction == Direction::Down
                && m.status == MessageStatus::Ok
                && !m.data.is_empty() =>
        {
            Some((m.data.as_ptr() as usize, m.data.len()))
        }
        _ => None,
    }
}

impl Deliveries {
    /// Whether `event` can join a group at all (a data event written down to a device).
    pub fn candidate(event: &Event) -> bool {
        payload_key(event).is_some()
    }

    /// Whether `event` carries this group's payload (and there is room for it).
    pub fn matches(&self, event: &Event) -> bool {
        let Some(first) = self.events.first() else {
            return false;
        };
        self.events.len() < GROUP_MAX
            && payload_key(event).is_some()
            && payload_key(event) == payload_key(first)
    }

    /// Adds a delivery (call [`Deliveries::matches`] first, or on an empty group).
    pub fn push(&mut self, event: Arc<Event>) {
        self.events.push(event);
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Takes the waiting events out.
    pub fn take(&mut self) -> Vec<Arc<Event>> {
        std::mem::take(&mut self.events)
    }
}

/// A `deliveries` line as it is written (fields in this order: `type` first, so a
/// receiver tells it apart without parsing it).
#[derive(serde::Serialize)]
struct GroupLine<'a> {
    r#type: &'static str,
    node: &'a str,
    sent_ms: Value,
    count: usize,
    message: Value,
    deliveries: Vec<(String, u64, i64)>,
}

/// One `deliveries` line for `events` (data events of one payload, ids local to `node`),
/// given the first one as a node's event (`first`, ids already global).
pub(super) fn encode_group(node: &str, first: &Value, events: &[Arc<Event>]) -> Option<Vec<u8>> {
    let mut message = first.get("message")?.clone();
    if let Value::Object(fields) = &mut message {
        for per_device in ["id", "session_id", "ts", "ts_ms"] {
            fields.remove(per_device);
        }
    }
    let deliveries: Vec<(String, u64, i64)> = events
        .iter()
        .filter_map(|event| match &**event {
            Event::Data(m, _) => Some((global_id(node, m.session_id), m.id, m.ts_ms)),
            _ => None,
        })
        .collect();
    serde_json::to_vec(&GroupLine {
        r#type: DELIVERIES,
        node,
        sent_ms: first.get("sent_ms").cloned().unwrap_or(Value::Null),
        count: deliveries.len(),
        message,
        deliveries,
    })
    .ok()
}

/// Whether a line from another node is a `deliveries` line (without parsing it).
pub(super) fn is_group_line(line: &[u8]) -> bool {
    line.starts_with(br#"{"type":"deliveries""#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageInfo;
    use bytes::Bytes;
    use serde_json::json;

    fn data(id: u64, session: u64, payload: &Bytes, dir: Direction) -> Arc<Event> {
        let m = MessageInfo::new(id, session, 5, dir, payload.clone(), MessageStatus::Ok);
        Arc::new(Event::Data(Arc::new(m), test_session(session)))
    }

    fn test_session(id: u64) -> crate::model::SessionInfo {
        let meta = crate::model::SessionMeta {
            id,
            listener_id: 0,
            proto: crate::model::Proto::Tcp,
            peer: "127.0.0.1:9".parse().unwrap(),
            local: "127.0.0.1:7".parse().unwrap(),
            started_ms: 1,
            tls: None,
            outgoing: false,
        };
        crate::session::SessionHandle::new(meta, None, None).info(None)
    }

    /// Only down data of the same buffer groups; other data and directions do not.
    #[test]
    fn groups_one_payload_written_down() {
        let shared = Bytes::from_static(b"hello");
        let other = Bytes::from(b"hello".to_vec());
        let mut group = Deliveries::default();
        assert!(!group.matches(&data(1, 1, &shared, Direction::Down)));
        group.push(data(1, 1, &shared, Direction::Down));
        assert!(group.matches(&data(2, 2, &shared, Direction::Down)));
        assert!(!group.matches(&data(3, 3, &other, Direction::Down)));
        assert!(!group.matches(&data(4, 4, &shared, Direction::Up)));
        assert!(!Deliveries::candidate(&data(4, 4, &shared, Direction::Up)));
    }

    /// The line names every delivery with its global session id and message id, and the
    /// payload once.
    #[test]
    fn one_line_for_many() {
        let shared = Bytes::from_static(b"hi");
        let events: Vec<_> = (0..3)
            .map(|i| data(10 + i, i, &shared, Direction::Down))
            .collect();
        let first = json!({ "type": "data", "sent_ms": 7,
            "message": { "id": 10, "session_id": "a:0", "ts_ms": 5, "text": "hi", "len": 2 } });
        let line = encode_group("a", &first, &events).unwrap();
        assert!(is_group_line(&line));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["type"], DELIVERIES);
        assert_eq!(v["count"], 3);
        assert_eq!(v["message"]["text"], "hi");
        assert!(v["message"].get("id").is_none());
        assert_eq!(v["deliveries"][2], json!(["a:2", 12, 5]));
    }
}

//! What crosses NATS: JSON messages between nodes, and the rewrite that turns a node's
//! own session ids into global ones (`NODE:ID`) before anything leaves it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::names::global_id;

/// A node's heartbeat on the presence subject.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Presence {
    /// Node name.
    pub node: String,
    /// Random id of this process: a restarted node has a new one, a clash shows two.
    pub instance: String,
    /// Its dashboard/API address.
    pub http: String,
    /// `up` each second, `bye` once on a graceful shutdown.
    pub state: String,
    /// Sessions online on it.
    pub online: u64,
    /// Bytes from its devices.
    pub bytes_up: u64,
    /// Bytes to its devices.
    pub bytes_down: u64,
    /// Whether it shows other nodes' events (a dashboard or console view is open), so
    /// they publish their data events.
    #[serde(default)]
    pub watching: bool,
}

/// The answer to a name-clash probe.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PingReply {
    /// Node name.
    pub node: String,
    /// Its dashboard/API address.
    pub http: String,
    /// Its process id (on its own host).
    pub pid: u32,
}

/// An API call forwarded to the node that holds a session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiRequest {
    /// `GET`, `POST` or `PUT`.
    pub method: String,
    /// The path with the node's own (bare) session id, e.g. `/api/sessions/17/send`.
    pub path: String,
    /// The query string without `?` (may be empty).
    #[serde(default)]
    pub query: String,
    /// The JSON body as sent by the client (empty for none).
    #[serde(default)]
    pub body: String,
}

/// The answer to an [`ApiRequest`]: the HTTP status and JSON body the node's own API gave.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiReply {
    /// HTTP status.
    pub status: u16,
    /// JSON body, session ids already global.
    pub body: Value,
}

impl ApiReply {
    /// An error reply with the API's `{"error": ...}` body.
    pub fn error(status: u16, message: impl Into<String>) -> ApiReply {
        ApiReply {
            status,
            body: serde_json::json!({ "error": message.into() }),
        }
    }
}

/// A scatter-gather listing request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionsQuery {
    /// `online` or `all`.
    pub state: String,
    /// How many of its newest sessions each node returns (offset + limit of the page).
    pub depth: u64,
    /// Only this node lists its sessions; the others answer with none (a cache refresh
    /// for the one node that came back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One node's answer to a [`SessionsQuery`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionsReply {
    /// The node.
    pub node: String,
    /// Its newest sessions, newest first, ids global.
    pub sessions: Vec<Value>,
    /// How many sessions it has in that state.
    pub total: u64,
}

/// One node's answer to a metrics request.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetricsReply {
    /// The node.
    pub node: String,
    /// Sessions online.
    pub online: u64,
    /// Sessions started since it started.
    pub sessions: u64,
    /// Bytes from devices.
    pub bytes_up: u64,
    /// Bytes to devices.
    pub bytes_down: u64,
    /// Messages from devices.
    pub msgs_up: u64,
    /// Messages to devices.
    pub msgs_down: u64,
    /// Events it could not publish to the cluster (its bridge fell behind).
    pub events_skipped: u64,
}

/// A node's answer that carries nothing but its name (a watch request's).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeReply {
    /// The node.
    pub node: String,
}

/// A broadcast to every node's devices.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BroadcastRequest {
    /// The bytes, as hex.
    pub hex: String,
    /// Only this listener id on each node.
    pub listener_id: Option<u32>,
}

/// One node's answer to a [`BroadcastRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BroadcastReply {
    /// The node.
    pub node: String,
    /// Sessions reached.
    pub sessions: u64,
    /// Bytes sent in total.
    pub bytes: u64,
    /// Why it could not (no such listener), if so.
    pub error: Option<String>,
}

/// Rewrites a node's JSON (an event or an API body) so every session id in it is global:
/// `session.id`, `sessions[].id` and `session_id` become `NODE:ID`, and each session
/// object gets `"node": NODE`. Ids already global are left alone.
pub fn globalize(value: &mut Value, node: &str) {
    match value {
        Value::Object(map) => {
            let is_session = map.contains_key("started_at_ms") && map.contains_key("peer");
            if is_session {
                if let Some(id) = map.get("id").and_then(Value::as_u64) {
                    map.insert("id".into(), Value::String(global_id(node, id)));
                }
                map.insert("node".into(), Value::String(node.into()));
            }
            if let Some(id) = map.get("session_id").and_then(Value::as_u64) {
                map.insert("session_id".into(), Value::String(global_id(node, id)));
            }
            for (_, v) in map.iter_mut() {
                if v.is_object() || v.is_array() {
                    globalize(v, node);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| globalize(v, node)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Session objects, session lists and message session ids all become global.
    #[test]
    fn globalize_rewrites_ids() {
        let mut v = json!({
            "type": "data",
            "message": { "id": 9, "session_id": 3 },
            "session": { "id": 3, "peer": "1.2.3.4:5", "started_at_ms": 1 },
            "sessions": [{ "id": 4, "peer": "x", "started_at_ms": 2 }],
        });
        globalize(&mut v, "a");
        assert_eq!(v["message"]["id"], 9);
        assert_eq!(v["message"]["session_id"], "a:3");
        assert_eq!(v["session"]["id"], "a:3");
        assert_eq!(v["session"]["node"], "a");
        assert_eq!(v["sessions"][0]["id"], "a:4");
        let once = v.clone();
        globalize(&mut v, "a");
        assert_eq!(v, once);
    }
}

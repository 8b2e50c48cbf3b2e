//! What a node knows about the others: who is there (from presence heartbeats), their
//! totals, and the online sessions their events announced. The session cache is what lets
//! a node show another node's sessions as *unreachable* when that node stops answering.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::names::{global_id, parse_session_ref};
use super::wire::Presence;
use crate::clock;

/// A node silent this long is unreachable: scatter-gather stops waiting for it.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// What a node's online session looked like in its last event (kept small: a node may
/// cache a hundred thousand of them).
#[derive(Clone, Debug)]
pub struct CachedSession {
    listener_id: u32,
    tcp: bool,
    peer: SocketAddr,
    local: SocketAddr,
    started_ms: i64,
    bytes_up: u64,
    bytes_down: u64,
}

/// One other node.
#[derive(Debug)]
pub struct Peer {
    /// Its process instance (a restart changes it).
    pub instance: String,
    /// Its dashboard/API address.
    pub http: String,
    /// When its last heartbeat arrived.
    pub last_seen: Instant,
    /// Its last heartbeat's totals.
    pub presence: Presence,
    /// Its online sessions by id, from its events.
    sessions: HashMap<u64, CachedSession>,
}

/// A change worth telling dashboards about.
#[derive(Debug, PartialEq, Eq)]
pub enum PeerChange {
    /// A node appeared, came back, or restarted (a new instance).
    Up,
    /// Nothing changed.
    Same,
}

/// Fields of a session event the cache needs.
#[derive(Deserialize)]
struct SessionHead {
    id: Value,
    listener_id: u32,
    proto: String,
    peer: String,
    local: String,
    started_at_ms: i64,
    #[serde(default)]
    online: bool,
    #[serde(default)]
    bytes_up: u64,
    #[serde(default)]
    bytes_down: u64,
}

#[derive(Deserialize)]
struct EventHead {
    #[serde(rename = "type")]
    kind: String,
    session: Option<SessionHead>,
}

/// Every other node this one has heard of.
#[derive(Debug, Default)]
pub struct Peers {
    nodes: BTreeMap<String, Peer>,
}

impl Peers {
    /// Records a heartbeat. `bye` forgets the node (it shut down and ended its sessions).
    pub fn heard(&mut self, p: Presence) -> PeerChange {
        if p.state == "bye" {
            self.nodes.remove(&p.node);
            return PeerChange::Up;
        }
        let now = Instant::now();
        match self.nodes.get_mut(&p.node) {
            Some(peer) if peer.instance == p.instance => {
                let was_down = now.duration_since(peer.last_seen) > PEER_TIMEOUT;
                peer.last_seen = now;
                peer.presence = p;
                if was_down {
                    PeerChange::Up
                } else {
                    PeerChange::Same
                }
            }
            _ => {
                // New, or restarted: what we cached of the old instance ended with it.
                let node = p.node.clone();
                self.nodes.insert(
                    node,
                    Peer {
                        instance: p.instance.clone(),
                        http: p.http.clone(),
                        last_seen: now,
                        presence: p,
                        sessions: HashMap::new(),
                    },
                );
                PeerChange::Up
            }
        }
    }

    /// Nodes whose heartbeat is recent.
    pub fn alive(&self) -> Vec<String> {
        let now = Instant::now();
        self.nodes
            .iter()
            .filter(|(_, p)| now.duration_since(p.last_seen) <= PEER_TIMEOUT)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Every node heard of and not gone with a goodbye.
    pub fn known(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// Nodes that just went silent (alive before `since`, silent now).
    pub fn went_silent(&self, within: Duration) -> Vec<String> {
        let now = Instant::now();
        self.nodes
            .iter()
            .filter(|(_, p)| {
                let quiet = now.duration_since(p.last_seen);
                quiet > PEER_TIMEOUT && quiet <= PEER_TIMEOUT + within
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The peer named `node`.
    pub fn get(&self, node: &str) -> Option<&Peer> {
        self.nodes.get(node)
    }

    /// Iterates over the peers.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Peer)> {
        self.nodes.iter()
    }

    /// Updates the session cache from one of `node`'s events (JSON, ids global).
    pub fn apply_event(&mut self, node: &str, payload: &[u8]) {
        let Some(peer) = self.nodes.get_mut(node) else {
            return;
        };
        let Ok(ev) = serde_json::from_slice::<EventHead>(payload) else {
            return;
        };
        let Some(s) = ev.session else { return };
        let Some(id) = session_local_id(&s.id) else {
            return;
        };
        if ev.kind == "offline" || !s.online {
            peer.sessions.remove(&id);
        } else {
            peer.cache(id, &s);
        }
    }

    /// Replaces `node`'s cached sessions with a fresh listing of its online sessions.
    pub fn replace_sessions(&mut self, node: &str, sessions: &[Value]) {
        let Some(peer) = self.nodes.get_mut(node) else {
            return;
        };
        peer.sessions.clear();
        for v in sessions {
            if let Ok(s) = SessionHead::deserialize(v)
                && let Some(id) = session_local_id(&s.id)
            {
                peer.cache(id, &s);
            }
        }
    }

    /// `node`'s cached online sessions as API session objects marked `"unreachable": true`.
    pub fn unreachable_sessions(&self, node: &str) -> Vec<Value> {
        let Some(peer) = self.nodes.get(node) else {
            return Vec::new();
        };
        peer.sessions
            .iter()
            .map(|(id, s)| s.to_json(node, *id))
            .collect()
    }

    /// One cached session of `node`, marked unreachable.
    pub fn unreachable_session(&self, node: &str, id: u64) -> Option<Value> {
        let peer = self.nodes.get(node)?;
        peer.sessions.get(&id).map(|s| s.to_json(node, id))
    }
}

impl Peer {
    fn cache(&mut self, id: u64, s: &SessionHead) {
        let (Ok(peer), Ok(local)) = (s.peer.parse(), s.local.parse()) else {
            return;
        };
        self.sessions.insert(
            id,
            CachedSession {
                listener_id: s.listener_id,
                tcp: s.proto == "tcp",
                peer,
                local,
                started_ms: s.started_at_ms,
                bytes_up: s.bytes_up,
                bytes_down: s.bytes_down,
            },
        );
    }
}

impl CachedSession {
    fn to_json(&self, node: &str, id: u64) -> Value {
        json!({
            "id": global_id(node, id),
            "node": node,
            "listener_id": self.listener_id,
            "proto": if self.tcp { "tcp" } else { "udp" },
            "peer": self.peer.to_string(),
            "local": self.local.to_string(),
            "online": true,
            "unreachable": true,
            "started_at": clock::format_ms(self.started_ms),
            "started_at_ms": self.started_ms,
            "ended_at": null,
            "ended_at_ms": null,
            "end_reason": null,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "msgs_up": null,
            "msgs_down": null,
            "link": null,
        })
    }
}

fn session_local_id(id: &Value) -> Option<u64> {
    match id {
        Value::String(s) => parse_session_ref(s).ok().map(|r| r.id),
        v => v.as_u64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(node: &str, instance: &str, state: &str) -> Presence {
        Presence {
            node: node.into(),
            instance: instance.into(),
            http: "127.0.0.1:1".into(),
            state: state.into(),
            online: 0,
            bytes_up: 0,
            bytes_down: 0,
        }
    }

    /// Events fill and empty the cache; a restart (new instance) or a goodbye clears it.
    #[test]
    fn cache_follows_events_and_restarts() {
        let mut peers = Peers::default();
        assert_eq!(peers.heard(presence("a", "i1", "up")), PeerChange::Up);
        assert_eq!(peers.heard(presence("a", "i1", "up")), PeerChange::Same);
        let online = br#"{"type":"online","session":{"id":"a:3","listener_id":0,"proto":"tcp",
            "peer":"127.0.0.1:5","local":"127.0.0.1:6","started_at_ms":7,"online":true}}"#;
        peers.apply_event("a", online);
        let s = peers.unreachable_session("a", 3).unwrap();
        assert_eq!(
            (s["id"].as_str(), s["unreachable"].as_bool()),
            (Some("a:3"), Some(true))
        );
        let offline = br#"{"type":"offline","session":{"id":"a:3","listener_id":0,
            "proto":"tcp","peer":"127.0.0.1:5","local":"127.0.0.1:6","started_at_ms":7,
            "online":false}}"#;
        peers.apply_event("a", offline);
        assert!(peers.unreachable_sessions("a").is_empty());
        peers.apply_event("a", online);
        assert_eq!(peers.heard(presence("a", "i2", "up")), PeerChange::Up);
        assert!(peers.unreachable_sessions("a").is_empty());
        assert_eq!(peers.known(), vec!["a".to_string()]);
        peers.heard(presence("a", "i2", "bye"));
        assert!(peers.known().is_empty());
    }
}

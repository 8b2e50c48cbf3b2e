//! What a node knows about the others: who is there (from presence heartbeats), their
//! totals, and the newest online sessions their events announced. The session cache is
//! what lets a node show another node's sessions as *unreachable* when that node stops
//! answering. It holds at most [`CACHE_PER_NODE`] sessions per node, the newest: as many
//! as the deepest listing page shows, so its size does not grow with the fleet.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::names::{global_id, parse_session_ref};
use super::wire::Presence;
use crate::clock;

/// A node silent this long is unreachable: scatter-gather stops waiting for it.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// Most online sessions cached per other node (its newest): the deepest page a cluster
/// listing serves.
pub const CACHE_PER_NODE: usize = 2000;

/// What a node's online session looked like when it came online.
#[derive(Clone, Debug)]
pub struct CachedSession {
    listener_id: u32,
    tcp: bool,
    peer: SocketAddr,
    local: SocketAddr,
    started_ms: i64,
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
    /// Its newest online sessions by id, from its events (at most [`CACHE_PER_NODE`]).
    sessions: BTreeMap<u64, CachedSession>,
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
}

/// The kind of an event, read before anything else of it.
#[derive(Deserialize)]
struct EventKind {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct EventHead {
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
                        sessions: BTreeMap::new(),
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

    /// Updates the session cache from one of `node`'s events (JSON, ids global): only
    /// sessions coming online or going offline change it, so data events cost one scan.
    pub fn apply_event(&mut self, node: &str, payload: &[u8]) {
        let Some(peer) = self.nodes.get_mut(node) else {
            return;
        };
        let online = match serde_json::from_slice::<EventKind>(payload) {
            Ok(ev) if ev.kind == "online" => true,
            Ok(ev) if ev.kind == "offline" => false,
            _ => return,
        };
        let Ok(EventHead { session: Some(s) }) = serde_json::from_slice::<EventHead>(payload)
        else {
            return;
        };
        let Some(id) = session_local_id(&s.id) else {
            return;
        };
        if online && s.online {
            peer.cache(id, &s);
        } else {
            peer.sessions.remove(&id);
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

    /// `node`'s newest `depth` cached online sessions as API session objects marked
    /// `"unreachable": true`, and how many sessions it had online as far as this node
    /// knows (its last heartbeat's count, or the cached ones if more).
    pub fn unreachable_sessions(&self, node: &str, depth: usize) -> (Vec<Value>, u64) {
        let Some(peer) = self.nodes.get(node) else {
            return (Vec::new(), 0);
        };
        let sessions: Vec<Value> = peer
            .sessions
            .iter()
            .rev()
            .take(depth)
            .map(|(id, s)| s.to_json(node, *id))
            .collect();
        let total = peer.presence.online.max(peer.sessions.len() as u64);
        (sessions, total)
    }

    /// One cached session of `node`, marked unreachable.
    pub fn unreachable_session(&self, node: &str, id: u64) -> Option<Value> {
        let peer = self.nodes.get(node)?;
        peer.sessions.get(&id).map(|s| s.to_json(node, id))
    }
}

impl Peer {
    /// Caches a session, forgetting the oldest one beyond [`CACHE_PER_NODE`] (a node's
    /// ids grow with time, so the oldest is the smallest id).
    fn cache(&mut self, id: u64, s: &SessionHead) {
        let (Ok(peer), Ok(local)) = (s.peer.parse(), s.local.parse()) else {
            return;
        };
        if self.sessions.len() >= CACHE_PER_NODE
            && self
                .sessions
                .first_key_value()
                .is_some_and(|(&old, _)| old > id)
        {
            return;
        }
        self.sessions.insert(
            id,
            CachedSession {
                listener_id: s.listener_id,
                tcp: s.proto == "tcp",
                peer,
                local,
                started_ms: s.started_at_ms,
            },
        );
        while self.sessions.len() > CACHE_PER_NODE {
            self.sessions.pop_first();
        }
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
            "bytes_up": null,
            "bytes_down": null,
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
            watching: false,
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
        assert!(peers.unreachable_sessions("a", 10).0.is_empty());
        peers.apply_event("a", online);
        assert_eq!(peers.heard(presence("a", "i2", "up")), PeerChange::Up);
        assert!(peers.unreachable_sessions("a", 10).0.is_empty());
        assert_eq!(peers.known(), vec!["a".to_string()]);
        peers.heard(presence("a", "i2", "bye"));
        assert!(peers.known().is_empty());
    }

    fn online_event(id: u64) -> Vec<u8> {
        format!(
            r#"{{"type":"online","session":{{"id":"a:{id}","listener_id":0,"proto":"tcp",
            "peer":"127.0.0.1:5","local":"127.0.0.1:6","started_at_ms":{id},"online":true}}}}"#
        )
        .into_bytes()
    }

    /// The cache keeps a node's newest sessions only; data events leave it alone; the
    /// count of a silent node is its last heartbeat's.
    #[test]
    fn cache_keeps_the_newest_sessions() {
        let mut peers = Peers::default();
        let mut p = presence("a", "i1", "up");
        p.online = 5000;
        peers.heard(p);
        for id in (1..=CACHE_PER_NODE as u64 + 10).rev() {
            peers.apply_event("a", &online_event(id));
        }
        peers.apply_event("a", &online_event(3));
        let data = br#"{"type":"data","session":{"id":"a:99999","listener_id":0,"proto":"tcp",
            "peer":"127.0.0.1:5","local":"127.0.0.1:6","started_at_ms":1,"online":true}}"#;
        peers.apply_event("a", data);
        let (page, total) = peers.unreachable_sessions("a", 3);
        let ids: Vec<_> = page.iter().map(|s| s["id"].as_str().unwrap()).collect();
        let newest = CACHE_PER_NODE as u64 + 10;
        assert_eq!(
            ids,
            [newest, newest - 1, newest - 2].map(|i| format!("a:{i}"))
        );
        assert_eq!(total, 5000);
        assert_eq!(
            peers.unreachable_sessions("a", usize::MAX).0.len(),
            CACHE_PER_NODE
        );
        assert!(peers.unreachable_session("a", 3).is_none());
        assert!(peers.unreachable_session("a", 99999).is_none());
    }
}

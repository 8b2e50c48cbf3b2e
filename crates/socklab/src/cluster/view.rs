//! `--cluster-view`: the other nodes' events on this node's console, one line each, in
//! the console's style with the node and the global session id. Like the console it is a
//! subscriber that skips when the terminal is slow.

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

use super::Cluster;

/// Payload bytes shown per data event.
const SHOW_BYTES: usize = 64;

/// Prints other nodes' events until the bridge stops.
pub async fn run(cluster: Cluster) {
    let mut notices = cluster.watch().await;
    let mut out = tokio::io::stdout();
    loop {
        let line = match notices.recv().await {
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v) => render(&v),
                Err(_) => continue,
            },
            Err(broadcast::error::RecvError::Lagged(n)) => {
                Some(format!("... {n} cluster events skipped (console too slow)"))
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Some(line) = line {
            let _ = out.write_all(format!("{line}\n").as_bytes()).await;
            let _ = out.flush().await;
        }
    }
}

/// One console line for a cluster notice or another node's event (`None`: nothing to show).
pub fn render(v: &Value) -> Option<String> {
    let s = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let node = s(&v["node"]);
    let session = &v["session"];
    let sid = s(&session["id"]);
    match v["type"].as_str()? {
        "online" => Some(format!(
            "[{node}] + {sid} online {} {} via {}",
            s(&session["proto"]),
            s(&session["peer"]),
            s(&session["local"])
        )),
        "offline" => Some(format!(
            "[{node}] - {sid} offline ({})",
            s(&session["end_reason"])
        )),
        "data" => {
            let m = &v["message"];
            let arrow = if m["direction"] == "up" { "<-" } else { "->" };
            let text = s(&m["text"]);
            let shown: String = text.chars().take(SHOW_BYTES).collect();
            let more = if shown.len() < text.len() { "..." } else { "" };
            Some(format!(
                "[{node}] {arrow} {} {} bytes: {:?}{more}",
                s(&m["session_id"]),
                m["len"].as_u64().unwrap_or(0),
                shown
            ))
        }
        "link" => Some(format!(
            "[{node}] link {} {}",
            s(&v["session_id"]),
            s(&v["action"])
        )),
        "node" => Some(format!("[cluster] node {node} {}", s(&v["state"]))),
        "cluster" => Some(format!("[cluster] NATS {}", s(&v["state"]))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Remote events render with their node and global id; unknown kinds render nothing.
    #[test]
    fn renders_remote_events() {
        let online = json!({ "type": "online", "node": "a",
            "session": { "id": "a:3", "proto": "tcp", "peer": "1.2.3.4:5", "local": "x" } });
        assert_eq!(
            render(&online).unwrap(),
            "[a] + a:3 online tcp 1.2.3.4:5 via x"
        );
        let data = json!({ "type": "data", "node": "a",
            "message": { "session_id": "a:3", "direction": "up", "len": 2, "text": "hi" } });
        assert!(render(&data).unwrap().contains("a:3 2 bytes: \"hi\""));
        assert!(render(&json!({ "type": "stats" })).is_none());
    }
}

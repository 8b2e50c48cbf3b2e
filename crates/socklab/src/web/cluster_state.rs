//! What the cluster routes share ([`super::cluster`], [`super::cluster_ops`]): their
//! state, and the reading of a snippet named in a body on the node that took the call.

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use crate::cluster::Cluster;

/// What the cluster handlers get.
#[derive(Clone, Debug)]
pub struct ClusterState {
    /// The bridge.
    pub cluster: Cluster,
    /// The single-node state (hub, token, shutdown).
    pub app: AppState,
}

/// Replaces a send body's `"snippet": NAME` with the snippet's bytes (`"hex"`) from this
/// node's database, so the node that sends need not have the snippet. Bodies without a
/// snippet, or malformed ones, pass unchanged (the sending node answers for them).
pub async fn inline_snippet(st: &ClusterState, body: Bytes) -> Result<Bytes, Response> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) else {
        return Ok(body);
    };
    let Some(Value::String(name)) = map.get("snippet").cloned() else {
        return Ok(body);
    };
    if map.contains_key("text") || map.contains_key("hex") {
        return Ok(body);
    }
    match st.app.hub.snippet_data(&name).await {
        Ok(data) => {
            map.remove("snippet");
            map.insert("hex".into(), Value::String(hex::encode(&data)));
            Ok(Bytes::from(serde_json::to_vec(&map).unwrap_or_default()))
        }
        Err(e) => Err(super::snippets::snippet_error(e).into_response()),
    }
}

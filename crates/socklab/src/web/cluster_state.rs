//! What the cluster routes share ([`super::cluster`], [`super::cluster_ops`]): their
//! state, the request to another node and its answer as a response, and the reading of a
//! snippet named in a body on the node that took the call.

use axum::Json;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use crate::cluster::Cluster;
use crate::cluster::wire::{ApiReply, ApiRequest};

/// What the cluster handlers get.
#[derive(Clone, Debug)]
pub struct ClusterState {
    /// The bridge.
    pub cluster: Cluster,
    /// The single-node state (hub, token, shutdown).
    pub app: AppState,
}

/// A node's answer as this node's response (same status and JSON body).
pub fn reply(r: ApiReply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, Json(r.body)).into_response()
}

/// An API call to run on a node.
pub fn request(method: Method, path: impl Into<String>, query: String, body: String) -> ApiRequest {
    ApiRequest {
        method: method.to_string(),
        path: path.into(),
        query,
        body,
    }
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

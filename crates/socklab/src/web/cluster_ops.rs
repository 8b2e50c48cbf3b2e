//! Operator routes of a cluster node that a single node answers for itself and a cluster
//! answers for every node: traffic history (`GET /api/rates`), the running periodic sends
//! (`GET /api/periodic`) and periodic broadcasts (`POST /api/broadcast/periodic`). Each
//! runs on every live node at once (this one directly, the others by NATS request/reply)
//! and names the nodes that did not answer in `missing_nodes`.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::cluster_state::{ClusterState, inline_snippet, reply, request};
use crate::cluster::names::{global_id, parse_session_ref};
use crate::cluster::wire::ApiReply;

type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// `GET /api/rates?seconds=N&session=ID`: with a session, the history of the node holding
/// it (`NODE:ID`, or a bare id for this node's); without, every node's traffic added up
/// second by second.
pub async fn rates(State(st): State<ClusterState>, params: Params) -> Response {
    let Ok(Query(params)) = params else {
        return reply(ApiReply::error(400, "malformed query string"));
    };
    let mut query = String::new();
    if let Some(seconds) = params.get("seconds") {
        query = format!("seconds={}", utf8_percent_encode(seconds, NON_ALPHANUMERIC));
    }
    if let Some(session) = params.get("session") {
        let r = match parse_session_ref(session) {
            Ok(r) => r,
            Err(e) => return reply(ApiReply::error(400, e)),
        };
        let node = r.node.unwrap_or_else(|| st.cluster.node().to_string());
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("session={}", r.id));
        let req = request(Method::GET, "/api/rates", query, String::new());
        return reply(st.cluster.call(&node, req).await);
    }
    let req = request(Method::GET, "/api/rates", query, String::new());
    let got = st.cluster.call_every(req).await;
    // Bad input is refused alike by every node: this node's answer says why.
    if let Some((_, first)) = got.replies.first()
        && first.status != 200
    {
        return reply(first.clone());
    }
    let mut by_second: BTreeMap<i64, serde_json::Map<String, Value>> = BTreeMap::new();
    for (_, answer) in got.replies.iter().filter(|(_, a)| a.status == 200) {
        let seconds = answer.body["seconds"].as_array().into_iter().flatten();
        for second in seconds {
            let Some(t_ms) = second["t_ms"].as_i64() else {
                continue;
            };
            let sum = by_second.entry(t_ms).or_insert_with(|| {
                let mut m = serde_json::Map::new();
                m.insert("t_ms".into(), json!(t_ms));
                m
            });
            for (key, value) in second.as_object().into_iter().flatten() {
                if key != "t_ms" {
                    let before = sum.get(key).and_then(Value::as_u64).unwrap_or(0);
                    sum.insert(key.clone(), json!(before + value.as_u64().unwrap_or(0)));
                }
            }
        }
    }
    let now_ms = got
        .replies
        .first()
        .and_then(|(_, a)| a.body["now_ms"].as_i64())
        .unwrap_or_else(crate::clock::now_ms);
    Json(json!({
        "now_ms": now_ms,
        "seconds": by_second.into_values().collect::<Vec<_>>(),
        "missing_nodes": got.missing,
    }))
    .into_response()
}

/// A node's periodic send with its id made global (`NODE:ID`).
fn global_periodic(node: &str, mut p: Value) -> Value {
    if let Some(id) = p["id"].as_u64() {
        p["id"] = Value::String(global_id(node, id));
    }
    p["node"] = Value::String(node.to_string());
    p
}

/// `GET /api/periodic`: the periodic sends running on every node, oldest first, ids
/// `NODE:ID` (what `DELETE /api/periodic/{id}` takes).
pub async fn list_periodic(State(st): State<ClusterState>) -> Response {
    let req = request(Method::GET, "/api/periodic", String::new(), String::new());
    let got = st.cluster.call_every(req).await;
    let mut all: Vec<Value> = Vec::new();
    for (node, answer) in got.replies {
        if answer.status != 200 {
            continue;
        }
        let listed = answer.body["periodic"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        all.extend(listed.into_iter().map(|p| global_periodic(&node, p)));
    }
    all.sort_by_key(|p| {
        (
            p["started_at_ms"].as_i64().unwrap_or(0),
            p["id"].as_str().unwrap_or("").to_string(),
        )
    });
    Json(json!({ "periodic": all, "missing_nodes": got.missing })).into_response()
}

/// `POST /api/broadcast/periodic`: starts the periodic broadcast on every node (each sends
/// to its own devices, a snippet read here). Answers 201 with the first started one's
/// fields (this node's when it started), every started one in `periodic` (ids `NODE:ID`),
/// the nodes that refused in `errors` and those that did not answer in `missing_nodes`;
/// when no node started one, this node's refusal.
pub async fn broadcast_periodic(State(st): State<ClusterState>, body: Bytes) -> Response {
    let body = match inline_snippet(&st, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return reply(ApiReply::error(400, "invalid JSON body: not UTF-8"));
    };
    let req = request(Method::POST, "/api/broadcast/periodic", String::new(), body);
    let got = st.cluster.call_every(req).await;
    let mut started = Vec::new();
    let mut errors = Vec::new();
    for (node, answer) in &got.replies {
        if answer.status == 201 {
            started.push(global_periodic(node, answer.body.clone()));
        } else {
            errors.push(json!({ "node": node, "status": answer.status,
                "error": answer.body.get("error").cloned().unwrap_or(Value::Null) }));
        }
    }
    let Some(first) = started.first() else {
        let mut refused = got
            .replies
            .into_iter()
            .next()
            .map(|(_, a)| a)
            .unwrap_or_else(|| ApiReply::error(503, "no node answered"));
        refused.body["missing_nodes"] = json!(got.missing);
        return reply(refused);
    };
    let mut answer = first.clone();
    answer["periodic"] = json!(started);
    answer["errors"] = json!(errors);
    answer["missing_nodes"] = json!(got.missing);
    (StatusCode::CREATED, Json(answer)).into_response()
}

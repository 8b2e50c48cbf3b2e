//! Periodic send routes: `POST /api/sessions/{id}/periodic`, `POST /api/broadcast/periodic`
//! (each `{"text"|"hex"|"snippet", "every_ms"}`, answering the new periodic send with its
//! `id`), `GET /api/periodic` and `DELETE /api/periodic/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::map_action_error;
use super::snippets::payload_bytes;
use super::{AppError, AppState};
use crate::hub::periodic::{MAX_PERIODIC, MAX_PERIODIC_MS, MIN_PERIODIC_MS, PeriodicError};
use crate::model::PeriodicTarget;

/// Body of both start routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    text: Option<String>,
    hex: Option<String>,
    snippet: Option<String>,
    /// Checked by hand, so a missing or negative value gets the same clear message.
    every_ms: Option<Value>,
    /// Broadcast only: one listener's sessions.
    listener_id: Option<u32>,
}

/// The status of a periodic error; "not online" is told from "never existed" first.
async fn periodic_error(st: &AppState, e: PeriodicError) -> AppError {
    match e {
        PeriodicError::Interval(_) => AppError::BadRequest(e.to_string()),
        PeriodicError::TooMany(_) => AppError::Conflict(e.to_string()),
        PeriodicError::NotFound(_) => AppError::NotFound(e.to_string()),
        PeriodicError::Action(a) => map_action_error(st.hub.explain(a).await),
    }
}

async fn start(
    st: &AppState,
    target: impl FnOnce(&StartBody) -> Result<PeriodicTarget, AppError>,
    body: &Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let body: StartBody = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    let every_ms = body
        .every_ms
        .as_ref()
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "every_ms must be a whole number of milliseconds, {MIN_PERIODIC_MS}..={MAX_PERIODIC_MS}"
            ))
        })?;
    let target = target(&body)?;
    let (data, snippet) = payload_bytes(
        &st.hub,
        body.text.as_deref(),
        body.hex.as_deref(),
        body.snippet.as_deref(),
    )
    .await?;
    match Arc::clone(&st.hub).start_periodic(target, data, every_ms, snippet) {
        Ok(info) => Ok((StatusCode::CREATED, Json(json!(info)))),
        Err(e) => Err(periodic_error(st, e).await),
    }
}

/// `POST /api/sessions/{id}/periodic`: sends to one session every `every_ms` until
/// stopped or the session goes offline.
pub async fn start_session(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let id: u64 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("invalid session id {id:?}")))?;
    let target = |b: &StartBody| match b.listener_id {
        Some(_) => Err(AppError::BadRequest(
            "listener_id applies to a broadcast only".into(),
        )),
        None => Ok(PeriodicTarget::Session(id)),
    };
    start(&st, target, &body).await
}

/// `POST /api/broadcast/periodic`: sends to every online session (or one listener's)
/// every `every_ms` until stopped.
pub async fn start_broadcast(
    State(st): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    start(&st, |b| Ok(PeriodicTarget::Broadcast(b.listener_id)), &body).await
}

/// `GET /api/periodic`: the running periodic sends, oldest first.
pub async fn list(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "periodic": st.hub.periodic_sends() }))
}

/// `DELETE /api/periodic/{id}`: stops one and answers its final counts.
pub async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id: u64 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("invalid periodic send id {id:?}")))?;
    match st.hub.stop_periodic(id).await {
        Ok(info) => Ok(Json(json!(info))),
        Err(e) => Err(periodic_error(&st, e).await),
    }
}

/// Adds this module's routes and schemas to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let err = super::doc::error_responses;
    let periodic = json!({ "$ref": "#/components/schemas/Periodic" });
    doc["components"]["schemas"]["Periodic"] = json!({ "type": "object",
        "required": ["id", "target", "every_ms", "len", "hex", "text", "started_at", "started_at_ms", "sent", "skipped", "failed"],
        "oneOf": [
            { "required": ["session_id"], "not": { "required": ["listener_id"] },
              "properties": { "target": { "enum": ["session"] } } },
            { "not": { "required": ["session_id"] },
              "properties": { "target": { "enum": ["broadcast"] } } } ],
        "properties": {
            "id": { "type": "integer" },
            "target": { "type": "string", "enum": ["session", "broadcast"] },
            "session_id": { "type": "integer", "description": "a session's periodic send only" },
            "listener_id": { "type": "integer", "description": "a broadcast to one listener's sessions only" },
            "every_ms": { "type": "integer" },
            "len": { "type": "integer" },
            "hex": { "type": "string", "description": "the first 256 bytes" },
            "text": { "type": "string", "description": "the first 256 bytes as lossy UTF-8" },
            "snippet": { "type": "string", "nullable": true },
            "started_at": { "type": "string", "format": "date-time" },
            "started_at_ms": { "type": "integer" },
            "sent": { "type": "integer", "description": "sends accepted (a broadcast counts one per session reached)" },
            "skipped": { "type": "integer", "description": "sends skipped because the device's outbox was full" },
            "failed": { "type": "integer", "description": "sends the socket refused" } } });
    let start_body = |broadcast: bool| {
        let mut props = json!({
            "text": { "type": "string", "minLength": 1 },
            "hex": { "type": "string", "pattern": super::doc::HEX_PATTERN },
            "snippet": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "the name of a saved snippet" },
            "every_ms": { "type": "integer", "minimum": MIN_PERIODIC_MS, "maximum": MAX_PERIODIC_MS } });
        if broadcast {
            props["listener_id"] = json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX });
        }
        json!({ "required": true, "content": { "application/json": { "schema": {
            "type": "object", "required": ["every_ms"], "additionalProperties": false,
            "oneOf": [
                { "required": ["text"], "not": { "anyOf": [{ "required": ["hex"] }, { "required": ["snippet"] }] } },
                { "required": ["hex"], "not": { "anyOf": [{ "required": ["text"] }, { "required": ["snippet"] }] } },
                { "required": ["snippet"], "not": { "anyOf": [{ "required": ["text"] }, { "required": ["hex"] }] } }
            ],
            "description": "exactly one of text, hex and snippet", "properties": props } } } })
    };
    let started = |codes: &[&str]| {
        let mut r = err(codes);
        r["201"] = json!({ "description": "started", "content": { "application/json": { "schema": periodic } } });
        r
    };
    let paths = &mut doc["paths"];
    paths["/api/sessions/{id}/periodic"] = json!({ "post": {
        "summary": format!("Send to an online session every every_ms ms until stopped or the session goes offline (at most {MAX_PERIODIC} periodic sends at once). A tick finding the device's outbox full is skipped and counted"),
        "parameters": [super::doc::session_id_param()],
        "requestBody": start_body(false),
        "responses": started(&["400", "401", "403", "404", "409"]) } });
    paths["/api/broadcast/periodic"] = json!({ "post": {
        "summary": format!("Send to every online session (optionally of one listener) every every_ms ms until stopped (at most {MAX_PERIODIC} periodic sends at once)"),
        "requestBody": start_body(true),
        "responses": started(&["400", "401", "403", "404", "409"]) } });
    let mut list = err(&["401"]);
    list["200"] = json!({ "description": "ok", "content": { "application/json": { "schema": {
        "type": "object", "required": ["periodic"], "properties": {
            "periodic": { "type": "array", "items": periodic } } } } } });
    paths["/api/periodic"] = json!({ "get": { "summary": "The running periodic sends, oldest first", "responses": list } });
    let mut stop = err(&["400", "401", "403", "404"]);
    stop["200"] = json!({ "description": "stopped: its final counts", "content": { "application/json": { "schema": periodic } } });
    paths["/api/periodic/{id}"] = json!({ "delete": {
        "summary": "Stop a periodic send",
        "parameters": [{ "name": "id", "in": "path", "required": true,
            "schema": { "type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX } }],
        "responses": stop } });
}

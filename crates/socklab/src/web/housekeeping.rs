//! History housekeeping routes: delete a session's messages, an ended session, or
//! everything before a time. Devices online meanwhile keep working.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::doc::{ok, session_id_param};
use super::history::opt_param;
use super::labels::history_error;
use super::{AppError, AppState};

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn session_id(raw: &str) -> Result<u64, AppError> {
    raw.parse()
        .ok()
        .filter(|id| *id <= i64::MAX as u64)
        .ok_or_else(|| AppError::BadRequest(format!("invalid session id {raw:?}")))
}

/// `DELETE /api/sessions/{id}/messages`: the session's stored messages (it may be online).
pub async fn delete_session_messages(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = session_id(&id)?;
    let done = st.hub.forget_messages(id).await.map_err(history_error)?;
    Ok(Json(json!({ "deleted": done })))
}

/// `DELETE /api/sessions/{id}`: an ended session and its messages (409 while online).
pub async fn delete_session(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = session_id(&id)?;
    let done = st.hub.forget_session(id).await.map_err(history_error)?;
    Ok(Json(json!({ "deleted": done })))
}

/// `DELETE /api/messages?before_ms=T`: messages older than T and sessions that ended
/// before T.
pub async fn delete_before(
    State(st): State<AppState>,
    params: Params,
) -> Result<Json<Value>, AppError> {
    let Some(before_ms) = opt_param::<i64>(&params, "before_ms")? else {
        return Err(AppError::BadRequest(
            "before_ms is required (Unix milliseconds): everything older is deleted".into(),
        ));
    };
    let done = st
        .hub
        .forget_before(before_ms)
        .await
        .map_err(history_error)?;
    Ok(Json(json!({ "deleted": done })))
}

/// Adds this module's routes to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let id = session_id_param();
    let deleted = json!({ "type": "object", "properties": { "deleted": { "type": "object",
        "description": "what was deleted",
        "properties": { "messages": { "type": "integer" }, "sessions": { "type": "integer" } } } } });
    let paths = &mut doc["paths"];
    paths["/api/sessions/{id}/messages"]["delete"] = json!({
        "summary": "Delete a session's stored messages (online sessions keep recording)",
        "parameters": [id.clone()],
        "responses": ok(deleted.clone(), &["400", "401", "403", "404"]) });
    paths["/api/sessions/{id}"]["delete"] = json!({
        "summary": "Delete an ended session and its messages",
        "parameters": [id],
        "responses": ok(deleted.clone(), &["400", "401", "403", "404", "409"]) });
    paths["/api/messages"]["delete"] = json!({
        "summary": "Delete messages older than before_ms and sessions that ended before it",
        "parameters": [{ "name": "before_ms", "in": "query", "required": true,
            "description": "Unix milliseconds",
            "schema": { "type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX } }],
        "responses": ok(deleted, &["400", "401", "403"]) });
}

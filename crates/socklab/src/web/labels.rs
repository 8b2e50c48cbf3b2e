//! Device labels over HTTP: `PUT /api/sessions/{id}/label` and the `label` filter of the
//! session listing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::doc::{ok, session_id_param};
use super::{AppError, AppState};
use crate::hub::HistoryError;
use crate::model::SessionInfo;

/// The HTTP answer for a failed housekeeping or label call.
pub(super) fn history_error(e: HistoryError) -> AppError {
    match e {
        HistoryError::NoSession(_) => AppError::NotFound(e.to_string()),
        HistoryError::Online(_) => AppError::Conflict(e.to_string()),
        HistoryError::BadLabel(_) => AppError::BadRequest(e.to_string()),
        HistoryError::Store(_) => {
            tracing::error!("api: {e}");
            AppError::Internal
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelBody {
    label: Option<String>,
}

/// `PUT /api/sessions/{id}/label` with `{"label": "..."}` (empty or null removes it).
pub async fn set_label(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SessionInfo>, AppError> {
    let id: u64 = id
        .parse()
        .ok()
        .filter(|id| *id <= i64::MAX as u64)
        .ok_or_else(|| AppError::BadRequest(format!("invalid session id {id:?}")))?;
    let body: LabelBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    let session = st
        .hub
        .set_label(id, body.label.as_deref().unwrap_or(""))
        .await
        .map_err(history_error)?;
    Ok(Json(session))
}

/// Sessions whose label contains `text` (any case), newest first: online ones from the
/// hub, or all of them from history. Returns (sessions, total).
pub(super) async fn labelled_sessions(
    st: &AppState,
    online_only: bool,
    text: &str,
    limit: u64,
    offset: u64,
) -> Result<(Vec<SessionInfo>, u64), AppError> {
    let needle = text.to_lowercase();
    if online_only {
        let all: Vec<SessionInfo> = st
            .hub
            .online_sessions()
            .into_iter()
            .filter(|s| {
                s.label
                    .as_deref()
                    .is_some_and(|l| l.to_lowercase().contains(&needle))
            })
            .collect();
        let total = all.len() as u64;
        let page = all
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        return Ok((page, total));
    }
    let store = st.hub.store();
    store.flush_sessions().await;
    store.flush_for_query().await;
    let (mut rows, total) = store
        .labelled_sessions(text.to_string(), limit, offset)
        .await?;
    for row in rows.iter_mut() {
        if let Some(live) = st.hub.online(row.id) {
            *row = live.info(None);
        }
    }
    Ok((rows, total))
}

/// Adds this module's routes to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let paths = &mut doc["paths"];
    paths["/api/sessions/{id}/label"] = json!({ "put": {
        "summary": "Name a session's device (an empty or null label removes it)",
        "parameters": [session_id_param()],
        "requestBody": { "required": true, "content": { "application/json": { "schema": {
            "type": "object", "required": ["label"], "additionalProperties": false,
            "properties": { "label": { "type": "string", "nullable": true, "maxLength": 64,
                "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
                "description": "no control characters; spaces around it are dropped" } } } } } },
        "responses": ok(json!({ "$ref": "#/components/schemas/Session" }),
                        &["400", "401", "403", "404"]) } });
    if let Some(params) = paths["/api/sessions"]["get"]["parameters"].as_array_mut() {
        params.push(json!({ "name": "label", "in": "query",
            "description": "only sessions whose label contains this text (any case)",
            "schema": { "type": "string" } }));
    }
    let session = &mut doc["components"]["schemas"]["Session"]["properties"];
    session["label"] = json!({ "type": "string", "nullable": true,
        "description": "the device's name, set by an operator or taken from its first upload (--label-from)" });
    session["rates"] = json!({ "type": "object", "nullable": true,
        "description": "online sessions: traffic per second over the last complete seconds",
        "properties": {
            "bytes_up_per_s": { "type": "number" }, "bytes_down_per_s": { "type": "number" },
            "msgs_up_per_s": { "type": "number" }, "msgs_down_per_s": { "type": "number" },
            "window_s": { "type": "integer" } } });
}

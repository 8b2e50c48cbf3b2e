//! Snippet routes (`GET`/`POST /api/snippets`, `DELETE /api/snippets/{name}`) and the one
//! function that turns a send body's `text`, `hex` or `snippet` into bytes, used by every
//! route that sends.
//!
//! Saving a name that exists answers 409 unless the body says `"replace": true`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::hub::Hub;
use crate::hub::snippets::{MAX_SNIPPET_BYTES, MAX_SNIPPET_NAME, MAX_SNIPPETS, SnippetError};
use crate::rules::decode_hex;

/// The status of a snippet error.
pub(super) fn snippet_error(e: SnippetError) -> AppError {
    match e {
        SnippetError::BadName(_) | SnippetError::Empty(_) | SnippetError::TooLarge { .. } => {
            AppError::BadRequest(e.to_string())
        }
        SnippetError::Exists(_) | SnippetError::TooMany(_) => AppError::Conflict(e.to_string()),
        SnippetError::NotFound(_) => AppError::NotFound(e.to_string()),
        SnippetError::Store(_) => {
            tracing::error!("api: {e}");
            AppError::Internal
        }
    }
}

/// The bytes a send body asks for: exactly one of `text`, `hex` and `snippet`, not empty.
/// Also returns the snippet's name when one was used.
pub(super) async fn payload_bytes(
    hub: &Hub,
    text: Option<&str>,
    hex: Option<&str>,
    snippet: Option<&str>,
) -> Result<(bytes::Bytes, Option<String>), AppError> {
    let data = match (text, hex, snippet) {
        (Some(t), None, None) => t.as_bytes().to_vec(),
        (None, Some(h), None) => decode_hex(h).map_err(|e| AppError::BadRequest(e.to_string()))?,
        (None, None, Some(name)) => {
            let data = hub.snippet_data(name).await.map_err(snippet_error)?;
            return Ok((data, Some(name.to_string())));
        }
        _ => {
            return Err(AppError::BadRequest(
                "give exactly one of \"text\", \"hex\" and \"snippet\"".into(),
            ));
        }
    };
    if data.is_empty() {
        return Err(AppError::BadRequest(
            "nothing to send: payload is empty".into(),
        ));
    }
    Ok((bytes::Bytes::from(data), None))
}

/// `GET /api/snippets`: every snippet, by name.
pub async fn list(State(st): State<AppState>) -> Result<Json<Value>, AppError> {
    let all = st.hub.snippets().await.map_err(snippet_error)?;
    Ok(Json(json!({ "snippets": all })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    name: String,
    text: Option<String>,
    hex: Option<String>,
    #[serde(default)]
    replace: bool,
}

/// `POST /api/snippets` with `{"name", "text"|"hex", "replace"?}`: 201 with the snippet
/// (200 when it replaced one), 409 when the name is taken and `replace` is not true.
pub async fn save(
    State(st): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let body: SaveBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    let data = match (&body.text, &body.hex) {
        (Some(t), None) => t.as_bytes().to_vec(),
        (None, Some(h)) => decode_hex(h).map_err(|e| AppError::BadRequest(e.to_string()))?,
        _ => {
            return Err(AppError::BadRequest(
                "give exactly one of \"text\" and \"hex\"".into(),
            ));
        }
    };
    let (snippet, replaced) = st
        .hub
        .save_snippet(&body.name, data, body.replace)
        .await
        .map_err(snippet_error)?;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!(snippet))))
}

/// `DELETE /api/snippets/{name}`.
pub async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AppError> {
    st.hub.delete_snippet(&name).await.map_err(snippet_error)?;
    Ok(Json(json!({ "deleted": name })))
}

/// Adds this module's routes and schemas to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let err = super::doc::error_responses;
    let snippet = json!({ "$ref": "#/components/schemas/Snippet" });
    let name_pattern = format!("^[A-Za-z0-9._-]{{1,{MAX_SNIPPET_NAME}}}$");
    doc["components"]["schemas"]["Snippet"] = json!({ "type": "object",
        "required": ["name", "len", "hex", "text", "updated_at", "updated_at_ms"],
        "properties": {
            "name": { "type": "string" }, "len": { "type": "integer" },
            "hex": { "type": "string" },
            "text": { "type": "string", "description": "lossy UTF-8; display as text, never as HTML" },
            "updated_at": { "type": "string", "format": "date-time" },
            "updated_at_ms": { "type": "integer" } } });
    let paths = &mut doc["paths"];
    let mut list = err(&["401", "500"]);
    list["200"] = json!({ "description": "ok", "content": { "application/json": {
        "schema": { "type": "object", "required": ["snippets"], "properties": {
            "snippets": { "type": "array", "items": snippet } } } } } });
    let mut save = err(&["400", "401", "403", "409", "500"]);
    save["201"] =
        json!({ "description": "saved", "content": { "application/json": { "schema": snippet } } });
    save["200"] = json!({ "description": "replaced an existing snippet", "content": { "application/json": { "schema": snippet } } });
    paths["/api/snippets"] = json!({
        "get": { "summary": "Saved send snippets, by name", "responses": list },
        "post": {
            "summary": format!("Save a snippet (at most {MAX_SNIPPETS}, {MAX_SNIPPET_BYTES} bytes each). A taken name answers 409 unless replace is true"),
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "type": "object", "required": ["name"], "additionalProperties": false,
                "oneOf": [
                    { "required": ["text"], "not": { "required": ["hex"] } },
                    { "required": ["hex"], "not": { "required": ["text"] } }
                ],
                "description": "exactly one of text and hex",
                "properties": {
                    "name": { "type": "string", "pattern": name_pattern.clone() },
                    "text": { "type": "string", "minLength": 1 },
                    "hex": { "type": "string", "pattern": super::doc::HEX_PATTERN },
                    "replace": { "type": "boolean", "default": false } } } } } },
            "responses": save } });
    let mut del = err(&["400", "401", "403", "404", "500"]);
    del["200"] = json!({ "description": "deleted", "content": { "application/json": {
        "schema": { "type": "object", "properties": { "deleted": { "type": "string" } } } } } });
    paths["/api/snippets/{name}"] = json!({ "delete": {
        "summary": "Delete a snippet (periodic sends started from it keep their copy)",
        "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string", "pattern": name_pattern } }],
        "responses": del } });
}

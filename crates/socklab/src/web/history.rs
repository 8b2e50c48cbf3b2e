//! History routes: recent throughput per second (`GET /api/rates`).

use std::collections::HashMap;
use std::str::FromStr;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::clock::now_ms;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Longest window `GET /api/rates` answers for.
pub const MAX_RATE_SECONDS: i64 = 3600;

/// A query parameter parsed as `T`, `None` when absent; a bad value is a 400.
pub(super) fn opt_param<T: FromStr>(params: &Params, name: &str) -> Result<Option<T>, AppError> {
    let Ok(Query(map)) = params else {
        return Err(AppError::BadRequest("malformed query string".into()));
    };
    match map.get(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| AppError::BadRequest(format!("invalid value {v:?} for {name}"))),
    }
}

/// `GET /api/rates?seconds=N&session=ID`: bytes and messages per second, up and down, over
/// the last N complete seconds (default 60), from history.
pub async fn rates(State(st): State<AppState>, params: Params) -> Result<Json<Value>, AppError> {
    let seconds: i64 = opt_param(&params, "seconds")?.unwrap_or(60);
    if !(1..=MAX_RATE_SECONDS).contains(&seconds) {
        return Err(AppError::BadRequest(format!(
            "seconds must be 1..={MAX_RATE_SECONDS}"
        )));
    }
    let session: Option<u64> = opt_param(&params, "session")?;
    let now = now_ms();
    let until = now.div_euclid(1000) * 1000;
    let since = until - seconds * 1000;
    let rows = super::api::bounded(&st, st.hub.store().rates(session, since, until)).await??;
    Ok(Json(json!({ "now_ms": now, "seconds": rows })))
}

/// Adds this module's routes to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let paths = &mut doc["paths"];
    paths["/api/rates"] = json!({ "get": {
        "summary": "Traffic per second (bytes and messages, up and down) over the last seconds, from history",
        "parameters": [
            { "name": "seconds", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_RATE_SECONDS, "default": 60 } },
            { "name": "session", "in": "query", "description": "only this session",
              "schema": { "type": "integer", "minimum": 0, "maximum": i64::MAX } }
        ],
        "responses": {
            "200": { "description": "ok", "content": { "application/json": { "schema": {
                "type": "object", "properties": {
                    "now_ms": { "type": "integer" },
                    "seconds": { "type": "array", "items": { "type": "object", "properties": {
                        "t_ms": { "type": "integer" },
                        "bytes_up": { "type": "integer" }, "bytes_down": { "type": "integer" },
                        "msgs_up": { "type": "integer" }, "msgs_down": { "type": "integer" } } } } } } } } },
            "400": { "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
            "401": { "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
            "default": { "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        } } });
}

//! `GET /api/messages`: search every session's history by content, direction, session,
//! listener and time.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use regex::bytes::RegexBuilder;
use serde_json::{Value, json};

use super::history::opt_param;
use super::{AppError, AppState};
use crate::model::Direction;
use crate::rules::decode_hex;
use crate::store::Search;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Largest page of search results.
pub const MAX_SEARCH_PAGE: u64 = 1000;

/// Compiled regexes are bounded (a pattern cannot make the server build a huge automaton).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The search a query string describes (shared with the export route).
pub(super) fn search_of(params: &Params) -> Result<Search, AppError> {
    let text: Option<String> = opt_param(params, "q")?;
    let hex: Option<String> = opt_param(params, "hex")?;
    let regex: Option<String> = opt_param(params, "regex")?;
    // Every filter given applies: q, hex and regex together find messages that match all.
    let mut bytes = Vec::new();
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        bytes.push(t.into_bytes());
    }
    if let Some(h) = hex {
        let b = decode_hex(&h).map_err(|e| AppError::BadRequest(e.to_string()))?;
        if !b.is_empty() {
            bytes.push(b);
        }
    }
    let regex = match regex.filter(|r| !r.is_empty()) {
        Some(r) => Some(
            RegexBuilder::new(&r)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| AppError::BadRequest(format!("invalid regex: {e}")))?,
        ),
        None => None,
    };
    let direction = match opt_param::<String>(params, "direction")?.as_deref() {
        None | Some("") | Some("both") => None,
        Some("up") => Some(Direction::Up),
        Some("down") => Some(Direction::Down),
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "direction must be up, down or both, not {other:?}"
            )));
        }
    };
    let id = |name: &str| -> Result<Option<u64>, AppError> {
        let v: Option<u64> = opt_param(params, name)?;
        match v {
            Some(v) if v > i64::MAX as u64 => {
                Err(AppError::BadRequest(format!("{name} is too large")))
            }
            v => Ok(v),
        }
    };
    Ok(Search {
        bytes,
        regex,
        direction,
        session: id("session")?,
        listener: opt_param(params, "listener")?,
        since_ms: opt_param(params, "since_ms")?,
        until_ms: opt_param(params, "until_ms")?,
        max_id: id("max_id")?,
        label: opt_param::<String>(params, "label")?.filter(|l| !l.trim().is_empty()),
    })
}

/// `GET /api/messages?q=TEXT|hex=HEX|regex=RE&direction=&session=&listener=&since_ms=&until_ms=&max_id=&limit=&offset=`
pub async fn messages(State(st): State<AppState>, params: Params) -> Result<Json<Value>, AppError> {
    let search = search_of(&params)?;
    let limit: u64 = opt_param(&params, "limit")?.unwrap_or(100);
    if limit == 0 || limit > MAX_SEARCH_PAGE {
        return Err(AppError::BadRequest(format!(
            "limit must be 1..={MAX_SEARCH_PAGE}"
        )));
    }
    let offset: u64 = opt_param(&params, "offset")?.unwrap_or(0);
    if offset > i64::MAX as u64 {
        return Err(AppError::BadRequest("offset is too large".into()));
    }
    let store = st.hub.store();
    store.flush().await;
    let page = store.search(search, limit, offset).await?;
    Ok(Json(json!({
        "messages": page.messages,
        "total": page.total,
        "max_id": page.max_id,
    })))
}

/// The query parameters of a search (also used by export).
pub(super) fn search_parameters() -> Vec<Value> {
    let int = |name: &str, desc: &str| {
        json!({ "name": name, "in": "query", "description": desc,
                "schema": { "type": "integer", "minimum": 0, "maximum": i64::MAX } })
    };
    let text = |name: &str, desc: &str| json!({ "name": name, "in": "query", "description": desc, "schema": { "type": "string" } });
    vec![
        text(
            "q",
            "messages containing this text (its UTF-8 bytes); q, hex and regex combine (a message must match each given)",
        ),
        json!({ "name": "hex", "in": "query", "description": "messages containing these bytes, as hex digits",
                "schema": { "type": "string", "pattern": "^([0-9a-fA-F]{2})*$" } }),
        json!({ "name": "regex", "in": "query",
                "description": "messages a regex (bytes mode) matches somewhere in (any regex the server's engine compiles is taken; the schema only promises letters, digits and spaces)",
                "schema": { "type": "string", "pattern": "^[A-Za-z0-9 ]*$" } }),
        json!({ "name": "direction", "in": "query",
                "schema": { "type": "string", "enum": ["up", "down", "both"], "default": "both" } }),
        int("session", "only this session"),
        json!({ "name": "listener", "in": "query", "description": "only sessions of this listener",
                "schema": { "type": "integer", "minimum": 0, "maximum": u32::MAX } }),
        json!({ "name": "since_ms", "in": "query", "description": "from this time (Unix ms, inclusive)",
                "schema": { "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX } }),
        json!({ "name": "until_ms", "in": "query", "description": "before this time (Unix ms, exclusive)",
                "schema": { "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX } }),
        text(
            "label",
            "only sessions whose label contains this text (any case)",
        ),
        int(
            "max_id",
            "only messages up to this id: pass the max_id of the first page to page through a fixed result",
        ),
    ]
}

/// Adds this module's route to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let mut parameters = search_parameters();
    parameters.push(json!({ "name": "limit", "in": "query",
        "schema": { "type": "integer", "minimum": 1, "maximum": MAX_SEARCH_PAGE, "default": 100 } }));
    parameters.push(json!({ "name": "offset", "in": "query",
        "schema": { "type": "integer", "minimum": 0, "maximum": i64::MAX, "default": 0 } }));
    let error = json!({ "description": "error", "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } });
    doc["paths"]["/api/messages"] = json!({ "get": {
        "summary": "Search messages of every session, newest first",
        "parameters": parameters,
        "responses": {
            "200": { "description": "ok", "content": { "application/json": { "schema": {
                "type": "object", "properties": {
                    "messages": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
                    "total": { "type": "integer" },
                    "max_id": { "type": "integer" } } } } } },
            "400": error.clone(), "401": error } } });
}

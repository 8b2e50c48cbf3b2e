//! JSON routes for sessions, messages, operator actions and listeners.
//!
//! Extractors take raw strings and bytes and this module parses them, so every bad input
//! gets the API's JSON error body instead of axum's plain-text rejection.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AppError, AppState};
use crate::framing::FramingSpec;
use crate::hub::ActionError;
use crate::model::SessionInfo;
use crate::rules::{Rule, RuleSpec};

/// Largest page the list routes return.
pub const MAX_PAGE: u64 = 1000;

/// Largest `offset` and session id the API takes: SQLite counts in signed 64 bits.
pub const MAX_OFFSET: u64 = i64::MAX as u64;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn param<T: FromStr>(params: &Params, name: &str, default: T) -> Result<T, AppError> {
    let Ok(Query(map)) = params else {
        return Err(AppError::BadRequest("malformed query string".into()));
    };
    match map.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| AppError::BadRequest(format!("invalid value {v:?} for {name}"))),
    }
}

fn page(params: &Params) -> Result<(u64, u64), AppError> {
    let limit = param(params, "limit", 100u64)?;
    if limit == 0 || limit > MAX_PAGE {
        return Err(AppError::BadRequest(format!(
            "limit must be 1..={MAX_PAGE}"
        )));
    }
    let offset = param(params, "offset", 0u64)?;
    if offset > MAX_OFFSET {
        return Err(AppError::BadRequest(format!(
            "offset must be 0..={MAX_OFFSET}"
        )));
    }
    Ok((limit, offset))
}

/// A session id from the path: 0..=[`MAX_OFFSET`] (ids are SQLite row ids).
pub(super) fn session_id(raw: &str) -> Result<u64, AppError> {
    raw.parse()
        .ok()
        .filter(|id| *id <= MAX_OFFSET)
        .ok_or_else(|| AppError::BadRequest(format!("invalid session id {raw:?}")))
}

/// Waits for a store call at most [`super::HttpLimits::store_timeout`]: on a full disk the
/// writer retries and a query that waits for it would hang the request.
pub(super) async fn bounded<T>(
    st: &AppState,
    call: impl Future<Output = T>,
) -> Result<T, AppError> {
    let waited = st.limits.store_timeout;
    tokio::time::timeout(waited, call)
        .await
        .map_err(|_| AppError::store_stalled(waited))
}

pub(super) fn listener_id(raw: &str) -> Result<u32, AppError> {
    raw.parse()
        .map_err(|_| AppError::BadRequest(format!("invalid listener id {raw:?}")))
}

fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Body of send and broadcast: exactly one of `text`, `hex` and `snippet` (a saved
/// snippet's name).
#[derive(Debug, Deserialize)]
struct Payload {
    text: Option<String>,
    hex: Option<String>,
    snippet: Option<String>,
    listener_id: Option<u32>,
}

impl Payload {
    async fn data(&self, st: &AppState) -> Result<Bytes, AppError> {
        let (text, hex, snippet) = (
            self.text.as_deref(),
            self.hex.as_deref(),
            self.snippet.as_deref(),
        );
        Ok(super::snippets::payload_bytes(&st.hub, text, hex, snippet)
            .await?
            .0)
    }
}

/// A session: live from the hub when online, else from history (after any queued session
/// start/end is committed, so a session that just ended is found with its end).
async fn find_session(st: &AppState, id: u64) -> Result<SessionInfo, AppError> {
    if let Some(handle) = st.hub.online(id) {
        return Ok(handle.info(None));
    }
    let store = st.hub.store();
    bounded(st, store.flush_sessions()).await?;
    bounded(st, store.session(id))
        .await??
        .ok_or_else(|| AppError::NotFound(format!("no session {id}")))
}

/// Turns a failed action into 404 (never existed) or 409 (exists, offline).
pub(super) async fn action_error(st: &AppState, e: ActionError) -> AppError {
    match e {
        ActionError::NotOnline(id) => match find_session(st, id).await {
            Ok(_) => AppError::Conflict(format!("session {id} is offline")),
            Err(e) => e,
        },
        e => map_action_error(e),
    }
}

/// The status of an action error other than "not online" (which needs the history).
pub(super) fn map_action_error(e: ActionError) -> AppError {
    match e {
        ActionError::NotOnline(_) | ActionError::Offline(_) => AppError::Conflict(e.to_string()),
        ActionError::NoListener(_) | ActionError::NoSession(_) => AppError::NotFound(e.to_string()),
        ActionError::TooLarge { .. } => AppError::BadRequest(e.to_string()),
        ActionError::Busy(_) | ActionError::SendFailed { .. } | ActionError::History(_) => {
            AppError::Unavailable(e.to_string())
        }
    }
}

/// One page of sessions and how many there are in all: `{"sessions": [...], "total": N}`,
/// written straight from the sessions (no JSON tree built in between).
#[derive(Serialize)]
pub struct SessionPage {
    /// The sessions of this page, newest first.
    pub sessions: Vec<SessionInfo>,
    /// How many sessions the listing has in all.
    pub total: u64,
}

/// `GET /api/sessions?state=online|all&limit&offset`: newest first.
pub async fn list_sessions(
    State(st): State<AppState>,
    params: Params,
) -> Result<Json<SessionPage>, AppError> {
    let (limit, offset) = page(&params)?;
    let state = param(&params, "state", "all".to_string())?;
    let label = param(&params, "label", String::new())?;
    let (sessions, total) = match state.as_str() {
        "online" | "all" if !label.trim().is_empty() => {
            super::labels::labelled_sessions(&st, state == "online", label.trim(), limit, offset)
                .await?
        }
        "online" => {
            let (page, total) = st.hub.online_page(offset as usize, limit as usize);
            (page, total as u64)
        }
        "all" => {
            let store = st.hub.store();
            let listed = async {
                store.flush_sessions().await;
                store.sessions(limit, offset).await
            };
            let (mut rows, total) = bounded(&st, listed).await??;
            for row in rows.iter_mut() {
                if let Some(live) = st.hub.online(row.id) {
                    *row = live.info(None);
                }
            }
            (rows, total)
        }
        other => {
            return Err(AppError::BadRequest(format!(
                "state must be online or all, not {other:?}"
            )));
        }
    };
    Ok(Json(SessionPage { sessions, total }))
}

/// `GET /api/sessions/{id}`.
pub async fn get_session(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionInfo>, AppError> {
    Ok(Json(find_session(&st, session_id(&id)?).await?))
}

/// `GET /api/sessions/{id}/messages?since_ms&limit&offset`: oldest first.
pub async fn messages(
    State(st): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<Value>, AppError> {
    let id = session_id(&id)?;
    let (limit, offset) = page(&params)?;
    let since_ms = param(&params, "since_ms", 0i64)?;
    find_session(&st, id).await?;
    let store = st.hub.store();
    // The store waits a little for queued writes, then reads what is committed; the bound
    // here holds even if the read itself cannot proceed.
    bounded(&st, store.flush_for_query()).await?;
    let (messages, total) = bounded(&st, store.messages(id, since_ms, limit, offset)).await??;
    Ok(Json(json!({ "messages": messages, "total": total })))
}

/// `POST /api/sessions/{id}/send` with `{"text"}` or `{"hex"}`.
pub async fn send(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let id = session_id(&id)?;
    let data = json_body::<Payload>(&body)?.data(&st).await?;
    match st.hub.send(id, data).await {
        Ok(n) => Ok(Json(json!({ "bytes": n }))),
        Err(e) => Err(action_error(&st, e).await),
    }
}

/// `POST /api/sessions/{id}/close`: returns once the session has ended.
pub async fn close(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = session_id(&id)?;
    match st.hub.close(id).await {
        Ok(()) => Ok(Json(json!({ "closed": true }))),
        Err(e) => Err(action_error(&st, e).await),
    }
}

/// `POST /api/broadcast` with `{"text"|"hex", "listener_id"?}`.
pub async fn broadcast(State(st): State<AppState>, body: Bytes) -> Result<Json<Value>, AppError> {
    let payload = json_body::<Payload>(&body)?;
    let data = payload.data(&st).await?;
    match st.hub.broadcast(payload.listener_id, data).await {
        Ok((sessions, bytes)) => Ok(Json(json!({ "sessions": sessions, "bytes": bytes }))),
        Err(e) => Err(action_error(&st, e).await),
    }
}

/// `GET /api/listeners`.
pub async fn listeners(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "listeners": st.hub.listeners() }))
}

#[derive(Debug, Deserialize)]
struct EchoBody {
    enabled: bool,
}

/// `PUT /api/listeners/{id}/echo` with `{"enabled": bool}`.
pub async fn set_echo(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let id = listener_id(&id)?;
    let body: EchoBody = json_body(&body)?;
    match st.hub.set_echo(id, body.enabled) {
        Ok(info) => Ok(Json(json!(info))),
        Err(e) => Err(action_error(&st, e).await),
    }
}

#[derive(Debug, Deserialize)]
struct RulesBody {
    rules: Vec<RuleSpec>,
    #[serde(default)]
    framing: Option<FramingSpec>,
}

/// `PUT /api/listeners/{id}/auto-replies` with `{"rules": [...], "framing": {...}}`
/// (replaces all rules; the framing, when given, too).
pub async fn set_auto_replies(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let id = listener_id(&id)?;
    let body: RulesBody = json_body(&body)?;
    let rules = body
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            Rule::from_spec(spec).map_err(|e| AppError::BadRequest(format!("rule {i}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let framing = body
        .framing
        .map(|f| f.to_framing())
        .transpose()
        .map_err(|e| AppError::BadRequest(format!("framing: {e}")))?;
    match st.hub.set_auto_replies(id, rules, framing) {
        Ok(info) => Ok(Json(json!(info))),
        Err(e) => Err(action_error(&st, e).await),
    }
}

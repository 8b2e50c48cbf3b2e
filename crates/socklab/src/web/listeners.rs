//! Listeners at run time: `POST /api/listeners` binds one, `DELETE /api/listeners/{id}`
//! removes one (its online sessions end with `listener_removed` before the answer).
//! Binding is limited to loopback unless socklab was started with `--allow-net`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::doc::{listener_id_param, ok};
use super::{AppError, AppState};
use crate::hub::ActionError;
use crate::hub::listeners::{ListenRequest, ListenerSettings, OpenError, parse_bind_addr};
use crate::link::LinkSpec;
use crate::model::Proto;
use crate::rules::{Rule, RuleSpec};

pub(super) fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}

/// The modes a new listener or connection may start with (all optional).
#[derive(Debug, Default, Deserialize)]
pub(super) struct SettingsBody {
    #[serde(default)]
    echo: bool,
    #[serde(default)]
    auto_replies: Vec<RuleSpec>,
    link: Option<String>,
}

impl SettingsBody {
    pub(super) fn settings(self) -> Result<ListenerSettings, AppError> {
        let rules = self
            .auto_replies
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                Rule::from_spec(spec).map_err(|e| AppError::BadRequest(format!("rule {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let link = match self.link.as_deref() {
            None | Some("none") => None,
            Some(spec) => Some(LinkSpec::parse(spec).map_err(|e| AppError::BadRequest(e.0))?),
        };
        Ok(ListenerSettings {
            echo: self.echo,
            rules,
            link,
        })
    }
}

/// `tcp` or `udp`.
pub(super) fn proto(raw: Option<&str>) -> Result<Proto, AppError> {
    let raw = raw.unwrap_or("tcp");
    Proto::parse(raw)
        .ok_or_else(|| AppError::BadRequest(format!("proto must be tcp or udp, not {raw:?}")))
}

/// The status of a failed run-time change.
pub(super) fn open_error(e: OpenError) -> AppError {
    let message = e.to_string();
    match e {
        OpenError::BadAddress(_) | OpenError::Bind { .. } => AppError::BadRequest(message),
        OpenError::NotAllowed { .. } => AppError::Forbidden(message),
        OpenError::InUse { .. } | OpenError::TooMany(_) => AppError::Conflict(message),
        OpenError::Refused { .. } | OpenError::TimedOut { .. } | OpenError::Connect { .. } => {
            AppError::BadGateway(message)
        }
        OpenError::Action(e) => super::api::map_action_error(e),
        OpenError::Unavailable(_) => AppError::Unavailable(message),
    }
}

#[derive(Debug, Deserialize)]
struct AddBody {
    proto: Option<String>,
    addr: String,
    #[serde(flatten)]
    settings: SettingsBody,
}

/// `POST /api/listeners` with `{"proto", "addr", "echo"?, "auto_replies"?, "link"?}`.
pub async fn add(State(st): State<AppState>, body: Bytes) -> Result<Json<Value>, AppError> {
    let body: AddBody = json_body(&body)?;
    let req = ListenRequest {
        proto: proto(body.proto.as_deref())?,
        addr: parse_bind_addr(&body.addr).map_err(open_error)?,
        settings: body.settings.settings()?,
    };
    let info = st.hub.add_listener(req).await.map_err(open_error)?;
    Ok(Json(json!(info)))
}

/// `DELETE /api/listeners/{id}`: returns the removed listener and how many sessions ended.
pub async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = super::api::listener_id(&id)?;
    match st.hub.remove_listener(id).await {
        Ok((info, ended)) => Ok(Json(json!({ "removed": info, "sessions_ended": ended }))),
        Err(e @ ActionError::NoListener(_)) => Err(AppError::NotFound(e.to_string())),
        Err(e) => Err(super::api::map_action_error(e)),
    }
}

/// The OpenAPI tag of operations that bind or connect sockets on the machine: schema
/// fuzzers leave them out (`--exclude-tag`).
pub const OPENS_SOCKETS: &str = "opens-sockets";

/// An OpenAPI request body of `schema`.
pub(super) fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// Adds these routes to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let listener = json!({ "$ref": "#/components/schemas/Listener" });
    let id = listener_id_param();
    doc["components"]["schemas"]["ListenerSettings"] = json!({
        "type": "object", "properties": {
            "echo": { "type": "boolean", "default": false },
            "auto_replies": { "type": "array", "items": { "$ref": "#/components/schemas/Rule" } },
            "link": { "type": "string", "description": "link profile PROFILE[,param=value...] or none" } } });
    doc["paths"]["/api/listeners"]["post"] = json!({
        "summary": "Add a listener (loopback only unless socklab runs with --allow-net)",
        "tags": [OPENS_SOCKETS],
        "description": "Binds PROTO on ADDR (IP:PORT, [IPV6]:PORT, localhost:PORT or PORT; port 0 picks a free one) and serves it at once. 403 outside the allowed networks, 409 when the address is in use.",
        "requestBody": body(json!({ "allOf": [
            { "$ref": "#/components/schemas/ListenerSettings" },
            { "type": "object", "required": ["addr"], "properties": {
                "proto": { "type": "string", "enum": ["tcp", "udp"], "default": "tcp" },
                "addr": { "type": "string", "example": "127.0.0.1:0" } } } ] })),
        "responses": ok(listener.clone(), &["400", "401", "403", "409", "503"]) });
    doc["paths"]["/api/listeners/{id}"] = json!({ "delete": {
        "summary": "Remove a listener: it stops accepting and its online sessions end with listener_removed",
        "parameters": [id],
        "responses": ok(json!({ "type": "object", "properties": {
            "removed": listener, "sessions_ended": { "type": "integer" } } }),
            &["400", "401", "403", "404"]) } });
}

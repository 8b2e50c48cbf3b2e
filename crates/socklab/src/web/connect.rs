//! `POST /api/connect`: client mode. socklab opens a TCP connection or a UDP flow to a
//! device that is the server, and answers with the new session (online, `"direction":
//! "outgoing"`). Only loopback targets unless socklab was started with `--allow-net`.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::doc::ok;
use super::listeners::{OPENS_SOCKETS, SettingsBody, body, json_body, open_error, proto};
use super::{AppError, AppState};
use crate::hub::connect::{CONNECT_TIMEOUT, ConnectRequest, MAX_CONNECT_TIMEOUT};
use crate::rules::decode_hex;

#[derive(Debug, Deserialize)]
struct ConnectBody {
    addr: String,
    proto: Option<String>,
    timeout_ms: Option<u64>,
    text: Option<String>,
    hex: Option<String>,
    #[serde(flatten)]
    settings: SettingsBody,
}

/// `POST /api/connect` with `{"addr", "proto"?, "timeout_ms"?, "text"|"hex"?, "echo"?,
/// "auto_replies"?, "link"?}`: the new session, or 502 with the reason the device could not
/// be reached (refused, no answer within the timeout).
pub async fn connect(State(st): State<AppState>, body: Bytes) -> Result<Json<Value>, AppError> {
    let body: ConnectBody = json_body(&body)?;
    let first = match (&body.text, &body.hex) {
        (None, None) => None,
        (Some(t), None) => Some(Bytes::from(t.clone().into_bytes())),
        (None, Some(h)) => Some(Bytes::from(
            decode_hex(h).map_err(|e| AppError::BadRequest(e.to_string()))?,
        )),
        _ => {
            return Err(AppError::BadRequest(
                "give at most one of \"text\" and \"hex\"".into(),
            ));
        }
    };
    let timeout = match body.timeout_ms {
        None => CONNECT_TIMEOUT,
        Some(ms) if (1..=MAX_CONNECT_TIMEOUT.as_millis() as u64).contains(&ms) => {
            Duration::from_millis(ms)
        }
        Some(ms) => {
            return Err(AppError::BadRequest(format!(
                "timeout_ms must be 1..={}, not {ms}",
                MAX_CONNECT_TIMEOUT.as_millis()
            )));
        }
    };
    let req = ConnectRequest {
        proto: proto(body.proto.as_deref())?,
        target: body.addr,
        timeout,
        settings: body.settings.settings()?,
        first,
    };
    let session = st.hub.connect(req).await.map_err(open_error)?;
    Ok(Json(json!(session)))
}

/// Adds the route to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    doc["paths"]["/api/connect"] = json!({ "post": {
        "summary": "Client mode: connect to a device that is the server; returns the new session",
        "tags": [OPENS_SOCKETS],
        "description": "Opens a TCP connection (bounded by timeout_ms) or a UDP flow to ADDR and makes it a session like any other, with \"direction\": \"outgoing\". Optional text or hex is sent at once (a UDP device learns socklab's address from it). Targets outside loopback need socklab started with --allow-net (403 otherwise); 502 when the device refuses or does not answer. It reaches out to the network, so schema fuzzers should leave it out.",
        "requestBody": body(json!({ "allOf": [
            { "$ref": "#/components/schemas/ListenerSettings" },
            { "type": "object", "required": ["addr"], "properties": {
                "addr": { "type": "string", "example": "127.0.0.1:5000", "description": "HOST:PORT, [IPV6]:PORT" },
                "proto": { "type": "string", "enum": ["tcp", "udp"], "default": "tcp" },
                "timeout_ms": { "type": "integer", "minimum": 1, "maximum": MAX_CONNECT_TIMEOUT.as_millis() as u64, "default": CONNECT_TIMEOUT.as_millis() as u64 },
                "text": { "type": "string", "description": "sent once connected" },
                "hex": { "type": "string", "description": "sent once connected" } } } ] })),
        "responses": ok(json!({ "$ref": "#/components/schemas/Session" }),
            &["400", "401", "403", "409", "502", "503"]) } });
}

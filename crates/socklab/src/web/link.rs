//! Link routes: the built-in profiles, setting the link of a listener or a live session,
//! and injecting a fault now. Their OpenAPI paths live here too ([`extend_openapi`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{action_error, listener_id, session_id};
use super::{AppError, AppState};
use crate::link::fault::MAX_OUTAGE;
use crate::link::{Fault, LinkSpec, profiles};

/// Body of the link routes: `{"link": "PROFILE[,param=value]"}`, `null` or `"none"` for
/// no link.
#[derive(Debug, Deserialize)]
struct LinkBody {
    link: Option<String>,
}

fn link_spec(body: &Bytes) -> Result<Option<LinkSpec>, AppError> {
    let body: LinkBody = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    match body.link.as_deref().map(str::trim) {
        None | Some("none" | "") => Ok(None),
        Some(s) => LinkSpec::parse(s)
            .map(Some)
            .map_err(|e| AppError::BadRequest(e.0)),
    }
}

/// Body of the fault route: `{"fault": "outage", "seconds": 5}`, `{"fault": "reset"}`,
/// `{"fault": "nat_drop"}`.
#[derive(Debug, Deserialize)]
struct FaultBody {
    fault: String,
    seconds: Option<f64>,
}

fn fault(body: &Bytes) -> Result<Fault, AppError> {
    let body: FaultBody = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    // Only outages take a length; the API ignores "seconds" on the others.
    let seconds = body.seconds.filter(|_| body.fault == "outage");
    Fault::from_seconds(&body.fault, seconds).map_err(|e| AppError::BadRequest(e.to_string()))
}

/// `GET /api/link-profiles`: the built-in profiles, canonical text and figures.
pub async fn profiles_list() -> Json<Value> {
    let list: Vec<Value> = profiles::NAMES
        .iter()
        .filter_map(|n| profiles::get(n))
        .map(|p| {
            let dir = |d: &crate::link::spec::DirParams| {
                json!({
                    "rate_bps": d.rate_bps, "latency_ms": d.latency.as_millis() as u64,
                    "jitter_ms": d.jitter.as_millis() as u64, "loss": d.loss,
                    "loss_burst": d.loss_burst,
                    "stall_every_s": d.stall_every.map(|s| s.as_secs_f64()),
                    "stall_for_s": d.stall_for.as_secs_f64(),
                })
            };
            json!({ "name": p.profile, "up": dir(&p.up), "down": dir(&p.down),
                    "batch_ms": p.batch.map(|b| b.as_millis() as u64) })
        })
        .collect();
    Json(json!({ "profiles": list, "indicative": true }))
}

/// `PUT /api/listeners/{id}/link` with `{"link": SPEC|null}`: new sessions and the
/// listener's online sessions get it.
pub async fn set_listener_link(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let id = listener_id(&id)?;
    let spec = link_spec(&body)?;
    match st.hub.set_listener_link(id, spec) {
        Ok(info) => Ok(Json(json!(info))),
        Err(e) => Err(action_error(&st, e).await),
    }
}

/// `PUT /api/sessions/{id}/link` with `{"link": SPEC|null}`: this live session only.
pub async fn set_session_link(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let id = session_id(&id)?;
    let spec = link_spec(&body)?;
    match st.hub.set_session_link(id, spec) {
        Ok(info) => Ok(Json(json!(info))),
        Err(e) => Err(action_error(&st, e).await),
    }
}

/// `POST /api/sessions/{id}/fault` with `{"fault": ..., "seconds"?}`: injects it now.
pub async fn inject_fault(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let id = session_id(&id)?;
    let fault = fault(&body)?;
    match st.hub.inject(id, fault).await {
        Ok(info) => Ok(Json(json!(info))),
        Err(e) => Err(action_error(&st, e).await),
    }
}

/// Adds the link routes and fields to the OpenAPI document built by [`super::openapi`].
pub fn extend_openapi(doc: &mut Value) {
    if let Value::Object(paths) = openapi_paths() {
        for (k, v) in paths {
            doc["paths"][k] = v;
        }
    }
    doc["paths"]["/api/events"]["get"]["summary"] = json!(
        "Live events (Server-Sent Events): online, data, offline, listener, link, stats, lagged"
    );
    let schemas = &mut doc["components"]["schemas"];
    schemas["Session"]["properties"]["link"] = json!({ "type": "object", "nullable": true,
        "description": "the emulated link of a live session",
        "properties": { "spec": { "type": "string", "example": "nbiot,nat_idle=270s" },
            "state": { "type": "string", "enum": ["ok", "outage", "nat_dropped"] } } });
    schemas["Message"]["properties"]["dropped"] = json!({ "type": "boolean",
        "description": "it never reached the other side (status says why)" });
    schemas["Message"]["properties"]["status"] = json!({ "type": "string",
        "enum": ["ok", "dropped", "undelivered", "failed"],
        "description": "dropped: by the emulated link; undelivered: accepted for the device, \
            which went away first; failed: the socket refused it" });
    schemas["Listener"]["properties"]["link"] = json!({ "type": "string", "nullable": true,
        "description": "the link new sessions start with" });
}

/// The OpenAPI paths of these routes.
fn openapi_paths() -> Value {
    use super::doc::{listener_id_param, ok, session_id_param};
    let id = session_id_param();
    // The enum lists the bare profiles; `PROFILE,param=value...` is accepted too (a grammar
    // JSON Schema cannot state), as the description says.
    let link_body = json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "properties": { "link": { "type": "string", "nullable": true,
        "enum": ["gprs", "nbiot", "ltem", "cat1", "perfect", "none", null],
        "description": "PROFILE[,param=value...] (gprs, nbiot, ltem, cat1, perfect, e.g. \"nbiot,nat_idle=270s\"); null or \"none\" removes the link",
        "example": "nbiot" } } } } } });
    json!({
        "/api/link-profiles": { "get": {
            "summary": "The built-in link profiles (indicative figures)",
            "responses": ok(json!({ "type": "object" }), &["401"]) } },
        "/api/listeners/{id}/link": { "put": {
            "summary": "Set a listener's link (new sessions and its online sessions)",
            "parameters": [listener_id_param()], "requestBody": link_body.clone(),
            "responses": ok(json!({ "$ref": "#/components/schemas/Listener" }),
                &["400", "401", "403", "404"]) } },
        "/api/sessions/{id}/link": { "put": {
            "summary": "Set the link of one online session",
            "parameters": [id.clone()], "requestBody": link_body,
            "responses": ok(json!({ "$ref": "#/components/schemas/Session" }),
                &["400", "401", "403", "404", "409"]) } },
        "/api/sessions/{id}/fault": { "post": {
            "summary": "Inject a fault now: outage for N seconds, reset (RST), carrier-NAT drop",
            "parameters": [id],
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "type": "object", "required": ["fault"], "oneOf": [
                    { "type": "object", "required": ["fault", "seconds"], "properties": {
                        "fault": { "type": "string", "enum": ["outage"] },
                        "seconds": { "type": "number", "minimum": 0.001,
                                     "maximum": MAX_OUTAGE.as_secs(), "description": "how long the outage lasts" } } },
                    { "type": "object", "properties": {
                        "fault": { "type": "string", "enum": ["reset", "nat_drop"] },
                        "seconds": { "type": "number", "description": "ignored" } } }
                ] } } } },
            "responses": ok(json!({ "$ref": "#/components/schemas/Session" }),
                &["400", "401", "403", "404", "409"]) } }
    })
}

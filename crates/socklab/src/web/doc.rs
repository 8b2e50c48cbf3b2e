//! Building blocks of the OpenAPI document shared by the modules that describe their routes
//! ([`super::openapi`], [`super::link`]): responses, id parameters, patterns.

use serde_json::{Value, json};

/// The listed error responses, each with the `Error` body (a route adds its own successes).
pub(super) fn error_responses(codes: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for code in codes {
        out.insert(
            (*code).to_string(),
            json!({ "description": "error", "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/Error" } } } }),
        );
    }
    Value::Object(out)
}

/// Hex digits, at least one byte (the API also takes spaces and colons between bytes).
pub(super) const HEX_PATTERN: &str = "^([0-9a-fA-F]{2})+$";

/// The 200 response, the listed errors, and `default` for the errors any route can give
/// (405, 413, 500, 503 at the connection cap): every error has the `Error` body.
pub(super) fn ok(schema: Value, errors: &[&str]) -> Value {
    let mut responses = error_responses(errors);
    responses["200"] =
        json!({ "description": "ok", "content": { "application/json": { "schema": schema } } });
    responses["default"] = json!({ "description": "error", "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } });
    responses
}

/// The `{id}` path parameter of session routes: a SQLite row id.
pub(super) fn session_id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true,
            "schema": { "type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX } })
}

/// The `{id}` path parameter of listener routes.
pub(super) fn listener_id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true,
            "schema": { "type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX } })
}

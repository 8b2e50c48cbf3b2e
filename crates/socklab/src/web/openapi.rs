//! `GET /api/openapi.json`: the API described as OpenAPI 3.0, written by hand next to the
//! routes (one small document is easier to keep true than a derive layer).

use axum::Json;
use serde_json::{Value, json};

use super::doc::{HEX_PATTERN, listener_id_param, ok, session_id_param};
use crate::model::EndReason;

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// The document.
pub async fn document() -> Json<Value> {
    Json(spec())
}

/// Builds the document (also used by tests to check every route is described).
pub fn spec() -> Value {
    let id = session_id_param();
    let listener_id = listener_id_param();
    let page = [
        json!({ "name": "limit", "in": "query", "schema": { "type": "integer",
                "default": 100, "minimum": 1, "maximum": super::api::MAX_PAGE } }),
        json!({ "name": "offset", "in": "query", "schema": { "type": "integer", "format": "int64",
                "default": 0, "minimum": 0, "maximum": super::api::MAX_OFFSET } }),
    ];
    let session = json!({ "$ref": "#/components/schemas/Session" });
    let mut end_reasons: Vec<Value> = EndReason::ALL.iter().map(|r| json!(r.as_str())).collect();
    end_reasons.push(Value::Null);
    let listener = json!({ "$ref": "#/components/schemas/Listener" });
    let payload = json!({ "$ref": "#/components/schemas/Payload" });
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "socklab", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Sessions, messages and operator actions of a socklab server. When a token is in force, send `Authorization: Bearer TOKEN` or `?token=TOKEN`." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"],
                    "description": "the body of every error response",
                    "properties": { "error": { "type": "string", "description": "what went wrong, for people" } } },
                "Session": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "listener_id": { "type": "integer" },
                    "proto": { "type": "string", "enum": ["tcp", "udp"] },
                    "peer": { "type": "string" }, "local": { "type": "string" },
                    "direction": { "type": "string", "enum": ["incoming", "outgoing"],
                        "description": "outgoing: socklab connected to the device (client mode)" },
                    "online": { "type": "boolean" },
                    "started_at": { "type": "string", "format": "date-time" },
                    "started_at_ms": { "type": "integer" },
                    "ended_at": { "type": "string", "format": "date-time", "nullable": true },
                    "ended_at_ms": { "type": "integer", "nullable": true },
                    "end_reason": { "type": "string", "nullable": true, "enum": end_reasons },
                    "bytes_up": { "type": "integer" }, "bytes_down": { "type": "integer" },
                    "msgs_up": { "type": "integer" }, "msgs_down": { "type": "integer" } } },
                "Message": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "session_id": { "type": "integer" },
                    "ts": { "type": "string", "format": "date-time" }, "ts_ms": { "type": "integer" },
                    "direction": { "type": "string", "enum": ["up", "down"] },
                    "len": { "type": "integer" }, "hex": { "type": "string" },
                    "text": { "type": "string", "description": "lossy UTF-8; display as text, never as HTML" },
                    "truncated": { "type": "boolean", "description": "live events only: hex/text cover the first 4096 bytes" } } },
                "Rule": { "type": "object", "required": ["match", "pattern"], "properties": {
                    "match": { "type": "string", "enum": ["exact", "hex", "regex"] },
                    "pattern": { "type": "string" },
                    "reply_text": { "type": "string", "nullable": true },
                    "reply_hex": { "type": "string", "nullable": true } } },
                "NewRule": { "type": "object", "required": ["match", "pattern"],
                    "description": "a rule as given: exactly one of reply_text and reply_hex; the pattern is text (exact), hex digits (hex) or a regular expression (regex; any regex the server's engine compiles is taken, the schema only promises letters, digits and spaces)",
                    "properties": {
                        "match": { "type": "string", "enum": ["exact", "hex", "regex"] },
                        "pattern": { "type": "string" },
                        "reply_text": { "type": "string" },
                        "reply_hex": { "type": "string" } },
                    "allOf": [
                        { "oneOf": [
                            { "required": ["reply_text"], "not": { "required": ["reply_hex"] } },
                            { "required": ["reply_hex"], "not": { "required": ["reply_text"] },
                              "properties": { "reply_hex": { "type": "string", "pattern": HEX_PATTERN } } } ] },
                        { "oneOf": [
                            { "properties": { "match": { "enum": ["exact"] } } },
                            { "properties": { "match": { "enum": ["hex"] },
                                "pattern": { "type": "string", "pattern": HEX_PATTERN } } },
                            { "properties": { "match": { "enum": ["regex"] },
                                "pattern": { "type": "string", "pattern": "^[A-Za-z0-9 ]*$" } } } ] } ] },
                "Listener": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "proto": { "type": "string", "enum": ["tcp", "udp"] },
                    "kind": { "type": "string", "enum": ["listen", "outgoing"],
                        "description": "outgoing: the entry of one connection socklab opened; it goes away with its session" },
                    "addr": { "type": "string" },
                    "remote": { "type": "string", "nullable": true, "description": "outgoing: the device's address" },
                    "echo": { "type": "boolean" },
                    "auto_replies": { "type": "array", "items": { "$ref": "#/components/schemas/Rule" } },
                    "framing": { "$ref": "#/components/schemas/Framing" },
                    "online": { "type": "integer" } } },
                "Framing": { "type": "object", "required": ["kind"],
                    "description": "how incoming data is cut into frames for the auto-reply rules: each read or datagram as it arrived (read), lines (line: the line end is not part of the frame), or frames ending at a delimiter of 1 to 16 bytes (delimiter, not part of the frame)",
                    "oneOf": [
                        { "properties": { "kind": { "enum": ["read", "line"] } },
                          "not": { "required": ["delimiter_hex"] } },
                        { "properties": { "kind": { "enum": ["delimiter"] } },
                          "required": ["delimiter_hex"] } ],
                    "properties": {
                        "kind": { "type": "string", "enum": ["read", "line", "delimiter"] },
                        "delimiter_hex": { "type": "string", "pattern": "^([0-9a-fA-F]{2}){1,16}$" } } },
                "Payload": { "type": "object", "description": "exactly one of text, hex and snippet",
                    "oneOf": [
                        { "required": ["text"], "not": { "anyOf": [{ "required": ["hex"] }, { "required": ["snippet"] }] } },
                        { "required": ["hex"], "not": { "anyOf": [{ "required": ["text"] }, { "required": ["snippet"] }] } },
                        { "required": ["snippet"], "not": { "anyOf": [{ "required": ["text"] }, { "required": ["hex"] }] } }
                    ],
                    "properties": {
                      "text": { "type": "string", "minLength": 1 },
                      "hex": { "type": "string", "pattern": HEX_PATTERN,
                               "description": "hex digits (spaces and colons between bytes are also taken)" },
                      "snippet": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "the name of a saved snippet" },
                      "listener_id": { "type": "integer", "minimum": 0,
                        "maximum": u32::MAX, "description": "broadcast only" } } }
            }
        },
        "security": [{ "bearer": [] }, {}],
        "paths": {
            "/api/sessions": { "get": {
                "summary": "List sessions, newest first",
                "parameters": [
                    { "name": "state", "in": "query", "schema": { "type": "string", "enum": ["online", "all"], "default": "all" } },
                    page[0], page[1]],
                "responses": ok(json!({ "type": "object", "properties": {
                    "sessions": { "type": "array", "items": session }, "total": { "type": "integer" } } }),
                    &["400", "401"]) } },
            "/api/sessions/{id}": { "get": {
                "summary": "One session", "parameters": [id],
                "responses": ok(session.clone(), &["400", "401", "404"]) } },
            "/api/sessions/{id}/messages": { "get": {
                "summary": "A session's messages, oldest first",
                "parameters": [id, { "name": "since_ms", "in": "query", "schema": { "type": "integer", "format": "int64", "default": 0, "minimum": i64::MIN, "maximum": i64::MAX } }, page[0], page[1]],
                "responses": ok(json!({ "type": "object", "properties": {
                    "messages": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
                    "total": { "type": "integer" } } }), &["400", "401", "404"]) } },
            "/api/sessions/{id}/send": { "post": {
                "summary": "Send text or hex to an online session", "parameters": [id],
                "requestBody": body(payload.clone()),
                "responses": ok(json!({ "type": "object", "properties": { "bytes": { "type": "integer" } } }),
                    &["400", "401", "403", "404", "409", "503"]) } },
            "/api/sessions/{id}/close": { "post": {
                "summary": "Close an online session (returns once it has ended)", "parameters": [id],
                "responses": ok(json!({ "type": "object", "properties": { "closed": { "type": "boolean" } } }),
                    &["400", "401", "403", "404", "409"]) } },
            "/api/broadcast": { "post": {
                "summary": "Send to every online session (optionally of one listener)",
                "requestBody": body(payload),
                "responses": ok(json!({ "type": "object", "properties": {
                    "sessions": { "type": "integer" }, "bytes": { "type": "integer" } } }),
                    &["400", "401", "403", "404"]) } },
            "/api/listeners": { "get": {
                "summary": "Listeners and their modes",
                "responses": ok(json!({ "type": "object", "properties": {
                    "listeners": { "type": "array", "items": listener } } }), &["401"]) } },
            "/api/listeners/{id}/echo": { "put": {
                "summary": "Turn echo mode on or off", "parameters": [listener_id.clone()],
                "requestBody": body(json!({ "type": "object", "required": ["enabled"],
                    "properties": { "enabled": { "type": "boolean" } } })),
                "responses": ok(listener.clone(), &["400", "401", "403", "404"]) } },
            "/api/listeners/{id}/auto-replies": { "put": {
                "summary": "Replace the auto-reply rules", "parameters": [listener_id],
                "requestBody": body(json!({ "type": "object", "required": ["rules"], "properties": {
                    "rules": { "type": "array", "items": { "$ref": "#/components/schemas/NewRule" } },
                    "framing": { "$ref": "#/components/schemas/Framing" } } })),
                "responses": ok(listener, &["400", "401", "403", "404"]) } },
            "/api/events": { "get": {
                "summary": "Live events (Server-Sent Events): online, data, offline, listener, stats, lagged",
                "responses": { "200": { "description": "event stream",
                    "content": { "text/event-stream": { "schema": { "type": "string" } } } },
                    "401": { "description": "missing or wrong token" } } } },
            "/api/openapi.json": { "get": { "summary": "This document",
                "responses": { "200": { "description": "OpenAPI document" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics",
                "responses": { "200": { "description": "text exposition format",
                    "content": { "text/plain": { "schema": { "type": "string" } } } } } } }
        }
    });
    super::link::extend_openapi(&mut doc);
    super::tls::extend_openapi(&mut doc);
    super::history::extend_openapi(&mut doc);
    super::search::extend_openapi(&mut doc);
    super::listeners::extend_openapi(&mut doc);
    super::connect::extend_openapi(&mut doc);
    super::export::extend_openapi(&mut doc);
    super::housekeeping::extend_openapi(&mut doc);
    super::labels::extend_openapi(&mut doc);
    super::snippets::extend_openapi(&mut doc);
    super::periodic::extend_openapi(&mut doc);
    super::links::add(&mut doc);
    doc
}

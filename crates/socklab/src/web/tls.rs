//! The TLS parts of the API description: a session's `tls` (version and SNI), a TLS
//! listener's certificate and failed handshakes, and the `tls_failed` event.

use serde_json::{Value, json};

use crate::model::TlsFailureKind;

/// Adds the TLS fields to the OpenAPI document built in [`super::openapi`].
pub fn extend_openapi(doc: &mut Value) {
    let kinds: Vec<&str> = TlsFailureKind::ALL.iter().map(|k| k.as_str()).collect();
    let failure = json!({ "type": "object",
        "description": "a failed TLS handshake (also the live event of type tls_failed)",
        "properties": {
            "type": { "type": "string", "enum": ["tls_failed"] },
            "listener_id": { "type": "integer" },
            "peer": { "type": "string" }, "local": { "type": "string" },
            "ts": { "type": "string", "format": "date-time" }, "ts_ms": { "type": "integer" },
            "kind": { "type": "string", "enum": kinds,
                      "description": "why, in one word (the reason label of socklab_tls_handshake_failures_total)" },
            "reason": { "type": "string", "description": "why, in words" } } });
    let schemas = &mut doc["components"]["schemas"];
    schemas["TlsFailure"] = failure;
    schemas["Session"]["properties"]["tls"] = json!({ "type": "object", "nullable": true,
        "description": "a session on a TLS listener: what the handshake negotiated",
        "properties": {
            "version": { "type": "string", "example": "TLSv1.2" },
            "sni": { "type": "string", "nullable": true,
                     "description": "the host name the device sent" } } });
    schemas["Listener"]["properties"]["tls"] = json!({ "type": "object", "nullable": true,
        "description": "a TLS listener: its certificate and failed handshakes since start",
        "properties": {
            "cert_sha256": { "type": "string" },
            "cert_path": { "type": "string" },
            "handshake_failures": { "type": "integer" },
            "last_failure": { "allOf": [{ "$ref": "#/components/schemas/TlsFailure" }],
                              "nullable": true } } });
    let summary = &mut doc["paths"]["/api/events"]["get"]["summary"];
    if let Some(text) = summary.as_str() {
        *summary = json!(format!("{text}, tls_failed"));
    }
}

//! `GET /api/openapi.json` on a cluster node (`--cluster`): the single node's document
//! ([`super::openapi::spec`]) made true for the routes the cluster answers
//! ([`super::cluster`]). Their session ids are global strings (`NODE:ID`; a bare `ID`
//! means the answering node's own), as are the ids of other nodes' periodic sends, every
//! session names its `node`, listings and
//! broadcasts name the nodes that did not answer (`missing_nodes`), and `/api/cluster`
//! lists the nodes. Routes that stay local (listeners, search, export, client mode) keep
//! the single node's description.

use serde_json::{Map, Value, json};

use super::doc::ok;
use crate::cluster::names::MAX_NODE_NAME;

/// A session id in a cluster route's path: `NODE:ID` or this node's bare `ID` (at most 18
/// digits, so it always fits the history's 64-bit ids).
pub fn session_ref_pattern() -> String {
    format!("^([A-Za-z0-9_-]{{1,{MAX_NODE_NAME}}}:)?[0-9]{{1,18}}$")
}

/// A global session id as the cluster gives it out.
pub fn global_id_pattern() -> String {
    format!("^[A-Za-z0-9_-]{{1,{MAX_NODE_NAME}}}:[0-9]+$")
}

/// Builds the cluster node's document; a listing pages at most `max_depth` deep
/// (`offset + limit`).
pub fn spec(max_depth: u64) -> Value {
    let mut doc = super::openapi::spec();
    let global = json!({ "type": "string", "pattern": global_id_pattern(),
        "description": "global session id: the node's name, a colon, its id there" });
    let missing = json!({ "type": "array", "items": { "type": "string" },
        "description": "nodes that did not answer in time (their part is left out, or their sessions listed as last seen)" });
    let schemas = &mut doc["components"]["schemas"];
    let mut session = schemas["Session"].clone();
    session["properties"]["id"] = global.clone();
    session["properties"]["node"] =
        json!({ "type": "string", "description": "the node that holds the session" });
    session["properties"]["unreachable"] = json!({ "type": "boolean",
        "description": "its node does not answer: the session as last seen" });
    session["properties"]["missing_nodes"] = missing.clone();
    schemas["ClusterSession"] = session;
    let mut message = schemas["Message"].clone();
    message["properties"]["session_id"] = global.clone();
    schemas["ClusterMessage"] = message;
    if schemas.get("Periodic").is_some() {
        let mut periodic = schemas["Periodic"].clone();
        periodic["properties"]["session_id"] = global;
        periodic["properties"]["id"] = json!({
            "description": "NODE:ID: the node that runs it and its id there",
            "anyOf": [{ "type": "integer" },
                      { "type": "string", "pattern": global_id_pattern() }] });
        periodic["properties"]["node"] =
            json!({ "type": "string", "description": "the node that runs it" });
        schemas["ClusterPeriodic"] = periodic;
    }

    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        if path.starts_with("/api/sessions") || path == "/api/periodic/{id}" {
            to_cluster(item);
        }
    }
    if let Some(list) = paths
        .get_mut("/api/sessions")
        .and_then(|p| p.get_mut("get"))
    {
        cluster_listing(list, &missing, max_depth);
    }
    if let Some(post) = paths
        .get_mut("/api/broadcast")
        .and_then(|p| p.get_mut("post"))
    {
        post["summary"] = json!(
            "Send to every online session of every node (optionally of one listener number on each)"
        );
        post["responses"]["200"]["content"]["application/json"]["schema"] = json!({
            "type": "object", "properties": {
                "sessions": { "type": "integer" }, "bytes": { "type": "integer" },
                "nodes": { "type": "array", "items": { "type": "object", "properties": {
                    "node": { "type": "string" }, "sessions": { "type": "integer" },
                    "bytes": { "type": "integer" },
                    "error": { "type": "string", "nullable": true } } } },
                "missing_nodes": missing } });
    }
    cluster_wide_ops(paths, &missing);
    if let Some(get) = paths.get_mut("/api/events").and_then(|p| p.get_mut("get")) {
        get["summary"] = json!(
            "Live events of every node (Server-Sent Events, ids global, each with its node): online, data, offline, listener, stats, lagged, node, cluster, resync, deliveries"
        );
    }
    paths.insert("/api/cluster".into(), cluster_path());
    doc
}

/// Global ids in one `/api/sessions...` or `/api/periodic/{id}` path item: its `{id}`
/// parameter and the session, message and periodic send schemas it answers with.
fn to_cluster(item: &mut Value) {
    let Value::Object(ops) = item else { return };
    for op in ops.values_mut() {
        if let Some(Value::Array(params)) = op.get_mut("parameters") {
            for p in params
                .iter_mut()
                .filter(|p| p["in"] == "path" && p["name"] == "id")
            {
                p["schema"] = json!({ "type": "string", "pattern": session_ref_pattern() });
                p["description"] = json!("NODE:ID, or a bare ID for the answering node's own");
            }
        }
        if let Some(responses) = op.get_mut("responses") {
            retarget(responses);
        }
    }
}

/// Points the session and message references under `value` at the cluster's schemas.
fn retarget(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref") {
                for name in ["Session", "Message", "Periodic"] {
                    if target == &format!("#/components/schemas/{name}") {
                        *target = format!("#/components/schemas/Cluster{name}");
                    }
                }
            }
            map.values_mut().for_each(retarget);
        }
        Value::Array(items) => items.iter_mut().for_each(retarget),
        _ => {}
    }
}

/// `GET /api/sessions` on a cluster: pages across nodes, at most `max_depth` deep, no
/// label filter, and the nodes that did not answer.
fn cluster_listing(get: &mut Value, missing: &Value, max_depth: u64) {
    let max_page = super::api::MAX_PAGE;
    if let Some(Value::Array(params)) = get.get_mut("parameters") {
        params.retain(|p| p["name"] != "label");
        for p in params.iter_mut().filter(|p| p["name"] == "offset") {
            // Any limit may go with any offset the schema allows.
            p["schema"]["maximum"] = json!(max_depth.saturating_sub(max_page));
            p["description"] = json!(format!(
                "offset + limit may be at most {max_depth} on a cluster"
            ));
        }
    }
    get["summary"] = json!("List the sessions of every node, newest first");
    let schema = &mut get["responses"]["200"]["content"]["application/json"]["schema"];
    schema["properties"]["missing_nodes"] = missing.clone();
}

/// The operator routes every node answers for itself, gathered on a cluster: traffic
/// history (a session's from its node, else every node's added up), the periodic sends of
/// every node (global ids), and periodic broadcasts started on every node.
fn cluster_wide_ops(paths: &mut Map<String, Value>, missing: &Value) {
    if let Some(get) = paths.get_mut("/api/rates").and_then(|p| p.get_mut("get")) {
        get["summary"] = json!(
            "Traffic per second over the last seconds, from history: one session's (from the node holding it), or every node's added up"
        );
        if let Some(Value::Array(params)) = get.get_mut("parameters") {
            for p in params.iter_mut().filter(|p| p["name"] == "session") {
                p["schema"] = json!({ "type": "string", "pattern": session_ref_pattern() });
                p["description"] =
                    json!("only this session: NODE:ID, or a bare ID for the answering node's own");
            }
        }
        if let Some(schema) = ok_schema(get) {
            schema["properties"]["missing_nodes"] = missing.clone();
        }
    }
    if let Some(get) = paths
        .get_mut("/api/periodic")
        .and_then(|p| p.get_mut("get"))
    {
        get["summary"] =
            json!("The periodic sends running on every node, oldest first (ids NODE:ID)");
        retarget(get);
        if let Some(schema) = ok_schema(get) {
            schema["properties"]["missing_nodes"] = missing.clone();
        }
    }
    if let Some(post) = paths
        .get_mut("/api/broadcast/periodic")
        .and_then(|p| p.get_mut("post"))
    {
        post["summary"] = json!(
            "Start a periodic broadcast on every node, each to its own online sessions (optionally of one listener number on each); the answer is the first started one, with every started one in periodic, refusals in errors"
        );
        retarget(post);
        if let Some(created) = post
            .get_mut("responses")
            .and_then(|r| r.get_mut("201"))
            .and_then(|r| r.get_mut("content"))
            .and_then(|c| c.get_mut("application/json"))
        {
            created["schema"] = json!({ "allOf": [
                { "$ref": "#/components/schemas/ClusterPeriodic" },
                { "type": "object", "properties": {
                    "periodic": { "type": "array", "items": { "$ref": "#/components/schemas/ClusterPeriodic" } },
                    "errors": { "type": "array", "items": { "type": "object", "properties": {
                        "node": { "type": "string" }, "status": { "type": "integer" },
                        "error": { "type": "string", "nullable": true } } } },
                    "missing_nodes": missing } } ] });
        }
    }
}

/// The schema of an operation's 200 answer.
fn ok_schema(op: &mut Value) -> Option<&mut Value> {
    op.get_mut("responses")?
        .get_mut("200")?
        .get_mut("content")?
        .get_mut("application/json")?
        .get_mut("schema")
}

/// `GET /api/cluster`.
fn cluster_path() -> Value {
    let node = json!({ "type": "object", "properties": {
        "node": { "type": "string" },
        "http": { "type": "string", "description": "its dashboard and API address" },
        "self": { "type": "boolean", "description": "the node answering" },
        "reachable": { "type": "boolean" },
        "online": { "type": "integer", "description": "its online sessions" } } });
    let mut body = Map::new();
    body.insert("node".into(), json!({ "type": "string" }));
    body.insert(
        "connected".into(),
        json!({ "type": "boolean",
        "description": "whether this node is connected to NATS" }),
    );
    body.insert("events_published".into(), json!({ "type": "integer" }));
    body.insert(
        "events_skipped".into(),
        json!({ "type": "integer",
        "description": "events this node could not send to the others (they are in its history)" }),
    );
    body.insert("nodes".into(), json!({ "type": "array", "items": node }));
    json!({ "get": {
        "summary": "The nodes of the cluster and whether each answers",
        "responses": ok(json!({ "type": "object", "properties": Value::Object(body) }), &["401"]) } })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every session route takes a global id and answers with global ids; other routes
    /// keep the single node's integers.
    #[test]
    fn cluster_routes_have_global_ids() {
        let doc = spec(2000);
        let text = doc["paths"]["/api/sessions/{id}/send"].to_string();
        assert!(text.contains(&session_ref_pattern()), "{text}");
        let get = &doc["paths"]["/api/sessions/{id}"]["get"];
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ClusterSession"
        );
        let messages = doc["paths"]["/api/sessions/{id}/messages"]["get"].to_string();
        assert!(messages.contains("ClusterMessage"), "{messages}");
        let session = &doc["components"]["schemas"]["ClusterSession"]["properties"];
        assert_eq!(session["id"]["type"], "string");
        assert_eq!(session["node"]["type"], "string");
        assert!(doc["paths"]["/api/cluster"]["get"].is_object());
        let listing = doc["paths"]["/api/sessions"]["get"]["parameters"].to_string();
        assert!(!listing.contains("\"label\""), "{listing}");
        // A route that stays local keeps the node's own ids.
        let connect = doc["paths"]["/api/connect"].to_string();
        assert!(
            connect.contains("#/components/schemas/Session\""),
            "{connect}"
        );
        let pattern = regex::Regex::new(&session_ref_pattern()).unwrap();
        assert!(pattern.is_match("a:17") && pattern.is_match("17"));
        assert!(!pattern.is_match("a:b:1") && !pattern.is_match("a:") && !pattern.is_match(""));
    }
}

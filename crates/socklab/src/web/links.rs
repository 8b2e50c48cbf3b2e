//! The OpenAPI `links` of the document: which answer gives the id another route takes
//! (a session listing gives the `{id}` of every session route, a started periodic send the
//! `{id}` that stops it, a saved snippet the `{name}` that deletes it). Clients and
//! schema-driven tools follow them to chain calls on things that exist.
//!
//! [`add`] runs once the whole document is built, so the routes every module describes
//! under an id prefix are linked without each module listing its neighbours.

use serde_json::{Map, Value, json};

/// One producer of an id: the response (`method path status`) whose body holds it at
/// `pointer`, and the route prefix whose `{param}` takes it.
struct Producer {
    method: &'static str,
    path: &'static str,
    status: &'static str,
    pointer: &'static str,
    target_prefix: &'static str,
    param: &'static str,
}

const PRODUCERS: &[Producer] = &[
    Producer {
        method: "get",
        path: "/api/sessions",
        status: "200",
        pointer: "/sessions/0/id",
        target_prefix: "/api/sessions/{id}",
        param: "id",
    },
    Producer {
        method: "get",
        path: "/api/sessions/{id}",
        status: "200",
        pointer: "/id",
        target_prefix: "/api/sessions/{id}",
        param: "id",
    },
    Producer {
        method: "get",
        path: "/api/listeners",
        status: "200",
        pointer: "/listeners/0/id",
        target_prefix: "/api/listeners/{id}",
        param: "id",
    },
    Producer {
        method: "put",
        path: "/api/sessions/{id}/label",
        status: "200",
        pointer: "/id",
        target_prefix: "/api/sessions/{id}",
        param: "id",
    },
    Producer {
        method: "post",
        path: "/api/connect",
        status: "200",
        pointer: "/id",
        target_prefix: "/api/sessions/{id}",
        param: "id",
    },
    Producer {
        method: "post",
        path: "/api/listeners",
        status: "200",
        pointer: "/id",
        target_prefix: "/api/listeners/{id}",
        param: "id",
    },
    Producer {
        method: "post",
        path: "/api/sessions/{id}/periodic",
        status: "201",
        pointer: "/id",
        target_prefix: "/api/periodic/{id}",
        param: "id",
    },
    Producer {
        method: "post",
        path: "/api/sessions/{id}/periodic",
        status: "201",
        pointer: "/session_id",
        target_prefix: "/api/sessions/{id}",
        param: "id",
    },
    Producer {
        method: "post",
        path: "/api/broadcast/periodic",
        status: "201",
        pointer: "/id",
        target_prefix: "/api/periodic/{id}",
        param: "id",
    },
    Producer {
        method: "get",
        path: "/api/periodic",
        status: "200",
        pointer: "/periodic/0/id",
        target_prefix: "/api/periodic/{id}",
        param: "id",
    },
    Producer {
        method: "post",
        path: "/api/snippets",
        status: "201",
        pointer: "/name",
        target_prefix: "/api/snippets/{name}",
        param: "name",
    },
    Producer {
        method: "post",
        path: "/api/snippets",
        status: "200",
        pointer: "/name",
        target_prefix: "/api/snippets/{name}",
        param: "name",
    },
    Producer {
        method: "get",
        path: "/api/snippets",
        status: "200",
        pointer: "/snippets/0/name",
        target_prefix: "/api/snippets/{name}",
        param: "name",
    },
];

/// The JSON Pointer escaping of one reference token (`~` then `/`).
fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A link name from a method and path: `post_sessions_id_send`.
fn link_name(method: &str, path: &str) -> String {
    let mut name = method.to_string();
    for part in path.trim_start_matches("/api").split('/') {
        let part: String = part.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if !part.is_empty() {
            name.push('_');
            name.push_str(&part);
        }
    }
    name
}

/// Every operation of `paths` at `prefix` or below it, but `skip`: `(path, method)`.
fn operations_under(
    paths: &Map<String, Value>,
    prefix: &str,
    skip: (&str, &str),
) -> Vec<(String, String)> {
    let below = format!("{prefix}/");
    let mut out = Vec::new();
    for (path, item) in paths {
        if path != prefix && !path.starts_with(&below) {
            continue;
        }
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in item.keys() {
            if (path.as_str(), method.as_str()) != skip {
                out.push((path.clone(), method.clone()));
            }
        }
    }
    out
}

/// Adds the links of every producer to the document's responses.
pub(super) fn add(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object().cloned() else {
        return;
    };
    for p in PRODUCERS {
        let response = &mut doc["paths"][p.path][p.method]["responses"][p.status];
        if !response.is_object() {
            continue;
        }
        for (path, method) in operations_under(&paths, p.target_prefix, (p.path, p.method)) {
            let name = link_name(&method, &path);
            response["links"][name] = json!({
                "operationRef": format!("#/paths/{}/{method}", escape_token(&path)),
                "parameters": { p.param: format!("$response.body#{}", p.pointer) },
                "description": format!("{} from this answer's {}", p.param, p.pointer),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every link names an operation of the document and a parameter it takes.
    #[test]
    fn links_point_at_described_operations() {
        let doc = super::super::openapi::spec();
        let mut count = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    let Some(links) = response.get("links") else {
                        continue;
                    };
                    for (name, link) in links.as_object().unwrap() {
                        let target = link["operationRef"].as_str().unwrap();
                        let rest = target.strip_prefix("#/paths/").unwrap();
                        let (tpath, tmethod) = rest.rsplit_once('/').unwrap();
                        let tpath = tpath.replace("~1", "/").replace("~0", "~");
                        let op = &doc["paths"][&tpath][tmethod];
                        assert!(
                            op.is_object(),
                            "{method} {path} {status} {name} -> {target}"
                        );
                        for param in link["parameters"].as_object().unwrap().keys() {
                            let takes = op["parameters"].as_array().unwrap().iter();
                            assert!(
                                takes
                                    .clone()
                                    .any(|t| t["name"] == *param && t["in"] == "path"),
                                "{target} takes no path parameter {param}"
                            );
                        }
                        count += 1;
                    }
                }
            }
        }
        assert!(count > 10, "only {count} links");
        let stop = &doc["paths"]["/api/sessions/{id}/periodic"]["post"]["responses"]["201"]["links"]
            ["delete_periodic_id"];
        assert_eq!(stop["parameters"]["id"], "$response.body#/id");
        assert_eq!(stop["operationRef"], "#/paths/~1api~1periodic~1{id}/delete");
        // Routes described by any module are linked, the ones added at run time included.
        let added = &doc["paths"]["/api/listeners"]["post"]["responses"]["200"]["links"];
        assert_eq!(
            added["delete_listeners_id"]["operationRef"],
            "#/paths/~1api~1listeners~1{id}/delete"
        );
        let listed = &doc["paths"]["/api/sessions"]["get"]["responses"]["200"]["links"];
        assert_eq!(
            listed["put_sessions_id_label"]["parameters"]["id"],
            "$response.body#/sessions/0/id"
        );
        let connected = &doc["paths"]["/api/connect"]["post"]["responses"]["200"]["links"];
        assert!(connected["post_sessions_id_send"].is_object());
    }
}

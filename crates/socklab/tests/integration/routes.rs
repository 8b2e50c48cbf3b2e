//! Every HTTP route through `oneshot`, with every error status: 400, 401, 403, 404, 409.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{HOST, TestServer, online_device, request};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tower::ServiceExt;

/// One request; returns the status, the content type and the body (JSON when it parses).
async fn call(
    server: &TestServer,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, String, Value) {
    let body = body.map(|b| b.as_bytes().to_vec());
    request(server, method, uri, body, headers).await
}

/// The online listing pages newest first and counts every online session in `total`.
#[tokio::test]
async fn online_listing_pages_newest_first() {
    let server = TestServer::start(|_| {}).await;
    let mut devices = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (device, id) = online_device(&server).await;
        devices.push(device);
        ids.push(id);
    }
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let page = |offset: u64| {
        let server = &server;
        async move {
            let uri = format!("/api/sessions?state=online&limit=2&offset={offset}");
            let (s, _, v) = call(server, "GET", &uri, None, &[]).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v["total"].as_u64(), Some(3));
            let listed: Vec<u64> = v["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_u64().unwrap())
                .collect();
            listed
        }
    };
    assert_eq!(page(0).await, ids[..2]);
    assert_eq!(page(2).await, ids[2..]);
    assert!(page(3).await.is_empty());
    drop(devices);
    server.stop().await;
}

/// Session routes: list, one, messages, send, close, with their errors.
#[tokio::test]
async fn session_routes() {
    let server = TestServer::start(|_| {}).await;
    let (mut device, id) = online_device(&server).await;

    let (s, _, v) = call(&server, "GET", "/api/sessions", None, &[]).await;
    assert_eq!((s, v["total"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(v["sessions"][0]["online"], json!(true));
    let (s, _, v) = call(
        &server,
        "GET",
        "/api/sessions?state=online&limit=5&offset=0",
        None,
        &[],
    )
    .await;
    assert_eq!(
        (s, v["sessions"][0]["id"].as_u64()),
        (StatusCode::OK, Some(id))
    );
    for bad in [
        "state=nope",
        "limit=0",
        "limit=1001",
        "offset=-1",
        "limit=x",
    ] {
        let (s, _, v) = call(&server, "GET", &format!("/api/sessions?{bad}"), None, &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(v["error"].is_string());
    }

    let (s, _, v) = call(&server, "GET", &format!("/api/sessions/{id}"), None, &[]).await;
    assert_eq!((s, v["proto"].as_str()), (StatusCode::OK, Some("tcp")));
    let (s, _, _) = call(&server, "GET", "/api/sessions/999", None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = call(&server, "GET", "/api/sessions/abc", None, &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let send = format!("/api/sessions/{id}/send");
    let (s, _, v) = call(&server, "POST", &send, Some(r#"{"text":"hi\r\n"}"#), &[]).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"bytes": 4})));
    let (s, _, v) = call(&server, "POST", &send, Some(r#"{"hex":"00ff"}"#), &[]).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"bytes": 2})));
    let mut got = [0u8; 6];
    device.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hi\r\n\x00\xff");
    for bad in [
        r#"{"hex":"zz"}"#,
        r#"{"hex":"abc"}"#,
        "not json",
        r#"{"text":"a","hex":"00"}"#,
        "{}",
        r#"{"text":""}"#,
    ] {
        let (s, _, v) = call(&server, "POST", &send, Some(bad), &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(v["error"].as_str().unwrap().len() > 5);
    }
    let (s, _, _) = call(
        &server,
        "POST",
        "/api/sessions/999/send",
        Some(r#"{"text":"x"}"#),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _, v) = call(
        &server,
        "GET",
        &format!("/api/sessions/{id}/messages?since_ms=0&limit=10"),
        None,
        &[],
    )
    .await;
    assert_eq!((s, v["total"].as_u64()), (StatusCode::OK, Some(2)));
    assert_eq!(v["messages"][0]["text"], json!("hi\r\n"));
    assert_eq!(v["messages"][1]["hex"], json!("00ff"));
    let (s, _, _) = call(&server, "GET", "/api/sessions/999/messages", None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let close = format!("/api/sessions/{id}/close");
    let (s, _, v) = call(&server, "POST", &close, None, &[]).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"closed": true})));
    let (s, _, v) = call(&server, "GET", &format!("/api/sessions/{id}"), None, &[]).await;
    assert_eq!(v["end_reason"], json!("closed_by_operator"));
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&server, "POST", &close, None, &[]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, v) = call(&server, "POST", &send, Some(r#"{"text":"x"}"#), &[]).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _, _) = call(&server, "POST", "/api/sessions/999/close", None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Broadcast and listener routes, with their errors.
#[tokio::test]
async fn broadcast_and_listener_routes() {
    let server = TestServer::start(|_| {}).await;
    let (mut device, _) = online_device(&server).await;
    let (s, _, v) = call(
        &server,
        "POST",
        "/api/broadcast",
        Some(r#"{"text":"all"}"#),
        &[],
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"sessions": 1, "bytes": 3})));
    let mut got = [0u8; 3];
    device.read_exact(&mut got).await.unwrap();
    let (s, _, _) = call(
        &server,
        "POST",
        "/api/broadcast",
        Some(r#"{"text":"x","listener_id":7}"#),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = call(
        &server,
        "POST",
        "/api/broadcast",
        Some(r#"{"hex":"0g"}"#),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, _, v) = call(&server, "GET", "/api/listeners", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["listeners"].as_array().unwrap().len(), 2);
    assert_eq!(v["listeners"][0]["online"], json!(1));
    assert_eq!(v["listeners"][1]["proto"], json!("udp"));

    let (s, _, v) = call(
        &server,
        "PUT",
        "/api/listeners/0/echo",
        Some(r#"{"enabled":true}"#),
        &[],
    )
    .await;
    assert_eq!((s, &v["echo"]), (StatusCode::OK, &json!(true)));
    let (s, _, _) = call(
        &server,
        "PUT",
        "/api/listeners/5/echo",
        Some(r#"{"enabled":true}"#),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = call(
        &server,
        "PUT",
        "/api/listeners/0/echo",
        Some(r#"{"enabled":"yes"}"#),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let rules = r#"{"rules":[{"match":"regex","pattern":"^AT","reply_text":"OK\r\n"},
                             {"match":"hex","pattern":"ff","reply_hex":"00"}]}"#;
    let (s, _, v) = call(
        &server,
        "PUT",
        "/api/listeners/0/auto-replies",
        Some(rules),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["auto_replies"][0]["reply_text"], json!("OK\r\n"));
    assert_eq!(v["auto_replies"][1]["match"], json!("hex"));
    let bad = r#"{"rules":[{"match":"regex","pattern":"(","reply_text":"x"}]}"#;
    let (s, _, v) = call(
        &server,
        "PUT",
        "/api/listeners/0/auto-replies",
        Some(bad),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("regex"));
    let (s, _, _) = call(
        &server,
        "PUT",
        "/api/listeners/9/auto-replies",
        Some(r#"{"rules":[]}"#),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Dashboard, assets, event stream, OpenAPI, metrics and unknown routes.
#[tokio::test]
async fn pages_stream_docs_metrics() {
    let server = TestServer::start(|_| {}).await;
    let (s, ctype, v) = call(&server, "GET", "/", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ctype.starts_with("text/html"));
    let page = server
        .router
        .clone()
        .oneshot(
            Request::get("/")
                .header(header::HOST, HOST)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(v.as_str().unwrap().contains("<html"));
    for (path, kind) in [
        ("/assets/main.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let (s, ctype, _) = call(&server, "GET", path, None, &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(ctype.starts_with(kind));
    }
    let (s, ctype, _) = call(&server, "GET", "/api/events", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ctype.starts_with("text/event-stream"));

    let (s, _, doc) = call(&server, "GET", "/api/openapi.json", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], json!("3.0.3"));
    for path in [
        "/api/sessions",
        "/api/sessions/{id}",
        "/api/sessions/{id}/messages",
        "/api/sessions/{id}/send",
        "/api/sessions/{id}/close",
        "/api/broadcast",
        "/api/listeners",
        "/api/listeners/{id}/echo",
        "/api/listeners/{id}/auto-replies",
        "/api/events",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let mut enums = Vec::new();
    collect_enums(&doc, "", &mut enums);
    assert!(enums.len() > 5, "the document should list its enums");
    for (at, values) in enums {
        let mut seen = std::collections::HashSet::new();
        for v in values {
            assert!(seen.insert(v.to_string()), "{v} twice in the enum at {at}");
        }
    }
    let end_reasons = &doc["components"]["schemas"]["Session"]["properties"]["end_reason"]["enum"];
    for reason in socklab::model::EndReason::ALL {
        assert!(
            end_reasons
                .as_array()
                .unwrap()
                .contains(&json!(reason.as_str())),
            "{reason} missing from Session.end_reason"
        );
    }
    let (s, ctype, v) = call(&server, "GET", "/metrics", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ctype.starts_with("text/plain"));
    assert!(v.as_str().unwrap().contains("socklab_sessions_online 0"));
    let (s, _, v) = call(&server, "GET", "/nope", None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].is_string());
    server.stop().await;
}

/// Every `enum` list in an OpenAPI document, with where it is.
fn collect_enums<'a>(v: &'a Value, at: &str, out: &mut Vec<(String, &'a Vec<Value>)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("enum", Value::Array(values)) => out.push((at.to_string(), values)),
                    _ => collect_enums(child, &format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_enums(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// With a token every protected route needs it (header or query); assets do not.
#[tokio::test]
async fn token_required() {
    let server = TestServer::start(|c| c.token = Some("s3cret".into())).await;
    for path in [
        "/",
        "/api/sessions",
        "/api/events",
        "/api/openapi.json",
        "/metrics",
    ] {
        let (s, _, v) = call(&server, "GET", path, None, &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert!(v["error"].as_str().unwrap().contains("token"));
        let (s, _, _) = call(
            &server,
            "GET",
            path,
            None,
            &[("authorization", "Bearer nope")],
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        let (s, _, _) = call(
            &server,
            "GET",
            path,
            None,
            &[("authorization", "Bearer s3cret")],
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{path}");
        let (s, _, _) = call(&server, "GET", &format!("{path}?token=s3cret"), None, &[]).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
    let (s, _, _) = call(
        &server,
        "POST",
        "/api/broadcast",
        Some(r#"{"text":"x"}"#),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(&server, "GET", "/assets/main.js", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    // A path that is no route is 404 whether or not the token comes with it.
    let (s, ctype, _) = call(&server, "GET", "/api/no-such-route", None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(ctype.starts_with("application/json"), "{ctype}");
    server.stop().await;
}

/// The dashboard's ES modules are served from the embedded table; other names are 404.
#[tokio::test]
async fn module_assets() {
    let server = TestServer::start(|_| {}).await;
    let (s, ctype, body) = call(&server, "GET", "/assets/events.js", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ctype.starts_with("text/javascript"));
    assert!(body.as_str().unwrap().contains("export function connect"));
    let (s, _, main) = call(&server, "GET", "/assets/main.js", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(main.as_str().unwrap().contains("from './events.js'"));
    for path in [
        "/assets/nope.js",
        "/assets/app.js",
        "/assets/index.html",
        "/assets/..%2Fsrc%2Fmain.rs",
    ] {
        let (s, _, body) = call(&server, "GET", path, None, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert!(body["error"].is_string(), "{path}");
    }
    server.stop().await;
}

/// State-changing calls from a foreign Origin are refused; same-origin and reads are not.
#[tokio::test]
async fn foreign_origin_refused() {
    let server = TestServer::start(|_| {}).await;
    let body = Some(r#"{"text":"x"}"#);
    for origin in ["http://evil.example", "null", "http://127.0.0.1:8080.evil"] {
        let (s, _, v) = call(
            &server,
            "POST",
            "/api/broadcast",
            body,
            &[("origin", origin)],
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{origin}");
        assert!(v["error"].as_str().unwrap().contains("cross-origin"));
    }
    let (s, _, _) = call(
        &server,
        "PUT",
        "/api/listeners/0/echo",
        Some(r#"{"enabled":true}"#),
        &[("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = call(
        &server,
        "POST",
        "/api/broadcast",
        body,
        &[("origin", "http://127.0.0.1:8080")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(
        &server,
        "GET",
        "/api/sessions",
        None,
        &[("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    server.stop().await;
}

/// Without a token, a Host that is not loopback is refused (DNS rebinding); with a token
/// (which a rebinding page cannot know) any Host is accepted.
#[tokio::test]
async fn foreign_host_refused_without_token() {
    let server = TestServer::start(|_| {}).await;
    let (s, _, v) = call(
        &server,
        "GET",
        "/api/sessions",
        None,
        &[("host", "evil.example:8080")],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v["error"].as_str().unwrap().contains("rebinding"));
    let (s, _, _) = call(
        &server,
        "GET",
        "/api/sessions",
        None,
        &[("host", "localhost:8080")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    server.stop().await;
    let server = TestServer::start(|c| c.token = Some("t".into())).await;
    let headers = [
        ("host", "socklab.example:8080"),
        ("authorization", "Bearer t"),
    ];
    let (s, _, _) = call(&server, "GET", "/api/sessions", None, &headers).await;
    assert_eq!(s, StatusCode::OK);
    server.stop().await;
}

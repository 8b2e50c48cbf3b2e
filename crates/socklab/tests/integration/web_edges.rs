//! The HTTP and process edges a hostile or unlucky client reaches: the database lock under other names, the
//! JSON error body of every failure, page offsets past SQLite's range, a stalled database,
//! slow HTTP clients and stalled event-stream subscribers.

use crate::common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{TestServer, WAIT, online_device, request};
use serde_json::Value;
use socklab::store::{Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// One request through the router; returns the status, the content type and the body
/// (JSON when it parses, else a JSON string).
async fn call(
    server: &TestServer,
    method: &str,
    uri: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, String, Value) {
    request(server, method, uri, body, &[]).await
}

/// Asserts the documented error body: JSON `{"error": "<non-empty message>"}`.
fn assert_error_body(what: &str, ctype: &str, body: &Value) {
    assert!(
        ctype.starts_with("application/json"),
        "{what}: content type {ctype:?}, body {body}"
    );
    let message = body["error"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{what}: body {body}");
}

/// A symlink or a hard link to a database in use is the same database: refused.
#[tokio::test]
async fn database_lock_covers_symlinks_and_hard_links() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("socklab.db");
    let first = Store::open(&db, None).unwrap();
    let symlink = dir.path().join("via-symlink.db");
    std::os::unix::fs::symlink(&db, &symlink).unwrap();
    let hard = dir.path().join("via-hardlink.db");
    std::fs::hard_link(&db, &hard).unwrap();
    for other in [&db, &symlink, &hard] {
        match Store::open(other, None) {
            Err(StoreError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            Err(e) => panic!("{}: unexpected error {e}", other.display()),
            Ok(_) => panic!("{} opened while the database is in use", other.display()),
        }
    }
    first.close().await;
    let again = Store::open(&hard, None).expect("the lock goes with close");
    again.close().await;
}

/// 405, 413 and an undecodable path id answer with the JSON error body, like every error.
#[tokio::test]
async fn every_error_has_the_json_body() {
    let server = TestServer::start(|_| {}).await;
    let (status, ctype, body) = call(&server, "DELETE", "/api/sessions", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_body("405", &ctype, &body);
    let big = format!("{{\"text\": \"{}\"}}", "a".repeat(3 * 1024 * 1024));
    let (status, ctype, body) = call(&server, "POST", "/api/broadcast", Some(big.into())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error_body("413", &ctype, &body);
    let (status, ctype, body) = call(&server, "GET", "/api/sessions/%FF", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body("undecodable id", &ctype, &body);
    let (status, ctype, body) = call(&server, "GET", "/api/sessions/-1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body("negative id", &ctype, &body);
    let (status, ctype, body) = call(&server, "PUT", "/api/listeners/0/link", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body("empty link body", &ctype, &body);
    server.stop().await;
}

/// A database failure is a 500 whose body does not reveal where the database lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_error_hides_the_database_path() {
    let server = TestServer::start(|_| {}).await;
    let (_device, id) = online_device(&server).await;
    let db = server.dir.path().join("socklab.db");
    server.hub.store().flush().await;
    let vandal = rusqlite::Connection::open(&db).unwrap();
    vandal.execute_batch("DROP TABLE messages").unwrap();
    drop(vandal);
    let (status, ctype, body) = call(
        &server,
        "GET",
        &format!("/api/sessions/{id}/messages"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_error_body("500", &ctype, &body);
    let text = body.to_string();
    let dir = server.dir.path().to_string_lossy().into_owned();
    assert!(
        !text.contains(&dir) && !text.contains("socklab.db"),
        "{text}"
    );
    server.stop().await;
}

/// An offset past SQLite's signed 64-bit range is refused, not wrapped to the first page;
/// the largest valid offset gives an empty page.
#[tokio::test]
async fn huge_offset_is_refused_not_wrapped() {
    let server = TestServer::start(|_| {}).await;
    let (_device, id) = online_device(&server).await;
    let max = i64::MAX as u64;
    for path in [
        format!("/api/sessions?offset={}", max + 1),
        format!("/api/sessions?offset={}", u64::MAX),
        format!("/api/sessions/{id}/messages?offset={}", max + 1),
    ] {
        let (status, ctype, body) = call(&server, "GET", &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_error_body(&path, &ctype, &body);
    }
    let (status, _, body) =
        call(&server, "GET", &format!("/api/sessions?offset={max}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sessions"], Value::Array(vec![]));
    assert_eq!(body["total"], 1);
    server.stop().await;
}

/// While the database cannot write (here another process holds its write lock, as a full
/// disk would stall it), history routes answer 503 with a reason instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_database_gives_503_not_a_hang() {
    let server = TestServer::start(|c| {
        c.http_limits.store_timeout = Duration::from_millis(300);
    })
    .await;
    let db = server.dir.path().join("socklab.db");
    server.hub.store().flush().await;
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    // A new device: its session start waits for the writer.
    let (_device, id) = online_device(&server).await;
    for path in [
        "/api/sessions".to_string(),
        format!("/api/sessions/{id}/messages"),
        format!("/api/sessions/{}", id + 1000),
    ] {
        let (status, ctype, body) = call(&server, "GET", &path, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_error_body(&path, &ctype, &body);
        assert!(
            body["error"].as_str().unwrap().contains("database"),
            "{body}"
        );
    }
    // The live session itself is answered from memory.
    let (status, _, body) = call(&server, "GET", &format!("/api/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    blocker.execute_batch("ROLLBACK").unwrap();
    let (status, _, body) = call(&server, "GET", "/api/sessions", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    server.stop().await;
}

/// Reads until the server closes the connection (EOF or reset).
async fn until_closed(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server kept the connection open");
}

/// A client that never finishes its request header is disconnected after the header
/// timeout, without a token ever being checked.
#[tokio::test]
async fn partial_request_header_times_out() {
    let server = TestServer::start(|c| {
        c.token = Some("0123456789abcdef0123".into());
        c.http_limits.header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut slow = TcpStream::connect(server.addrs.http).await.unwrap();
    slow.write_all(b"GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    until_closed(&mut slow).await;
    server.stop().await;
}

/// An event-stream client with a tiny receive buffer that never reads.
async fn stalled_subscriber(server: &TestServer) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.addrs.http).await.unwrap();
    stream
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    stream
}

/// Has one UDP device send 4000-byte datagrams until socklab has received `count` of them:
/// each is a `data` event of about 12 KB on every event stream. Paced in small batches so
/// the listener's socket buffer does not overflow.
async fn flood_events(server: &TestServer, count: u64) {
    let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let payload = vec![b'x'; 4000];
    let start = bytes_up(server).await;
    let target = start + count * payload.len() as u64;
    tokio::time::timeout(WAIT, async {
        while bytes_up(server).await < target {
            for _ in 0..16 {
                device.send_to(&payload, server.udp()).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("socklab did not receive the datagrams");
}

/// Bytes received from devices so far, from `/metrics`.
async fn bytes_up(server: &TestServer) -> u64 {
    let (_, _, body) = call(server, "GET", "/metrics", None).await;
    metric(
        body.as_str().unwrap_or(""),
        "socklab_bytes_total{direction=\"up\"}",
    )
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

/// A subscriber that stops reading is cut off (its connection dropped) instead of being
/// kept forever, and the cut is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_event_stream_is_cut_off() {
    let server = TestServer::start(|c| {
        c.http_limits.sse_stall_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stalled = stalled_subscriber(&server).await;
    let cut = tokio::time::timeout(WAIT, async {
        loop {
            flood_events(&server, 200).await;
            let (_, _, body) = call(&server, "GET", "/metrics", None).await;
            let text = body.as_str().unwrap_or("").to_string();
            if metric(&text, "socklab_event_streams_cut_off_total") >= 1 {
                return metric(&text, "socklab_event_streams");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the stalled subscriber was never cut off");
    assert_eq!(cut, 0, "a cut-off stream is not counted as open");
    until_closed(&mut stalled).await;
    server.stop().await;
}

/// Shutdown does not wait for subscribers whose sockets are full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_event_streams_do_not_hold_up_shutdown() {
    let server = TestServer::start(|c| {
        c.http_limits.sse_stall_timeout = Duration::from_secs(3600);
        c.http_limits.shutdown_grace = Duration::from_millis(200);
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(stalled_subscriber(&server).await);
    }
    // About 36 MB per stream: far more than the socket buffers and hyper's can hold.
    flood_events(&server, 3000).await;
    server.stop().await;
    drop(stalled);
}

//! Test harness: a socklab server from `run`'s building blocks on loopback port 0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use socklab::hub::Hub;
use socklab::model::Event;
use socklab::{BoundAddrs, Config, Server};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// Upper bound for any single wait, so a bug fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running server and what tests need to drive it.
pub struct TestServer {
    /// Bound addresses.
    pub addrs: BoundAddrs,
    /// The server's hub.
    pub hub: Arc<Hub>,
    /// The server's router (same hub), for `oneshot`.
    pub router: axum::Router,
    /// Keeps the database directory alive.
    pub dir: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the test defaults, adjusted by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_in(dir, tweak).await
    }

    /// Starts a server whose database lives in `dir` (to restart on the same history).
    pub async fn start_in(
        dir: Arc<tempfile::TempDir>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = Config::for_test(&dir.path().join("socklab.db"));
        tweak(&mut config);
        let server = Server::bind(config).await.unwrap();
        let addrs = server.addrs();
        let hub = server.hub();
        let router = server.router();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            addrs,
            hub,
            router,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The first TCP listener.
    pub fn tcp(&self) -> SocketAddr {
        self.addrs.tcp[0]
    }

    /// The first UDP listener.
    pub fn udp(&self) -> SocketAddr {
        self.addrs.udp[0]
    }

    /// Shuts down and waits until `run` has returned (store flushed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("run did not return")
                .unwrap();
        }
    }
}

/// Waits for the next event matching `pick`, skipping others.
pub async fn next_event<T>(
    rx: &mut broadcast::Receiver<Arc<Event>>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = rx.recv().await.expect("event stream ended");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("event did not come")
}

/// The Host header of every request unless a test gives its own (a loopback address, as a
/// browser on the machine sends).
pub const HOST: &str = "127.0.0.1:8080";

/// One request through the router, answered within [`WAIT`]: the status, the content type
/// and the body (JSON when it parses, else a JSON string; `Null` for an event stream, whose
/// body never ends).
pub async fn request(
    server: &TestServer,
    method: &str,
    uri: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> (StatusCode, String, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header(header::HOST, HOST);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = tokio::time::timeout(WAIT, server.router.clone().oneshot(req))
        .await
        .expect("the API did not answer")
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    if ctype.starts_with("text/event-stream") {
        return (status, ctype, Value::Null);
    }
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, ctype, value)
}

/// The id of a session coming online, for [`next_event`].
pub fn online_id(e: &Event) -> Option<u64> {
    match e {
        Event::Online(s) => Some(s.id),
        _ => None,
    }
}

/// Sends 1 MiB blocks to a device that does not read until socklab refuses (busy).
pub async fn fill_until_busy(server: &TestServer, id: u64) {
    let block = bytes::Bytes::from(vec![0u8; 1024 * 1024]);
    let busy = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = server.hub.send(id, block.clone()).await {
                return e;
            }
        }
    })
    .await
    .expect("sends never pushed back");
    assert_eq!(busy, socklab::hub::ActionError::Busy(id));
}

/// Connects a TCP device to the server's first listener; returns it with its session id
/// once the session is online.
pub async fn online_device(server: &TestServer) -> (TcpStream, u64) {
    let mut events = server.hub.subscribe();
    let device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, |e| match e {
        Event::Online(s) => Some(s.id),
        _ => None,
    })
    .await;
    (device, id)
}

//! Client mode and run-time listeners against real loopback sockets: socklab connecting to
//! a device that is the server (TCP and UDP), listeners added and removed while it runs,
//! their errors, the HTTP routes, and listener ids across a restart.

use crate::common;

use std::sync::Arc;

use axum::http::StatusCode;
use bytes::Bytes;
use common::{TestServer, WAIT, next_event, request};
use serde_json::{Value, json};
use socklab::hub::connect::ConnectRequest;
use socklab::hub::listeners::{ListenRequest, ListenerSettings, OpenError};
use socklab::model::{EndReason, Event, ListenerKind, Proto};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("device read timed out")
        .unwrap();
    buf
}

/// One JSON request through the router; returns the status and the body.
async fn call(
    server: &TestServer,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let body = body.map(|b| b.to_string().into_bytes());
    let json = [("content-type", "application/json")];
    let (status, _, value) = request(server, method, uri, body, &json).await;
    (status, value)
}

/// An outgoing TCP session carries data both ways with echo, shows as outgoing, and an
/// operator close reaches the device as an orderly EOF; its listener entry then goes away.
#[tokio::test]
async fn outgoing_tcp_session() {
    let server = TestServer::start(|_| {}).await;
    let device = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut req = ConnectRequest::new(Proto::Tcp, device.local_addr().unwrap().to_string());
    req.first = Some(Bytes::from_static(b"HELLO\r\n"));
    req.settings = ListenerSettings {
        echo: true,
        ..Default::default()
    };
    let (session, accepted) = tokio::join!(server.hub.connect(req), device.accept());
    let session = session.unwrap();
    let (mut dev, from) = accepted.unwrap();
    assert!(session.outgoing && session.online());
    assert_eq!(session.peer, device.local_addr().unwrap());
    assert_eq!(session.local, from);
    assert_eq!(
        serde_json::to_value(&session).unwrap()["direction"],
        "outgoing"
    );
    assert_eq!(read_exactly(&mut dev, 7).await, b"HELLO\r\n");

    let entry = server
        .hub
        .listeners()
        .into_iter()
        .find(|l| l.id == session.listener_id)
        .expect("the connection has a listener entry");
    assert_eq!(entry.kind, ListenerKind::Outgoing);
    assert_eq!(entry.remote, Some(session.peer.to_string()));

    dev.write_all(b"ping").await.unwrap();
    assert_eq!(
        read_exactly(&mut dev, 4).await,
        b"ping",
        "echo on the connection"
    );
    let mut events = server.hub.subscribe();
    server.hub.close(session.id).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, dev.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    let removed = next_event(&mut events, |e| match e {
        Event::ListenerRemoved(l) => Some(l.id),
        _ => None,
    })
    .await;
    assert_eq!(removed, session.listener_id);
    let store = server.hub.store();
    store.flush().await;
    let stored = store.session(session.id).await.unwrap().unwrap();
    assert!(stored.outgoing);
    assert_eq!(stored.end_reason, Some(EndReason::ClosedByOperator));
    assert_eq!(
        (stored.counters.bytes_up, stored.counters.bytes_down),
        (4, 11)
    );
    server.stop().await;
}

/// Connect errors: refused, not allowed (nothing is sent: refused before any socket),
/// bad targets.
#[tokio::test]
async fn connect_errors() {
    let server = TestServer::start(|_| {}).await;
    // A port that was just free: nothing listens there.
    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = server
        .hub
        .connect(ConnectRequest::new(Proto::Tcp, free.to_string()))
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("refused"));
    let err = server
        .hub
        .connect(ConnectRequest::new(Proto::Tcp, "192.0.2.1:5000"))
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::NotAllowed { .. }), "{err}");
    assert!(err.to_string().contains("--allow-net"));
    let err = server
        .hub
        .connect(ConnectRequest::new(Proto::Udp, "no-port"))
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::BadAddress(_)), "{err}");
    assert!(
        server
            .hub
            .listeners()
            .iter()
            .all(|l| l.kind == ListenerKind::Listen)
    );
    server.stop().await;
}

/// A UDP flow: the first datagram reaches the device, its answer is recorded up, and a
/// close ends the flow.
#[tokio::test]
async fn outgoing_udp_flow() {
    let server = TestServer::start(|_| {}).await;
    let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut req = ConnectRequest::new(Proto::Udp, device.local_addr().unwrap().to_string());
    req.first = Some(Bytes::from_static(b"REG"));
    let session = server.hub.connect(req).await.unwrap();
    assert_eq!(session.proto, Proto::Udp);
    assert!(session.outgoing);
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(WAIT, device.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"REG");
    assert_eq!(from, session.local);
    let mut events = server.hub.subscribe();
    device.send_to(b"ACK", from).await.unwrap();
    let (sid, data) = next_event(&mut events, |e| match e {
        Event::Data(m, s) => Some((s.id, m.data.clone())),
        _ => None,
    })
    .await;
    assert_eq!((sid, &data[..]), (session.id, &b"ACK"[..]));
    server.hub.close(session.id).await.unwrap();
    next_event(&mut events, |e| match e {
        Event::ListenerRemoved(l) if l.id == session.listener_id => Some(()),
        _ => None,
    })
    .await;
    server.stop().await;
}

/// Listeners added at run time serve devices; removing one ends its sessions with
/// `listener_removed` (the TCP device sees EOF) and frees the port.
#[tokio::test]
async fn runtime_listeners() {
    let server = TestServer::start(|_| {}).await;
    let hub = &server.hub;
    let add = |proto| ListenRequest {
        proto,
        addr: "127.0.0.1:0".parse().unwrap(),
        settings: ListenerSettings::default(),
    };
    let tcp = hub.add_listener(add(Proto::Tcp)).await.unwrap();
    let udp = hub.add_listener(add(Proto::Udp)).await.unwrap();
    assert!(
        tcp.id >= 2 && udp.id > tcp.id,
        "ids after the command-line ones"
    );
    let mut events = hub.subscribe();
    let mut dev = TcpStream::connect(&tcp.addr).await.unwrap();
    dev.write_all(b"up").await.unwrap();
    let tcp_session = next_event(&mut events, |e| match e {
        Event::Online(s) if s.listener_id == tcp.id => Some(s.id),
        _ => None,
    })
    .await;
    let udp_dev = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp_dev.send_to(b"u", &udp.addr).await.unwrap();
    let udp_session = next_event(&mut events, |e| match e {
        Event::Online(s) if s.listener_id == udp.id => Some(s.id),
        _ => None,
    })
    .await;

    // The same address again is in use.
    let mut again = add(Proto::Tcp);
    again.addr = tcp.addr.parse().unwrap();
    let err = hub.add_listener(again).await.unwrap_err();
    assert!(matches!(err, OpenError::InUse { .. }), "{err}");

    let (removed, ended) = hub.remove_listener(tcp.id).await.unwrap();
    assert_eq!((removed.id, ended), (tcp.id, 1));
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, dev.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let (_, ended) = hub.remove_listener(udp.id).await.unwrap();
    assert_eq!(ended, 1);
    let store = hub.store();
    store.flush().await;
    for id in [tcp_session, udp_session] {
        let s = store.session(id).await.unwrap().unwrap();
        assert_eq!(
            s.end_reason,
            Some(EndReason::ListenerRemoved),
            "session {id}"
        );
    }
    assert!(
        TcpStream::connect(&tcp.addr).await.is_err(),
        "no longer accepting"
    );
    assert!(matches!(
        hub.remove_listener(tcp.id).await,
        Err(socklab::hub::ActionError::NoListener(_))
    ));
    // The port is free again.
    let mut rebind = add(Proto::Tcp);
    rebind.addr = tcp.addr.parse().unwrap();
    hub.add_listener(rebind).await.unwrap();
    server.stop().await;
}

/// After a restart on the same history, new run-time listeners do not reuse the id of one
/// whose sessions are in the history.
#[tokio::test]
async fn listener_ids_unique_across_restarts() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = TestServer::start_in(dir.clone(), |_| {}).await;
    let l = server
        .hub
        .add_listener(ListenRequest {
            proto: Proto::Tcp,
            addr: "127.0.0.1:0".parse().unwrap(),
            settings: ListenerSettings::default(),
        })
        .await
        .unwrap();
    let mut events = server.hub.subscribe();
    let _dev = TcpStream::connect(&l.addr).await.unwrap();
    next_event(&mut events, |e| matches!(e, Event::Online(_)).then_some(())).await;
    server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let next = server
        .hub
        .add_listener(ListenRequest {
            proto: Proto::Udp,
            addr: "127.0.0.1:0".parse().unwrap(),
            settings: ListenerSettings::default(),
        })
        .await
        .unwrap();
    assert!(
        next.id > l.id,
        "{} reuses an id of the history ({})",
        next.id,
        l.id
    );
    server.stop().await;
}

/// The routes: connect, add and remove listeners, with their error statuses.
#[tokio::test]
async fn routes() {
    let server = TestServer::start(|_| {}).await;
    let device = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = device.local_addr().unwrap().to_string();
    let (answer, _dev) = tokio::join!(
        call(
            &server,
            "POST",
            "/api/connect",
            Some(json!({ "addr": target, "proto": "tcp" }))
        ),
        device.accept()
    );
    let (s, v) = answer;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["direction"].as_str(), v["online"].as_bool()),
        (Some("outgoing"), Some(true))
    );

    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    for (body, status) in [
        (json!({ "addr": free.to_string() }), StatusCode::BAD_GATEWAY),
        (json!({ "addr": "192.0.2.1:9" }), StatusCode::FORBIDDEN),
        (json!({ "addr": "x" }), StatusCode::BAD_REQUEST),
        (
            json!({ "addr": target, "proto": "sctp" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "addr": target, "timeout_ms": 0 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "addr": target, "text": "a", "hex": "62" }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "proto": "tcp" }), StatusCode::BAD_REQUEST),
    ] {
        let (s, v) = call(&server, "POST", "/api/connect", Some(body.clone())).await;
        assert_eq!(s, status, "{body} -> {v}");
        assert!(v["error"].is_string(), "{v}");
    }

    let (s, l) = call(
        &server,
        "POST",
        "/api/listeners",
        Some(json!({ "proto": "udp", "addr": "127.0.0.1:0", "echo": true, "link": "gprs" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(
        (l["kind"].as_str(), l["echo"].as_bool()),
        (Some("listen"), Some(true))
    );
    assert_eq!(l["link"].as_str(), Some("gprs"));
    let used = server.tcp().to_string();
    for (body, status) in [
        (
            json!({ "proto": "tcp", "addr": used }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "proto": "tcp", "addr": "0.0.0.0:0" }),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({ "proto": "tcp", "addr": "somehost:1" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "proto": "tcp", "addr": "127.0.0.1:0", "link": "wifi" }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, v) = call(&server, "POST", "/api/listeners", Some(body.clone())).await;
        assert_eq!(s, status, "{body} -> {v}");
    }
    let (s, v) = call(
        &server,
        "DELETE",
        &format!("/api/listeners/{}", l["id"]),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["removed"]["id"], l["id"]);
    let (s, _) = call(
        &server,
        "DELETE",
        &format!("/api/listeners/{}", l["id"]),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&server, "DELETE", "/api/listeners/abc", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (_, doc) = call(&server, "GET", "/api/openapi.json", None).await;
    assert!(doc["paths"]["/api/connect"]["post"].is_object());
    assert!(doc["paths"]["/api/listeners"]["post"].is_object());
    assert!(doc["paths"]["/api/listeners/{id}"]["delete"].is_object());
    server.stop().await;
}

/// The console's connect, list, listen, listeners and unlisten commands, and their errors.
#[tokio::test]
async fn console_commands() {
    use socklab::console::execute;
    let server = TestServer::start(|_| {}).await;
    let hub = &server.hub;
    let device = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = device.local_addr().unwrap();
    let command = format!("connect {target}");
    let (out, accepted) = tokio::join!(execute(hub, &command), device.accept());
    let _device = accepted.unwrap();
    assert!(
        out.starts_with(&format!("#1 tcp connected to {target} from 127.0.0.1:")),
        "{out}"
    );
    assert!(
        execute(hub, "list")
            .await
            .contains(&format!("{target} (outgoing)"))
    );
    let out = execute(hub, "listen udp 127.0.0.1:0").await;
    assert!(out.starts_with("added listener 3 udp 127.0.0.1:"), "{out}");
    let out = execute(hub, "listeners").await;
    assert!(out.starts_with("4 listener(s)"), "{out}");
    assert!(
        out.contains(&format!("-> {target} (outgoing): 1 online")),
        "{out}"
    );
    let out = execute(hub, "unlisten 3").await;
    assert!(out.starts_with("removed listener 3 udp"), "{out}");
    assert_eq!(execute(hub, "unlisten 3").await, "error: no listener 3");
    assert_eq!(
        execute(hub, "unlisten x").await,
        "error: usage: unlisten ID"
    );
    assert_eq!(
        execute(hub, "listen sctp 1").await,
        "error: usage: listen tcp|udp ADDR"
    );
    let out = execute(hub, "connect 192.0.2.1:1").await;
    assert!(
        out.starts_with("error: 192.0.2.1:1 is not allowed"),
        "{out}"
    );
    let out = execute(hub, "connect nohost").await;
    assert!(out.contains("is not HOST:PORT"), "{out}");
    server.stop().await;
}

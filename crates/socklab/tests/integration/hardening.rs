//! What a hardening review found, each fixed and shown here: data that cannot be delivered
//! is recorded as such, never lost silently; sizes and tables are bounded; injected faults
//! and keepalive end sessions with their own reasons; queries answer while the disk is
//! stalled; history keeps a session's link.

use crate::common;

use std::io::ErrorKind;
use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, WAIT, fill_until_busy, next_event, online_id, request};
use socklab::hub::{ActionError, MAX_UDP_PAYLOAD};
use socklab::link::{Fault, LinkSpec};
use socklab::model::{EndReason, Event, MessageStatus, SessionInfo};
use socklab::store::{STORE_QUEUE_OPS, Store};
use tokio::net::{TcpStream, UdpSocket};

fn offline_of(id: u64) -> impl FnMut(&Event) -> Option<SessionInfo> {
    move |e| match e {
        Event::Offline(s) if s.id == id => Some(s.clone()),
        _ => None,
    }
}

/// The store of a stopped server, reopened.
fn reopen(server_dir: &std::path::Path) -> Store {
    Store::open(&server_dir.join("socklab.db"), None).unwrap()
}

/// Sends accepted for a device that never reads are recorded as undelivered when its
/// session ends, instead of vanishing.
#[tokio::test]
async fn accepted_but_unwritten_sends_are_recorded_undelivered() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let _device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    fill_until_busy(&server, id).await;
    server.hub.close(id).await.unwrap();
    let dir = server.dir.clone();
    server.stop().await;
    let store = reopen(dir.path());
    let (messages, _) = store.messages(id, 0, 1000, 0).await.unwrap();
    let undelivered = messages
        .iter()
        .filter(|m| m.status == MessageStatus::Undelivered)
        .count();
    assert!(undelivered >= 1, "{messages:?}");
    assert!(
        messages
            .iter()
            .all(|m| m.status != MessageStatus::Ok || !m.dropped)
    );
}

/// An injected reset takes effect at once on a session blocked writing to a device that
/// does not read.
#[tokio::test]
async fn injected_reset_reaches_a_blocked_writer() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    fill_until_busy(&server, id).await;
    server.hub.inject(id, Fault::Reset).await.unwrap();
    let ended = next_event(&mut events, offline_of(id)).await;
    assert_eq!(ended.end_reason, Some(EndReason::LinkReset));
    // The device sees the reset once it reads past what was already in flight.
    let err = tokio::time::timeout(WAIT, async {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match tokio::io::AsyncReadExt::read(&mut device, &mut buf).await {
                Ok(0) => return ErrorKind::UnexpectedEof,
                Ok(_) => {}
                Err(e) => return e.kind(),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(err, ErrorKind::ConnectionReset);
    server.stop().await;
}

/// A UDP send or broadcast larger than one datagram can carry is refused, and nothing is
/// stored as sent.
#[tokio::test]
async fn oversized_udp_sends_are_refused() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    device.send_to(b"hi", server.udp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let big = Bytes::from(vec![b'x'; MAX_UDP_PAYLOAD + 1]);
    let refused = ActionError::TooLarge {
        len: big.len(),
        max: MAX_UDP_PAYLOAD,
    };
    assert_eq!(server.hub.send(id, big.clone()).await, Err(refused.clone()));
    assert_eq!(server.hub.broadcast(None, big).await, Err(refused));
    let fits = Bytes::from(vec![b'y'; MAX_UDP_PAYLOAD]);
    assert_eq!(server.hub.send(id, fits).await, Ok(MAX_UDP_PAYLOAD));
    let dir = server.dir.clone();
    server.stop().await;
    let (messages, _) = reopen(dir.path()).messages(id, 0, 100, 0).await.unwrap();
    let down: Vec<usize> = messages
        .iter()
        .filter(|m| m.direction == socklab::model::Direction::Down)
        .map(|m| m.data.len())
        .collect();
    assert_eq!(down, vec![MAX_UDP_PAYLOAD]);
}

/// Datagrams still held by a UDP link at shutdown are recorded as dropped by the link.
#[tokio::test]
async fn udp_link_holdings_are_recorded_at_shutdown() {
    let server = TestServer::start(|c| {
        c.links = vec![(None, LinkSpec::parse("perfect,latency=60s").unwrap())];
    })
    .await;
    let mut events = server.hub.subscribe();
    let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    device.send_to(b"held", server.udp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let dir = server.dir.clone();
    server.stop().await;
    let (messages, _) = reopen(dir.path()).messages(id, 0, 100, 0).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(&messages[0].data[..], b"held");
    assert_eq!(messages[0].status, MessageStatus::Dropped);
}

/// The UDP session table is capped: a new peer beyond it ends the least recently heard
/// session with `evicted`.
#[tokio::test]
async fn udp_session_table_is_capped() {
    let server = TestServer::start(|c| c.udp_max_sessions = 2).await;
    let mut events = server.hub.subscribe();
    let mut ids = Vec::new();
    let mut devices = Vec::new();
    for _ in 0..2 {
        let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        device.send_to(b"hello", server.udp()).await.unwrap();
        ids.push(next_event(&mut events, online_id).await);
        devices.push(device);
    }
    // The first one is heard again: the second is now the least recently heard.
    devices[0].send_to(b"again", server.udp()).await.unwrap();
    next_event(&mut events, |e| match e {
        Event::Data(m, _) if &m.data[..] == b"again" => Some(()),
        _ => None,
    })
    .await;
    let third = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    third.send_to(b"hello", server.udp()).await.unwrap();
    let evicted = next_event(&mut events, offline_of(ids[1])).await;
    assert_eq!(evicted.end_reason, Some(EndReason::Evicted));
    next_event(&mut events, online_id).await;
    assert!(server.hub.online(ids[0]).is_some());
    assert_eq!(server.hub.online_count(), 2);
    server.stop().await;
}

/// History keeps which link a session had after it ended.
#[tokio::test]
async fn history_keeps_the_link() {
    let server = TestServer::start(|c| {
        c.links = vec![(None, LinkSpec::parse("perfect,latency=10ms").unwrap())];
    })
    .await;
    let mut events = server.hub.subscribe();
    let device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    drop(device);
    next_event(&mut events, offline_of(id)).await;
    let store = server.hub.store().clone();
    store.flush().await;
    let session = store.session(id).await.unwrap().unwrap();
    let link = session.link.expect("history forgot the link");
    assert_eq!(link.spec, "perfect,latency=10ms");
    server.stop().await;
}

/// The `tr` (timer) field of the kernel's entry for a TCP connection from `local` to
/// `remote`: 2 while a keepalive timer runs.
fn tcp_timer(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> Option<u32> {
    let hex = |a: std::net::SocketAddr| {
        let std::net::IpAddr::V4(ip) = a.ip() else {
            return String::new();
        };
        format!("{:08X}:{:04X}", u32::from_le_bytes(ip.octets()), a.port())
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&hex(local).as_str()) && f.get(2) == Some(&hex(remote).as_str()))
            .then(|| f.get(5)?.split(':').next()?.parse().ok())
            .flatten()
    })
}

/// Device connections run TCP keepalive by default (so a device whose link vanished is
/// found), and not when it is turned off.
#[tokio::test]
async fn device_connections_have_keepalive() {
    if !std::path::Path::new("/proc/net/tcp").exists() {
        eprintln!("no /proc/net/tcp; skipped");
        return;
    }
    for keepalive in [Some(Duration::from_secs(30)), None] {
        let server = TestServer::start(|c| c.tcp_keepalive = keepalive).await;
        let mut events = server.hub.subscribe();
        let device = TcpStream::connect(server.tcp()).await.unwrap();
        next_event(&mut events, online_id).await;
        let timer = tcp_timer(server.tcp(), device.local_addr().unwrap());
        assert_eq!(timer, Some(if keepalive.is_some() { 2 } else { 0 }));
        server.stop().await;
    }
}

/// While the database cannot be written (locked from outside, as when the disk is full),
/// a query's flush gives up after a bounded wait and the history stays readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_answer_while_the_store_is_stalled() {
    let server = TestServer::start(|_| {}).await;
    let db = server.dir.path().join("socklab.db");
    let mut events = server.hub.subscribe();
    let device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let store = server.hub.store().clone();
    store.flush().await;
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Fill the store's queue: socklab then stops reading the device.
    let chunk = vec![0x5au8; 64 * 1024];
    tokio::time::timeout(WAIT, async {
        while store.queue_depth() < STORE_QUEUE_OPS {
            match device.try_write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
    })
    .await
    .expect("the store queue never filled");
    let flushed = tokio::time::timeout(WAIT, store.flush_for_query())
        .await
        .expect("a query's flush hung on a stalled store");
    assert!(!flushed, "nothing could have been committed");
    let readable = tokio::time::timeout(WAIT, store.messages(id, 0, 10, 0)).await;
    assert!(readable.expect("reading hung").is_ok());
    drop(blocker);
    drop(device);
    server.stop().await;
}

/// POSTs a JSON `body` to the API through the router; returns the status and the body.
async fn api_post(server: &TestServer, uri: &str, body: &str) -> (u16, serde_json::Value) {
    let json = [("content-type", "application/json")];
    let (status, _, value) = request(server, "POST", uri, Some(body.into()), &json).await;
    (status.as_u16(), value)
}

/// The console prints the message the API answers for the same failure: an offline
/// session, one that never existed, and a fault both refuse through the one parser.
#[tokio::test]
async fn console_and_api_say_the_same() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    drop(device);
    next_event(&mut events, offline_of(id)).await;
    for (target, status) in [(id, 409), (9999, 404)] {
        let uri = format!("/api/sessions/{target}/send");
        let (code, body) = api_post(&server, &uri, r#"{"text": "hi"}"#).await;
        assert_eq!(code, status, "{body}");
        let console = socklab::console::execute(&server.hub, &format!("send {target} hi")).await;
        assert_eq!(
            console,
            format!("error: {}", body["error"].as_str().unwrap())
        );
    }
    let uri = "/api/sessions/9999/fault";
    let (code, body) = api_post(&server, uri, r#"{"fault": "outage", "seconds": 1e9}"#).await;
    assert_eq!(code, 400, "{body}");
    let console = socklab::console::execute(&server.hub, "fault 9999 outage 1000000000").await;
    assert_eq!(
        console,
        format!("error: {}", body["error"].as_str().unwrap())
    );
    let (code, body) = api_post(&server, uri, r#"{"fault": "nat-drop"}"#).await;
    assert_eq!(code, 400, "{body}");
    let console = socklab::console::execute(&server.hub, "fault 9999 nat-drop").await;
    assert_eq!(
        console,
        format!("error: {}", body["error"].as_str().unwrap())
    );
    server.stop().await;
}

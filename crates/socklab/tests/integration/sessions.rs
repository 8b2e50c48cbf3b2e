//! Sessions end to end on loopback: events, data both ways, end reasons, operator modes.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, next_event, online_id};
use socklab::model::{Direction, EndReason, Event, Proto};
use socklab::rules::Rule;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn offline_of(id: u64) -> impl FnMut(&Event) -> Option<socklab::model::SessionInfo> {
    move |e| match e {
        Event::Offline(s) if s.id == id => Some(s.clone()),
        _ => None,
    }
}

async fn read_exact_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(common::WAIT, stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

/// The tutorial's session: online, data up, data down, offline closed by the device.
#[tokio::test]
async fn tcp_session_lifecycle() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;

    device.write_all(b"1234567890\r\n").await.unwrap();
    let up = next_event(&mut events, |e| match e {
        Event::Data(m, _) if m.direction == Direction::Up => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(&up.data[..], b"1234567890\r\n");

    assert_eq!(
        server.hub.send(id, Bytes::from_static(b"0123456789")).await,
        Ok(10)
    );
    assert_eq!(read_exact_n(&mut device, 10).await, b"0123456789");

    drop(device);
    let ended = next_event(&mut events, offline_of(id)).await;
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByDevice));
    assert_eq!(
        (ended.counters.bytes_up, ended.counters.bytes_down),
        (12, 10)
    );

    let store = server.hub.store().clone();
    store.flush().await;
    let (messages, total) = store.messages(id, 0, 100, 0).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(messages[1].direction, Direction::Down);
    let saved = store.session(id).await.unwrap().unwrap();
    assert_eq!(saved.end_reason, Some(EndReason::ClosedByDevice));
    assert_eq!(saved.counters, ended.counters);
    server.stop().await;
}

/// An operator close ends the session with its reason and the device sees EOF; later
/// actions on it report that it is not online.
#[tokio::test]
async fn operator_close() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    server.hub.close(id).await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(device.read(&mut buf).await.unwrap(), 0);
    let ended = next_event(&mut events, offline_of(id)).await;
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByOperator));
    assert!(server.hub.send(id, Bytes::from_static(b"x")).await.is_err());
    assert!(server.hub.close(id).await.is_err());
    server.stop().await;
}

/// A device that closes with unread data resets the connection: reason `reset`.
#[tokio::test]
async fn reset_by_device() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    server
        .hub
        .send(id, Bytes::from_static(b"unread"))
        .await
        .unwrap();
    device.readable().await.unwrap();
    drop(device); // unread data in the receive buffer: the kernel sends RST
    let ended = next_event(&mut events, offline_of(id)).await;
    assert_eq!(ended.end_reason, Some(EndReason::Reset));
    server.stop().await;
}

/// Shutdown ends online sessions with `server_shutdown`; a restart on the same database
/// keeps the history and continues the ids after it.
#[tokio::test]
async fn shutdown_and_restart_keep_history() {
    let server = TestServer::start(|_| {}).await;
    let dir = server.dir.clone();
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    device.write_all(b"before restart").await.unwrap();
    next_event(&mut events, |e| matches!(e, Event::Data(..)).then_some(())).await;
    server.stop().await;
    let mut buf = [0u8; 4];
    assert_eq!(device.read(&mut buf).await.unwrap(), 0);

    let server = TestServer::start_in(dir, |_| {}).await;
    let store = server.hub.store().clone();
    let saved = store.session(id).await.unwrap().unwrap();
    assert_eq!(saved.end_reason, Some(EndReason::ServerShutdown));
    assert_eq!(saved.counters.bytes_up, 14);
    let (messages, _) = store.messages(id, 0, 10, 0).await.unwrap();
    assert_eq!(&messages[0].data[..], b"before restart");

    let mut events = server.hub.subscribe();
    let _device = TcpStream::connect(server.tcp()).await.unwrap();
    assert!(next_event(&mut events, online_id).await > id);
    server.stop().await;
}

/// UDP: a peer's first datagram starts a session, replies reach it, silence ends it.
#[tokio::test]
async fn udp_session_and_idle_expiry() {
    let server = TestServer::start(|c| c.udp_idle_timeout = Duration::from_millis(300)).await;
    let mut events = server.hub.subscribe();
    let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    device.send_to(b"ping", server.udp()).await.unwrap();
    let session = next_event(&mut events, |e| match e {
        Event::Online(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(session.proto, Proto::Udp);
    assert_eq!(session.peer, device.local_addr().unwrap());
    server
        .hub
        .send(session.id, Bytes::from_static(b"pong"))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = device.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"pong"[..], server.udp()));
    let ended = next_event(&mut events, offline_of(session.id)).await;
    assert_eq!(ended.end_reason, Some(EndReason::IdleTimeout));
    assert_eq!((ended.counters.msgs_up, ended.counters.msgs_down), (1, 1));
    server.stop().await;
}

/// Echo sends data back; an auto-reply answers a matching read; both are recorded down.
#[tokio::test]
async fn echo_and_auto_reply() {
    let rule = Rule::parse_flag("exact:1234567890=>text:0123456789").unwrap();
    let server = TestServer::start(|c| c.auto_replies = vec![rule]).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    device.write_all(b"1234567890\r\n").await.unwrap();
    assert_eq!(read_exact_n(&mut device, 10).await, b"0123456789");

    server.hub.set_echo(0, true).unwrap();
    device.write_all(b"\x00\xffecho").await.unwrap();
    assert_eq!(read_exact_n(&mut device, 6).await, b"\x00\xffecho");
    server.hub.set_echo(0, false).unwrap();
    server
        .hub
        .set_rules(0, vec![Rule::parse_flag("hex:ff=>hex:0a0b").unwrap()])
        .unwrap();
    device.write_all(b"\x01\xff").await.unwrap();
    assert_eq!(read_exact_n(&mut device, 2).await, b"\x0a\x0b");
    drop(device);
    let ended = next_event(&mut events, offline_of(id)).await;
    assert_eq!(ended.counters.msgs_down, 3);
    server.stop().await;
}

/// Broadcast reaches every online session, optionally only one listener's.
#[tokio::test]
async fn broadcast_to_all() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let mut a = TcpStream::connect(server.tcp()).await.unwrap();
    let mut b = TcpStream::connect(server.tcp()).await.unwrap();
    next_event(&mut events, online_id).await;
    next_event(&mut events, online_id).await;
    assert_eq!(
        server.hub.broadcast(None, Bytes::from_static(b"all")).await,
        Ok((2, 6))
    );
    assert_eq!(read_exact_n(&mut a, 3).await, b"all");
    assert_eq!(read_exact_n(&mut b, 3).await, b"all");
    // Listener 1 is the UDP one, which has no sessions.
    assert_eq!(
        server
            .hub
            .broadcast(Some(1), Bytes::from_static(b"x"))
            .await,
        Ok((0, 0))
    );
    assert!(
        server
            .hub
            .broadcast(Some(9), Bytes::from_static(b"x"))
            .await
            .is_err()
    );
    server.stop().await;
}

/// A device that stops reading: sends fail as busy once its outbox is full (instead of
/// hanging the API), and an operator close still ends it at once.
#[tokio::test]
async fn device_that_does_not_read() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let _device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let block = Bytes::from(vec![0u8; 1024 * 1024]);
    let busy = tokio::time::timeout(common::WAIT * 3, async {
        loop {
            match server.hub.send(id, block.clone()).await {
                Ok(_) => continue,
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("sends never pushed back");
    assert_eq!(busy, socklab::hub::ActionError::Busy(id));
    server.hub.close(id).await.unwrap();
    let ended = next_event(&mut events, offline_of(id)).await;
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByOperator));
    server.stop().await;
}

/// IPv6 listeners work like IPv4 ones (skipped where the host has no IPv6 loopback).
#[tokio::test]
async fn ipv6_listener() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback; skipped");
        return;
    }
    let server = TestServer::start(|c| {
        c.tcp = vec!["[::1]:0".parse().unwrap()];
        c.udp = vec!["[::1]:0".parse().unwrap()];
    })
    .await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let session = next_event(&mut events, |e| match e {
        Event::Online(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert!(session.peer.is_ipv6() && session.local.is_ipv6());
    server
        .hub
        .send(session.id, Bytes::from_static(b"v6"))
        .await
        .unwrap();
    assert_eq!(read_exact_n(&mut device, 2).await, b"v6");
    let udp = UdpSocket::bind("[::1]:0").await.unwrap();
    udp.send_to(b"x", server.udp()).await.unwrap();
    let s = next_event(&mut events, |e| match e {
        Event::Online(s) if s.proto == Proto::Udp => Some(s.clone()),
        _ => None,
    })
    .await;
    assert!(s.peer.is_ipv6());
    server.stop().await;
}

/// A subscriber that never reads (a stalled browser) does not slow a device down: the
/// device's data is all stored and the subscriber is told it lagged.
#[tokio::test]
async fn stalled_subscriber_never_blocks_devices() {
    let server = TestServer::start(|_| {}).await;
    let mut stalled = server.hub.subscribe();
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let messages = socklab::hub::EVENT_BUFFER as u64 * 2;
    for i in 0..messages {
        device
            .write_all(format!("{i:08}").as_bytes())
            .await
            .unwrap();
        // One message per read: wait for its event before writing the next.
        next_event(&mut events, |e| matches!(e, Event::Data(..)).then_some(())).await;
    }
    drop(device);
    let ended = next_event(&mut events, offline_of(id)).await;
    assert_eq!(ended.counters.msgs_up, messages);
    let store = server.hub.store().clone();
    store.flush().await;
    assert_eq!(store.messages(id, 0, 1, 0).await.unwrap().1, messages);
    assert!(matches!(
        stalled.recv().await,
        Err(tokio::sync::broadcast::error::RecvError::Lagged(_))
    ));
    server.stop().await;
}

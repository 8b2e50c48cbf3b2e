//! Periodic sends through the hub over real loopback sockets: a device that stops reading
//! makes ticks skip (counted and announced) instead of piling up, a session going offline
//! stops its periodic send with an event, and shutdown stops the rest.

use crate::common;

use std::sync::Arc;

use bytes::Bytes;
use common::{TestServer, WAIT, fill_until_busy, next_event, online_id};
use socklab::model::periodic::PeriodicAction;
use socklab::model::{Event, PeriodicEnd, PeriodicEvent, PeriodicTarget};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn periodic(action: PeriodicAction) -> impl FnMut(&Event) -> Option<Arc<PeriodicEvent>> {
    move |e| match e {
        Event::Periodic(p) if p.action == action => Some(p.clone()),
        _ => None,
    }
}

/// A device that does not read: once its outbox is full, ticks are skipped and counted,
/// the first skip is announced, and nothing queues up behind the full outbox.
#[tokio::test]
async fn full_outbox_skips_ticks() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let _device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    fill_until_busy(&server, id).await;
    let block = Bytes::from(vec![0u8; 1024 * 1024]);
    let started = server
        .hub
        .start_periodic(PeriodicTarget::Session(id), block.clone(), 100, None)
        .unwrap();
    let skipping = next_event(&mut events, periodic(PeriodicAction::Skipping)).await;
    assert_eq!(skipping.periodic.id, started.id);
    assert!(skipping.periodic.skipped >= 1);
    let stopped = server.hub.stop_periodic(started.id).await.unwrap();
    assert!(stopped.skipped >= 1);
    let end = next_event(&mut events, periodic(PeriodicAction::Stopped)).await;
    assert_eq!(end.end, Some(PeriodicEnd::Operator));
    server.stop().await;
}

/// The device hangs up: its periodic send stops by itself and says why; a broadcast one
/// keeps running until the server shuts down, which stops it with its own reason.
#[tokio::test]
async fn offline_and_shutdown_stop_periodic_sends() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, online_id).await;
    let one = server
        .hub
        .start_periodic(
            PeriodicTarget::Session(id),
            Bytes::from_static(b"tick\n"),
            100,
            None,
        )
        .unwrap();
    let all = server
        .hub
        .start_periodic(
            PeriodicTarget::Broadcast(None),
            Bytes::from_static(b"b\n"),
            100,
            None,
        )
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.windows(5).filter(|w| w == b"tick\n").count() < 2 {
        let n = tokio::time::timeout(WAIT, device.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    drop(device);
    let end = next_event(&mut events, periodic(PeriodicAction::Stopped)).await;
    assert_eq!(
        (end.periodic.id, end.end.clone()),
        (one.id, Some(PeriodicEnd::Offline))
    );
    assert!(end.periodic.sent >= 2);
    let running: Vec<u64> = server.hub.periodic_sends().iter().map(|p| p.id).collect();
    assert_eq!(running, [all.id]);
    let hub = server.hub.clone();
    server.stop().await;
    assert!(hub.periodic_sends().is_empty());
    let end = next_event(&mut events, periodic(PeriodicAction::Stopped)).await;
    assert_eq!(
        (end.periodic.id, end.end.clone()),
        (all.id, Some(PeriodicEnd::Shutdown))
    );
}

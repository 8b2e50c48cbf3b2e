//! The store's back-pressure: when the database cannot keep up, socklab stops reading the
//! device (so its TCP window closes) and loses nothing once the database catches up.

use crate::common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{TestServer, WAIT, next_event};
use socklab::model::{EndReason, Event};
use socklab::store::{STORE_BATCH_OPS, STORE_QUEUE_OPS};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Locks the database from outside so the writer stalls; the device's writes then block
/// while the hub has received only a bounded amount; after unlocking, every byte is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_store_stops_reading_and_loses_nothing() {
    let server = TestServer::start(|_| {}).await;
    let db = server.dir.path().join("socklab.db");
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    let id = next_event(&mut events, |e| match e {
        Event::Online(s) => Some(s.id),
        _ => None,
    })
    .await;
    server.hub.store().flush().await;

    // Another connection takes the write lock: the writer's next commit waits on it.
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    // Write until the kernel refuses more: that only happens if socklab stopped reading.
    let chunk = vec![0x5au8; 64 * 1024];
    let mut sent: u64 = 0;
    tokio::time::timeout(WAIT, async {
        loop {
            match device.try_write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Our socket is full and socklab's store queue is full: it has stopped
                    // reading. Otherwise wait for room (polling the queue depth meanwhile).
                    if server.hub.store().queue_depth() == STORE_QUEUE_OPS {
                        break;
                    }
                    tokio::select! {
                        _ = device.writable() => {}
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
    })
    .await
    .expect("the device was never pushed back");
    let received = server.hub.online(id).unwrap().counters().bytes_up;
    assert!(
        received < sent,
        "socklab read everything ({received} of {sent}) while stalled"
    );
    // What socklab holds is bounded: the queue, the writer's batch, one read in hand.
    let held = received as usize;
    let bound = (STORE_QUEUE_OPS + STORE_BATCH_OPS + 2) * socklab::listener::READ_CHUNK_BYTES;
    assert!(
        held <= bound,
        "{held} bytes held while stalled, bound {bound}"
    );

    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    device.shutdown().await.unwrap();
    drop(device);
    let ended = next_event(&mut events, |e| match e {
        Event::Offline(s) if s.id == id => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ended.end_reason, Some(EndReason::ClosedByDevice));
    assert_eq!(ended.counters.bytes_up, sent);

    server.hub.store().flush().await;
    let check = rusqlite::Connection::open(&db).unwrap();
    let stored: i64 = check
        .query_row(
            "SELECT SUM(LENGTH(data)) FROM messages WHERE session_id = ?1",
            [id as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored as u64, sent);
    server.stop().await;
}

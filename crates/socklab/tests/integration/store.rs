//! History: crash recovery, retention and export.

use crate::common;

use common::{TestServer, next_event};
use socklab::model::{EndReason, Event};
use socklab::store::{Store, export_jsonl};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A session a crash left without an end is closed at the next start as
/// `server_shutdown`, with its counters rebuilt from its messages.
#[tokio::test]
async fn crash_leftovers_are_ended_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    Store::open(&db, None).unwrap().close().await;
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute_batch(
        "INSERT INTO sessions (id, listener_id, proto, peer, local, started_ms)
             VALUES (41, 0, 'tcp', '127.0.0.1:5', '127.0.0.1:6', 1000);
         INSERT INTO messages (id, session_id, ts_ms, direction, data) VALUES
             (7, 41, 1500, 0, x'616263'), (8, 41, 1600, 1, x'78');",
    )
    .unwrap();
    drop(raw);
    let store = Store::open(&db, None).unwrap();
    assert_eq!(store.max_ids(), (41, 8));
    let s = store.session(41).await.unwrap().unwrap();
    assert_eq!(s.end_reason, Some(EndReason::ServerShutdown));
    assert_eq!(s.ended_ms, Some(1600));
    assert_eq!(
        (
            s.counters.bytes_up,
            s.counters.bytes_down,
            s.counters.msgs_up
        ),
        (3, 1, 1)
    );
    store.close().await;
}

/// With a size limit, the oldest closed sessions go first and the newest stay.
#[tokio::test]
async fn retention_deletes_oldest_closed_sessions() {
    let limit = 512 * 1024;
    let server = TestServer::start(|c| c.max_db_bytes = Some(limit)).await;
    let mut events = server.hub.subscribe();
    let mut ids = Vec::new();
    for _ in 0..8 {
        let mut device = TcpStream::connect(server.tcp()).await.unwrap();
        device.write_all(&vec![b'r'; 200 * 1024]).await.unwrap();
        drop(device);
        let ended = next_event(&mut events, |e| match e {
            Event::Offline(s) => Some(s.clone()),
            _ => None,
        })
        .await;
        ids.push(ended.id);
    }
    let store = server.hub.store().clone();
    store.flush().await;
    assert!(
        store.session(ids[0]).await.unwrap().is_none(),
        "oldest session kept"
    );
    let newest = store.session(*ids.last().unwrap()).await.unwrap().unwrap();
    assert_eq!(newest.counters.bytes_up, 200 * 1024);
    let (kept, _) = store.sessions(100, 0).await.unwrap();
    assert!(kept.len() < ids.len());
    server.stop().await;
}

/// Export writes one JSON message per line; an unknown session is reported as such.
#[tokio::test]
async fn export_writes_jsonl() {
    let server = TestServer::start(|_| {}).await;
    let mut events = server.hub.subscribe();
    let mut device = TcpStream::connect(server.tcp()).await.unwrap();
    device.write_all(b"\x01line\n").await.unwrap();
    let id = next_event(&mut events, |e| match e {
        Event::Data(m, _) => Some(m.session_id),
        _ => None,
    })
    .await;
    drop(device);
    let db = server.dir.path().join("socklab.db");
    server.hub.store().flush().await;
    let mut out = Vec::new();
    assert_eq!(export_jsonl(&db, id, &mut out).unwrap(), Some(1));
    let line: serde_json::Value = serde_json::from_slice(out.trim_ascii_end()).unwrap();
    assert_eq!(line["hex"], "016c696e650a");
    assert_eq!(line["direction"], "up");
    assert_eq!(export_jsonl(&db, 999, &mut Vec::new()).unwrap(), None);
    server.stop().await;
}

//! The store's writer thread: drains the queue in batches, one transaction per batch,
//! and enforces the retention limit after each commit.

use rusqlite::{Connection, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::{BATCH_OPS, StoreOp};
use crate::model::{Direction, SessionInfo};

/// The thread's body: runs until a `Close` arrives or every sender is gone.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<StoreOp>,
    max_db_bytes: Option<u64>,
) {
    let mut retention_warned = false;
    while let Some(first) = rx.blocking_recv() {
        let mut barriers: Vec<oneshot::Sender<()>> = Vec::new();
        let mut closing = false;
        match write_batch(&mut conn, first, &mut rx, &mut barriers, &mut closing) {
            Ok(()) => {}
            Err(e) => tracing::error!("store: batch not saved: {e}"),
        }
        if let Some(limit) = max_db_bytes {
            match enforce_retention(&conn, limit) {
                Ok(true) if !retention_warned => {
                    retention_warned = true;
                    tracing::warn!(
                        "store: over --max-db-mb but only online sessions are left to delete"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!("store: retention failed: {e}"),
            }
        }
        for barrier in barriers {
            let _ = barrier.send(());
        }
        if closing {
            break;
        }
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!("store: final checkpoint: {e}");
    }
}

/// Applies `first` and whatever else is already queued (up to [`BATCH_OPS`]) in one
/// transaction.
fn write_batch(
    conn: &mut Connection,
    first: StoreOp,
    rx: &mut mpsc::Receiver<StoreOp>,
    barriers: &mut Vec<oneshot::Sender<()>>,
    closing: &mut bool,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    apply(&tx, first, barriers, closing)?;
    let mut n = 1;
    while n < BATCH_OPS && !*closing {
        match rx.try_recv() {
            Ok(op) => apply(&tx, op, barriers, closing)?,
            Err(_) => break,
        }
        n += 1;
    }
    tx.commit()
}

fn apply(
    tx: &Transaction<'_>,
    op: StoreOp,
    barriers: &mut Vec<oneshot::Sender<()>>,
    closing: &mut bool,
) -> rusqlite::Result<()> {
    match op {
        StoreOp::SessionStart(s) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sessions
                 (id, listener_id, proto, peer, local, started_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.id as i64,
                s.listener_id,
                s.proto.as_str(),
                s.peer.to_string(),
                s.local.to_string(),
                s.started_ms
            ])?;
        }
        StoreOp::Message(m) => {
            let direction = match m.direction {
                Direction::Up => 0,
                Direction::Down => 1,
            };
            tx.prepare_cached(
                "INSERT INTO messages (id, session_id, ts_ms, direction, data)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                m.id as i64,
                m.session_id as i64,
                m.ts_ms,
                direction,
                &m.data[..]
            ])?;
        }
        StoreOp::SessionEnd(s) => end_session(tx, &s)?,
        StoreOp::Barrier(b) => barriers.push(b),
        StoreOp::Close => *closing = true,
    }
    Ok(())
}

fn end_session(tx: &Transaction<'_>, s: &SessionInfo) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE sessions SET ended_ms = ?2, end_reason = ?3, bytes_up = ?4, bytes_down = ?5,
         msgs_up = ?6, msgs_down = ?7 WHERE id = ?1",
    )?
    .execute(params![
        s.id as i64,
        s.ended_ms,
        s.end_reason.map(|r| r.as_str()),
        s.counters.bytes_up as i64,
        s.counters.bytes_down as i64,
        s.counters.msgs_up as i64,
        s.counters.msgs_down as i64
    ])?;
    Ok(())
}

/// Deletes the oldest closed sessions (and their messages) while the pages in use exceed
/// `limit` bytes, then returns freed pages to the file system. Returns `true` when still
/// over the limit with no closed session left to delete.
fn enforce_retention(conn: &Connection, limit: u64) -> rusqlite::Result<bool> {
    let used = |conn: &Connection| -> rusqlite::Result<u64> {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(((pages - free).max(0) * size) as u64)
    };
    if used(conn)? <= limit {
        return Ok(false);
    }
    let mut deleted = false;
    let mut stuck = false;
    while used(conn)? > limit {
        let oldest: Option<i64> = conn
            .query_row(
                "SELECT id FROM sessions WHERE ended_ms IS NOT NULL ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let Some(id) = oldest else {
            stuck = true;
            break;
        };
        let tx = conn.unchecked_transaction()?;
        tx.execute("DELETE FROM messages WHERE session_id = ?1", [id])?;
        tx.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
        tx.commit()?;
        tracing::info!("store: retention deleted session {id}");
        deleted = true;
    }
    if deleted {
        conn.execute_batch("PRAGMA incremental_vacuum")?;
    }
    Ok(stuck)
}

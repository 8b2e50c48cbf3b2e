//! The store's writer thread: drains the queue in batches, one transaction per batch,
//! and enforces the retention limit after each commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, Transaction, params};
use tokio::sync::mpsc;

use super::checkpoint::{self, Checkpointer};
use super::housekeeping::{self, Forgotten};
use super::{STORE_BATCH_OPS, StoreOp};
use crate::model::{Direction, SessionInfo};

/// How long the writer waits before retrying a batch SQLite could not write.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The thread's body: runs until a `Close` arrives or every sender is gone.
pub(super) fn run(
    mut conn: Connection,
    mut data: mpsc::Receiver<StoreOp>,
    mut control: mpsc::Receiver<StoreOp>,
    max_db_bytes: Option<u64>,
    session_ops_committed: Arc<AtomicU64>,
    write_retries: Arc<AtomicU64>,
    checkpointer: Option<Checkpointer>,
) {
    checkpoint::watch_wal(&conn);
    // Waiting on two queues at once needs an executor; a minimal one serves this thread.
    let waiter = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("store: cannot start the writer: {e}");
            return;
        }
    };
    let mut retention_warned = false;
    let mut batch: Vec<StoreOp> = Vec::with_capacity(STORE_BATCH_OPS);
    loop {
        let first = waiter.block_on(async {
            tokio::select! {
                biased;
                Some(op) = control.recv() => Some(op),
                Some(op) = data.recv() => Some(op),
                else => None,
            }
        });
        let Some(first) = first else { break };
        // Take whatever else is already queued, control first: one transaction for all.
        // Control first also keeps barriers honest: anything queued before a barrier is
        // in this batch or an earlier one.
        batch.push(first);
        for queue in [&mut control, &mut data] {
            while batch.len() < STORE_BATCH_OPS && !matches!(batch.last(), Some(StoreOp::Close)) {
                match queue.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
        }
        let (_, mut forgotten) = commit_with_retry(&mut conn, &batch, &write_retries);
        checkpoint::after_commit(&conn, checkpointer.as_ref());
        if !forgotten.is_empty()
            && let Err(e) = conn.execute_batch("PRAGMA incremental_vacuum")
        {
            tracing::warn!("store: giving deleted pages back: {e}");
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
        // Counted (like barriers answered) only after retention, so a reader that finds
        // nothing pending sees the database as retention left it.
        let session_ops = batch
            .iter()
            .filter(|op| matches!(op, StoreOp::SessionStart(_) | StoreOp::SessionEnd(_)))
            .count();
        session_ops_committed.fetch_add(session_ops as u64, Ordering::AcqRel);
        let mut closing = false;
        for op in batch.drain(..) {
            match op {
                StoreOp::Barrier(done) => {
                    let _ = done.send(());
                }
                StoreOp::Close => closing = true,
                // Answered in order; a batch that was not saved answers none (the caller
                // then reports the failure).
                StoreOp::Forget(_, done) if !forgotten.is_empty() => {
                    let _ = done.send(forgotten.remove(0));
                }
                _ => {}
            }
        }
        if closing {
            break;
        }
    }
    if let Some(thread) = checkpointer {
        thread.stop();
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!("store: final checkpoint: {e}");
    }
}

/// Commits a batch. While SQLite reports a condition that can pass (disk full, I/O error,
/// another process holding the lock) the batch is kept and retried: the queue fills up
/// meanwhile and devices are paused by back-pressure, so nothing they sent is dropped.
/// Other errors (a bug, such as a constraint violation) lose the batch and are logged.
/// Each failed attempt is added to `retries` as it happens; returns how many there were and what each deletion removed.
fn commit_with_retry(
    conn: &mut Connection,
    batch: &[StoreOp],
    retries: &AtomicU64,
) -> (u32, Vec<Forgotten>) {
    let mut attempts = 0u32;
    loop {
        match write_batch(conn, batch) {
            Ok(forgotten) => {
                if attempts > 0 {
                    tracing::warn!("store: writing again after {attempts} failed attempt(s)");
                }
                return (attempts, forgotten);
            }
            Err(e) if is_transient(&e) => {
                if attempts.is_multiple_of(60) {
                    tracing::error!(
                        "store: cannot write ({e}); holding {} operation(s), retrying every \
                         second; devices are paused meanwhile",
                        batch.len()
                    );
                }
                attempts += 1;
                retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(RETRY_EVERY);
            }
            Err(e) => {
                tracing::error!(
                    "store: batch of {} operation(s) not saved: {e}",
                    batch.len()
                );
                return (attempts, Vec::new());
            }
        }
    }
}

fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
        )
    )
}

/// Writes the batch in one transaction (rolled back if any statement fails); returns what
/// each deletion in it removed, in order.
fn write_batch(conn: &mut Connection, batch: &[StoreOp]) -> rusqlite::Result<Vec<Forgotten>> {
    let tx = conn.transaction()?;
    let mut forgotten = Vec::new();
    for op in batch {
        if let StoreOp::Forget(f, _) = op {
            forgotten.push(housekeeping::apply(&tx, f)?);
        } else {
            apply(&tx, op)?;
        }
    }
    tx.commit()?;
    Ok(forgotten)
}

fn apply(tx: &Transaction<'_>, op: &StoreOp) -> rusqlite::Result<()> {
    match op {
        StoreOp::SessionStart(s) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sessions
                 (id, listener_id, proto, peer, local, started_ms, link, tls_version, tls_sni,
                  outgoing, label)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                s.id as i64,
                s.listener_id,
                s.proto.as_str(),
                s.peer.to_string(),
                s.local.to_string(),
                s.started_ms,
                link_spec(s),
                s.tls.as_ref().map(|t| t.version.as_str()),
                s.tls.as_ref().and_then(|t| t.sni.as_deref()),
                s.outgoing as i64,
                s.label.as_deref()
            ])?;
        }
        StoreOp::Label(id, label) => {
            tx.prepare_cached("UPDATE sessions SET label = ?2 WHERE id = ?1")?
                .execute(params![*id as i64, label.as_deref()])?;
        }
        StoreOp::Message(m) => {
            let direction = match m.direction {
                Direction::Up => 0,
                Direction::Down => 1,
            };
            tx.prepare_cached(
                "INSERT INTO messages (id, session_id, ts_ms, direction, data, dropped)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                m.id as i64,
                m.session_id as i64,
                m.ts_ms,
                direction,
                &m.data[..],
                m.status.code()
            ])?;
        }
        StoreOp::SessionEnd(s) => end_session(tx, s)?,
        StoreOp::Forget(..) | StoreOp::Barrier(_) | StoreOp::Close => {}
    }
    Ok(())
}

fn end_session(tx: &Transaction<'_>, s: &SessionInfo) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE sessions SET ended_ms = ?2, end_reason = ?3, bytes_up = ?4, bytes_down = ?5,
         msgs_up = ?6, msgs_down = ?7, link = COALESCE(?8, link) WHERE id = ?1",
    )?
    .execute(params![
        s.id as i64,
        s.ended_ms,
        s.end_reason.map(|r| r.as_str()),
        s.counters.bytes_up as i64,
        s.counters.bytes_down as i64,
        s.counters.msgs_up as i64,
        s.counters.msgs_down as i64,
        link_spec(s)
    ])?;
    Ok(())
}

/// The session's link as history keeps it: its spec, or `None` without one.
fn link_spec(s: &SessionInfo) -> Option<&str> {
    s.link
        .as_ref()
        .map(|l| l.spec.as_str())
        .filter(|spec| *spec != "none")
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::model::{MessageInfo, MessageStatus};

    /// A transient SQLite error (the database locked by another connection, injected here
    /// with no busy timeout on the writer) keeps the batch and retries until it commits:
    /// nothing is lost.
    #[test]
    fn transient_errors_are_retried_until_the_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retry.db");
        let mut conn = Connection::open(&path).unwrap();
        super::super::init_schema(&conn).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            blocker.execute_batch("COMMIT").unwrap();
        });
        let message = MessageInfo::new(
            7,
            1,
            0,
            Direction::Up,
            Bytes::from_static(b"kept"),
            MessageStatus::Ok,
        );
        let counted = AtomicU64::new(0);
        let (attempts, _) =
            commit_with_retry(&mut conn, &[StoreOp::Message(Arc::new(message))], &counted);
        release.join().unwrap();
        assert!(attempts >= 1, "the injected lock was never hit");
        assert_eq!(counted.load(Ordering::Relaxed), u64::from(attempts));
        let data: Vec<u8> = conn
            .query_row("SELECT data FROM messages WHERE id = 7", [], |r| r.get(0))
            .unwrap();
        assert_eq!(data, b"kept");
    }

    /// The writer thread itself, fed through its real queues, while another connection
    /// holds an exclusive transaction on the same file: the writer (no busy timeout, so
    /// SQLite answers SQLITE_BUSY at once) retries, counts each retry, and commits every
    /// message once the lock is released.
    #[test]
    fn the_writer_thread_counts_retries_and_loses_nothing_under_a_held_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.db");
        let conn = Connection::open(&path).unwrap();
        super::super::init_schema(&conn).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let (data_tx, data_rx) = mpsc::channel(16);
        let (_control_tx, control_rx) = mpsc::channel(16);
        let committed = Arc::new(AtomicU64::new(0));
        let retries = Arc::new(AtomicU64::new(0));
        let writer_retries = retries.clone();
        let writer = std::thread::spawn(move || {
            run(
                conn,
                data_rx,
                control_rx,
                None,
                committed,
                writer_retries,
                None,
            )
        });
        for id in 1..=10u64 {
            let message = MessageInfo::new(
                id,
                1,
                0,
                Direction::Up,
                Bytes::from(format!("m{id}")),
                MessageStatus::Ok,
            );
            data_tx
                .blocking_send(StoreOp::Message(Arc::new(message)))
                .unwrap();
        }
        // Hold the lock until the writer has failed at least once (it retries every
        // second), then let it through.
        while retries.load(Ordering::Relaxed) == 0 && !writer.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let stored_while_locked: i64 = blocker
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored_while_locked, 0);
        blocker.execute_batch("COMMIT").unwrap();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        data_tx.blocking_send(StoreOp::Barrier(done_tx)).unwrap();
        done_rx.blocking_recv().unwrap();
        data_tx.blocking_send(StoreOp::Close).unwrap();
        writer.join().unwrap();
        assert!(retries.load(Ordering::Relaxed) >= 1);
        let rows: Vec<(i64, Vec<u8>)> = blocker
            .prepare("SELECT id, data FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<(i64, Vec<u8>)> = (1..=10)
            .map(|id| (id, format!("m{id}").into_bytes()))
            .collect();
        assert_eq!(rows, expected);
    }
}

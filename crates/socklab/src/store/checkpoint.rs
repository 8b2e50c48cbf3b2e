//! Checkpoints beside the writer, not in its way.
//!
//! In WAL mode every committed page is written twice: once to the write-ahead log by the
//! commit, and once more into the database file by a checkpoint. SQLite's automatic
//! checkpoint runs inside the commit that crosses its threshold, on the writer's thread,
//! with two `fsync`s; while it copies, nothing else is stored and devices wait on a full
//! queue. Here a thread of its own, with its own connection, does that copying while the
//! writer goes on appending to the log:
//!
//! - the writer watches the log's length after each commit (SQLite's WAL hook);
//! - past [`NUDGE_FRAMES`] it nudges the checkpoint thread, which copies what the log
//!   holds (a passive checkpoint: it never waits for, nor blocks, the writer or readers);
//! - past [`WRITER_FRAMES`] the writer waits for the thread's pass to end, if one is
//!   running, and checkpoints itself, which leaves it only the frames the thread has not
//!   copied yet. A log that is fully copied when a transaction starts is rewritten from its
//!   beginning, so it stays a few megabytes long however long the ingest runs.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use super::StoreError;

/// Log length (in pages) past which the checkpoint thread is nudged (SQLite's own
/// automatic checkpoint threshold).
pub const NUDGE_FRAMES: i32 = 1_000;

/// Log length (in pages) past which the writer checkpoints itself, so the log can start
/// over even when the checkpoint thread never catches up with a writer that never pauses.
pub const WRITER_FRAMES: i32 = 4_000;

thread_local! {
    /// Pages in the write-ahead log after the last commit on this thread's connection.
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
}

fn note_wal_frames(_: &Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

/// Makes `conn` report its log length to [`wal_frames`] after each commit, which also
/// turns SQLite's automatic checkpoint off for it. Call on the thread that commits.
pub fn watch_wal(conn: &Connection) {
    conn.wal_hook(Some(note_wal_frames));
}

/// Pages in the write-ahead log after this thread's last commit.
pub fn wal_frames() -> i32 {
    WAL_FRAMES.get()
}

/// Copies the log into the database without waiting on anyone (another checkpoint
/// holding the lock makes it a no-op).
pub fn passive(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// The checkpoint thread, started by the store beside its writer.
pub struct Checkpointer {
    nudge: SyncSender<()>,
    thread: JoinHandle<()>,
    /// Held by whoever is checkpointing, so the writer's own pass never finds the
    /// thread's in the way (SQLite would answer "busy" and do nothing).
    turn: Arc<Mutex<()>>,
}

impl Checkpointer {
    /// Opens a connection of its own to `path` and starts the thread.
    pub fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let sql_err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(sql_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_err)?;
        // One pending nudge is enough: the checkpoint copies everything committed so far.
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        let turn = Arc::new(Mutex::new(()));
        let thread_turn = turn.clone();
        let thread = std::thread::Builder::new()
            .name("socklab-checkpoint".into())
            .spawn(move || {
                yield_to_foreground();
                let mut failing = false;
                while nudged.recv().is_ok() {
                    let pass = {
                        let _turn = thread_turn.lock().unwrap_or_else(|e| e.into_inner());
                        passive(&conn)
                    };
                    match pass {
                        Ok(()) => failing = false,
                        // A full disk or an I/O error: the log keeps the data; the next
                        // nudge tries again. Said once per spell, not per commit.
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!("store: checkpoint failed (will retry): {e}");
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Checkpointer {
            nudge,
            thread,
            turn,
        })
    }

    /// Asks for a checkpoint; never waits (a nudge already pending covers this one).
    pub fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }

    /// Stops the thread after the checkpoint it may be running.
    pub fn stop(self) {
        drop(self.nudge);
        let _ = self.thread.join();
    }
}

/// After a commit on the writer's connection: nudges the thread, or past
/// [`WRITER_FRAMES`] (or [`NUDGE_FRAMES`] without a thread) checkpoints on `conn` itself.
pub fn after_commit(conn: &Connection, checkpointer: Option<&Checkpointer>) {
    let frames = wal_frames();
    match checkpointer {
        Some(thread) if frames >= WRITER_FRAMES => {
            let _turn = thread.turn.lock().unwrap_or_else(|e| e.into_inner());
            writer_pass(conn);
        }
        Some(thread) if frames >= NUDGE_FRAMES => thread.nudge(),
        None if frames >= NUDGE_FRAMES => writer_pass(conn),
        _ => {}
    }
}

fn writer_pass(conn: &Connection) {
    if let Err(e) = passive(conn) {
        tracing::debug!("store: checkpoint on the writer: {e}");
    }
}

/// Background work comes last: on Linux the checkpoint thread's nice value goes up by
/// [`BACKGROUND_NICE`], so under a full CPU the API, the devices and the writer run first
/// (when the thread falls behind, the writer finishes the copy itself; see the module docs).
fn yield_to_foreground() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread's own id only changes its scheduling weight.
    unsafe {
        let tid = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, now + BACKGROUND_NICE);
    }
}

/// How much lower than the rest of socklab the checkpoint thread runs (nice steps).
const BACKGROUND_NICE: c_int = 5;

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that commits without pause keeps its log bounded: the thread copies, the
    /// writer finishes past its threshold, and the log starts over. Every row is there.
    #[test]
    fn the_log_stays_bounded_while_a_writer_never_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.db");
        let conn = Connection::open(&path).unwrap();
        super::super::init_schema(&conn).unwrap();
        watch_wal(&conn);
        let checkpointer = Checkpointer::start(&path).unwrap();
        let blob = vec![7u8; 4000];
        let mut most_frames = 0;
        for batch in 0..400i64 {
            let tx = conn.unchecked_transaction().unwrap();
            for i in 0..50i64 {
                tx.execute(
                    "INSERT INTO messages (id, session_id, ts_ms, direction, data) \
                     VALUES (?1, 1, 0, 0, ?2)",
                    rusqlite::params![batch * 50 + i + 1, &blob],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            most_frames = most_frames.max(wal_frames());
            after_commit(&conn, Some(&checkpointer));
        }
        checkpointer.stop();
        // 20,000 rows of 4 KB take about 40,000 pages (a leaf share and an overflow page
        // each); without checkpoints the log would hold them all. It starts over instead,
        // a few commits past the writer's threshold at most.
        assert!(most_frames >= NUDGE_FRAMES, "{most_frames}");
        assert!(most_frames < 2 * WRITER_FRAMES, "{most_frames}");
        let wal_bytes = std::fs::metadata(dir.path().join("ckpt.db-wal"))
            .unwrap()
            .len();
        assert!(wal_bytes < 2 * 4120 * WRITER_FRAMES as u64, "{wal_bytes}");
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 20_000);
    }
}

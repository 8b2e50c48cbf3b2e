//! History in SQLite: every session and every byte read from or written to a device.
//!
//! One dedicated writer thread owns the write connection and drains two bounded channels,
//! committing whatever has queued up in one transaction (batching is what makes SQLite
//! keep up with many devices). Data from devices goes through the *data* queue: device
//! tasks `await` room in it before they read more, so when the disk falls behind, TCP
//! back-pressure reaches the device instead of socklab dropping data or buffering without
//! bound. Session starts/ends and data sent to devices go through the *control* queue,
//! which the writer drains first, so an operator's send is not stuck behind a flood of
//! uploads. Queries use a second connection
//! (WAL lets it read while the writer writes), run on tokio's blocking pool.
//!
//! Layout: `mod.rs` (handle, schema, open), `writer` (the thread, retention),
//! `checkpoint` (copying the write-ahead log into the database beside the writer),
//! `query` (reads and export), `snippets` (saved send snippets).

mod checkpoint;
mod housekeeping;
mod labels;
mod lock;
mod query;
mod rates;
mod search;
mod snippets;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::model::{Direction, MessageInfo, SessionInfo};

pub use housekeeping::{Forget, Forgotten};
pub use lock::DbLock;
pub use query::export_jsonl;
pub use query::rows as query_rows;
pub use rates::SecondRate;
pub use search::{Search, SearchPage};
pub use snippets::{SaveOutcome, Snippet};

/// How many operations may wait for the writer.
pub const STORE_QUEUE_OPS: usize = 512;

/// The most operations committed in one transaction. The writer holds a batch while it
/// writes (and keeps holding it while SQLite cannot write), so with reads of at most
/// the listeners' read chunk (16 KiB) the data socklab holds for the store is bounded by
/// `(STORE_QUEUE_OPS + STORE_BATCH_OPS) * READ_CHUNK_BYTES` (16 MiB).
pub const STORE_BATCH_OPS: usize = 512;

/// The longest a query waits for queued writes before it reads what is committed.
pub const QUERY_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Errors opening or querying the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The directory for the database does not exist or cannot be used.
    #[error("cannot use directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another server holds the database (under this name or another one: a symlink or a
    /// hard link to the same file).
    #[error(
        "database {path} is in use by another socklab{}; stop it or pass another --db",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The database file as given.
        path: PathBuf,
        /// The process holding it, when the system says.
        pid: Option<u32>,
    },
    /// The writer thread or the blocking pool went away (only during shutdown).
    #[error("store is closed")]
    Closed,
}

/// One unit of work for the writer thread.
#[derive(Debug)]
pub(crate) enum StoreOp {
    /// Insert a new session row (boxed: every queued operation, and every future that
    /// submits one, is as big as the largest variant).
    SessionStart(Box<SessionInfo>),
    /// Insert one message.
    Message(Arc<MessageInfo>),
    /// Record the end and final counters of a session (boxed, as [`StoreOp::SessionStart`]).
    SessionEnd(Box<SessionInfo>),
    /// Set or remove a session's label.
    Label(u64, Option<Arc<str>>),
    /// Delete history; answered with what was deleted once committed.
    Forget(Forget, oneshot::Sender<Forgotten>),
    /// Answer once everything queued before it (in either queue) is committed.
    Barrier(oneshot::Sender<()>),
    /// Commit and stop the thread.
    Close,
}

/// Handle to the database: the writer's queue plus a read connection.
#[derive(Debug)]
pub struct Store {
    /// Device data, barriers and close (bounded: see [`STORE_QUEUE_OPS`]).
    tx: mpsc::Sender<StoreOp>,
    /// Session starts/ends and data down (bounded too; drained first).
    control_tx: mpsc::Sender<StoreOp>,
    /// Connection for queries; SQLite connections are not `Sync`, queries take turns.
    reader: Arc<Mutex<Connection>>,
    /// Joined on close so the last commit has happened when `close` returns.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Largest session and message ids in the database at open.
    max_ids: (u64, u64),
    /// Largest listener id any stored session has (`None` in an empty database).
    max_listener_id: Option<u32>,
    /// The database file (for messages).
    path: PathBuf,
    /// Session starts/ends queued so far, and (shared with the writer) committed so far:
    /// when equal, session queries need not wait for the queue (see `flush_sessions`).
    session_ops_queued: AtomicU64,
    session_ops_committed: Arc<AtomicU64>,
    /// The exclusive lock on the database file, released by [`Store::close`].
    lock: Mutex<Option<DbLock>>,
    /// Failed attempts to commit a batch that the writer retried (shared with the writer).
    write_retries: Arc<AtomicU64>,
    /// Datagrams received while the store could not take them and no room was left to
    /// hold them (see [`Store::note_unstored`]).
    unstored_datagrams: AtomicU64,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, marks sessions left online by a
    /// crash as ended with `server_shutdown`, and starts the writer thread. The file is
    /// locked for this store until [`Store::close`] ([`StoreError::Locked`] when another
    /// server has it, under any name).
    /// `max_db_bytes` enables retention: oldest closed sessions are deleted first.
    pub fn open(path: &Path, max_db_bytes: Option<u64>) -> Result<Store, StoreError> {
        let sql_err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        // The directory must exist: a mistyped --db path is an error, not a new directory
        // tree (the binary creates the default data directory itself).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(StoreError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such directory (create it first, or pass another --db)",
                ),
            });
        }
        let lock = DbLock::acquire(path)?;
        let conn = Connection::open(path).map_err(sql_err)?;
        init_schema(&conn).map_err(sql_err)?;
        let reader = Connection::open(path).map_err(sql_err)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql_err)?;
        let max_ids = query::max_ids(&reader).map_err(sql_err)?;
        let max_listener_id = query::max_listener_id(&reader).map_err(sql_err)?;
        let (tx, rx) = mpsc::channel(STORE_QUEUE_OPS);
        let (control_tx, control_rx) = mpsc::channel(STORE_QUEUE_OPS);
        let session_ops_committed = Arc::new(AtomicU64::new(0));
        let committed = session_ops_committed.clone();
        let write_retries = Arc::new(AtomicU64::new(0));
        let retries = write_retries.clone();
        let checkpointer = checkpoint::Checkpointer::start(path)?;
        let writer = std::thread::Builder::new()
            .name("socklab-store".into())
            .spawn(move || {
                writer::run(
                    conn,
                    rx,
                    control_rx,
                    max_db_bytes,
                    committed,
                    retries,
                    Some(checkpointer),
                )
            })
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Store {
            tx,
            control_tx,
            reader: Arc::new(Mutex::new(reader)),
            writer: Mutex::new(Some(writer)),
            max_ids,
            max_listener_id,
            path: path.to_path_buf(),
            session_ops_queued: AtomicU64::new(0),
            session_ops_committed,
            lock: Mutex::new(Some(lock)),
            write_retries,
            unstored_datagrams: AtomicU64::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Largest (session id, message id) found at open; new ids continue after them.
    pub fn max_ids(&self) -> (u64, u64) {
        self.max_ids
    }

    /// Largest listener id found in the history at open: listeners added at run time are
    /// numbered after it, so an id never names two different listeners in the history.
    pub fn max_listener_id(&self) -> Option<u32> {
        self.max_listener_id
    }

    /// Device data waiting for the writer (a metric; at [`STORE_QUEUE_OPS`] devices are
    /// being paused).
    pub fn queue_depth(&self) -> usize {
        STORE_QUEUE_OPS - self.tx.capacity()
    }

    /// Attempts to commit a batch that failed with an error that can pass (disk full,
    /// the database locked by another process) and were retried (a metric).
    pub fn write_retries(&self) -> u64 {
        self.write_retries.load(Ordering::Relaxed)
    }

    /// Counts a datagram that was received but could not be stored: the store was behind
    /// and its sender's hold was full (UDP cannot make a device wait).
    pub fn note_unstored(&self) {
        self.unstored_datagrams.fetch_add(1, Ordering::Relaxed);
    }

    /// Datagrams received that could not be stored (a metric; see [`Store::note_unstored`]).
    pub fn unstored_datagrams(&self) -> u64 {
        self.unstored_datagrams.load(Ordering::Relaxed)
    }

    /// Queues an operation, waiting for room: for device data this wait is the
    /// back-pressure. Which queue an operation takes is decided here.
    pub(crate) async fn submit(&self, op: StoreOp) {
        let control = match &op {
            StoreOp::SessionStart(_) | StoreOp::SessionEnd(_) => {
                self.session_ops_queued.fetch_add(1, Ordering::AcqRel);
                true
            }
            StoreOp::Message(m) => m.direction == Direction::Down,
            StoreOp::Label(..) => true,
            StoreOp::Forget(..) | StoreOp::Barrier(_) | StoreOp::Close => false,
        };
        let queue = if control { &self.control_tx } else { &self.tx };
        // Room now (the usual case): queued without a wait. Only a full queue waits, in a
        // boxed future, so every connection task that may submit stays small while idle.
        let sent = match queue.try_send(op) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(op)) => Box::pin(queue.send(op)).await,
            Err(mpsc::error::TrySendError::Closed(op)) => Err(mpsc::error::SendError(op)),
        };
        if sent.is_err() {
            tracing::error!("store writer is gone; an operation was not saved");
        }
    }

    /// Waits until everything queued so far is committed, so a query that follows sees it.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.submit(StoreOp::Barrier(tx)).await;
        let _ = rx.await;
    }

    /// [`Store::flush`] for a query: waits at most [`QUERY_FLUSH_WAIT`], so a query while
    /// the disk cannot take writes (full, locked) answers from what is committed instead of
    /// hanging. Returns whether everything queued before it is committed.
    pub async fn flush_for_query(&self) -> bool {
        tokio::time::timeout(QUERY_FLUSH_WAIT, self.flush())
            .await
            .is_ok()
    }

    /// Like [`Store::flush_for_query`], but only waits when a session start or end is
    /// still queued: session queries then see every session the hub has announced, without
    /// waiting behind a queue full of messages during heavy ingest.
    pub async fn flush_sessions(&self) -> bool {
        let queued = self.session_ops_queued.load(Ordering::Acquire);
        if self.session_ops_committed.load(Ordering::Acquire) < queued {
            return self.flush_for_query().await;
        }
        true
    }

    /// Commits what is queued and stops the writer thread; later submissions are lost
    /// (with an error logged), so call it after every session has ended.
    pub async fn close(&self) {
        let _ = self.tx.send(StoreOp::Close).await;
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        // Every write is committed: another server may have the database now.
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Runs a query on the read connection in the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let reader = self.reader.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn).map_err(|source| StoreError::Sqlite { path, source })
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// One session from history (online sessions have no end there yet).
    pub async fn session(&self, id: u64) -> Result<Option<SessionInfo>, StoreError> {
        self.read(move |c| query::session(c, id)).await
    }

    /// Sessions newest first, with the total count.
    pub async fn sessions(
        &self,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<SessionInfo>, u64), StoreError> {
        self.read(move |c| query::sessions(c, limit, offset)).await
    }

    /// Messages of a session oldest first, from `since_ms` on, with the total count.
    pub async fn messages(
        &self,
        session_id: u64,
        since_ms: i64,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<MessageInfo>, u64), StoreError> {
        self.read(move |c| query::messages(c, session_id, since_ms, limit, offset))
            .await
    }

    /// The last `count` messages of a session, oldest first (the console's `history`).
    pub async fn last_messages(
        &self,
        session_id: u64,
        count: u64,
    ) -> Result<Vec<MessageInfo>, StoreError> {
        self.read(move |c| query::last_messages(c, session_id, count))
            .await
    }
}

/// Creates tables on first use and settles pragmas. Incremental auto-vacuum must be set
/// before the first table exists; it lets retention give pages back to the file system.
pub(super) fn init_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    init_tables(conn)?;
    // `dropped` (data the emulated link discarded) came after the first release: add it
    // to databases made before.
    let has_dropped: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'dropped'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_dropped {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0")?;
    }
    // `sessions.link` (the link a session had) came later still.
    let has_link: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'link'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_link {
        conn.execute_batch("ALTER TABLE sessions ADD COLUMN link TEXT")?;
    }
    // `sessions.tls_version`/`tls_sni` (sessions on TLS listeners) came with TLS listeners.
    let has_tls: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'tls_version'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_tls {
        conn.execute_batch(
            "ALTER TABLE sessions ADD COLUMN tls_version TEXT;
             ALTER TABLE sessions ADD COLUMN tls_sni TEXT;",
        )?;
    }
    // `sessions.outgoing` (socklab connected to the device) came with client mode.
    let has_outgoing: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'outgoing'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_outgoing {
        conn.execute_batch("ALTER TABLE sessions ADD COLUMN outgoing INTEGER NOT NULL DEFAULT 0")?;
    }
    // `sessions.label` (the device's name) came with labels.
    let has_label: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'label'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_label {
        conn.execute_batch("ALTER TABLE sessions ADD COLUMN label TEXT")?;
    }
    snippets::init(conn)?;
    Ok(())
}

pub(super) fn init_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS sessions (
             id INTEGER PRIMARY KEY,
             listener_id INTEGER NOT NULL,
             proto TEXT NOT NULL,
             peer TEXT NOT NULL,
             local TEXT NOT NULL,
             started_ms INTEGER NOT NULL,
             ended_ms INTEGER,
             end_reason TEXT,
             bytes_up INTEGER NOT NULL DEFAULT 0,
             bytes_down INTEGER NOT NULL DEFAULT 0,
             msgs_up INTEGER NOT NULL DEFAULT 0,
             msgs_down INTEGER NOT NULL DEFAULT 0
         );
         CREATE TABLE IF NOT EXISTS messages (
             id INTEGER PRIMARY KEY,
             session_id INTEGER NOT NULL,
             ts_ms INTEGER NOT NULL,
             direction INTEGER NOT NULL,
             data BLOB NOT NULL
         );
         CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
         -- Sessions a crash left online: end them now, counters rebuilt from messages.
         UPDATE sessions SET
             end_reason = 'server_shutdown',
             ended_ms = COALESCE(
                 (SELECT MAX(ts_ms) FROM messages m WHERE m.session_id = sessions.id),
                 started_ms),
             bytes_up = (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM messages m
                         WHERE m.session_id = sessions.id AND direction = 0),
             bytes_down = (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM messages m
                           WHERE m.session_id = sessions.id AND direction = 1),
             msgs_up = (SELECT COUNT(*) FROM messages m
                        WHERE m.session_id = sessions.id AND direction = 0),
             msgs_down = (SELECT COUNT(*) FROM messages m
                          WHERE m.session_id = sessions.id AND direction = 1)
         WHERE ended_ms IS NULL;",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operation stays a few words long: every connection task holds one in its future
    /// while it submits, and socklab holds tens of thousands of idle connections.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn store_operations_stay_small() {
        assert!(std::mem::size_of::<StoreOp>() <= 32);
    }
}

//! Deleting history on request: one session's messages, one ended session with its
//! messages, or everything before a time. Deletions go through the writer thread like
//! every other write (in order with the data queued before them), so devices online
//! meanwhile keep being recorded; messages recorded after the request are kept.

use rusqlite::{Transaction, params};
use tokio::sync::oneshot;

use super::{Store, StoreError, StoreOp};

/// What to delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forget {
    /// The messages of session `id` with ids up to `up_to`; with `session`, the session's
    /// row too (only for a session that has ended).
    Session {
        /// The session.
        id: u64,
        /// Newest message id the request covers.
        up_to: u64,
        /// Delete the session itself as well.
        session: bool,
    },
    /// Messages older than `before_ms` (ids up to `up_to`), and sessions that ended
    /// before it. Online sessions stay, with their newer messages.
    Before {
        /// Unix milliseconds, exclusive.
        before_ms: i64,
        /// Newest message id the request covers.
        up_to: u64,
    },
}

/// What a deletion removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Forgotten {
    /// Messages deleted.
    pub messages: u64,
    /// Sessions deleted.
    pub sessions: u64,
}

/// Runs one deletion inside the writer's transaction.
pub(super) fn apply(tx: &Transaction<'_>, f: &Forget) -> rusqlite::Result<Forgotten> {
    let (messages, sessions) = match *f {
        Forget::Session { id, up_to, session } => {
            let m = tx
                .prepare_cached("DELETE FROM messages WHERE session_id = ?1 AND id <= ?2")?
                .execute(params![id as i64, up_to as i64])?;
            let s = if session {
                tx.prepare_cached("DELETE FROM sessions WHERE id = ?1 AND ended_ms IS NOT NULL")?
                    .execute(params![id as i64])?
            } else {
                0
            };
            (m, s)
        }
        Forget::Before { before_ms, up_to } => {
            let m = tx
                .prepare_cached("DELETE FROM messages WHERE ts_ms < ?1 AND id <= ?2")?
                .execute(params![before_ms, up_to as i64])?;
            // Messages of a session that ended before the time are older than it too (a
            // clock step aside): take them with the session.
            let m2 = tx
                .prepare_cached(
                    "DELETE FROM messages WHERE id <= ?2 AND session_id IN \
                     (SELECT id FROM sessions WHERE ended_ms IS NOT NULL AND ended_ms < ?1)",
                )?
                .execute(params![before_ms, up_to as i64])?;
            let s = tx
                .prepare_cached(
                    "DELETE FROM sessions WHERE ended_ms IS NOT NULL AND ended_ms < ?1",
                )?
                .execute(params![before_ms])?;
            (m + m2, s)
        }
    };
    Ok(Forgotten {
        messages: messages as u64,
        sessions: sessions as u64,
    })
}

impl Store {
    /// Deletes what `f` names once everything queued before it is committed; answers with
    /// what was deleted.
    pub async fn forget(&self, f: Forget) -> Result<Forgotten, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(StoreOp::Forget(f, tx)).await;
        rx.await.map_err(|_| StoreError::Closed)
    }

    /// Stores a session's label (`None` removes it).
    pub async fn set_label(&self, id: u64, label: Option<std::sync::Arc<str>>) {
        self.submit(StoreOp::Label(id, label)).await;
    }
}

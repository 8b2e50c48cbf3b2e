//! History housekeeping as an operator action: delete one session's messages, an ended
//! session with its messages, or everything before a time. Online sessions keep working:
//! their newer messages and their rows stay.

use std::sync::atomic::Ordering;

use super::Hub;
use crate::store::{Forget, Forgotten};

/// Why a deletion or a label change could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// No session with this id, online or in history.
    #[error("no session {0}")]
    NoSession(u64),
    /// The session is online: only its messages can be deleted.
    #[error(
        "session {0} is online: close it first, or delete only its messages \
         (DELETE /api/sessions/{0}/messages)"
    )]
    Online(u64),
    /// The label is not acceptable.
    #[error("{0}")]
    BadLabel(String),
    /// The database failed.
    #[error("history unavailable: {0}")]
    Store(String),
}

impl Hub {
    /// The newest message id handed out so far (what a deletion requested now covers).
    fn newest_message_id(&self) -> u64 {
        self.next_message_id
            .load(Ordering::Relaxed)
            .saturating_sub(1)
    }

    /// Whether a session exists, online or in history.
    pub async fn session_exists(&self, id: u64) -> Result<bool, HistoryError> {
        if self.online(id).is_some() {
            return Ok(true);
        }
        self.store.flush_sessions().await;
        match self.store.session(id).await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(HistoryError::Store(e.to_string())),
        }
    }

    /// Deletes the stored messages of one session (online or not); the session stays.
    pub async fn forget_messages(&self, id: u64) -> Result<Forgotten, HistoryError> {
        self.forget_one(id, false).await
    }

    /// Deletes an ended session and its messages. An online session is refused.
    pub async fn forget_session(&self, id: u64) -> Result<Forgotten, HistoryError> {
        if self.online(id).is_some() {
            return Err(HistoryError::Online(id));
        }
        self.forget_one(id, true).await
    }

    /// Deletes one existing session's messages, and with `with_session` its row too.
    async fn forget_one(&self, id: u64, with_session: bool) -> Result<Forgotten, HistoryError> {
        if !self.session_exists(id).await? {
            return Err(HistoryError::NoSession(id));
        }
        let up_to = self.newest_message_id();
        self.forget(Forget::Session {
            id,
            up_to,
            session: with_session,
        })
        .await
    }

    /// Deletes every message older than `before_ms` and every session that ended before
    /// it. Online sessions stay, with their newer messages.
    pub async fn forget_before(&self, before_ms: i64) -> Result<Forgotten, HistoryError> {
        let up_to = self.newest_message_id();
        self.forget(Forget::Before { before_ms, up_to }).await
    }

    async fn forget(&self, f: Forget) -> Result<Forgotten, HistoryError> {
        let done = self
            .store
            .forget(f)
            .await
            .map_err(|e| HistoryError::Store(format!("{e} (nothing was deleted)")))?;
        tracing::info!(
            "history: deleted {} message(s) and {} session(s)",
            done.messages,
            done.sessions
        );
        Ok(done)
    }
}

//! Finding sessions by label.

use rusqlite::{Connection, params};

use super::query::{SESSION_COLUMNS, session_row};
use super::{Store, StoreError};
use crate::model::SessionInfo;

fn labelled(
    c: &Connection,
    text: &str,
    limit: u64,
    offset: u64,
) -> rusqlite::Result<(Vec<SessionInfo>, u64)> {
    let total: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM sessions WHERE instr(lower(label), lower(?1)) > 0")?
        .query_row([text], |r| r.get(0))?;
    let rows = c
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE instr(lower(label), lower(?1)) > 0 \
             ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ))?
        .query_map(
            params![
                text,
                limit.min(i64::MAX as u64) as i64,
                offset.min(i64::MAX as u64) as i64
            ],
            session_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total as u64))
}

impl Store {
    /// Sessions whose label contains `text` (ASCII case ignored), newest first, with
    /// the total count.
    pub async fn labelled_sessions(
        &self,
        text: String,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<SessionInfo>, u64), StoreError> {
        self.read(move |c| labelled(c, &text, limit, offset)).await
    }
}

//! Recent throughput from history: bytes and messages per second, up and down, for the last
//! seconds, for all sessions or one. The dashboard refills its chart from it after a reload,
//! and it gives per-session rates.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{Store, StoreError};

/// Rows read at most for one answer (about a minute of very heavy ingest).
pub const RATES_MAX_ROWS: usize = 2_000_000;

/// Timestamps may go backwards a little between message ids (several writers queue); the
/// scan goes this far past the window before it stops.
const CLOCK_SLACK_MS: i64 = 5_000;

/// Traffic in one second.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SecondRate {
    /// Start of the second, Unix milliseconds.
    pub t_ms: i64,
    /// Bytes from devices.
    pub bytes_up: u64,
    /// Bytes to devices.
    pub bytes_down: u64,
    /// Messages from devices.
    pub msgs_up: u64,
    /// Messages to devices.
    pub msgs_down: u64,
}

fn rates(
    c: &Connection,
    session: Option<u64>,
    since_ms: i64,
    until_ms: i64,
) -> rusqlite::Result<Vec<SecondRate>> {
    // Newest first by id (the primary key, or the per-session index), stopping once past
    // the window: the cost follows the traffic in the window, not the size of the history.
    let mut stmt = match session {
        Some(_) => c.prepare_cached(
            "SELECT ts_ms, direction, LENGTH(data) FROM messages WHERE session_id = ?1 \
             ORDER BY id DESC",
        )?,
        None => c.prepare_cached(
            "SELECT ts_ms, direction, LENGTH(data) FROM messages WHERE ?1 IS NULL \
             ORDER BY id DESC",
        )?,
    };
    let mut rows = stmt.query(params![session.map(|s| s as i64)])?;
    let mut by_second = std::collections::BTreeMap::<i64, SecondRate>::new();
    let mut seen = 0usize;
    while let Some(row) = rows.next()? {
        let ts: i64 = row.get(0)?;
        if ts < since_ms - CLOCK_SLACK_MS {
            break;
        }
        seen += 1;
        if seen > RATES_MAX_ROWS {
            break;
        }
        if ts < since_ms || ts >= until_ms {
            continue;
        }
        let second = ts.div_euclid(1000) * 1000;
        let entry = by_second.entry(second).or_insert_with(|| SecondRate {
            t_ms: second,
            ..SecondRate::default()
        });
        let len = row.get::<_, i64>(2)? as u64;
        if row.get::<_, i64>(1)? == 0 {
            entry.bytes_up += len;
            entry.msgs_up += 1;
        } else {
            entry.bytes_down += len;
            entry.msgs_down += 1;
        }
    }
    Ok(by_second.into_values().collect())
}

impl Store {
    /// Traffic per second in `[since_ms, until_ms)`, oldest second first; seconds without
    /// traffic are left out. `session` narrows it to one session.
    pub async fn rates(
        &self,
        session: Option<u64>,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<SecondRate>, StoreError> {
        self.read(move |c| rates(c, session, since_ms, until_ms))
            .await
    }
}

//! Searching history: messages by content (bytes or a regex), direction, session, listener
//! and time, newest first, served by SQLite. Content is matched with `instr` on the stored
//! blobs (a byte-exact substring test, no text decoding) and regexes with a function backed
//! by the `regex` crate; session filters use the per-session index.

use regex::bytes::Regex;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::query::message_row;
use super::{Store, StoreError};
use crate::model::{Direction, MessageInfo};

/// What to look for; every field narrows the result.
#[derive(Clone, Debug, Default)]
pub struct Search {
    /// Messages containing each of these byte strings.
    pub bytes: Vec<Vec<u8>>,
    /// Messages a (bytes) regex matches somewhere in.
    pub regex: Option<Regex>,
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this session.
    pub session: Option<u64>,
    /// Only sessions of this listener.
    pub listener: Option<u32>,
    /// From this time on (Unix ms, inclusive).
    pub since_ms: Option<i64>,
    /// Before this time (Unix ms, exclusive).
    pub until_ms: Option<i64>,
    /// Only messages with an id up to this one: pins a result set while data streams in.
    pub max_id: Option<u64>,
    /// Only sessions whose label contains this text (any case).
    pub label: Option<String>,
}

/// One page of results.
#[derive(Clone, Debug)]
pub struct SearchPage {
    /// The messages, newest first.
    pub messages: Vec<MessageInfo>,
    /// How many messages match in all.
    pub total: u64,
    /// The newest message id the search covered (pass it back as `max_id` for more pages).
    pub max_id: u64,
}

impl Search {
    /// Whether any criterion is set (an empty search matches everything).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
            && self.regex.is_none()
            && self.direction.is_none()
            && self.session.is_none()
            && self.listener.is_none()
            && self.since_ms.is_none()
            && self.until_ms.is_none()
            && self.max_id.is_none()
            && self.label.is_none()
    }

    /// The WHERE clause over `messages` and its parameters, for code that reads a
    /// database directly (export). Registers the regex function on `c` when needed.
    pub fn sql_filter(&self, c: &Connection) -> rusqlite::Result<(String, Vec<SqlValue>)> {
        if let Some(re) = self.regex.clone() {
            register_regex(c, re)?;
        }
        Ok(self.clause(self.max_id.unwrap_or(i64::MAX as u64)))
    }

    /// The WHERE clause and its parameters.
    fn clause(&self, max_id: u64) -> (String, Vec<SqlValue>) {
        let mut sql = vec!["id <= ?".to_string()];
        let mut args = vec![SqlValue::Integer(max_id as i64)];
        if let Some(s) = self.session {
            sql.push("session_id = ?".into());
            args.push(SqlValue::Integer(s as i64));
        }
        if let Some(l) = self.listener {
            sql.push("session_id IN (SELECT id FROM sessions WHERE listener_id = ?)".into());
            args.push(SqlValue::Integer(i64::from(l)));
        }
        if let Some(d) = self.direction {
            sql.push("direction = ?".into());
            args.push(SqlValue::Integer(if d == Direction::Up { 0 } else { 1 }));
        }
        if let Some(t) = self.since_ms {
            sql.push("ts_ms >= ?".into());
            args.push(SqlValue::Integer(t));
        }
        if let Some(t) = self.until_ms {
            sql.push("ts_ms < ?".into());
            args.push(SqlValue::Integer(t));
        }
        for b in &self.bytes {
            sql.push("instr(data, ?) > 0".into());
            args.push(SqlValue::Blob(b.clone()));
        }
        if self.regex.is_some() {
            sql.push("socklab_regex(data)".into());
        }
        if let Some(l) = &self.label {
            sql.push(
                "session_id IN (SELECT id FROM sessions WHERE instr(lower(label), lower(?)) > 0)"
                    .into(),
            );
            args.push(SqlValue::Text(l.clone()));
        }
        (sql.join(" AND "), args)
    }
}

/// Makes `socklab_regex(data)` match `re` on this connection.
fn register_regex(c: &Connection, re: Regex) -> rusqlite::Result<()> {
    c.create_scalar_function(
        "socklab_regex",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let data = ctx.get_raw(0).as_bytes_or_null().ok().flatten();
            Ok(data.is_some_and(|d| re.is_match(d)))
        },
    )
}

fn search(c: &Connection, q: &Search, limit: u64, offset: u64) -> rusqlite::Result<SearchPage> {
    let newest: i64 = c.query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| {
        r.get(0)
    })?;
    let max_id = q.max_id.unwrap_or(u64::MAX).min(newest as u64);
    if let Some(re) = q.regex.clone() {
        register_regex(c, re)?;
    }
    let (clause, args) = q.clause(max_id);
    let total: i64 = c
        .prepare(&format!("SELECT COUNT(*) FROM messages WHERE {clause}"))?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    let mut page_args = args;
    page_args.push(SqlValue::Integer(limit.min(i64::MAX as u64) as i64));
    page_args.push(SqlValue::Integer(offset.min(i64::MAX as u64) as i64));
    let messages = c
        .prepare(&format!(
            "SELECT id, session_id, ts_ms, direction, data, dropped FROM messages \
             WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?"
        ))?
        .query_map(params_from_iter(page_args.iter()), message_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if q.regex.is_some() {
        c.remove_function("socklab_regex", 1)?;
    }
    Ok(SearchPage {
        messages,
        total: total as u64,
        max_id,
    })
}

impl Store {
    /// Messages matching `q`, newest first: `limit` of them after skipping `offset`.
    pub async fn search(
        &self,
        q: Search,
        limit: u64,
        offset: u64,
    ) -> Result<SearchPage, StoreError> {
        self.read(move |c| search(c, &q, limit, offset)).await
    }
}

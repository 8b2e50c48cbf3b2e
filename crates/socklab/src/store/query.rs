//! Read-side queries on the history, and the `socklab export` writer.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use super::StoreError;
use crate::model::{
    Counters, Direction, EndReason, LinkView, MessageInfo, MessageStatus, Proto, SessionInfo,
    SessionMeta, TlsInfo,
};

pub(super) const SESSION_COLUMNS: &str = "id, listener_id, proto, peer, local, started_ms, ended_ms, \
                               end_reason, bytes_up, bytes_down, msgs_up, msgs_down, link, \
                               tls_version, tls_sni, outgoing, label";

/// Largest listener id of any stored session (`None` when there is none).
pub(super) fn max_listener_id(c: &Connection) -> rusqlite::Result<Option<u32>> {
    c.query_row("SELECT MAX(listener_id) FROM sessions", [], |r| {
        r.get::<_, Option<u32>>(0)
    })
}

/// Largest session id and message id in the database (0 when empty).
pub(super) fn max_ids(c: &Connection) -> rusqlite::Result<(u64, u64)> {
    let s: i64 = c.query_row("SELECT COALESCE(MAX(id), 0) FROM sessions", [], |r| {
        r.get(0)
    })?;
    let m: i64 = c.query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| {
        r.get(0)
    })?;
    Ok((s as u64, m as u64))
}

fn parse_addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
}

pub(super) fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionInfo> {
    let proto: String = r.get(2)?;
    let peer: String = r.get(3)?;
    let local: String = r.get(4)?;
    let reason: Option<String> = r.get(7)?;
    let end_reason = reason.as_deref().and_then(EndReason::parse);
    let link: Option<String> = r.get(12)?;
    let tls_version: Option<String> = r.get(13)?;
    let label: Option<String> = r.get(16)?;
    let get_u64 = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)? as u64) };
    Ok(SessionInfo {
        meta: SessionMeta {
            id: get_u64(0)?,
            listener_id: r.get(1)?,
            proto: Proto::parse(&proto).unwrap_or(Proto::Tcp),
            peer: parse_addr(&peer),
            local: parse_addr(&local),
            started_ms: r.get(5)?,
            tls: match tls_version {
                Some(version) => Some(std::sync::Arc::new(TlsInfo {
                    version,
                    sni: r.get(14)?,
                })),
                None => None,
            },
            outgoing: r.get::<_, i64>(15)? != 0,
        },
        ended_ms: r.get(6)?,
        end_reason,
        counters: Counters {
            bytes_up: get_u64(8)?,
            bytes_down: get_u64(9)?,
            msgs_up: get_u64(10)?,
            msgs_down: get_u64(11)?,
        },
        // The link the session had (its last), as history keeps it.
        link: link.map(|spec| LinkView {
            spec,
            state: if end_reason == Some(EndReason::NatDropped) {
                "nat_dropped"
            } else {
                "ok"
            },
        }),
        label: label.map(Arc::from),
        rates: None,
    })
}

pub(super) fn message_row(r: &Row<'_>) -> rusqlite::Result<MessageInfo> {
    let direction: i64 = r.get(3)?;
    let data: Vec<u8> = r.get(4)?;
    let status = MessageStatus::from_code(r.get(5)?);
    let direction = if direction == 0 {
        Direction::Up
    } else {
        Direction::Down
    };
    Ok(MessageInfo::new(
        r.get::<_, i64>(0)? as u64,
        r.get::<_, i64>(1)? as u64,
        r.get(2)?,
        direction,
        Bytes::from(data),
        status,
    ))
}

pub(super) fn session(c: &Connection, id: u64) -> rusqlite::Result<Option<SessionInfo>> {
    c.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
    ))?
    .query_row([id as i64], session_row)
    .optional()
}

pub(super) fn sessions(
    c: &Connection,
    limit: u64,
    offset: u64,
) -> rusqlite::Result<(Vec<SessionInfo>, u64)> {
    static NEWEST_FIRST: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY id DESC LIMIT ?1 OFFSET ?2")
    });
    let total: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM sessions")?
        .query_row([], |r| r.get(0))?;
    let rows = c
        .prepare_cached(&NEWEST_FIRST)?
        .query_map(params![limit as i64, offset as i64], session_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total as u64))
}

pub(super) fn messages(
    c: &Connection,
    session_id: u64,
    since_ms: i64,
    limit: u64,
    offset: u64,
) -> rusqlite::Result<(Vec<MessageInfo>, u64)> {
    let total: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE session_id = ?1 AND ts_ms >= ?2")?
        .query_row(params![session_id as i64, since_ms], |r| r.get(0))?;
    let rows = c
        .prepare_cached(
            "SELECT id, session_id, ts_ms, direction, data, dropped FROM messages
             WHERE session_id = ?1 AND ts_ms >= ?2 ORDER BY id LIMIT ?3 OFFSET ?4",
        )?
        .query_map(
            params![session_id as i64, since_ms, limit as i64, offset as i64],
            message_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total as u64))
}

pub(super) fn last_messages(
    c: &Connection,
    session_id: u64,
    count: u64,
) -> rusqlite::Result<Vec<MessageInfo>> {
    let mut rows = c
        .prepare_cached(
            "SELECT id, session_id, ts_ms, direction, data, dropped FROM messages
             WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(params![session_id as i64, count as i64], message_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

/// Writes every message of `session_id` in the database at `db` to `out`, one JSON object
/// per line (the API's message shape), oldest first. Opens the database read-only, so it
/// works while a server is running. Returns the number of messages written, or `Ok(None)`
/// when the session does not exist.
pub fn export_jsonl(
    db: &Path,
    session_id: u64,
    out: &mut dyn Write,
) -> Result<Option<u64>, StoreError> {
    let sql_err = |source| StoreError::Sqlite {
        path: db.to_path_buf(),
        source,
    };
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql_err)?;
    if session(&c, session_id).map_err(sql_err)?.is_none() {
        return Ok(None);
    }
    let mut stmt = c
        .prepare(
            "SELECT id, session_id, ts_ms, direction, data, dropped FROM messages
             WHERE session_id = ?1 ORDER BY id",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([session_id as i64]).map_err(sql_err)?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let msg = message_row(row).map_err(sql_err)?;
        let line = serde_json::to_string(&msg).unwrap_or_default();
        writeln!(out, "{line}").map_err(|source| StoreError::Io {
            path: db.to_path_buf(),
            source,
        })?;
        n += 1;
    }
    Ok(Some(n))
}

/// Row readers for code outside the store that reads a database directly (export).
pub mod rows {
    use rusqlite::{Connection, Row};

    use crate::model::{MessageInfo, SessionInfo};

    /// Every session, oldest first.
    pub fn all_sessions(c: &Connection) -> rusqlite::Result<Vec<SessionInfo>> {
        c.prepare(&format!(
            "SELECT {} FROM sessions ORDER BY id",
            super::SESSION_COLUMNS
        ))?
        .query_map([], super::session_row)?
        .collect()
    }

    /// A message from a row of `id, session_id, ts_ms, direction, data, dropped`.
    pub fn message(r: &Row<'_>) -> rusqlite::Result<MessageInfo> {
        super::message_row(r)
    }
}

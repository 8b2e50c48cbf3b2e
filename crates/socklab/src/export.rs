//! `socklab export`: history out of the database as JSON lines, CSV, raw bytes of one
//! direction, or pcapng with synthesized TCP/UDP packets (real addresses and timestamps) that
//! Wireshark and tshark open. Reads the database read-only, without the server's lock.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, params_from_iter};

use crate::clock::format_ms;
use crate::model::{Direction, MessageInfo, MessageStatus, Proto, SessionInfo};
use crate::rules::escape;
use crate::store::{Search, query_rows};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON message object per line.
    Jsonl,
    /// A header line, then one message per line (id, session, time, direction, length, hex, escaped text).
    Csv,
    /// The bytes of one direction (`--direction`, default up), concatenated.
    Raw,
    /// A capture file: each message as a TCP or UDP packet between the real addresses.
    Pcapng,
}

/// Which messages to export.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// These sessions (empty with `all`: every session).
    pub sessions: Vec<u64>,
    /// Every session.
    pub all: bool,
    /// From this time (Unix ms, inclusive).
    pub since_ms: Option<i64>,
    /// Before this time (Unix ms, exclusive).
    pub until_ms: Option<i64>,
    /// Only this direction (raw: the direction written, default up).
    pub direction: Option<Direction>,
    /// Only messages this search finds (content, listener, label, ...): the API's export
    /// of a search result.
    pub filter: Option<Search>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Nothing says what to export.
    #[error("name sessions, or give --all, --since or --until")]
    NothingSelected,
    /// A named session is not in the database.
    #[error("no session {0} in {1}")]
    NoSession(u64, PathBuf),
    /// The database could not be read.
    #[error("database {0}: {1}")]
    Sqlite(PathBuf, rusqlite::Error),
    /// Writing the output failed (a closed pipe is reported as this too).
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
    /// The capture writer failed.
    #[error("cannot write the capture: {0}")]
    Capture(String),
}

/// Parses a time for `--since`/`--until`: RFC 3339 (`2026-12-01T10:00:00Z`) or Unix ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            format!("{s:?} is not a time: use RFC 3339 (2026-12-01T10:00:00Z) or Unix milliseconds")
        })
}

/// Writes the selected messages to `out` in `format`; returns how many were written.
pub fn export(
    db: &Path,
    sel: &Selection,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    if sel.sessions.is_empty()
        && !sel.all
        && sel.since_ms.is_none()
        && sel.until_ms.is_none()
        && sel.filter.as_ref().is_none_or(Search::is_empty)
    {
        return Err(ExportError::NothingSelected);
    }
    let sql = |e| ExportError::Sqlite(db.to_path_buf(), e);
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    let mut sessions = HashMap::new();
    for s in query_rows::all_sessions(&c).map_err(sql)? {
        sessions.insert(s.id, s);
    }
    for id in &sel.sessions {
        if !sessions.contains_key(id) {
            return Err(ExportError::NoSession(*id, db.to_path_buf()));
        }
    }
    let mut clause = vec!["1".to_string()];
    let mut args = Vec::new();
    if !sel.sessions.is_empty() {
        let marks = vec!["?"; sel.sessions.len()].join(",");
        clause.push(format!("session_id IN ({marks})"));
        args.extend(sel.sessions.iter().map(|s| SqlValue::Integer(*s as i64)));
    }
    if let Some(t) = sel.since_ms {
        clause.push("ts_ms >= ?".into());
        args.push(SqlValue::Integer(t));
    }
    if let Some(t) = sel.until_ms {
        clause.push("ts_ms < ?".into());
        args.push(SqlValue::Integer(t));
    }
    let direction = match format {
        Format::Raw => Some(sel.direction.unwrap_or(Direction::Up)),
        _ => sel.direction,
    };
    if let Some(d) = direction {
        clause.push("direction = ?".into());
        args.push(SqlValue::Integer(i64::from(d == Direction::Down)));
    }
    if let Some(filter) = &sel.filter {
        let (more, more_args) = filter.sql_filter(&c).map_err(sql)?;
        clause.push(more);
        args.extend(more_args);
    }
    let mut stmt = c
        .prepare(&format!(
            "SELECT id, session_id, ts_ms, direction, data, dropped FROM messages \
             WHERE {} ORDER BY id",
            clause.join(" AND ")
        ))
        .map_err(sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter())).map_err(sql)?;
    let mut sink = Sink::new(format, out)?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(sql)? {
        let m = query_rows::message(row).map_err(sql)?;
        sink.write(&m, sessions.get(&m.session_id))?;
        n += 1;
    }
    sink.finish()?;
    Ok(n)
}

/// Per-session TCP sequence numbers of a synthesized capture.
#[derive(Default)]
struct Flow {
    started: bool,
    seq_up: u32,
    seq_down: u32,
}

enum Sink<'a> {
    Jsonl(&'a mut dyn Write),
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
    Raw(&'a mut dyn Write),
    Pcap(Box<PcapNgWriter<&'a mut dyn Write>>, HashMap<u64, Flow>),
}

/// Payload bytes per synthesized packet (an IP packet holds at most 65,535 bytes).
const PACKET_PAYLOAD: usize = 32 * 1024;

fn cap_err(e: pcap_file::PcapError) -> ExportError {
    match e {
        pcap_file::PcapError::IoError(io) => ExportError::Write(io),
        other => ExportError::Capture(other.to_string()),
    }
}

impl<'a> Sink<'a> {
    fn new(format: Format, out: &'a mut dyn Write) -> Result<Sink<'a>, ExportError> {
        Ok(match format {
            Format::Jsonl => Sink::Jsonl(out),
            Format::Raw => Sink::Raw(out),
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record([
                    "id",
                    "session_id",
                    "ts",
                    "ts_ms",
                    "direction",
                    "len",
                    "status",
                    "hex",
                    "text",
                ])
                .map_err(csv_err)?;
                Sink::Csv(Box::new(w))
            }
            Format::Pcapng => {
                let mut w = PcapNgWriter::new(out).map_err(cap_err)?;
                let iface = InterfaceDescriptionBlock {
                    linktype: DataLink::RAW,
                    snaplen: 0,
                    // The writer stores nanoseconds: say so, or readers assume microseconds.
                    options: vec![InterfaceDescriptionOption::IfTsResol(9)],
                };
                w.write_block(&iface.into_block()).map_err(cap_err)?;
                Sink::Pcap(Box::new(w), HashMap::new())
            }
        })
    }

    fn write(&mut self, m: &MessageInfo, s: Option<&SessionInfo>) -> Result<(), ExportError> {
        match self {
            Sink::Jsonl(out) => {
                let line = serde_json::to_string(m).unwrap_or_default();
                writeln!(out, "{line}")?;
            }
            Sink::Raw(out) => {
                if m.status != MessageStatus::Dropped {
                    out.write_all(&m.data)?;
                }
            }
            Sink::Csv(w) => w
                .write_record([
                    m.id.to_string(),
                    m.session_id.to_string(),
                    format_ms(m.ts_ms),
                    m.ts_ms.to_string(),
                    m.direction.as_str().to_string(),
                    m.data.len().to_string(),
                    status_name(m.status).to_string(),
                    hex::encode(&m.data),
                    escape(&m.data),
                ])
                .map_err(csv_err)?,
            Sink::Pcap(w, flows) => {
                // What never crossed the wire (dropped by the emulated link, undelivered)
                // is not a packet.
                let Some(s) = s else { return Ok(()) };
                if m.status != MessageStatus::Ok {
                    return Ok(());
                }
                let flow = flows.entry(s.id).or_default();
                for p in packets(s, m, flow) {
                    let block = EnhancedPacketBlock {
                        interface_id: 0,
                        timestamp: Duration::from_millis(m.ts_ms.max(0) as u64),
                        original_len: p.len() as u32,
                        data: Cow::Owned(p),
                        options: vec![],
                    };
                    w.write_block(&block.into_block()).map_err(cap_err)?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), ExportError> {
        match self {
            Sink::Jsonl(out) | Sink::Raw(out) => out.flush()?,
            Sink::Csv(mut w) => w.flush()?,
            Sink::Pcap(w, _) => w.into_inner().flush()?,
        }
        Ok(())
    }
}

fn csv_err(e: csv::Error) -> ExportError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ExportError::Write(io),
        other => ExportError::Capture(format!("{other:?}")),
    }
}

fn status_name(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Ok => "ok",
        MessageStatus::Dropped => "dropped",
        MessageStatus::Undelivered => "undelivered",
        MessageStatus::Failed => "failed",
    }
}

/// Both addresses in one IP family (an IPv4 peer of an IPv6 socket becomes v4-mapped).
fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |x: SocketAddr| match x.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), x.port()),
        IpAddr::V6(_) => x,
    };
    if a.is_ipv4() == b.is_ipv4() {
        (a, b)
    } else {
        (v6(a), v6(b))
    }
}

fn builder(
    from: SocketAddr,
    to: SocketAddr,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    match (from.ip(), to.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => PacketBuilder::ipv4(a.octets(), b.octets(), 64),
        (a, b) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            PacketBuilder::ipv6(v6(a), v6(b), 64)
        }
    }
}

/// The packets one message becomes: UDP datagrams, or TCP segments after a synthesized
/// handshake on the session's first message.
fn packets(s: &SessionInfo, m: &MessageInfo, flow: &mut Flow) -> Vec<Vec<u8>> {
    let (device, server) = same_family(s.peer, s.local);
    let up = m.direction == Direction::Up;
    let (from, to) = if up {
        (device, server)
    } else {
        (server, device)
    };
    let mut out = Vec::new();
    let build = |b: etherparse::PacketBuilderStep<etherparse::TcpHeader>, payload: &[u8]| {
        let mut buf = Vec::with_capacity(b.size(payload.len()));
        let _ = b.write(&mut buf, payload);
        buf
    };
    match s.proto {
        Proto::Udp => {
            for chunk in m.data.chunks(PACKET_PAYLOAD.max(1)) {
                let b = builder(from, to).udp(from.port(), to.port());
                let mut buf = Vec::with_capacity(b.size(chunk.len()));
                let _ = b.write(&mut buf, chunk);
                out.push(buf);
            }
        }
        Proto::Tcp => {
            if !flow.started {
                flow.started = true;
                let syn = builder(device, server)
                    .tcp(device.port(), server.port(), 0, 65535)
                    .syn();
                out.push(build(syn, &[]));
                let syn_ack = builder(server, device)
                    .tcp(server.port(), device.port(), 0, 65535)
                    .syn()
                    .ack(1);
                out.push(build(syn_ack, &[]));
                let ack = builder(device, server)
                    .tcp(device.port(), server.port(), 1, 65535)
                    .ack(1);
                out.push(build(ack, &[]));
                flow.seq_up = 1;
                flow.seq_down = 1;
            }
            for chunk in m.data.chunks(PACKET_PAYLOAD) {
                let (seq, ack) = if up {
                    (flow.seq_up, flow.seq_down)
                } else {
                    (flow.seq_down, flow.seq_up)
                };
                let b = builder(from, to)
                    .tcp(from.port(), to.port(), seq, 65535)
                    .psh()
                    .ack(ack);
                out.push(build(b, chunk));
                let next = seq.wrapping_add(chunk.len() as u32);
                if up {
                    flow.seq_up = next;
                } else {
                    flow.seq_down = next;
                }
            }
        }
    }
    out
}

//! Console commands for saved snippets and periodic sends, and the console line of a
//! periodic send's event.
//!
//! A payload is written as in auto-reply rules: `text:TEXT` (with the console's escapes
//! `\r \n \t \xHH`), `hex:HEX`, or, where a saved snippet may be sent, `snippet:NAME`.

use std::sync::Arc;

use bytes::Bytes;

use super::{CommandError, parse_id};
use crate::clock;
use crate::hub::Hub;
use crate::model::periodic::PeriodicAction;
use crate::model::{PeriodicEnd, PeriodicEvent, PeriodicInfo, PeriodicTarget};
use crate::rules::{decode_hex, escape, unescape};

/// The help lines of these commands.
pub(super) const HELP: &str = "  snippets             saved snippets
  snippet save NAME PAYLOAD     save a snippet: PAYLOAD is text:TEXT (escapes) or hex:HEX
  snippet replace NAME PAYLOAD  save over an existing snippet
  snippet delete NAME  delete a snippet
  snippet send ID|all NAME      send a snippet to a session, or to every online session
  every MS ID|all PAYLOAD       send every MS ms (text:… hex:… snippet:NAME) until stopped
  periodic             running periodic sends
  stop PID|all         stop a periodic send, or all of them";

/// Preview bytes shown for a snippet or periodic send.
const SHOW: usize = 48;

/// Runs `snippets`, `snippet …`, `every …`, `periodic` and `stop …`.
pub(super) async fn command(hub: &Arc<Hub>, cmd: &str, rest: &str) -> Result<String, CommandError> {
    let (arg, tail) = split(rest);
    match cmd {
        "snippets" => list(hub).await,
        "snippet" => snippet(hub, arg, tail).await,
        "every" => every(hub, rest).await,
        "periodic" => Ok(periodic_list(hub)),
        "stop" => stop(hub, arg).await,
        _ => Err(CommandError::Usage(format!("unknown command {cmd:?}"))),
    }
}

fn split(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let (a, b) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
    (a, b.trim_start())
}

fn preview(data: &[u8]) -> String {
    let shown = &data[..data.len().min(SHOW)];
    let more = if data.len() > SHOW { " ..." } else { "" };
    format!("\"{}\"{more} ({} B)", escape(shown), data.len())
}

async fn list(hub: &Hub) -> Result<String, CommandError> {
    let all = hub.snippets().await?;
    if all.is_empty() {
        return Ok("no snippets; save one with: snippet save NAME text:TEXT".into());
    }
    Ok(all
        .iter()
        .map(|s| format!("  {} {}", s.name, preview(&s.data)))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// `text:…` or `hex:…` as bytes (`snippet:NAME` too when `hub` is given).
async fn payload(hub: Option<&Hub>, spec: &str) -> Result<(Bytes, Option<String>), CommandError> {
    let usage = || {
        CommandError::Usage(format!(
            "payload must be text:TEXT or hex:HEX{}, not {spec:?}",
            if hub.is_some() {
                " or snippet:NAME"
            } else {
                ""
            }
        ))
    };
    let (kind, value) = spec.split_once(':').ok_or_else(usage)?;
    let data = match (kind, hub) {
        ("text", _) => unescape(value)?,
        ("hex", _) => decode_hex(value)?,
        ("snippet", Some(hub)) => {
            let name = value.trim();
            return Ok((hub.snippet_data(name).await?, Some(name.to_string())));
        }
        _ => return Err(usage()),
    };
    if data.is_empty() {
        return Err(CommandError::Usage(
            "nothing to send: payload is empty".into(),
        ));
    }
    Ok((Bytes::from(data), None))
}

async fn snippet(hub: &Arc<Hub>, action: &str, rest: &str) -> Result<String, CommandError> {
    let (name, tail) = split(rest);
    match action {
        "save" | "replace" if !name.is_empty() && !tail.is_empty() => {
            let (data, _) = payload(None, tail).await?;
            let (s, replaced) = hub
                .save_snippet(name, data.to_vec(), action == "replace")
                .await?;
            let verb = if replaced { "replaced" } else { "saved" };
            Ok(format!("snippet {} {verb}: {}", s.name, preview(&s.data)))
        }
        "delete" if !name.is_empty() => {
            hub.delete_snippet(name).await?;
            Ok(format!("snippet {name} deleted"))
        }
        "send" if !name.is_empty() && !tail.is_empty() => {
            let data = hub.snippet_data(tail.trim()).await?;
            if name == "all" {
                let (sessions, bytes) = hub.broadcast(None, data).await?;
                return Ok(format!("sent {bytes} B to {sessions} session(s)"));
            }
            let id = parse_id(name)?;
            let n = hub.send(id, data).await?;
            Ok(format!("sent {n} B to #{id}"))
        }
        _ => Err(CommandError::Usage(
            "usage: snippet save|replace NAME PAYLOAD | snippet delete NAME | snippet send ID|all NAME"
                .into(),
        )),
    }
}

async fn every(hub: &Arc<Hub>, rest: &str) -> Result<String, CommandError> {
    let usage =
        || CommandError::Usage("usage: every MS ID|all text:TEXT|hex:HEX|snippet:NAME".into());
    let (ms, rest) = split(rest);
    let (who, spec) = split(rest);
    if spec.is_empty() {
        return Err(usage());
    }
    let every_ms: u64 = ms
        .parse()
        .map_err(|_| CommandError::Usage(format!("invalid interval {ms:?} (milliseconds)")))?;
    let target = if who == "all" {
        PeriodicTarget::Broadcast(None)
    } else {
        PeriodicTarget::Session(parse_id(who)?)
    };
    let (data, snippet) = payload(Some(hub), spec).await?;
    let p = hub.start_periodic(target, data, every_ms, snippet)?;
    Ok(format!(
        "periodic {} started: {} every {} ms (stop {})",
        p.id,
        preview(&p.data),
        p.every_ms,
        p.id
    ))
}

fn target_text(p: &PeriodicInfo) -> String {
    match p.target {
        PeriodicTarget::Session(id) => format!("#{id}"),
        PeriodicTarget::Broadcast(None) => "all".into(),
        PeriodicTarget::Broadcast(Some(l)) => format!("all of listener {l}"),
    }
}

fn periodic_list(hub: &Hub) -> String {
    let all = hub.periodic_sends();
    if all.is_empty() {
        return "no periodic sends".into();
    }
    let mut text = format!("{} periodic send(s)", all.len());
    for p in all {
        text.push_str(&format!(
            "\n  {} to {} every {} ms: {} sent {}, skipped {}, failed {}",
            p.id,
            target_text(&p),
            p.every_ms,
            preview(&p.data),
            p.sent,
            p.skipped,
            p.failed
        ));
    }
    text
}

async fn stop(hub: &Hub, arg: &str) -> Result<String, CommandError> {
    if arg == "all" {
        let ids: Vec<u64> = hub.periodic_sends().iter().map(|p| p.id).collect();
        for id in &ids {
            // One that stopped by itself in the meantime is simply gone.
            let _ = hub.stop_periodic(*id).await;
        }
        return Ok(format!("{} periodic send(s) stopped", ids.len()));
    }
    let id: u64 = arg
        .parse()
        .map_err(|_| CommandError::Usage("usage: stop PID|all (see: periodic)".into()))?;
    let p = hub.stop_periodic(id).await?;
    Ok(format!("periodic {id} stopped after {} send(s)", p.sent))
}

/// A periodic send's event as a console line.
pub(super) fn render_periodic(e: &PeriodicEvent) -> String {
    let p = &e.periodic;
    let what = match (e.action, &e.end) {
        (PeriodicAction::Started, _) => format!(
            "started: {} to {} every {} ms",
            preview(&p.data),
            target_text(p),
            p.every_ms
        ),
        (PeriodicAction::Skipping, _) => {
            format!(
                "to {}: the device is not reading; sends are skipped",
                target_text(p)
            )
        }
        (PeriodicAction::Stopped, end) => {
            let why = match end {
                Some(PeriodicEnd::Offline) => "the session went offline".to_string(),
                Some(PeriodicEnd::Operator) => "stopped by the operator".to_string(),
                Some(PeriodicEnd::Shutdown) => "server shutdown".to_string(),
                Some(PeriodicEnd::Error(m)) => m.clone(),
                None => "stopped".to_string(),
            };
            format!(
                "to {} stopped: {why} (sent {}, skipped {}, failed {})",
                target_text(p),
                p.sent,
                p.skipped,
                p.failed
            )
        }
    };
    format!("{} periodic {} {what}", clock::format_clock(e.ts_ms), p.id)
}

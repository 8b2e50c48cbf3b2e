//! The terminal console: live events on stdout and operator commands from stdin.
//!
//! Stdin is read on a plain thread (a blocked read must not hold up runtime shutdown) and
//! lines come to the console task through a channel. End of input only stops the
//! commands; the server and the live view keep running. Output goes through tokio's
//! stdout so a slow terminal blocks no worker thread; the console is an ordinary hub
//! subscriber and skips events when it falls behind.
//!
//! Layout: this file (the loop, events, the core commands), [`snippets`] (saved snippets
//! and periodic sends).

pub mod snippets;

mod history;

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};

use crate::clock;
use crate::framing::Framing;
use crate::hub::connect::ConnectRequest;
use crate::hub::listeners::{ListenRequest, ListenerSettings, OpenError, parse_bind_addr};
use crate::hub::periodic::PeriodicError;
use crate::hub::snippets::SnippetError;
use crate::hub::{ActionError, Hub};
use crate::link::{Fault, FaultParseError, LinkParseError, LinkSpec};
use crate::model::{Event, LinkAction, LinkEvent, MessageInfo, MessageStatus, Proto, SessionInfo};
use crate::rules::{Rule, RuleError, decode_hex, escape, unescape};
use crate::store::StoreError;

/// Why a console command failed. Operator actions fail with the hub's
/// [`ActionError`] (explained against the history first), so the console says what the
/// API says.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The hub refused the action.
    #[error(transparent)]
    Action(#[from] ActionError),
    /// Bad text, hex or auto-reply rule.
    #[error(transparent)]
    Input(#[from] RuleError),
    /// Bad link spec.
    #[error(transparent)]
    Link(#[from] LinkParseError),
    /// Bad fault.
    #[error(transparent)]
    Fault(#[from] FaultParseError),
    /// The history could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not be added or removed, or a connection not opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A snippet could not be saved, found or deleted.
    #[error(transparent)]
    Snippet(#[from] SnippetError),
    /// A periodic send could not be started or stopped.
    #[error(transparent)]
    Periodic(#[from] PeriodicError),
    /// The command was not used as documented.
    #[error("{0}")]
    Usage(String),
}

/// Payload bytes shown per event; the rest is summarised (history has everything).
const SHOW_BYTES: usize = 64;

const HELP: &str = "commands:
  list                 online sessions
  send ID TEXT         send text (escapes \\r \\n \\t \\xHH) to a session
  sendhex ID HEX       send bytes given as hex
  broadcast TEXT       send text to every online session
  close ID             close a session
  echo on|off          echo mode on every listener
  autoreply            list the auto-reply rules
  autoreply RULE       add a rule to every listener, e.g. exact:1234567890=>text:0123456789
  autoreply clear      remove every rule
  framing read|line|delim:TEXT
                       how every listener's rules see data: each read, each line, or
                       frames ending at TEXT
  history ID           last 20 messages of a session
  label ID TEXT|-      name a session's device (- removes the name)
  delete ID            delete a session's stored messages (asks first)
  delete before TIME   delete history older than TIME, e.g. 2026-12-01T00:00:00Z (asks first)
  link ID SPEC|none    set a session's emulated link, e.g. link 3 nbiot,nat_idle=270s
  link all SPEC|none   set every listener's link (new and online sessions)
  fault ID FAULT       inject now: outage 5s | reset | nat_drop
  connect HOST:PORT [udp]  connect to a device that is the server (a new session)
  listeners            listeners and outgoing connections, with their ids
  listen tcp|udp ADDR  add a listener, e.g. listen tcp 127.0.0.1:9000
  unlisten ID          remove a listener (its online sessions end)
  help                 this text";

/// Runs the console until the process ends: prints `events` (the live view; `None` with
/// `--quiet`), executes commands from stdin if `input`.
pub async fn run(hub: Arc<Hub>, mut events: Option<broadcast::Receiver<Arc<Event>>>, input: bool) {
    let mut out = tokio::io::stdout();
    let mut lines = if input {
        Some(spawn_stdin_reader())
    } else {
        None
    };
    loop {
        tokio::select! {
            event = recv_event(&mut events) => match event {
                Ok(event) => {
                    // Per-piece link reports (delayed, throttled) render as nothing.
                    let line = render_event(&event);
                    if !line.is_empty() {
                        print(&mut out, &line).await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    print(&mut out, &format!("... {n} events skipped (console too slow)")).await;
                }
                Err(broadcast::error::RecvError::Closed) => events = None,
            },
            line = recv_line(&mut lines) => match line {
                Some(line) => {
                    let reply = execute(&hub, line.trim()).await;
                    if !reply.is_empty() {
                        print(&mut out, &reply).await;
                    }
                }
                None => lines = None,
            },
            else => return,
        }
    }
}

async fn recv_event(
    events: &mut Option<broadcast::Receiver<Arc<Event>>>,
) -> Result<Arc<Event>, broadcast::error::RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_line(lines: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match lines {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn spawn_stdin_reader() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    // Started as a background job (`socklab &`), a read from the terminal would stop the
    // whole server with SIGTTIN. Ignored, the read fails with EIO instead; the reader then
    // retries slowly, so the console works again once the job is brought to the foreground.
    #[cfg(unix)]
    // SAFETY: installing SIG_IGN for SIGTTIN has no preconditions and runs no handler code.
    unsafe {
        libc::signal(libc::SIGTTIN, libc::SIG_IGN);
    }
    let spawned = std::thread::Builder::new()
        .name("socklab-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) => break, // end of input: commands stop, the server runs on
                    Ok(_) => {
                        let command = line.trim_end_matches(['\r', '\n']).to_string();
                        if tx.blocking_send(command).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => std::thread::sleep(std::time::Duration::from_secs(1)),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("console: no stdin reader: {e}");
    }
    rx
}

async fn print<W: AsyncWrite + Unpin>(out: &mut W, text: &str) {
    let _ = out.write_all(format!("{text}\n").as_bytes()).await;
    let _ = out.flush().await;
}

fn payload(data: &[u8]) -> String {
    let shown = &data[..data.len().min(SHOW_BYTES)];
    let more = data.len() - shown.len();
    let tail = if more > 0 {
        format!(" ... (+{more} bytes)")
    } else {
        String::new()
    };
    format!("\"{}\" [{}]{tail}", escape(shown), hex::encode(shown))
}

fn header(ts_ms: i64, s: &SessionInfo) -> String {
    format!(
        "{} #{}{} {} {}",
        clock::format_clock(ts_ms),
        s.id,
        label_note(s),
        transport(s),
        s.peer
    )
}

/// `tcp`, `udp`, or for a TLS session `tls` with its version and the name the device sent.
fn transport(s: &SessionInfo) -> String {
    match &s.tls {
        None => s.proto.as_str().to_string(),
        Some(t) => match &t.sni {
            Some(sni) => format!("tls({} sni={sni})", t.version),
            None => format!("tls({})", t.version),
        },
    }
}

/// ` [LABEL]` after a session id, or nothing.
fn label_note(s: &SessionInfo) -> String {
    s.label
        .as_deref()
        .map(|l| format!(" [{l}]"))
        .unwrap_or_default()
}

/// One event as a console line.
pub fn render_event(event: &Event) -> String {
    match event {
        Event::Online(s) if s.outgoing => format!(
            "{} online: socklab connected to the device (outgoing, listener {} from {})",
            header(s.started_ms, s),
            s.listener_id,
            s.local
        ),
        Event::Online(s) => format!(
            "{} online (listener {} {})",
            header(s.started_ms, s),
            s.listener_id,
            s.local
        ),
        Event::Data(m, s) => {
            format!(
                "{} {} {} B {}{}",
                header(m.ts_ms, s),
                m.direction.as_str(),
                m.data.len(),
                payload(&m.data),
                status_note(m.status)
            )
        }
        Event::Link(e) => render_link(e),
        Event::TlsFailed(f) => format!(
            "{} tls handshake from {} failed (listener {} {}): {}",
            clock::format_clock(f.ts_ms),
            f.peer,
            f.listener_id,
            f.local,
            f.reason
        ),
        Event::Periodic(e) => snippets::render_periodic(e),
        Event::Offline(s) => format!(
            "{} offline: {} (up {} B / {} msgs, down {} B / {} msgs)",
            header(s.ended_ms.unwrap_or(s.started_ms), s),
            s.end_reason.map(|r| r.as_str()).unwrap_or("?"),
            s.counters.bytes_up,
            s.counters.msgs_up,
            s.counters.bytes_down,
            s.counters.msgs_down
        ),
        Event::Listener(l) => format!(
            "listener {}: echo {}, {} auto-reply rule(s)",
            listener_name(l),
            if l.echo { "on" } else { "off" },
            l.auto_replies.len()
        ),
        Event::ListenerRemoved(l) => format!("listener {} removed", listener_name(l)),
    }
}

/// `ID PROTO ADDR`, and `-> DEVICE` for an outgoing connection.
fn listener_name(l: &crate::model::ListenerInfo) -> String {
    match &l.remote {
        Some(remote) => format!("{} {} {} -> {remote}", l.id, l.proto.as_str(), l.addr),
        None => format!("{} {} {}", l.id, l.proto.as_str(), l.addr),
    }
}

/// What a data line adds for a message that did not go through.
fn status_note(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Ok => "",
        MessageStatus::Dropped => " (dropped by the link)",
        MessageStatus::Undelivered => " (undelivered: the session ended first)",
        MessageStatus::Failed => " (send failed)",
    }
}

/// A console line for a link event; empty for the per-piece reports (delayed,
/// throttled, stalled, dropped), which would double every data line.
pub fn render_link(e: &LinkEvent) -> String {
    let what = match e.action {
        LinkAction::Delayed | LinkAction::Throttled | LinkAction::Stalled => return String::new(),
        LinkAction::Dropped => return String::new(), // the data line says "dropped"
        LinkAction::Outage => format!("outage for {} ms", e.delay_ms),
        LinkAction::Reset => "reset by the link (RST)".to_string(),
        LinkAction::NatDropped => "dropped by the carrier NAT: data now goes nowhere".to_string(),
        LinkAction::Changed => format!(
            "link set to {}",
            e.session
                .as_ref()
                .and_then(|s| s.link.as_ref())
                .map_or("none".to_string(), |l| l.spec.clone())
        ),
    };
    format!(
        "{} #{} link: {what}",
        clock::format_clock(e.ts_ms),
        e.session_id
    )
}

fn render_message(m: &MessageInfo) -> String {
    format!(
        "{} {} {} B {}{}",
        clock::format_ms(m.ts_ms),
        m.direction.as_str(),
        m.data.len(),
        payload(&m.data),
        status_note(m.status)
    )
}

pub(crate) fn parse_id(s: &str) -> Result<u64, CommandError> {
    s.trim_start_matches('#')
        .parse()
        .map_err(|_| CommandError::Usage(format!("invalid session id {s:?}")))
}

/// Executes one command line and returns what to print. Errors print as `error: ` and
/// the message the API would give for the same failure.
pub async fn execute(hub: &Arc<Hub>, line: &str) -> String {
    match run_command(hub, line).await {
        Ok(text) => text,
        Err(
            CommandError::Action(e)
            | CommandError::Open(OpenError::Action(e))
            | CommandError::Periodic(PeriodicError::Action(e)),
        ) => {
            format!("error: {}", hub.explain(e).await)
        }
        Err(e) => format!("error: {e}"),
    }
}

async fn run_command(hub: &Arc<Hub>, line: &str) -> Result<String, CommandError> {
    let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim_start();
    let (arg, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match cmd {
        "" => Ok(String::new()),
        "help" | "?" => Ok(format!("{HELP}\n{}", snippets::HELP)),
        "list" => {
            let sessions = hub.online_sessions();
            let mut text = format!("{} online", sessions.len());
            for s in sessions {
                let c = s.counters;
                text.push_str(&format!(
                    "\n  #{}{} {} {}{} since {} up {} B down {} B",
                    s.id,
                    label_note(&s),
                    transport(&s),
                    s.peer,
                    if s.outgoing { " (outgoing)" } else { "" },
                    clock::format_clock(s.started_ms),
                    c.bytes_up,
                    c.bytes_down
                ));
            }
            Ok(text)
        }
        "send" | "sendhex" => {
            let id = parse_id(arg)?;
            let data = if cmd == "send" {
                unescape(tail)?
            } else {
                decode_hex(tail)?
            };
            if data.is_empty() {
                return Err(CommandError::Usage("nothing to send".into()));
            }
            let n = hub.send(id, Bytes::from(data)).await?;
            Ok(format!("sent {n} B to #{id}"))
        }
        "broadcast" => {
            let data = unescape(rest)?;
            if data.is_empty() {
                return Err(CommandError::Usage("nothing to send".into()));
            }
            let (sessions, bytes) = hub.broadcast(None, Bytes::from(data)).await?;
            Ok(format!("sent {bytes} B to {sessions} session(s)"))
        }
        "close" => {
            let id = parse_id(arg)?;
            hub.close(id).await?;
            Ok(format!("closed #{id}"))
        }
        "echo" => {
            let on = match arg {
                "on" => true,
                "off" => false,
                _ => return Err(CommandError::Usage("usage: echo on|off".into())),
            };
            for id in hub.listener_ids() {
                hub.set_echo(id, on)?;
            }
            Ok(format!("echo {arg} on every listener"))
        }
        "autoreply" => autoreply(hub, rest),
        "framing" => framing(hub, rest),
        "link" => link(hub, arg, tail),
        "fault" => {
            let id = parse_id(arg)?;
            hub.inject(id, Fault::parse(tail)?).await?;
            Ok(format!("#{id}: {}", tail.trim()))
        }
        "connect" => connect(hub, arg, tail).await,
        "listeners" => Ok(list_listeners(hub)),
        "listen" => listen(hub, arg, tail).await,
        "unlisten" => {
            let id = arg
                .parse::<u32>()
                .map_err(|_| CommandError::Usage("usage: unlisten ID".into()))?;
            let (l, ended) = hub.remove_listener(id).await?;
            Ok(format!(
                "removed listener {} ({ended} session(s) ended)",
                listener_name(&l)
            ))
        }
        "history" => {
            let id = parse_id(arg)?;
            let store = hub.store();
            store.flush_for_query().await;
            let messages = store.last_messages(id, 20).await?;
            if messages.is_empty() {
                return Ok(format!("#{id}: no messages"));
            }
            Ok(messages
                .iter()
                .map(render_message)
                .collect::<Vec<_>>()
                .join("\n"))
        }
        "label" => history::label(hub, arg, tail).await,
        "delete" => history::delete(hub, rest).await,
        "snippets" | "snippet" | "every" | "periodic" | "stop" => {
            snippets::command(hub, cmd, rest).await
        }
        other => Err(CommandError::Usage(format!(
            "unknown command {other:?}; type help"
        ))),
    }
}

/// `connect HOST:PORT [udp|tcp]`: opens a session to a device.
async fn connect(hub: &Hub, target: &str, tail: &str) -> Result<String, CommandError> {
    let proto = match tail.trim() {
        "" | "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(CommandError::Usage("usage: connect HOST:PORT [udp]".into())),
    };
    if target.is_empty() {
        return Err(CommandError::Usage("usage: connect HOST:PORT [udp]".into()));
    }
    let s = hub.connect(ConnectRequest::new(proto, target)).await?;
    Ok(format!(
        "#{} {} connected to {} from {} (listener {})",
        s.id,
        s.proto.as_str(),
        s.peer,
        s.local,
        s.listener_id
    ))
}

/// `listen tcp|udp ADDR`: adds a listener.
async fn listen(hub: &Hub, proto: &str, addr: &str) -> Result<String, CommandError> {
    let usage = || CommandError::Usage("usage: listen tcp|udp ADDR".into());
    let proto = Proto::parse(proto).ok_or_else(usage)?;
    if addr.trim().is_empty() {
        return Err(usage());
    }
    let req = ListenRequest {
        proto,
        addr: parse_bind_addr(addr)?,
        settings: ListenerSettings::default(),
    };
    let l = hub.add_listener(req).await?;
    Ok(format!("added listener {}", listener_name(&l)))
}

/// `listeners`: every listener and outgoing connection with its modes.
fn list_listeners(hub: &Hub) -> String {
    let all = hub.listeners();
    let mut text = format!("{} listener(s)", all.len());
    for l in all {
        text.push_str(&format!(
            "\n  {} {}: {} online, echo {}, {} rule(s), link {}",
            listener_name(&l),
            if l.remote.is_some() { "(outgoing)" } else { "" },
            l.online,
            if l.echo { "on" } else { "off" },
            l.auto_replies.len(),
            l.link.as_deref().unwrap_or("none")
        ));
    }
    text
}

/// `link ID|all SPEC|none`: sets a session's link, or every listener's.
fn link(hub: &Hub, arg: &str, tail: &str) -> Result<String, CommandError> {
    let spec = match tail.trim() {
        "" => return Err(CommandError::Usage("usage: link ID|all SPEC|none".into())),
        "none" => None,
        s => Some(LinkSpec::parse(s)?),
    };
    if arg == "all" {
        let text = spec.as_ref().map_or("none".into(), |s| s.to_string());
        for id in hub.listener_ids() {
            hub.set_listener_link(id, spec.clone())?;
        }
        return Ok(format!("link {text} on every listener"));
    }
    let id = parse_id(arg)?;
    let info = hub.set_session_link(id, spec)?;
    let text = info.link.as_ref().map_or("none".into(), |l| l.spec.clone());
    Ok(format!("#{id}: link {text}"))
}

/// `framing read|line|delim:TEXT`: sets how every listener's rules see incoming data.
fn framing(hub: &Hub, arg: &str) -> Result<String, CommandError> {
    if arg.trim().is_empty() {
        return Err(CommandError::Usage(
            "usage: framing read|line|delim:TEXT".into(),
        ));
    }
    let framing = Framing::parse(arg)?;
    for id in hub.listener_ids() {
        hub.set_framing(id, framing.clone())?;
    }
    Ok(format!("auto-reply framing {framing} on every listener"))
}

/// `autoreply [RULE|clear]`: lists, adds to or clears every listener's rules.
fn autoreply(hub: &Hub, arg: &str) -> Result<String, CommandError> {
    let listeners = hub.listener_ids();
    match arg.trim() {
        "" => {
            let mut text = String::new();
            for l in hub.listeners() {
                text.push_str(&format!("listener {}:", listener_name(&l)));
                if l.auto_replies.is_empty() {
                    text.push_str(" no rules");
                } else if l.framing.kind != "read" {
                    let framing = match &l.framing.delimiter_hex {
                        Some(hex) => format!("delimiter {hex}"),
                        None => l.framing.kind.clone(),
                    };
                    text.push_str(&format!(" (each {framing})"));
                }
                for r in &l.auto_replies {
                    let reply = match (&r.reply_text, &r.reply_hex) {
                        (Some(t), _) => format!("text:{}", escape(t.as_bytes())),
                        (_, Some(h)) => format!("hex:{h}"),
                        _ => String::new(),
                    };
                    // Only exact patterns went through unescaping; show the others raw.
                    let pattern = if r.kind == "exact" {
                        escape(r.pattern.as_bytes())
                    } else {
                        r.pattern.clone()
                    };
                    text.push_str(&format!("\n  {}:{pattern}=>{reply}", r.kind));
                }
                text.push('\n');
            }
            Ok(text.trim_end().to_string())
        }
        "clear" => {
            for id in listeners {
                hub.set_rules(id, Vec::new())?;
            }
            Ok("auto-reply rules cleared".into())
        }
        flag => {
            let rule = Rule::parse_flag(flag)?;
            for id in listeners {
                hub.add_rule(id, rule.clone())?;
            }
            Ok("auto-reply rule added to every listener".into())
        }
    }
}

//! Operator actions on links (through the hub, so console, API, dashboard and schedule
//! files share them) and the events a link emits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use tokio::time::Instant;

use super::LinkSpec;
use super::model::parse_duration;
use crate::clock;
use crate::hub::{ActionError, Hub};
use crate::model::{Direction, EndReason, Event, ListenerInfo, Proto, SessionInfo};
use crate::session::SessionHandle;

/// What a link did, as reported in `link` events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    /// Data was delivered after the link's latency.
    Delayed,
    /// Data waited for bandwidth (the cap) before its latency.
    Throttled,
    /// Data was held by a stall.
    Stalled,
    /// Data was dropped: a lost datagram, an outage (UDP) or a NAT-dropped connection.
    Dropped,
    /// An outage started (nothing moves until it ends).
    Outage,
    /// The link reset the connection (TCP RST).
    Reset,
    /// The carrier NAT dropped the connection: from now on data goes nowhere.
    NatDropped,
    /// The session's link was set or changed.
    Changed,
}

/// One thing a link did to one session.
#[derive(Clone, Debug)]
pub struct LinkEvent {
    /// The session.
    pub session_id: u64,
    /// When, Unix milliseconds.
    pub ts_ms: i64,
    /// What happened.
    pub action: LinkAction,
    /// Which way the data went, for data actions.
    pub direction: Option<Direction>,
    /// Bytes concerned (0 for state changes).
    pub bytes: usize,
    /// Time the link added (delayed/throttled/stalled) or the outage length, ms.
    pub delay_ms: u64,
    /// The session after a state change (outage, reset, NAT drop, link changed), so a
    /// dashboard can redraw it without asking.
    pub session: Option<SessionInfo>,
}

impl Serialize for LinkEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("LinkEvent", 8)?;
        st.serialize_field("type", "link")?;
        st.serialize_field("session_id", &self.session_id)?;
        st.serialize_field("ts_ms", &self.ts_ms)?;
        st.serialize_field("action", &self.action)?;
        st.serialize_field("direction", &self.direction)?;
        st.serialize_field("bytes", &self.bytes)?;
        st.serialize_field("delay_ms", &self.delay_ms)?;
        st.serialize_field("session", &self.session)?;
        st.end()
    }
}

impl LinkEvent {
    /// A state-change event carrying the session snapshot.
    pub fn state(handle: &SessionHandle, action: LinkAction, delay: Duration) -> LinkEvent {
        LinkEvent {
            session_id: handle.id,
            ts_ms: clock::now_ms(),
            action,
            direction: None,
            bytes: 0,
            delay_ms: delay.as_millis() as u64,
            session: Some(handle.info(None)),
        }
    }

    /// A data event (no snapshot: these come with every delivered piece).
    pub fn data(
        id: u64,
        action: LinkAction,
        dir: Direction,
        bytes: usize,
        delay: Duration,
    ) -> Self {
        LinkEvent {
            session_id: id,
            ts_ms: clock::now_ms(),
            action,
            direction: Some(dir),
            bytes,
            delay_ms: delay.as_millis() as u64,
            session: None,
        }
    }
}

/// A console line for a link event; empty for the per-piece reports (delayed,
/// throttled, stalled), which would double every data line.
pub fn render(e: &LinkEvent) -> String {
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

/// A fault injected now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing moves for this long; TCP data waits and then arrives in order, UDP
    /// datagrams in the window are lost.
    Outage(Duration),
    /// TCP: the connection is reset (RST, the device sees ECONNRESET). UDP: the session ends.
    Reset,
    /// The carrier NAT forgets the connection: data either way is silently discarded.
    NatDrop,
}

impl Fault {
    /// Parses `outage DURATION`, `reset` or `nat_drop` (also `outage=10s`).
    pub fn parse(s: &str) -> Result<Fault, String> {
        let s = s.trim();
        let (word, arg) = match s.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((w, a)) => (w, Some(a.trim())),
            None => (s, None),
        };
        match (word, arg) {
            ("outage", Some(d)) => parse_duration(d)
                .map(Fault::Outage)
                .map_err(|e| e.to_string()),
            ("reset", None) => Ok(Fault::Reset),
            ("nat_drop" | "nat-drop", None) => Ok(Fault::NatDrop),
            _ => Err(format!(
                "{s:?} is not a fault: use 'outage DURATION', 'reset' or 'nat_drop'"
            )),
        }
    }
}

/// The console's `link` and `fault` commands (see the console's help text).
pub async fn console(hub: &Hub, cmd: &str, arg: &str, tail: &str) -> Result<String, String> {
    let spec = |s: &str| match s.trim() {
        "" => Err("usage: link ID|all SPEC|none".to_string()),
        "none" => Ok(None),
        s => LinkSpec::parse(s).map(Some).map_err(|e| e.0),
    };
    if cmd == "link" && arg == "all" {
        let spec = spec(tail)?;
        let text = spec.as_ref().map_or("none".into(), |s| s.to_string());
        for id in 0..hub.listener_count() as u32 {
            hub.set_listener_link(id, spec.clone())
                .map_err(|e| e.to_string())?;
        }
        return Ok(format!("link {text} on every listener"));
    }
    let id: u64 = arg
        .trim_start_matches('#')
        .parse()
        .map_err(|_| format!("{arg:?} is not a session id"))?;
    if cmd == "link" {
        let info = hub
            .set_session_link(id, spec(tail)?)
            .map_err(|e| e.to_string())?;
        let text = info.link.map_or("none".into(), |l| l.spec);
        Ok(format!("#{id}: link {text}"))
    } else {
        let fault = Fault::parse(tail)?;
        hub.inject(id, fault).await.map_err(|e| e.to_string())?;
        Ok(format!("#{id}: {}", tail.trim()))
    }
}

impl Hub {
    /// Publishes a link event when someone listens (building it costs nothing otherwise).
    pub(crate) fn link_event(&self, make: impl FnOnce() -> LinkEvent) {
        if self.has_subscribers() {
            self.publish_event(Event::Link(Arc::new(make())));
        }
    }

    /// Sets a listener's link: new sessions get it, and so do its online sessions.
    pub fn set_listener_link(
        &self,
        id: u32,
        spec: Option<LinkSpec>,
    ) -> Result<ListenerInfo, ActionError> {
        let listener = self.listener(id)?;
        let spec = spec.map(Arc::new);
        listener.set_link(spec.clone());
        for handle in self.sessions_of(Some(id)) {
            self.apply_link(&handle, spec.clone());
        }
        Ok(self.listener_changed(id))
    }

    /// Sets the link of one online session.
    pub fn set_session_link(
        &self,
        id: u64,
        spec: Option<LinkSpec>,
    ) -> Result<SessionInfo, ActionError> {
        let handle = self.online(id).ok_or(ActionError::NotOnline(id))?;
        self.apply_link(&handle, spec.map(Arc::new));
        Ok(handle.info(None))
    }

    fn apply_link(&self, handle: &SessionHandle, spec: Option<Arc<LinkSpec>>) {
        // `modify` holds the cell's lock only for this assignment.
        handle.link.modify(|c| c.spec = spec);
        self.link_event(|| LinkEvent::state(handle, LinkAction::Changed, Duration::ZERO));
    }

    /// Injects a fault into one online session now.
    pub async fn inject(&self, id: u64, fault: Fault) -> Result<SessionInfo, ActionError> {
        let handle = self.online(id).ok_or(ActionError::NotOnline(id))?;
        self.inject_into(&handle, fault).await;
        Ok(handle.info(None))
    }

    /// Injects a fault into every online session (of one listener); returns how many.
    pub async fn inject_all(&self, listener: Option<u32>, fault: Fault) -> usize {
        let targets = self.sessions_of(listener);
        for handle in &targets {
            self.inject_into(handle, fault).await;
        }
        targets.len()
    }

    /// Sets the link of every online session (of one listener); returns how many.
    pub fn set_all_links(&self, listener: Option<u32>, spec: Option<LinkSpec>) -> usize {
        let spec = spec.map(Arc::new);
        let targets = self.sessions_of(listener);
        for handle in &targets {
            self.apply_link(handle, spec.clone());
        }
        targets.len()
    }

    async fn inject_into(&self, handle: &SessionHandle, fault: Fault) {
        match (handle.proto, fault) {
            (_, Fault::Outage(d)) => {
                handle
                    .link
                    .modify(|c| c.outage_until = Some(Instant::now() + d));
                self.link_event(|| LinkEvent::state(handle, LinkAction::Outage, d));
            }
            (Proto::Tcp, Fault::Reset) => {
                // The session task owns the socket: flag it and wake it.
                handle.reset_requested.store(true, Ordering::Relaxed);
                handle.link.modify(|_| {});
            }
            (Proto::Tcp, Fault::NatDrop) => {
                if !handle.nat_dropped.swap(true, Ordering::Relaxed) {
                    handle.link.modify(|_| {});
                    self.link_event(|| {
                        LinkEvent::state(handle, LinkAction::NatDropped, Duration::ZERO)
                    });
                }
            }
            // A UDP "connection" is only the peer mapping: forgetting it ends the session;
            // the device's next datagram starts a new one (a new NAT mapping).
            (Proto::Udp, Fault::Reset) => {
                self.link_event(|| LinkEvent::state(handle, LinkAction::Reset, Duration::ZERO));
                self.end_session(handle, EndReason::LinkReset).await;
            }
            (Proto::Udp, Fault::NatDrop) => {
                handle.nat_dropped.store(true, Ordering::Relaxed);
                self.link_event(|| {
                    LinkEvent::state(handle, LinkAction::NatDropped, Duration::ZERO)
                });
                self.end_session(handle, EndReason::NatDropped).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Faults parse from the API/schedule words.
    #[test]
    fn faults_parse() {
        assert_eq!(
            Fault::parse("outage 10s"),
            Ok(Fault::Outage(Duration::from_secs(10)))
        );
        assert_eq!(
            Fault::parse("outage=500ms"),
            Ok(Fault::Outage(Duration::from_millis(500)))
        );
        assert_eq!(Fault::parse("reset"), Ok(Fault::Reset));
        assert_eq!(Fault::parse("nat_drop"), Ok(Fault::NatDrop));
        assert!(Fault::parse("outage").is_err());
        assert!(Fault::parse("explode").is_err());
    }
}

//! The link's shapes as the rest of socklab sees them: a session's [`LinkView`] and the
//! [`LinkEvent`]s the emulated link reports. The engine that produces them lives in
//! [`crate::link`]; these are plain data so the hub, the store and the front ends can
//! speak about links without depending on the engine.

use std::time::Duration;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use super::{Direction, SessionInfo};
use crate::clock;

/// A session's link as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkView {
    /// The link in canonical `PROFILE[,param=value]` form.
    pub spec: String,
    /// `ok`, `outage` (an injected outage is in progress) or `nat_dropped`.
    pub state: &'static str,
}

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
    pub fn state(session: SessionInfo, action: LinkAction, delay: Duration) -> LinkEvent {
        LinkEvent {
            session_id: session.id,
            ts_ms: clock::now_ms(),
            action,
            direction: None,
            bytes: 0,
            delay_ms: delay.as_millis() as u64,
            session: Some(session),
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

//! Operator actions on sessions and listeners: send, broadcast, close, echo and
//! auto-reply rules, plus [`Hub::explain`], which turns "not online" into the answer every
//! front end gives (offline, or no such session).
//!
//! Sends never touch a socket: TCP data goes into the session's outbox (bounded in bytes;
//! full is refused at once), UDP data into the listener's down queue, whose loop sends it
//! and reports the outcome back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{ActionError, Hub};
use crate::framing::Framing;
use crate::listener_state::{DownOutcome, ListenerState, UdpDown};
use crate::model::{ListenerInfo, Proto};
use crate::rules::Rule;
use crate::session::{OutboxError, SessionHandle};

/// How long a UDP send waits for its listener to report the outcome.
pub const SEND_WAIT: Duration = Duration::from_secs(5);

/// The largest UDP payload over IPv4 (65,535 − 8 − 20): larger sends are refused.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// A send under way: queued, its outcome possibly still to come.
enum Pending {
    /// Queued in a TCP outbox: the connection task writes and records it.
    Queued(usize),
    /// Queued for a UDP listener: it reports the outcome.
    Udp(u64, usize, oneshot::Receiver<DownOutcome>),
}

impl Hub {
    /// Sends `data` to one online session. TCP: queued in the session's outbox, refused at
    /// once ([`ActionError::Busy`]) when it is full. UDP: sent by the listener, waiting up
    /// to [`SEND_WAIT`] for the outcome; over [`MAX_UDP_PAYLOAD`] it is refused.
    pub async fn send(&self, id: u64, data: Bytes) -> Result<usize, ActionError> {
        let handle = self.online(id).ok_or(ActionError::NotOnline(id))?;
        let pending = self.queue_send(&handle, data).await?;
        finish(pending).await
    }

    async fn queue_send(
        &self,
        handle: &Arc<SessionHandle>,
        data: Bytes,
    ) -> Result<Pending, ActionError> {
        let id = handle.id();
        if handle.is_ending() {
            return Err(ActionError::NotOnline(id));
        }
        let len = data.len();
        match handle.meta.proto {
            Proto::Tcp => {
                let outbox = handle.outbox.as_ref().ok_or(ActionError::NotOnline(id))?;
                match outbox.send_timeout(data, Duration::ZERO).await {
                    Ok(()) => Ok(Pending::Queued(len)),
                    Err((OutboxError::Full, _)) => Err(ActionError::Busy(id)),
                    Err((OutboxError::Closed, _)) => Err(ActionError::NotOnline(id)),
                }
            }
            Proto::Udp => {
                if len > MAX_UDP_PAYLOAD {
                    return Err(ActionError::TooLarge {
                        len,
                        max: MAX_UDP_PAYLOAD,
                    });
                }
                let listener = self.listener(handle.meta.listener_id)?;
                let (done, outcome) = oneshot::channel();
                let down = UdpDown {
                    session: handle.clone(),
                    data,
                    done: Some(done),
                };
                match listener.udp_down.send_timeout(down, Duration::ZERO).await {
                    Ok(()) => Ok(Pending::Udp(id, len, outcome)),
                    Err((OutboxError::Full, _)) => Err(ActionError::Busy(id)),
                    Err((OutboxError::Closed, _)) => Err(ActionError::NotOnline(id)),
                }
            }
        }
    }

    /// Sends `data` to every online session, or those of one listener. Returns the number
    /// of sessions reached and the bytes sent in total. A device whose outbox is full (it
    /// does not read) is skipped rather than waited for, so one stalled device cannot hold
    /// up a broadcast to thousands. Data too big for a datagram is refused as a whole when
    /// any UDP session would get it.
    pub async fn broadcast(
        &self,
        listener_id: Option<u32>,
        data: Bytes,
    ) -> Result<(usize, usize), ActionError> {
        if let Some(id) = listener_id {
            self.listener(id)?;
        }
        let targets = self.sessions_of(listener_id);
        if data.len() > MAX_UDP_PAYLOAD && targets.iter().any(|h| h.meta.proto == Proto::Udp) {
            return Err(ActionError::TooLarge {
                len: data.len(),
                max: MAX_UDP_PAYLOAD,
            });
        }
        let mut pending = Vec::with_capacity(targets.len());
        for handle in &targets {
            if let Ok(p) = self.queue_send(handle, data.clone()).await {
                pending.push(p);
            }
        }
        let (mut sessions, mut bytes) = (0, 0);
        for p in pending {
            if let Ok(n) = finish(p).await {
                sessions += 1;
                bytes += n;
            }
        }
        Ok((sessions, bytes))
    }

    /// Closes an online session and returns once it has ended.
    pub async fn close(&self, id: u64) -> Result<(), ActionError> {
        let handle = self.online(id).ok_or(ActionError::NotOnline(id))?;
        match handle.meta.proto {
            // The connection task owns the socket: ask it, then wait for its end.
            Proto::Tcp => {
                handle.close_requested.notify_one();
                handle.wait_ended().await;
            }
            // UDP has nothing to tear down; the listener forgets the peer when it sees
            // the handle ended.
            Proto::Udp => self.end_session(&handle, handle.close_reason()).await,
        }
        Ok(())
    }

    /// Turns [`ActionError::NotOnline`] into what the history says: the session is
    /// [`ActionError::Offline`], or there is [`ActionError::NoSession`] with that id.
    /// Other errors come back unchanged. Front ends call it before showing an error.
    pub async fn explain(&self, e: ActionError) -> ActionError {
        let ActionError::NotOnline(id) = e else {
            return e;
        };
        if self.online(id).is_some() {
            // Came online since (a reused id cannot happen): the action raced its end.
            return ActionError::Offline(id);
        }
        let store = self.store();
        store.flush_sessions().await;
        match store.session(id).await {
            Ok(Some(_)) => ActionError::Offline(id),
            Ok(None) => ActionError::NoSession(id),
            Err(e) => ActionError::History(e.to_string()),
        }
    }

    /// Publishes a listener's changed settings and returns them.
    pub(super) fn listener_changed(&self, listener: &ListenerState) -> ListenerInfo {
        let info = listener.info(self.sessions_of(Some(listener.id)).len());
        self.publish(crate::model::Event::Listener(info.clone()));
        info
    }

    /// Turns a listener's echo mode on or off.
    pub fn set_echo(&self, id: u32, on: bool) -> Result<ListenerInfo, ActionError> {
        let listener = self.listener(id)?;
        listener.set_echo(on);
        Ok(self.listener_changed(&listener))
    }

    /// Replaces a listener's auto-reply rules.
    pub fn set_rules(&self, id: u32, rules: Vec<Rule>) -> Result<ListenerInfo, ActionError> {
        let listener = self.listener(id)?;
        listener.set_rules(rules);
        Ok(self.listener_changed(&listener))
    }

    /// Replaces a listener's auto-reply rules and, when given, its framing, as one change
    /// (one listener event).
    pub fn set_auto_replies(
        &self,
        id: u32,
        rules: Vec<Rule>,
        framing: Option<Framing>,
    ) -> Result<ListenerInfo, ActionError> {
        let listener = self.listener(id)?;
        if let Some(framing) = framing {
            listener.set_framing(framing);
        }
        listener.set_rules(rules);
        Ok(self.listener_changed(&listener))
    }

    /// Sets how a listener cuts incoming data into frames for its rules.
    pub fn set_framing(&self, id: u32, framing: Framing) -> Result<ListenerInfo, ActionError> {
        let listener = self.listener(id)?;
        listener.set_framing(framing);
        Ok(self.listener_changed(&listener))
    }

    /// Adds one auto-reply rule after a listener's existing ones.
    pub fn add_rule(&self, id: u32, rule: Rule) -> Result<ListenerInfo, ActionError> {
        let listener = self.listener(id)?;
        let mut rules = listener.rules().as_ref().clone();
        rules.push(rule);
        listener.set_rules(rules);
        Ok(self.listener_changed(&listener))
    }
}

/// Waits for the outcome of a queued send (UDP: up to [`SEND_WAIT`]; after that it is
/// still queued and will be recorded with its outcome, so it counts as accepted).
async fn finish(pending: Pending) -> Result<usize, ActionError> {
    match pending {
        Pending::Queued(len) => Ok(len),
        Pending::Udp(id, len, outcome) => match tokio::time::timeout(SEND_WAIT, outcome).await {
            Ok(Ok(DownOutcome::Sent)) | Err(_) => Ok(len),
            Ok(Ok(DownOutcome::Failed(reason))) => Err(ActionError::SendFailed { id, reason }),
            Ok(Ok(DownOutcome::Ended)) | Ok(Err(_)) => Err(ActionError::NotOnline(id)),
        },
    }
}

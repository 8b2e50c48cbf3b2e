//! Operator actions on links, shared by the console, the API, schedules and any other
//! front end: set the link of a listener or of live sessions, inject a fault now. They
//! only write each session's [`crate::link::LinkCell`] and flags; the session's listener
//! loop applies them (a reset or NAT drop of a TCP connection happens there).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{ActionError, Hub};
use crate::link::{Fault, LinkSpec};
use crate::model::{EndReason, LinkAction, ListenerInfo, Proto, SessionInfo};
use crate::session::SessionHandle;

impl Hub {
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
        Ok(self.listener_changed(&listener))
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

    /// Sets the link of every online session (of one listener); returns how many.
    pub fn set_all_links(&self, listener: Option<u32>, spec: Option<LinkSpec>) -> usize {
        let spec = spec.map(Arc::new);
        let targets = self.sessions_of(listener);
        for handle in &targets {
            self.apply_link(handle, spec.clone());
        }
        targets.len()
    }

    fn apply_link(&self, handle: &SessionHandle, spec: Option<Arc<LinkSpec>>) {
        // `modify` holds the cell's lock only for this assignment.
        handle.link.modify(|c| c.spec = spec);
        self.link_state(handle, LinkAction::Changed, Duration::ZERO);
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

    async fn inject_into(&self, handle: &SessionHandle, fault: Fault) {
        match (handle.meta.proto, fault) {
            (_, Fault::Outage(d)) => {
                handle
                    .link
                    .modify(|c| c.outage_until = Some(Instant::now() + d));
                self.link_state(handle, LinkAction::Outage, d);
            }
            (Proto::Tcp, Fault::Reset) => {
                // The session task owns the socket: flag it and wake it, also while it is
                // blocked writing to a device that does not read.
                handle.reset_requested.store(true, Ordering::Relaxed);
                handle.link.modify(|_| {});
                handle.close_requested.notify_one();
            }
            (Proto::Tcp, Fault::NatDrop) => {
                if !handle.nat_dropped.swap(true, Ordering::Relaxed) {
                    handle.link.modify(|_| {});
                    self.link_state(handle, LinkAction::NatDropped, Duration::ZERO);
                }
            }
            // A UDP "connection" is only the peer mapping: forgetting it ends the session;
            // the device's next datagram starts a new one (a new NAT mapping).
            (Proto::Udp, Fault::Reset) => {
                self.link_state(handle, LinkAction::Reset, Duration::ZERO);
                self.end_session(handle, EndReason::LinkReset).await;
            }
            (Proto::Udp, Fault::NatDrop) => {
                handle.nat_dropped.store(true, Ordering::Relaxed);
                self.link_state(handle, LinkAction::NatDropped, Duration::ZERO);
                self.end_session(handle, EndReason::NatDropped).await;
            }
        }
    }
}

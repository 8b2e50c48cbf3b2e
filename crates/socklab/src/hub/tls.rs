//! TLS handshakes that failed: counted on their listener and by kind (`/metrics`), and
//! announced as an event, so a device that cannot connect is seen (console, API, dashboard,
//! metrics), never silently dropped.

use std::net::SocketAddr;
use std::sync::Arc;

use super::Hub;
use crate::clock;
use crate::listener_state::ListenerState;
use crate::model::{Event, TlsFailure, TlsFailureKind};

impl Hub {
    /// Records that a device at `peer` failed the TLS handshake on `listener`, and why.
    pub fn tls_failed(
        &self,
        listener: &ListenerState,
        peer: SocketAddr,
        kind: TlsFailureKind,
        reason: String,
    ) {
        let failure = TlsFailure {
            listener_id: listener.id,
            peer,
            local: listener.addr,
            ts_ms: clock::now_ms(),
            kind,
            reason,
        };
        tracing::debug!(
            "tls {}: handshake with {peer} failed: {}",
            listener.addr,
            failure.reason
        );
        self.totals.tls_failures.count(kind);
        if let Some(tls) = &listener.tls {
            tls.failed(failure.clone());
        }
        // The listener's count is in its listing; subscribers count the events themselves.
        self.publish(Event::TlsFailed(Arc::new(failure)));
    }
}

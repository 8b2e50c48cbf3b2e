//! TLS devices: an accept loop per TLS listener that runs each handshake in its own task,
//! bounded by a timeout, then serves the connection through the same connection loop as
//! plain TCP ([`super::tcp`]), so a TLS session is a session like any other (history,
//! sends, echo and auto-replies, links). The session carries the negotiated version and
//! the name the device sent (SNI).
//!
//! A handshake that fails (a plain-TCP client, a device that does not trust the
//! certificate, a silent client that times out, a connection that ends early) opens no
//! session: it becomes a `tls_failed` event with the reason, and the listener counts it.
//! [`cert`] provides the certificate.

pub mod cert;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ProtocolVersion;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::TaskGuard;
use crate::hub::Hub;
use crate::listener_state::ListenerState;
use crate::model::{TlsFailureKind, TlsInfo};
use crate::shutdown::Shutdown;

/// Default bound on one handshake (`--tls-handshake-timeout`): a client that connects and
/// says nothing is dropped after this, with a `tls_failed` event.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a TLS accept loop needs besides its socket.
#[derive(Clone)]
pub(crate) struct TlsSettings {
    /// The certificate and protocol settings.
    pub acceptor: TlsAcceptor,
    /// Bound on one handshake.
    pub handshake_timeout: Duration,
    /// TCP keepalive idle time, `None`: off.
    pub keepalive: Option<Duration>,
}

/// Accepts connections until shutdown; each gets a task that runs the handshake and then
/// the session.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<ListenerState>,
    settings: TlsSettings,
    hub: Arc<Hub>,
    shutdown: Shutdown,
    guard: TaskGuard,
) {
    let keepalive = settings.keepalive;
    let serve_state = state.clone();
    let conn_shutdown = shutdown.clone();
    super::tcp::accept_each(listener, state, keepalive, shutdown, move |stream, peer| {
        handshake_then_serve(
            stream,
            peer,
            settings.clone(),
            serve_state.clone(),
            hub.clone(),
            conn_shutdown.clone(),
            guard.clone(),
        )
    })
    .await;
}

/// One device connection: the handshake (bounded, interrupted by shutdown), then the
/// session; a failed handshake is reported, not dropped silently.
async fn handshake_then_serve(
    stream: TcpStream,
    peer: SocketAddr,
    settings: TlsSettings,
    listener: Arc<ListenerState>,
    hub: Arc<Hub>,
    mut shutdown: Shutdown,
    guard: TaskGuard,
) {
    let timeout = settings.handshake_timeout;
    let result = tokio::select! {
        _ = shutdown.wait() => return,
        r = tokio::time::timeout(timeout, settings.acceptor.accept(stream)) => r,
    };
    let tls = match result {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let (kind, reason) = failure_reason(&e);
            return hub.tls_failed(&listener, peer, kind, reason);
        }
        Err(_) => {
            let reason = format!(
                "no TLS handshake within {} s (a plain-TCP client that waits for the \
                 server to speak, or a device that stalled)",
                timeout.as_secs_f64()
            );
            return hub.tls_failed(&listener, peer, TlsFailureKind::Timeout, reason);
        }
    };
    let info = Arc::new(session_info(tls.get_ref().1));
    super::tcp::serve_connection(tls, peer, Some(info), listener, hub, shutdown, guard).await;
}

/// The version and SNI a finished handshake negotiated.
fn session_info(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    TlsInfo {
        version,
        sni: conn.server_name().map(str::to_string),
    }
}

/// Why a handshake failed: its kind, and words an operator can act on.
pub fn failure_reason(e: &io::Error) -> (TlsFailureKind, String) {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::InvalidMessage(m) => (
                TlsFailureKind::NotTls,
                format!(
                    "not a TLS handshake: the client sent something else (plain TCP on the \
                     TLS port?): {m:?}"
                ),
            ),
            rustls::Error::AlertReceived(alert) => (
                TlsFailureKind::Alert,
                format!(
                    "the device ended the handshake with alert {alert:?} (an unknown CA or \
                     bad certificate alert means it does not trust socklab's certificate)"
                ),
            ),
            rustls::Error::NoApplicationProtocol => (
                TlsFailureKind::Other,
                "no application protocol in common (ALPN)".to_string(),
            ),
            other => (TlsFailureKind::Other, format!("TLS error: {other}")),
        };
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => (
            TlsFailureKind::Closed,
            "the connection closed during the handshake".into(),
        ),
        io::ErrorKind::ConnectionReset => (
            TlsFailureKind::Reset,
            "the connection was reset during the handshake".into(),
        ),
        _ => (TlsFailureKind::Other, format!("handshake failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each way a handshake fails has its own reason.
    #[test]
    fn failure_reasons() {
        let invalid = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        let (kind, reason) = failure_reason(&invalid);
        assert_eq!(kind, TlsFailureKind::NotTls);
        assert!(reason.starts_with("not a TLS handshake"));
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA),
        );
        let (kind, reason) = failure_reason(&alert);
        assert_eq!(kind, TlsFailureKind::Alert);
        assert!(reason.contains("alert UnknownCA"));
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(
            failure_reason(&eof),
            (
                TlsFailureKind::Closed,
                "the connection closed during the handshake".to_string()
            )
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(failure_reason(&reset).0, TlsFailureKind::Reset);
    }
}

//! The TLS shapes: a session's TLS details, a TLS listener's certificate and failed
//! handshakes, and the event a failed handshake is.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::clock;

/// What a TLS session negotiated, shown as the session's `"tls"` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// The protocol version, e.g. `"TLSv1.2"` or `"TLSv1.3"`.
    pub version: String,
    /// The host name the device sent (SNI), `None` when it sent none.
    pub sni: Option<String>,
}

/// A TLS listener's certificate and how its handshakes failed, shown as the listener's
/// `"tls"` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListenerTls {
    /// SHA-256 fingerprint of the certificate it presents (colon-separated hex).
    pub cert_sha256: String,
    /// The certificate's PEM file (what a device trusts with `ussl.wrap_socket(ca=...)`).
    pub cert_path: String,
    /// Handshakes that failed since socklab started.
    pub handshake_failures: u64,
    /// The newest failure, `None` while there was none.
    pub last_failure: Option<TlsFailure>,
}

/// Why a TLS handshake failed, in one word: the `reason` label of the failure counter in
/// `/metrics`, and the failure's `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsFailureKind {
    /// The client sent something that is not TLS (plain TCP on the TLS port).
    NotTls,
    /// The client ended the handshake with an alert (mostly: it does not trust the
    /// certificate or its name).
    Alert,
    /// No handshake within `--tls-handshake-timeout`.
    Timeout,
    /// The connection closed during the handshake.
    Closed,
    /// The connection was reset during the handshake.
    Reset,
    /// Any other TLS or socket error.
    Other,
}

impl TlsFailureKind {
    /// Every kind, in the order `/metrics` lists them.
    pub const ALL: [TlsFailureKind; 6] = [
        TlsFailureKind::NotTls,
        TlsFailureKind::Alert,
        TlsFailureKind::Timeout,
        TlsFailureKind::Closed,
        TlsFailureKind::Reset,
        TlsFailureKind::Other,
    ];

    /// The kind's name (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsFailureKind::NotTls => "not_tls",
            TlsFailureKind::Alert => "alert",
            TlsFailureKind::Timeout => "timeout",
            TlsFailureKind::Closed => "closed",
            TlsFailureKind::Reset => "reset",
            TlsFailureKind::Other => "other",
        }
    }
}

/// Failed TLS handshakes since socklab started, counted by kind over every TLS listener.
#[derive(Debug, Default)]
pub struct TlsFailureCounts([AtomicU64; TlsFailureKind::ALL.len()]);

impl TlsFailureCounts {
    /// Counts one failure of `kind`.
    pub fn count(&self, kind: TlsFailureKind) {
        self.0[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Failures of `kind` so far.
    pub fn get(&self, kind: TlsFailureKind) -> u64 {
        self.0[kind as usize].load(Ordering::Relaxed)
    }
}

/// A TLS handshake that failed: who tried and why. No session is opened for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFailure {
    /// The listener it reached.
    pub listener_id: u32,
    /// The device's address.
    pub peer: SocketAddr,
    /// The listener's local address.
    pub local: SocketAddr,
    /// When it failed, Unix milliseconds.
    pub ts_ms: i64,
    /// Why, in one word.
    pub kind: TlsFailureKind,
    /// Why, in words (the TLS error, a timeout, or the connection ending early).
    pub reason: String,
}

impl Serialize for TlsFailure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("TlsFailure", 8)?;
        st.serialize_field("type", "tls_failed")?;
        st.serialize_field("listener_id", &self.listener_id)?;
        st.serialize_field("peer", &self.peer.to_string())?;
        st.serialize_field("local", &self.local.to_string())?;
        st.serialize_field("ts", &clock::format_ms(self.ts_ms))?;
        st.serialize_field("ts_ms", &self.ts_ms)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("reason", &self.reason)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The failure event's shape.
    #[test]
    fn failure_shape() {
        let f = TlsFailure {
            listener_id: 2,
            peer: "127.0.0.1:5".parse().unwrap(),
            local: "127.0.0.1:6".parse().unwrap(),
            ts_ms: 0,
            kind: TlsFailureKind::Timeout,
            reason: "handshake timed out".into(),
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["type"], "tls_failed");
        assert_eq!(v["peer"], "127.0.0.1:5");
        assert_eq!(v["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["kind"], "timeout");
        assert_eq!(v["reason"], "handshake timed out");
    }

    /// Each kind is counted apart, and its name is the serialized one.
    #[test]
    fn counts_by_kind() {
        let counts = TlsFailureCounts::default();
        counts.count(TlsFailureKind::Alert);
        counts.count(TlsFailureKind::Alert);
        counts.count(TlsFailureKind::Other);
        for kind in TlsFailureKind::ALL {
            let expected = match kind {
                TlsFailureKind::Alert => 2,
                TlsFailureKind::Other => 1,
                _ => 0,
            };
            assert_eq!(counts.get(kind), expected, "{kind:?}");
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}

//! Client mode: sessions socklab opens itself, to a device that is the server. The
//! connection gets a listener entry of its own (kind `outgoing`, the device's address as
//! `remote`) that holds its echo, auto-reply rules and link like any listener, and goes
//! away when the session ends. From then on the session is like any other: history, send,
//! close, echo and auto-replies, link emulation, events and counters; it shows
//! `"direction": "outgoing"`.
//!
//! TCP connects with a bounded timeout; a refusal or a timeout is an error with its
//! reason. UDP has no handshake: a flow is a socket of its own sending to the device,
//! ready at once; optional first data makes the device learn socklab's address.

use std::net::SocketAddr;
use std::time::Duration;

use super::Hub;
use super::listeners::OpenError;
pub use super::listeners::{CONNECT_TIMEOUT, ConnectRequest};
use crate::model::SessionInfo;

/// The longest connect timeout a caller may ask for.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Most outgoing connections open at once.
pub const MAX_OUTGOING: usize = 1024;

/// Splits `HOST:PORT` (`[V6]:PORT` for IPv6) into a host and a port, for resolution.
pub fn split_target(target: &str) -> Result<(String, u16), OpenError> {
    let target = target.trim();
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    let bad = || {
        OpenError::BadAddress(format!(
            "{target:?} is not HOST:PORT (IPv6: [ADDR]:PORT), e.g. 127.0.0.1:5000"
        ))
    };
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() || host.contains(':') || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

impl Hub {
    /// Opens a session to a device (client mode) and returns it, online. The data in
    /// `req.first`, if any, is sent before this returns.
    pub async fn connect(&self, req: ConnectRequest) -> Result<SessionInfo, OpenError> {
        split_target(&req.target)?;
        if req.timeout.is_zero() || req.timeout > MAX_CONNECT_TIMEOUT {
            return Err(OpenError::BadAddress(format!(
                "timeout must be between 1 ms and {} ms",
                MAX_CONNECT_TIMEOUT.as_millis()
            )));
        }
        if req.first.as_ref().is_some_and(|d| d.is_empty()) {
            return Err(OpenError::BadAddress(
                "nothing to send: data is empty".into(),
            ));
        }
        let sockets = self.sockets()?;
        let outgoing = self
            .listener_map()
            .values()
            .filter(|l| l.remote.is_some())
            .count();
        if outgoing >= MAX_OUTGOING {
            return Err(OpenError::TooMany(format!(
                "at most {MAX_OUTGOING} outgoing connections at once; close one first"
            )));
        }
        let first = req.first.clone();
        let session = sockets.connect(req).await?;
        if let Some(data) = first {
            self.send(session.id, data).await?;
            return Ok(self
                .online(session.id)
                .map(|h| h.info(None))
                .unwrap_or(session));
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Targets split into host and port; IPv6 needs brackets; junk is refused clearly.
    #[test]
    fn targets() {
        assert_eq!(
            split_target("127.0.0.1:5000").unwrap(),
            ("127.0.0.1".into(), 5000)
        );
        assert_eq!(split_target("[::1]:7").unwrap(), ("::1".into(), 7));
        assert_eq!(
            split_target("localhost:80").unwrap(),
            ("localhost".into(), 80)
        );
        for bad in ["", "5000", "host:", "host:0", ":80", "::1:7", "h:99999"] {
            let err = split_target(bad).unwrap_err().to_string();
            assert!(err.contains("HOST:PORT"), "{bad}: {err}");
        }
    }
}

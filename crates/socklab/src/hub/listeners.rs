//! Listeners added and removed while socklab runs, and the seam through which the hub asks
//! the listener layer (the only code with sockets) to bind or connect: [`Sockets`], set
//! once by the server.
//!
//! Ids: command-line listeners are numbered in order from 0; a listener added at run
//! time, and the entry of each outgoing connection ([`super::connect`]), takes the next id
//! after every id in use and every id in the history, so one id never names two listeners
//! in the database.
//!
//! Removing a listener closes its socket and ends every session still online on it with
//! the end reason `listener_removed` (TCP devices get an orderly FIN, what was queued for
//! them is recorded as undelivered), before the call returns.
//!
//! Where socklab may bind or connect at an operator's request is limited by a
//! [`NetPolicy`]: loopback only, unless the server was started with `--allow-net`.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::{ActionError, Hub};
use crate::link::LinkSpec;
use crate::listener_state::ListenerState;
use crate::model::{EndReason, Event, ListenerInfo, Proto, SessionInfo};
use crate::rules::Rule;

/// Most listeners that can be added at run time (command-line ones do not count).
pub const MAX_RUNTIME_LISTENERS: usize = 256;

/// How long removing a listener waits for its sessions to end before it answers.
pub const REMOVE_WAIT: Duration = Duration::from_secs(5);

/// A future the [`Sockets`] seam returns.
pub type OpenFuture<T> = Pin<Box<dyn Future<Output = Result<T, OpenError>> + Send>>;

/// The modes a new listener or outgoing connection starts with.
#[derive(Clone, Debug, Default)]
pub struct ListenerSettings {
    /// Echo mode.
    pub echo: bool,
    /// Auto-reply rules, first match wins.
    pub rules: Vec<Rule>,
    /// The link its sessions start with.
    pub link: Option<LinkSpec>,
}

/// How long a TCP connect waits by default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to open.
#[derive(Clone, Debug)]
pub struct ConnectRequest {
    /// Transport.
    pub proto: Proto,
    /// The device's address, `HOST:PORT` (a name is resolved; each address it gives must be
    /// allowed).
    pub target: String,
    /// How long a TCP connect may take (at most [`super::connect::MAX_CONNECT_TIMEOUT`]).
    pub timeout: Duration,
    /// Modes of the connection's entry.
    pub settings: ListenerSettings,
    /// Data to send as soon as the session is open.
    pub first: Option<Bytes>,
}

impl ConnectRequest {
    /// A request with the default timeout and modes.
    pub fn new(proto: Proto, target: impl Into<String>) -> ConnectRequest {
        ConnectRequest {
            proto,
            target: target.into(),
            timeout: CONNECT_TIMEOUT,
            settings: ListenerSettings::default(),
            first: None,
        }
    }
}

/// A listener to add at run time.
#[derive(Clone, Debug)]
pub struct ListenRequest {
    /// Transport.
    pub proto: Proto,
    /// Address to bind (port 0: any free port).
    pub addr: SocketAddr,
    /// Its modes.
    pub settings: ListenerSettings,
}

/// Why a listener could not be added or removed, or a connection not opened. Each front
/// end shows the `Display` text.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The address cannot be parsed or resolved.
    #[error("{0}")]
    BadAddress(String),
    /// The address is outside what this socklab may bind or connect to.
    #[error(
        "{addr} is not allowed: socklab binds and connects only to loopback addresses \
         unless started with --allow-net NET (e.g. --allow-net 192.168.1.0/24, or any)"
    )]
    NotAllowed {
        /// The refused address.
        addr: SocketAddr,
    },
    /// Something else listens on the address.
    #[error("cannot listen on {proto} {addr}: the address is already in use")]
    InUse {
        /// Transport.
        proto: &'static str,
        /// The address.
        addr: SocketAddr,
    },
    /// The OS refused to bind (not an address of this machine, no permission, ...).
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind {
        /// Transport.
        proto: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The device refused the TCP connection (nothing listens there).
    #[error("cannot connect to {addr}: connection refused (is the device's server running?)")]
    Refused {
        /// The device's address.
        addr: SocketAddr,
    },
    /// The device did not answer in time.
    #[error("cannot connect to {addr}: no answer within {} ms", after.as_millis())]
    TimedOut {
        /// The device's address.
        addr: SocketAddr,
        /// The time waited.
        after: Duration,
    },
    /// Another connect error (network unreachable, ...).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The device's address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Too many listeners or connections at once.
    #[error("{0}")]
    TooMany(String),
    /// An action on listeners failed (no such listener).
    #[error(transparent)]
    Action(#[from] ActionError),
    /// The server is stopping, or cannot open sockets at run time.
    #[error("{0}")]
    Unavailable(String),
}

impl OpenError {
    /// Whether the failure is the device's or the network's (the API answers 502), not a
    /// fault in the request.
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            OpenError::Refused { .. } | OpenError::TimedOut { .. } | OpenError::Connect { .. }
        )
    }
}

/// The listener layer's side of run-time changes: binds a listener and runs its loop, or
/// connects to a device and runs the session. Set once on the hub by the server.
pub trait Sockets: Send + Sync + fmt::Debug {
    /// Binds `req` and starts its loop; returns its state (already serving, with an id
    /// from [`Hub::allocate_listener_id`]) for the hub to register.
    fn listen(&self, req: ListenRequest) -> OpenFuture<Arc<ListenerState>>;
    /// Opens a connection to a device (see [`super::connect`]), registers its entry and
    /// starts its session; returns the session.
    fn connect(&self, req: ConnectRequest) -> OpenFuture<SessionInfo>;
}

/// Where an operator may make socklab bind or connect: loopback always, other networks
/// only when named at start (`--allow-net`).
#[derive(Clone, Debug, Default)]
pub struct NetPolicy {
    /// Networks allowed besides loopback.
    pub allowed: Vec<ipnet::IpNet>,
}

impl NetPolicy {
    /// Parses one `--allow-net` value: a network in CIDR form, one address, or `any`.
    pub fn parse_net(s: &str) -> Result<Vec<ipnet::IpNet>, String> {
        if s.eq_ignore_ascii_case("any") {
            return Ok(vec![
                "0.0.0.0/0".parse().expect("valid"),
                "::/0".parse().expect("valid"),
            ]);
        }
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(vec![net]);
        }
        s.parse::<IpAddr>()
            .map(|ip| vec![ipnet::IpNet::from(ip)])
            .map_err(|_| {
                format!("{s:?} is not a network: use CIDR (192.168.1.0/24), an address or any")
            })
    }

    /// Whether socklab may bind or connect to `addr`. A wildcard bind (`0.0.0.0`, `::`)
    /// reaches every interface, so it needs `any`.
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        ip.is_loopback() || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// [`NetPolicy::allows`] as a result.
    pub fn check(&self, addr: SocketAddr) -> Result<(), OpenError> {
        if self.allows(&addr) {
            Ok(())
        } else {
            Err(OpenError::NotAllowed { addr })
        }
    }
}

/// Parses the address of a listener to add: `IP:PORT`, `[V6]:PORT`, `localhost:PORT` or a
/// bare `PORT` (127.0.0.1). Host names other than localhost are refused: a server binds
/// addresses.
pub fn parse_bind_addr(s: &str) -> Result<SocketAddr, OpenError> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Some((host, port)) = s.rsplit_once(':')
        && host.eq_ignore_ascii_case("localhost")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        OpenError::BadAddress(format!(
            "{s:?} is not an address: use IP:PORT, [IPV6]:PORT, localhost:PORT or PORT \
             (meaning 127.0.0.1)"
        ))
    })
}

impl Hub {
    /// Installs the listener layer's [`Sockets`] (once; later calls are ignored).
    pub fn set_sockets(&self, sockets: Arc<dyn Sockets>) {
        let _ = self.sockets.set(sockets);
    }

    pub(super) fn sockets(&self) -> Result<Arc<dyn Sockets>, OpenError> {
        self.sockets.get().cloned().ok_or_else(|| {
            OpenError::Unavailable("this socklab cannot open sockets at run time".into())
        })
    }

    /// A fresh listener id: after every id in use and in the history. Taken once the
    /// socket is bound or connected, so failed attempts leave no gaps.
    pub fn allocate_listener_id(&self) -> u32 {
        self.next_listener_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a listener (or an outgoing connection's entry) and announces it.
    pub fn insert_listener(&self, listener: Arc<ListenerState>) -> ListenerInfo {
        let info = listener.info(0);
        self.listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(listener.id, listener);
        self.publish(Event::Listener(info.clone()));
        info
    }

    /// Number of listening sockets added at run time (not counting outgoing entries).
    fn runtime_listeners(&self) -> usize {
        self.listener_map()
            .values()
            .filter(|l| l.remote.is_none() && l.runtime)
            .count()
    }

    /// Binds a new listener and starts serving it.
    pub async fn add_listener(&self, req: ListenRequest) -> Result<ListenerInfo, OpenError> {
        let sockets = self.sockets()?;
        if self.runtime_listeners() >= MAX_RUNTIME_LISTENERS {
            return Err(OpenError::TooMany(format!(
                "at most {MAX_RUNTIME_LISTENERS} listeners can be added at run time; \
                 remove one first"
            )));
        }
        let state = sockets.listen(req).await?;
        Ok(self.insert_listener(state))
    }

    /// Removes a listener: it stops accepting, and every session still online on it ends
    /// with `listener_removed`. Returns the listener as it was and how many sessions
    /// ended. Waits up to [`REMOVE_WAIT`] for them.
    pub async fn remove_listener(&self, id: u32) -> Result<(ListenerInfo, usize), ActionError> {
        let listener = self
            .listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .ok_or(ActionError::NoListener(id))?;
        let sessions = self.sessions_of(Some(id));
        let info = listener.info(sessions.len());
        for handle in &sessions {
            handle.set_close_reason(EndReason::ListenerRemoved);
        }
        // Stops accepting (TCP) or ends the socket's loop, which ends its UDP sessions with
        // the reason just set.
        listener.stop();
        for handle in &sessions {
            if handle.meta.proto == Proto::Tcp {
                handle.close_requested.notify_one();
            }
        }
        let all_ended = async {
            for handle in &sessions {
                handle.wait_ended().await;
            }
        };
        if tokio::time::timeout(REMOVE_WAIT, all_ended).await.is_err() {
            tracing::warn!("listener {id} removed; some of its sessions are still ending");
        }
        self.publish(Event::ListenerRemoved(info.clone()));
        Ok((info, sessions.len()))
    }

    /// Drops the entry of an outgoing connection whose session has ended (its loop has
    /// stopped); announces the removal. Does nothing when it is already gone.
    pub fn forget_listener(&self, id: u32) {
        let removed = self
            .listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(listener) = removed {
            listener.stop();
            self.publish(Event::ListenerRemoved(listener.info(0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback is always allowed; other addresses only inside an allowed network.
    #[test]
    fn net_policy() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let none = NetPolicy::default();
        assert!(none.allows(&addr("127.0.0.1:1")));
        assert!(none.allows(&addr("127.9.9.9:1")));
        assert!(none.allows(&addr("[::1]:1")));
        assert!(none.allows(&addr("[::ffff:127.0.0.1]:1")));
        assert!(!none.allows(&addr("192.168.1.5:1")));
        assert!(!none.allows(&addr("0.0.0.0:1")));
        let lan = NetPolicy {
            allowed: NetPolicy::parse_net("192.168.1.0/24").unwrap(),
        };
        assert!(lan.allows(&addr("192.168.1.5:1")));
        assert!(!lan.allows(&addr("192.168.2.5:1")));
        let any = NetPolicy {
            allowed: NetPolicy::parse_net("any").unwrap(),
        };
        assert!(any.allows(&addr("0.0.0.0:1")) && any.allows(&addr("[2001:db8::1]:1")));
        assert_eq!(NetPolicy::parse_net("10.0.0.7").unwrap().len(), 1);
        assert!(NetPolicy::parse_net("ten").unwrap_err().contains("CIDR"));
        assert!(matches!(
            none.check(addr("8.8.8.8:53")),
            Err(OpenError::NotAllowed { .. })
        ));
    }

    /// Bind addresses: bare ports and localhost mean 127.0.0.1; names are refused.
    #[test]
    fn bind_addresses() {
        assert_eq!(
            parse_bind_addr("9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(
            parse_bind_addr("localhost:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_bind_addr("[::1]:7").unwrap(),
            "[::1]:7".parse().unwrap()
        );
        let err = parse_bind_addr("device.lan:9").unwrap_err().to_string();
        assert!(err.contains("IP:PORT"), "{err}");
        assert!(parse_bind_addr("127.0.0.1:70000").is_err());
    }
}

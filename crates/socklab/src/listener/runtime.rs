//! Listeners bound while socklab runs, and the hub's [`Sockets`] seam: [`RuntimeSockets`]
//! binds a listener and starts the same accept or datagram loop as a command-line one, or
//! opens an outgoing connection ([`super::outgoing`]). Every task it starts holds the
//! server's task guard, so shutdown waits for it as for any device task.

use std::sync::{Arc, Mutex, Weak};

use tokio::net::UdpSocket;

use super::udp;
use super::{RuntimeConfig, Started, TaskGuard, outgoing, tcp};
use crate::hub::Hub;
use crate::hub::connect::ConnectRequest;
use crate::hub::listeners::{ListenRequest, OpenError, OpenFuture, Sockets};
use crate::listener_state::ListenerState;
use crate::model::{Proto, SessionInfo};
use crate::shutdown::Shutdown;

/// The listener layer's side of run-time changes (see [`Sockets`]).
#[derive(Debug)]
pub struct RuntimeSockets {
    /// The hub the new listeners and sessions belong to (weak: the hub holds this).
    hub: Weak<Hub>,
    /// The server's shutdown signal, for the loops.
    shutdown: Shutdown,
    /// The server's task guard while it runs (`None` before and after).
    guard: Mutex<Option<TaskGuard>>,
    /// Settings.
    config: RuntimeConfig,
}

impl RuntimeSockets {
    /// Creates the seam for `hub`; it opens nothing until [`RuntimeSockets::arm`].
    pub fn new(hub: &Arc<Hub>, shutdown: Shutdown, config: RuntimeConfig) -> Arc<Self> {
        Arc::new(RuntimeSockets {
            hub: Arc::downgrade(hub),
            shutdown,
            guard: Mutex::new(None),
            config,
        })
    }

    /// Starts allowing run-time changes; their tasks hold `guard`.
    pub(crate) fn arm(&self, guard: TaskGuard) {
        *self.guard.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    }

    /// Stops allowing them (at shutdown), dropping the guard so shutdown can complete.
    pub fn disarm(&self) {
        self.guard.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn start(&self) -> Result<Started, OpenError> {
        let stopping = || OpenError::Unavailable("socklab is not running or shutting down".into());
        if self.shutdown.is_triggered() {
            return Err(stopping());
        }
        let guard = self
            .guard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(stopping)?;
        Ok(Started {
            hub: self.hub.upgrade().ok_or_else(stopping)?,
            shutdown: self.shutdown.clone(),
            guard,
            config: self.config.clone(),
        })
    }
}

impl Sockets for RuntimeSockets {
    fn listen(&self, req: ListenRequest) -> OpenFuture<Arc<ListenerState>> {
        let started = self.start();
        Box::pin(async move { listen(started?, req).await })
    }

    fn connect(&self, req: ConnectRequest) -> OpenFuture<SessionInfo> {
        let started = self.start();
        Box::pin(async move { outgoing::connect(started?, req).await })
    }
}

/// Binds `req` and starts its loop.
async fn listen(started: Started, req: ListenRequest) -> Result<Arc<ListenerState>, OpenError> {
    let Started {
        hub,
        shutdown,
        guard,
        config,
    } = started;
    let addr = req.addr;
    config.policy.check(addr)?;
    let proto = req.proto.as_str();
    let bind_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            OpenError::InUse { proto, addr }
        } else {
            OpenError::Bind {
                proto,
                addr,
                source,
            }
        }
    };
    let state = |local| {
        Arc::new(
            ListenerState::new(
                hub.allocate_listener_id(),
                req.proto,
                local,
                req.settings.echo,
                req.settings.rules.clone(),
            )
            .with_framing(config.reply_framing.clone())
            .with_link(req.settings.link.clone(), config.link_seed)
            .added_at_run_time(),
        )
    };
    match req.proto {
        Proto::Tcp => {
            let listener = tcp::bind(addr).map_err(bind_error)?;
            let state = state(listener.local_addr().map_err(bind_error)?);
            tokio::spawn(tcp::accept_loop(
                listener,
                state.clone(),
                config.tcp_keepalive,
                hub,
                shutdown,
                guard,
            ));
            Ok(state)
        }
        Proto::Udp => {
            let socket = UdpSocket::bind(addr).await.map_err(bind_error)?;
            let state = state(socket.local_addr().map_err(bind_error)?);
            tokio::spawn(udp::serve(
                Arc::new(socket),
                state.clone(),
                hub,
                config.udp,
                shutdown,
                guard,
                None,
            ));
            Ok(state)
        }
    }
}

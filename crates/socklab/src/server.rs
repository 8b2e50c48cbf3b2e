//! Binding and running a server: [`Server::bind`] opens the store and every socket (so
//! callers learn the real ports before anything runs), [`Server::run`] serves until the
//! shutdown future completes, then ends every session with `server_shutdown`, waits for
//! their tasks and flushes the store.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::hub::Hub;
use crate::hub::listeners::NetPolicy;
use crate::listener::RuntimeConfig;
use crate::listener::runtime::RuntimeSockets;
use crate::listener::tls::cert::{self, CertOrigin, TlsIdentity};
use crate::listener::{tcp, tls, udp};
use crate::listener_state::{ListenerState, TlsState};
use crate::model::Proto;
use crate::shutdown::{self, Shutdown, Trigger};
use crate::store::{Store, StoreError};
use crate::web::{self, AppContext, AppState};

/// Errors that stop a server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A socket could not be bound (port in use, address not local, no permission).
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind {
        /// `tcp`, `udp` or `http`.
        proto: &'static str,
        /// The requested address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS certificate or key could not be loaded or generated.
    #[error(transparent)]
    Tls(#[from] crate::listener::tls::cert::CertError),
    /// The node could not join its cluster (`--cluster`).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The token is too weak for where the API listens.
    #[error("{0}")]
    WeakToken(String),
    /// The ready file could not be written.
    #[error("cannot write ready file {path}: {source}")]
    ReadyFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// The addresses a bound server listens on (real ports), as written to the ready file.
#[derive(Clone, Debug, Serialize)]
pub struct BoundAddrs {
    /// Dashboard and API.
    pub http: SocketAddr,
    /// TCP device listeners.
    pub tcp: Vec<SocketAddr>,
    /// UDP device listeners.
    pub udp: Vec<SocketAddr>,
    /// TLS device listeners.
    pub tls: Vec<SocketAddr>,
    /// The certificate the TLS listeners present (`None` without TLS listeners).
    pub tls_cert: Option<TlsCertSummary>,
    /// The token in force, if any.
    pub token: Option<String>,
}

/// The certificate of the TLS listeners, as printed at start and written to the ready file.
#[derive(Clone, Debug, Serialize)]
pub struct TlsCertSummary {
    /// The PEM file a device trusts (`ussl.wrap_socket(ca=...)`).
    pub path: PathBuf,
    /// SHA-256 fingerprint, colon-separated hex.
    pub sha256: String,
    /// Names it is valid for.
    pub names: Vec<String>,
    /// `given` (--cert), `created`, `kept` (from an earlier start) or `renewed`.
    pub origin: &'static str,
    /// Names a renewal added.
    pub added: Vec<String>,
}

impl TlsCertSummary {
    fn of(id: &TlsIdentity) -> TlsCertSummary {
        let (origin, added) = match &id.origin {
            CertOrigin::Given => ("given", Vec::new()),
            CertOrigin::Created => ("created", Vec::new()),
            CertOrigin::Kept => ("kept", Vec::new()),
            CertOrigin::Renewed(added) => ("renewed", added.clone()),
        };
        TlsCertSummary {
            path: id.cert_path.clone(),
            sha256: id.fingerprint.clone(),
            names: id.names.clone(),
            origin,
            added,
        }
    }
}

/// A server with every socket bound, ready to run.
#[derive(Debug)]
pub struct Server {
    config: Config,
    tcp: Vec<(TcpListener, Arc<ListenerState>)>,
    udp: Vec<(Arc<UdpSocket>, Arc<ListenerState>)>,
    tls: Vec<(TcpListener, Arc<ListenerState>)>,
    tls_identity: Option<TlsIdentity>,
    http: TcpListener,
    hub: Arc<Hub>,
    token: Option<String>,
    trigger: Trigger,
    shutdown: Shutdown,
    /// The bridge to the other nodes, with `--cluster`.
    cluster: Option<Cluster>,
    web_stats: Arc<web::WebStats>,
    /// Binds listeners and opens connections at run time for the hub.
    sockets: Arc<RuntimeSockets>,
    /// Held by every device task (a clone each).
    guard: mpsc::Sender<()>,
    /// Completes when every device task has ended.
    all_done: mpsc::Receiver<()>,
}

fn bind_err(proto: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> ServerError {
    move |source| ServerError::Bind {
        proto,
        addr,
        source,
    }
}

impl Server {
    /// Binds every listener and the HTTP socket, then opens the store (a start that fails
    /// on a busy port leaves no database behind). A non-loopback HTTP address without a
    /// configured token gets a generated one.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        // Before anything is bound: a weak token must not even briefly expose the API.
        crate::web::auth::check_token_strength(config.token.as_deref(), config.http)
            .map_err(ServerError::WeakToken)?;
        let mut states = Vec::new();
        let mut tcp_sockets = Vec::new();
        for addr in &config.tcp {
            let listener = tcp::bind(*addr).map_err(bind_err("tcp", *addr))?;
            let local = listener.local_addr().map_err(bind_err("tcp", *addr))?;
            let state = listener_state(states.len(), Proto::Tcp, local, &config);
            states.push(state.clone());
            tcp_sockets.push((listener, state));
        }
        let mut udp_sockets = Vec::new();
        for addr in &config.udp {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(bind_err("udp", *addr))?;
            let local = socket.local_addr().map_err(bind_err("udp", *addr))?;
            let state = listener_state(states.len(), Proto::Udp, local, &config);
            states.push(state.clone());
            udp_sockets.push((Arc::new(socket), state));
        }
        let mut tls_bound = Vec::new();
        for addr in &config.tls {
            let listener = tcp::bind(*addr).map_err(bind_err("tls", *addr))?;
            let local = listener.local_addr().map_err(bind_err("tls", *addr))?;
            tls_bound.push((listener, local));
        }
        let http = TcpListener::bind(config.http)
            .await
            .map_err(bind_err("http", config.http))?;
        // After every bind (a busy port leaves no certificate behind), before the store.
        let tls_identity = if config.tls.is_empty() {
            None
        } else {
            Some(match &config.tls_cert {
                Some((cert, key)) => cert::load(cert, key)?,
                None => {
                    let names = cert::wanted_names(&config.tls, &config.tls_names);
                    cert::load_or_create(&config.db, &names)?
                }
            })
        };
        let mut tls_sockets = Vec::new();
        for (listener, local) in tls_bound {
            let id = tls_identity
                .as_ref()
                .expect("TLS listeners have a certificate");
            let tls = TlsState::new(id.fingerprint.clone(), id.cert_path.display().to_string());
            let state = tls_listener_state(states.len(), local, &config, tls);
            states.push(state.clone());
            tls_sockets.push((listener, state));
        }
        let store = Arc::new(Store::open(&config.db, config.max_db_bytes)?);
        let token = config.token.clone().or_else(|| {
            (!config.http.ip().is_loopback()).then(|| hex::encode(rand::random::<[u8; 16]>()))
        });
        let hub = Arc::new(Hub::new(states, store));
        if let Some(re) = &config.label_from {
            hub.set_label_from(re.clone());
        }
        let (trigger, shutdown) = shutdown::channel();
        let sockets = RuntimeSockets::new(
            &hub,
            shutdown.clone(),
            RuntimeConfig {
                tcp_keepalive: config.tcp_keepalive,
                udp: udp::UdpLimits {
                    idle_timeout: config.udp_idle_timeout,
                    max_sessions: config.udp_max_sessions,
                },
                policy: NetPolicy {
                    allowed: config.allow_net.clone(),
                },
                link_seed: config.link_seed,
                reply_framing: config.reply_framing.clone(),
            },
        );
        hub.set_sockets(sockets.clone());
        // Every device task holds a clone of `guard`; `recv` returns `None` once all are
        // gone. Made here so connections opened before `run` are waited for too.
        let (guard, all_done) = mpsc::channel::<()>(1);
        sockets.arm(guard.clone());
        let cluster = match &config.cluster {
            Some(c) => {
                let http_addr = http.local_addr().unwrap_or(config.http);
                Some(Cluster::start(c, hub.clone(), http_addr).await?)
            }
            None => None,
        };
        Ok(Server {
            config,
            tcp: tcp_sockets,
            udp: udp_sockets,
            tls: tls_sockets,
            tls_identity,
            http,
            hub,
            token,
            trigger,
            shutdown,
            cluster,
            web_stats: Arc::default(),
            sockets,
            guard,
            all_done,
        })
    }

    /// The bound addresses and the token in force.
    pub fn addrs(&self) -> BoundAddrs {
        BoundAddrs {
            http: self.http.local_addr().unwrap_or(self.config.http),
            tcp: self.tcp.iter().map(|(_, s)| s.addr).collect(),
            udp: self.udp.iter().map(|(_, s)| s.addr).collect(),
            tls: self.tls.iter().map(|(_, s)| s.addr).collect(),
            tls_cert: self.tls_identity.as_ref().map(TlsCertSummary::of),
            token: self.token.clone(),
        }
    }

    /// The hub (for tests and embedding).
    pub fn hub(&self) -> Arc<Hub> {
        self.hub.clone()
    }

    /// The HTTP router of this server, for driving routes without a socket.
    pub fn router(&self) -> axum::Router {
        let state = AppState::from(AppContext {
            hub: self.hub.clone(),
            token: self.token.as_deref().map(Arc::from),
            shutdown: self.shutdown.clone(),
            limits: self.config.http_limits,
            stats: self.web_stats.clone(),
        });
        match &self.cluster {
            None => web::app(state),
            Some(cluster) => {
                let single = web::app(state.clone());
                // Other nodes' calls run through this node's own routes, token-free: they
                // passed the checks of the node that took them.
                let internal = web::app(state.without_token());
                cluster.serve_api(web::cluster::local_api(internal));
                // The cluster's own routes answer axum's rejections (405, 413) with the same
                // JSON error body as the single-node routes.
                web::cluster::router(cluster.clone(), state, single)
                    .layer(axum::middleware::from_fn(web::error::json_errors))
            }
        }
    }

    /// Serves until `signal` completes, then shuts down gracefully: every session ends with
    /// `server_shutdown`, their tasks finish, the HTTP server drains, the store commits.
    pub async fn run(self, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
        let addrs = self.addrs();
        let router = self.router();
        let Server {
            config,
            tcp,
            udp,
            tls,
            tls_identity,
            http,
            hub,
            trigger,
            shutdown,
            cluster,
            web_stats: self_stats,
            sockets,
            guard,
            mut all_done,
            ..
        } = self;
        // The sockets are already listening (connections wait in the backlog), so the
        // ready file can go out before the tasks start; an error then leaves nothing running.
        if let Some(path) = &config.ready_file {
            write_ready_file(path, &addrs)?;
        }
        // Subscribed before any device task runs, so the console misses no event.
        let console_events = config.console_live.then(|| hub.subscribe());
        for (listener, state) in tcp {
            tokio::spawn(tcp::accept_loop(
                listener,
                state,
                config.tcp_keepalive,
                hub.clone(),
                shutdown.clone(),
                guard.clone(),
            ));
        }
        for (socket, state) in udp {
            let limits = udp::UdpLimits {
                idle_timeout: config.udp_idle_timeout,
                max_sessions: config.udp_max_sessions,
            };
            tokio::spawn(udp::serve(
                socket,
                state,
                hub.clone(),
                limits,
                shutdown.clone(),
                guard.clone(),
                None,
            ));
        }
        if let Some(identity) = &tls_identity {
            let settings = tls::TlsSettings {
                acceptor: tokio_rustls::TlsAcceptor::from(identity.server_config.clone()),
                handshake_timeout: config.tls_handshake_timeout,
                keepalive: config.tcp_keepalive,
            };
            for (listener, state) in tls {
                tokio::spawn(tls::accept_loop(
                    listener,
                    state,
                    settings.clone(),
                    hub.clone(),
                    shutdown.clone(),
                    guard.clone(),
                ));
            }
        }
        drop(guard);
        if !config.link_schedule.is_empty() {
            tokio::spawn(crate::schedule::run(
                hub.clone(),
                config.link_schedule.clone(),
                tokio::time::Instant::now(),
                shutdown.clone(),
            ));
        }
        let http_done = serve_http(
            http,
            router,
            config.http_limits,
            self_stats,
            shutdown.clone(),
        );
        let console = (config.console_live || config.console_input).then(|| {
            tokio::spawn(crate::console::run(
                hub.clone(),
                console_events,
                config.console_input,
            ))
        });
        if let Some(cluster) = cluster.as_ref().filter(|c| c.view() && config.console_live) {
            tokio::spawn(crate::cluster::view::run(cluster.clone()));
        }
        tracing::info!(
            "socklab running: {}",
            serde_json::to_string(&addrs).unwrap_or_default()
        );

        signal.await;
        tracing::info!("socklab shutting down");
        trigger.fire();
        sockets.disarm();
        hub.stop_all_periodic().await;
        while all_done.recv().await.is_some() {}
        match http_done.await {
            Ok(Err(e)) => tracing::warn!("http server: {e}"),
            Err(_) => tracing::warn!("http server thread ended early"),
            Ok(Ok(())) => {}
        }
        hub.store().close().await;
        if let Some(cluster) = &cluster {
            cluster.stop().await;
        }
        if let Some(console) = console {
            console.abort();
        }
        tracing::info!(
            "socklab stopped; history saved in {}",
            hub.store().path().display()
        );
        Ok(())
    }
}

/// Serves the API and dashboard on a runtime of their own (one thread). Device tasks keep
/// the main runtime's run queue busy under load; here API requests never queue behind
/// thousands of them, which keeps the control plane responsive while devices flood in.
/// The limits ([`web::serve`]) keep slow or many clients from exhausting it. The receiver
/// completes when the HTTP server has shut down (open connections get a short grace).
fn serve_http(
    http: TcpListener,
    router: axum::Router,
    limits: web::HttpLimits,
    stats: Arc<web::WebStats>,
    shutdown: Shutdown,
) -> oneshot::Receiver<io::Result<()>> {
    let (done, finished) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("socklab-http".into())
        .spawn(move || {
            let result = (|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                // The socket was registered with the main runtime's reactor; move it over.
                let std_listener = http.into_std()?;
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(std_listener)?;
                    web::serve::serve(listener, router, limits, stats, shutdown).await
                })
            })();
            let _ = done.send(result);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the http thread: {e}");
    }
    finished
}

fn listener_state(
    id: usize,
    proto: Proto,
    addr: SocketAddr,
    config: &Config,
) -> Arc<ListenerState> {
    Arc::new(
        ListenerState::new(
            id as u32,
            proto,
            addr,
            config.echo,
            config.auto_replies.clone(),
        )
        .with_framing(config.reply_framing.clone())
        .with_link(config.link_for(id as u32), config.link_seed),
    )
}

fn tls_listener_state(
    id: usize,
    addr: SocketAddr,
    config: &Config,
    tls: TlsState,
) -> Arc<ListenerState> {
    Arc::new(
        ListenerState::new(
            id as u32,
            Proto::Tcp,
            addr,
            config.echo,
            config.auto_replies.clone(),
        )
        .with_framing(config.reply_framing.clone())
        .with_link(config.link_for(id as u32), config.link_seed)
        .with_tls(tls),
    )
}

/// Writes the addresses atomically (temp file, then rename) so a poller never reads half.
/// The file holds the token, so only its owner may read it (mode 0600 from creation on).
fn write_ready_file(path: &Path, addrs: &BoundAddrs) -> Result<(), ServerError> {
    use std::io::Write;
    let err = |source| ServerError::ReadyFile {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec(addrs).unwrap_or_default();
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(err)?;
    file.write_all(&json).map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)
}

/// Binds with `config` and runs until `signal` completes.
pub async fn run(config: Config, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
    Server::bind(config).await?.run(signal).await
}

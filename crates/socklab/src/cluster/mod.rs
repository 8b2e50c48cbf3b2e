//! The cluster bridge: many socklab nodes, one view, over NATS (`--cluster`).
//!
//! Each node keeps serving its own devices and writing its own SQLite history; the bridge
//! is one more subscriber of the hub and one more front end over it, and it runs on a
//! thread and runtime of its own, so nothing it does (NATS slow, down, or a slow peer)
//! can pause a device: the hub's event channel never waits for it, it lags and counts
//! what it skipped.
//!
//! # Layout
//!
//! * [`names`]: subjects, node names, global session ids (`NODE:ID`), URL checks.
//! * [`wire`]: the JSON that crosses NATS, and the rewrite of ids to global ones.
//! * [`peers`]: the other nodes (heartbeats) and their online sessions (events), so a
//!   node that stops answering shows as unreachable rather than vanishing.
//! * `bridge`: the tasks — publish events and heartbeats, answer requests.
//! * `gather`: the requests this node makes — remote calls and scatter-gather with a
//!   deadline that names the nodes that did not answer.
//! * [`view`]: the other nodes' events on the console (`--cluster-view`).

mod bridge;
mod burst;
mod gather;
pub mod names;
pub mod peers;
pub mod view;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::hub::Hub;
pub use gather::{Gathered, SessionPage};
use peers::Peers;
use wire::{ApiReply, ApiRequest};

/// How long scatter-gather waits for the nodes that are alive.
pub const GATHER_DEADLINE: Duration = Duration::from_secs(2);

/// How long a name-clash probe waits for an answer at start.
pub const PING_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long connecting to NATS may take at start.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Notices (other nodes' events, node changes) a subscriber may fall behind by.
pub const NOTICE_BUFFER: usize = 4096;

/// `--cluster` and its companions.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// NATS server URL(s), checked by [`names::parse_cluster_url`].
    pub url: String,
    /// This node's name (unique in the cluster); `None`: `HOSTNAME-HTTPPORT`
    /// ([`names::default_node_name`]) with the port the API is bound to.
    pub node: Option<String>,
    /// Print other nodes' events on the console too.
    pub view: bool,
    /// NATS token (`--cluster-token`), if the server wants one.
    pub token: Option<String>,
    /// NATS credentials file (`--cluster-creds`: JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// CA certificate to trust for TLS to NATS (`--cluster-ca`).
    pub ca: Option<PathBuf>,
}

/// Why a node could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Connecting to NATS failed (refused, timed out, bad credentials, TLS).
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The URL tried.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Another running node already has this name.
    #[error(
        "node name {node:?} is already taken by the socklab at http://{http} (pid {pid}); \
         pick another with --node NAME"
    )]
    NameTaken {
        /// The name.
        node: String,
        /// The other node's dashboard/API address.
        http: String,
        /// The other node's process id.
        pid: u32,
    },
    /// A subscription or the bridge's thread could not be set up.
    #[error("cluster bridge: {0}")]
    Setup(String),
}

/// Runs one API call on this node (the web layer provides it): how requests from other
/// nodes reach this node's hub through the same checks as a local API call.
pub type LocalApi =
    Arc<dyn Fn(ApiRequest) -> Pin<Box<dyn Future<Output = ApiReply> + Send>> + Send + Sync>;

/// A running bridge; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.inner.node)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// This node's name.
    node: String,
    /// Random id of this process.
    instance: String,
    /// This node's dashboard/API address, for heartbeats and clash messages.
    http: SocketAddr,
    /// The NATS connection (reconnects by itself).
    client: async_nats::Client,
    /// The hub this node serves.
    hub: Arc<Hub>,
    /// Other nodes and their sessions; held briefly, never across an await.
    peers: Mutex<Peers>,
    /// Other nodes' events and node changes, as JSON, for SSE and the console view.
    notices: broadcast::Sender<Arc<str>>,
    /// How API calls from other nodes run here; set once the router exists.
    local_api: OnceLock<LocalApi>,
    /// Woken when `local_api` is set (calls that came earlier wait for it).
    local_api_ready: tokio::sync::Notify,
    /// The bridge's runtime (its own thread), where its tasks run.
    runtime: tokio::runtime::Handle,
    /// Whether NATS is connected right now.
    connected: AtomicBool,
    /// Events published to NATS.
    events_published: AtomicU64,
    /// Events not published (bridge behind, or NATS down); they are in the local store.
    events_skipped: AtomicU64,
    /// Print other nodes' events on the console.
    view: bool,
    /// Until when (ms since the epoch) another node watches this node's data events: they
    /// are published only until then ([`bridge::WATCH_TTL`] after the last word).
    watched_until_ms: AtomicI64,
    /// Asks the task taking in other nodes' events to hold the data subscription; the
    /// answer comes once the subscription is in place.
    watch_tx: mpsc::UnboundedSender<oneshot::Sender<()>>,
    /// Fired to end the bridge thread.
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Cluster {
    /// Connects to NATS, refuses a name another live node holds, and starts the bridge's
    /// tasks on a thread of its own. Returns once the node is registered.
    pub async fn start(
        config: &ClusterConfig,
        hub: Arc<Hub>,
        http: SocketAddr,
    ) -> Result<Cluster, ClusterError> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let mut config = config.clone();
        config
            .node
            .get_or_insert_with(|| names::default_node_name(http.port()));
        std::thread::Builder::new()
            .name("socklab-cluster".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ClusterError::Setup(e.to_string())));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = bridge::start(config, hub, http, stop_tx).await;
                    let ok = started.is_ok();
                    let _ = ready_tx.send(started);
                    if ok {
                        let _ = stop_rx.await;
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        ready_rx
            .await
            .map_err(|_| ClusterError::Setup("the bridge thread ended".into()))?
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Whether `--cluster-view` asked for other nodes' events on the console.
    pub fn view(&self) -> bool {
        self.inner.view
    }

    /// Lets other nodes' API calls run here, through `api`.
    pub fn serve_api(&self, api: LocalApi) {
        let _ = self.inner.local_api.set(api);
        self.inner.local_api_ready.notify_waiters();
    }

    /// Other nodes' events (ids global) and node notices (`{"type": "node", ...}`,
    /// `{"type": "resync"}`), as JSON, from now on. Other nodes send their data events
    /// only while some node watches: use [`Cluster::watch`] to get them too.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.inner.notices.subscribe()
    }

    /// [`Cluster::subscribe`], data events included: subscribes to the other nodes' data
    /// events and asks every live node to publish them, and returns once they answered
    /// (or the gather deadline passed), so every data event produced from then on
    /// arrives. While no receiver is left, the subscription ends after a few seconds and
    /// the other nodes stop publishing data events (they are in their histories).
    pub async fn watch(&self) -> broadcast::Receiver<Arc<str>> {
        let receiver = self.inner.notices.subscribe();
        let inner = self.inner.clone();
        let asked = self
            .inner
            .runtime
            .spawn(async move { bridge::start_watching(&inner).await });
        let _ = asked.await;
        receiver
    }

    /// Whether NATS is connected.
    pub fn connected(&self) -> bool {
        self.inner
            .connected
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Says goodbye (other nodes forget this one rather than show it unreachable), flushes
    /// and ends the bridge thread. Call after every session has ended.
    pub async fn stop(&self) {
        let inner = self.inner.clone();
        let said = self
            .inner
            .runtime
            .spawn(async move { bridge::say_goodbye(&inner).await });
        let _ = tokio::time::timeout(Duration::from_secs(2), said).await;
        let stop = self
            .inner
            .stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    }
}

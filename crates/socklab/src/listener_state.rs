//! Per-listener settings operators can change (echo, auto-reply rules, the link new
//! sessions start with, the link seed) and the one [`ListenerState::replies`] every path
//! uses to answer data from a device. A UDP listener also has its down queue here: every
//! datagram for one of its devices (operator send, broadcast) goes through it to the
//! listener's loop, the only code that writes its socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::framing::{FrameBuffer, Framing, FramingSpec, datagram_frames};
use crate::link::LinkSpec;
use crate::model::{ListenerInfo, ListenerKind, ListenerTls, Proto, TlsFailure};
use crate::rules::Rule;
use crate::session::{Outbox, SessionHandle, Weighed};
use crate::shutdown::{self, Shutdown, Trigger};

/// Most bytes waiting in one UDP listener's down queue (all its sessions together).
pub const UDP_DOWN_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// How a send to a UDP device ended, reported back to the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownOutcome {
    /// Sent (or handed to the session's link, which records what it does with it).
    Sent,
    /// The socket refused it (the error text; the message is recorded as failed).
    Failed(String),
    /// The session ended before it could be sent (recorded as undelivered).
    Ended,
}

/// One datagram for a UDP device, waiting in its listener's down queue.
#[derive(Debug)]
pub struct UdpDown {
    /// The session it is for.
    pub session: Arc<SessionHandle>,
    /// The datagram.
    pub data: Bytes,
    /// Where to report the outcome (the API waits for it; a broadcast too).
    pub done: Option<oneshot::Sender<DownOutcome>>,
}

impl Weighed for UdpDown {
    fn weight(&self) -> usize {
        self.data.len()
    }
}

/// Live state of one listener: its address and the modes operators can change.
#[derive(Debug)]
pub struct ListenerState {
    /// Index in command-line order.
    pub id: u32,
    /// Transport.
    pub proto: Proto,
    /// Bound address (real port).
    pub addr: SocketAddr,
    /// An outgoing connection (client mode): the device's address. `None` for a socket
    /// devices reach.
    pub remote: Option<SocketAddr>,
    /// Added at run time (counts against the run-time limit).
    pub runtime: bool,
    /// Fired when the listener is removed at run time (or its outgoing session ended):
    /// its loop stops accepting or receiving.
    stop: Trigger,
    /// What the listener's loop waits on for [`ListenerState::stop`].
    stopped: Shutdown,
    /// Echo mode: send every incoming chunk back.
    echo: AtomicBool,
    /// Auto-reply rules; replaced whole, read by every incoming chunk (cheap `Arc` clone).
    rules: RwLock<Arc<Vec<Rule>>>,
    /// How incoming data is cut into frames for the rules.
    framing: RwLock<Arc<Framing>>,
    /// The link new sessions start with (read once per session start).
    link: RwLock<Option<Arc<LinkSpec>>>,
    /// `--seed`: makes the links' jitter and loss reproducible.
    seed: Option<u64>,
    /// UDP listeners: datagrams for their devices, drained by the listener loop.
    pub udp_down: Outbox<UdpDown>,
    /// TLS listeners: their certificate and failed handshakes.
    pub tls: Option<TlsState>,
}

/// A TLS listener's certificate and the count of its failed handshakes.
#[derive(Debug)]
pub struct TlsState {
    /// SHA-256 fingerprint of the certificate.
    pub cert_sha256: String,
    /// The certificate's PEM file.
    pub cert_path: String,
    /// Failed handshakes since start.
    pub failures: std::sync::atomic::AtomicU64,
    /// The newest failure.
    pub last_failure: std::sync::Mutex<Option<TlsFailure>>,
}

impl TlsState {
    /// The state of a TLS listener presenting the certificate at `cert_path`.
    pub fn new(cert_sha256: String, cert_path: String) -> TlsState {
        TlsState {
            cert_sha256,
            cert_path,
            failures: Default::default(),
            last_failure: Default::default(),
        }
    }

    /// Counts a failed handshake and keeps it as the newest.
    pub fn failed(&self, failure: TlsFailure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
    }

    /// A snapshot for the API.
    pub fn info(&self) -> ListenerTls {
        ListenerTls {
            cert_sha256: self.cert_sha256.clone(),
            cert_path: self.cert_path.clone(),
            handshake_failures: self.failures.load(Ordering::Relaxed),
            last_failure: self
                .last_failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl ListenerState {
    /// Creates a listener's state with its initial modes.
    pub fn new(id: u32, proto: Proto, addr: SocketAddr, echo: bool, rules: Vec<Rule>) -> Self {
        let (stop, stopped) = shutdown::channel();
        ListenerState {
            id,
            proto,
            addr,
            remote: None,
            runtime: false,
            stop,
            stopped,
            echo: AtomicBool::new(echo),
            rules: RwLock::new(Arc::new(rules)),
            framing: RwLock::new(Arc::new(Framing::Read)),
            link: RwLock::new(None),
            seed: None,
            udp_down: Outbox::new(UDP_DOWN_QUEUE_BYTES),
            tls: None,
        }
    }

    /// Sets the initial link and the link seed (builder style, at bind time).
    pub fn with_link(mut self, link: Option<LinkSpec>, seed: Option<u64>) -> Self {
        self.link = RwLock::new(link.map(Arc::new));
        self.seed = seed;
        self
    }

    /// Sets how incoming data is cut into frames for the rules (builder style).
    pub fn with_framing(self, framing: Framing) -> Self {
        self.set_framing(framing);
        self
    }

    /// Makes this a TLS listener (builder style, at bind time).
    pub fn with_tls(mut self, tls: TlsState) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Makes this the entry of an outgoing connection to `remote` (builder style).
    pub fn outgoing_to(mut self, remote: SocketAddr) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Marks a listener added at run time (builder style).
    pub fn added_at_run_time(mut self) -> Self {
        self.runtime = true;
        self
    }

    /// Stops the listener's loop (idempotent).
    pub fn stop(&self) {
        self.stop.fire();
    }

    /// Completes once [`ListenerState::stop`] was called; the loop selects on it.
    pub fn stopped(&self) -> Shutdown {
        self.stopped.clone()
    }

    /// Replaces the link new sessions start with.
    pub fn set_link(&self, link: Option<Arc<LinkSpec>>) {
        *self.link.write().unwrap_or_else(|e| e.into_inner()) = link;
    }

    /// The link new sessions start with.
    pub fn link(&self) -> Option<Arc<LinkSpec>> {
        self.link.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The link seed, if one was given.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Turns echo mode on or off.
    pub fn set_echo(&self, on: bool) {
        self.echo.store(on, Ordering::Relaxed);
    }

    /// Replaces the auto-reply rules.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    /// Replaces how incoming data is cut into frames for the rules.
    pub fn set_framing(&self, framing: Framing) {
        *self.framing.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(framing);
    }

    /// How incoming data is cut into frames for the rules.
    pub fn framing(&self) -> Arc<Framing> {
        self.framing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current auto-reply rules.
    pub fn rules(&self) -> Arc<Vec<Rule>> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What to send back for one read or datagram from a device: the echo (if on), then
    /// for each frame it completes (see [`crate::framing`]) the reply of the first rule that
    /// matches that frame. A TCP connection passes its `frames` buffer (created on first
    /// use), so a frame split across reads is joined; a datagram passes `None`. Every path
    /// (TCP or UDP, with or without a link) answers through this.
    pub fn replies(
        &self,
        data: &Bytes,
        frames: Option<&mut Option<Box<FrameBuffer>>>,
    ) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.echo.load(Ordering::Relaxed) && !data.is_empty() {
            out.push(data.clone());
        }
        let rules = self.rules();
        if rules.is_empty() {
            return out;
        }
        let framing = self.framing();
        let cut = match (frames, &*framing) {
            (Some(buffer), Framing::Read) if buffer.is_none() => vec![data.clone()],
            (Some(buffer), framing) => buffer.get_or_insert_default().push(framing, data),
            (None, framing) => datagram_frames(framing, data),
        };
        for frame in &cut {
            if let Some(rule) = rules.iter().find(|r| r.matches(frame)) {
                out.push(rule.reply());
            }
        }
        out
    }

    /// A snapshot for the API, with the number of sessions online on it.
    pub fn info(&self, online: usize) -> ListenerInfo {
        ListenerInfo {
            id: self.id,
            proto: self.proto,
            kind: if self.remote.is_some() {
                ListenerKind::Outgoing
            } else {
                ListenerKind::Listen
            },
            addr: self.addr.to_string(),
            remote: self.remote.map(|r| r.to_string()),
            echo: self.echo.load(Ordering::Relaxed),
            auto_replies: self.rules().iter().map(|r| r.spec().clone()).collect(),
            framing: FramingSpec::of(&self.framing()),
            online,
            link: self.link().map(|l| l.to_string()),
            tls: self.tls.as_ref().map(TlsState::info),
        }
    }
}

//! Device listeners, the only code that owns sockets: [`tcp`] accepts connections and
//! runs one task per connection (one loop, with or without a link, over any
//! [`tcp::DeviceStream`]); [`tls`] runs the same loop after a TLS handshake; [`udp`] runs
//! one task per socket that turns peer addresses into sessions. All answer data from a
//! device through [`upstream`], the one place echo and auto-replies happen. [`runtime`]
//! binds listeners while socklab runs and [`outgoing`] opens connections to devices
//! (client mode); both feed the same loops.

pub mod outgoing;
pub mod runtime;
pub mod tcp;
pub mod tls;
pub mod udp;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::framing::FrameBuffer;
use crate::hub::Hub;
use crate::listener_state::ListenerState;
use crate::model::Direction;
use crate::session::SessionHandle;

/// The most bytes read from a device at once. Each read is one stored message; the
/// buffer exists only while data is being read, so idle connections cost no buffer.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Held by every task `run` must wait for; dropped when the task ends.
pub(crate) type TaskGuard = mpsc::Sender<()>;

/// What run-time listeners and outgoing connections run with (from the server's config).
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// TCP keepalive on connections (`--tcp-keepalive`).
    pub tcp_keepalive: Option<std::time::Duration>,
    /// UDP idle timeout and session cap.
    pub udp: udp::UdpLimits,
    /// Where an operator may bind or connect.
    pub policy: crate::hub::listeners::NetPolicy,
    /// `--seed` for the links' jitter and loss.
    pub link_seed: Option<u64>,
    /// `--reply-framing`: how a new listener's auto-reply rules see incoming data.
    pub reply_framing: crate::framing::Framing,
}

/// What a task started for a run-time change needs.
pub(crate) struct Started {
    /// The hub.
    pub hub: std::sync::Arc<Hub>,
    /// The server's shutdown signal.
    pub shutdown: crate::shutdown::Shutdown,
    /// Held until the task ends.
    pub guard: TaskGuard,
    /// Settings.
    pub config: RuntimeConfig,
}

/// Data from a device, as it reaches socklab (after the link, if any): recorded (waiting
/// for room in the store, the back-pressure point), and answered. Returns the echo and
/// the auto-replies (see [`ListenerState::replies`]; `frames` is a TCP connection's frame
/// buffer, `None` for a datagram) for the caller to send down its way.
pub async fn upstream(
    hub: &Hub,
    listener: &ListenerState,
    handle: &SessionHandle,
    frames: Option<&mut Option<Box<FrameBuffer>>>,
    data: Bytes,
) -> Vec<Bytes> {
    let replies = listener.replies(&data, frames);
    hub.record(handle, Direction::Up, data).await;
    replies
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
pub(crate) async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

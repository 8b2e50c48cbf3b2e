//! Device listeners, the only code that owns sockets: [`tcp`] accepts connections and
//! runs one task per connection (its link loop in [`tcp_link`]); [`tls`] does the same
//! after a TLS handshake; [`udp`] runs one task per socket that turns peer addresses into
//! sessions. Both answer data from a device through
//! [`upstream`], the one place echo and auto-replies happen.

pub mod tcp;
pub mod tcp_link;
pub mod tcp_write;
pub mod tls;
pub mod udp;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::hub::Hub;
use crate::listener_state::ListenerState;
use crate::model::Direction;
use crate::session::SessionHandle;

/// The most bytes read from a device at once. Each read is one stored message; the
/// buffer exists only while data is being read, so idle connections cost no buffer.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Held by every task `run` must wait for; dropped when the task ends.
pub(crate) type TaskGuard = mpsc::Sender<()>;

/// Data from a device, as it reaches socklab (after the link, if any): recorded (waiting
/// for room in the store, the back-pressure point), and answered. Returns the echo and
/// the auto-reply (see [`ListenerState::replies`]) for the caller to send down its way.
pub async fn upstream(
    hub: &Hub,
    listener: &ListenerState,
    handle: &SessionHandle,
    data: Bytes,
) -> Vec<Bytes> {
    let replies = listener.replies(&data);
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

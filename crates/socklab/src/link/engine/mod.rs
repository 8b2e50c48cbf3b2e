//! The link state machines. Each takes data handed to the link at an instant and says
//! when it comes out at the other end (or that it is lost); the caller sleeps until the
//! earliest instant it reports and asks again. Nothing here reads a clock on its own or
//! touches a socket, so tests drive it with made-up instants.
//!
//! * [`tcp`]: one session's byte stream, both directions, in order, with its budgets.
//! * [`udp`]: every datagram session of one socket, in one timer heap, capped in bytes.

pub mod tcp;
pub mod udp;

use std::time::Duration;

use tokio::time::Instant;

use crate::model::LinkAction;

/// `at` moved up to the next multiple of `period` after `origin` (batch delivery).
pub fn round_up(at: Instant, origin: Instant, period: Duration) -> Instant {
    if at <= origin || period.is_zero() {
        return at;
    }
    let n = (at - origin).as_secs_f64() / period.as_secs_f64();
    origin + period.mul_f64(n.ceil())
}

/// A piece of data the link delivers now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The bytes.
    pub data: bytes::Bytes,
    /// Throttled, stalled or only delayed (for the `link` event).
    pub action: LinkAction,
    /// How long it spent inside the link.
    pub delay: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch delivery rounds arrivals up to the period, measured from the session start.
    #[test]
    fn batch_rounding() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(round_up(t0 + Duration::from_millis(300), t0, s), t0 + s);
        assert_eq!(round_up(t0 + s, t0, s), t0 + s);
        assert_eq!(
            round_up(t0 + Duration::from_millis(1001), t0, s),
            t0 + 2 * s
        );
        assert_eq!(round_up(t0, t0, s), t0);
    }
}

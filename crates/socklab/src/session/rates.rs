//! A session's recent traffic in one-second buckets, read as [`SessionRates`]: small (about
//! 130 bytes per session) and updated by whoever counts the traffic.

use std::sync::Mutex;

use crate::model::{Direction, RATE_WINDOW_SECONDS, SessionRates};

/// Buckets kept: the window plus the second in progress.
const BUCKETS: usize = RATE_WINDOW_SECONDS as usize + 1;

/// Traffic of one second, in 32 bits a field (a meter lives in every session handle, and
/// socklab holds tens of thousands of them; a second's count saturates at `u32::MAX`).
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Seconds since the session's start second; [`NO_SECOND`] when unused.
    second: u32,
    bytes_up: u32,
    bytes_down: u32,
    msgs_up: u32,
    msgs_down: u32,
}

/// The `second` of a bucket that holds nothing yet.
const NO_SECOND: u32 = u32::MAX;

/// Traffic per second over the last few seconds of one session.
#[derive(Debug)]
pub struct RateMeter {
    /// When the session started (Unix ms): a younger session averages over fewer seconds.
    started_ms: i64,
    buckets: Mutex<[Bucket; BUCKETS]>,
}

/// Adds `n` to a 32-bit count, stopping at its largest value.
fn add_to(count: &mut u32, n: usize) {
    *count = count.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}

impl RateMeter {
    /// A meter for a session that started at `started_ms`.
    pub fn new(started_ms: i64) -> RateMeter {
        RateMeter {
            started_ms,
            buckets: Mutex::new(
                [Bucket {
                    second: NO_SECOND,
                    ..Bucket::default()
                }; BUCKETS],
            ),
        }
    }

    /// Adds one message of `len` bytes going `direction` at `now_ms`.
    pub fn add(&self, direction: Direction, len: usize, now_ms: i64) {
        let second = self.second_of(now_ms);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = &mut buckets[second as usize % BUCKETS];
        if b.second != second {
            *b = Bucket {
                second,
                ..Bucket::default()
            };
        }
        match direction {
            Direction::Up => {
                add_to(&mut b.bytes_up, len);
                add_to(&mut b.msgs_up, 1);
            }
            Direction::Down => {
                add_to(&mut b.bytes_down, len);
                add_to(&mut b.msgs_down, 1);
            }
        }
    }

    /// The second of `now_ms`, counted from the session's start second (a clock that went
    /// back counts as the start second).
    fn second_of(&self, now_ms: i64) -> u32 {
        let since = now_ms.div_euclid(1000) - self.started_ms.div_euclid(1000);
        u32::try_from(since.max(0)).unwrap_or(NO_SECOND - 1)
    }

    /// The rates over the complete seconds before `now_ms`.
    pub fn rates(&self, now_ms: i64) -> SessionRates {
        let now = i64::from(self.second_of(now_ms));
        let window = now.clamp(1, RATE_WINDOW_SECONDS);
        let buckets = *self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut sum = [0u64; 4];
        for b in buckets.iter().filter(|b| {
            let second = i64::from(b.second);
            b.second != NO_SECOND && second < now && second >= now - window
        }) {
            sum[0] += u64::from(b.bytes_up);
            sum[1] += u64::from(b.bytes_down);
            sum[2] += u64::from(b.msgs_up);
            sum[3] += u64::from(b.msgs_down);
        }
        let per_s = |n: u64| n as f64 / window as f64;
        SessionRates {
            bytes_up_per_s: per_s(sum[0]),
            bytes_down_per_s: per_s(sum[1]),
            msgs_up_per_s: per_s(sum[2]),
            msgs_down_per_s: per_s(sum[3]),
            window_s: window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Complete seconds count, the second in progress does not, old seconds fall out.
    #[test]
    fn averages_complete_seconds_of_the_window() {
        let m = RateMeter::new(0);
        for s in 0..10 {
            m.add(Direction::Up, 100, s * 1000 + 10);
            m.add(Direction::Down, 7, s * 1000 + 20);
        }
        let r = m.rates(9_500);
        assert_eq!(r.window_s, 5);
        assert_eq!(r.bytes_up_per_s, 100.0);
        assert_eq!(r.msgs_up_per_s, 1.0);
        assert_eq!(r.bytes_down_per_s, 7.0);
        // Silence: the old seconds leave the window.
        assert_eq!(m.rates(30_000).bytes_up_per_s, 0.0);
    }

    /// A second's count stops at the largest 32-bit value instead of wrapping.
    #[test]
    fn counts_saturate() {
        let m = RateMeter::new(1_000);
        m.add(Direction::Up, usize::MAX, 1_000);
        m.add(Direction::Up, 10, 1_500);
        let r = m.rates(2_000);
        assert_eq!(r.bytes_up_per_s, f64::from(u32::MAX));
        assert_eq!(r.msgs_up_per_s, 2.0);
    }

    /// A session one second old is averaged over one second, not five.
    #[test]
    fn young_sessions_average_over_their_age() {
        let m = RateMeter::new(5_000);
        m.add(Direction::Up, 500, 5_100);
        let r = m.rates(6_200);
        assert_eq!((r.window_s, r.bytes_up_per_s), (1, 500.0));
    }
}

//! A session's recent traffic in one-second buckets, read as [`SessionRates`]: small (a
//! few dozen bytes per session) and updated by whoever counts the traffic.

use std::sync::Mutex;

use crate::model::{Direction, RATE_WINDOW_SECONDS, SessionRates};

/// Buckets kept: the window plus the second in progress.
const BUCKETS: usize = RATE_WINDOW_SECONDS as usize + 1;

/// Traffic of one second.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    second: i64,
    bytes_up: u64,
    bytes_down: u64,
    msgs_up: u64,
    msgs_down: u64,
}

/// Traffic per second over the last few seconds of one session.
#[derive(Debug)]
pub struct RateMeter {
    /// When the session started (Unix ms): a younger session averages over fewer seconds.
    started_ms: i64,
    buckets: Mutex<[Bucket; BUCKETS]>,
}

impl RateMeter {
    /// A meter for a session that started at `started_ms`.
    pub fn new(started_ms: i64) -> RateMeter {
        RateMeter {
            started_ms,
            buckets: Mutex::new(
                [Bucket {
                    second: i64::MIN,
                    ..Bucket::default()
                }; BUCKETS],
            ),
        }
    }

    /// Adds one message of `len` bytes going `direction` at `now_ms`.
    pub fn add(&self, direction: Direction, len: usize, now_ms: i64) {
        let second = now_ms.div_euclid(1000);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = &mut buckets[second.rem_euclid(BUCKETS as i64) as usize];
        if b.second != second {
            *b = Bucket {
                second,
                ..Bucket::default()
            };
        }
        match direction {
            Direction::Up => {
                b.bytes_up += len as u64;
                b.msgs_up += 1;
            }
            Direction::Down => {
                b.bytes_down += len as u64;
                b.msgs_down += 1;
            }
        }
    }

    /// The rates over the complete seconds before `now_ms`.
    pub fn rates(&self, now_ms: i64) -> SessionRates {
        let now = now_ms.div_euclid(1000);
        let age = now - self.started_ms.div_euclid(1000);
        let window = age.clamp(1, RATE_WINDOW_SECONDS);
        let buckets = *self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut sum = Bucket::default();
        for b in buckets
            .iter()
            .filter(|b| b.second < now && b.second >= now - window)
        {
            sum.bytes_up += b.bytes_up;
            sum.bytes_down += b.bytes_down;
            sum.msgs_up += b.msgs_up;
            sum.msgs_down += b.msgs_down;
        }
        let per_s = |n: u64| n as f64 / window as f64;
        SessionRates {
            bytes_up_per_s: per_s(sum.bytes_up),
            bytes_down_per_s: per_s(sum.bytes_down),
            msgs_up_per_s: per_s(sum.msgs_up),
            msgs_down_per_s: per_s(sum.msgs_down),
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

    /// A session one second old is averaged over one second, not five.
    #[test]
    fn young_sessions_average_over_their_age() {
        let m = RateMeter::new(5_000);
        m.add(Direction::Up, 500, 5_100);
        let r = m.rates(6_200);
        assert_eq!((r.window_s, r.bytes_up_per_s), (1, 500.0));
    }
}

//! Backing off an attempt that keeps finding nothing, for the two shortcuts of a blocking
//! receive: the try with the GIL held (`fast`) and the spin before sleeping (`spin`). In a
//! request/response exchange both usually find no data yet, and then only add to each
//! round trip, so after a miss the next [`MISS_SKIPS`] receives skip the attempt, doubling
//! after each further miss up to [`MAX_MISS_SKIPS`]; an attempt that finds data starts
//! over.

use std::sync::atomic::{AtomicU8, Ordering};

/// Receives that skip the attempt after a miss (doubling per further miss).
const MISS_SKIPS: u8 = 8;

/// The most receives that skip the attempt between two tries.
const MAX_MISS_SKIPS: u8 = 128;

/// Whether a socket's next receive makes the attempt.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// Receives left that skip the attempt.
    skips: AtomicU8,
    /// How many receives the last miss skipped (0 after an attempt that found data).
    window: AtomicU8,
}

impl Backoff {
    /// Whether this receive makes the attempt; when not, counts one skip.
    pub(crate) fn should_try(&self) -> bool {
        if self.skips.load(Ordering::Relaxed) == 0 {
            return true;
        }
        self.skips.fetch_sub(1, Ordering::Relaxed);
        false
    }

    /// The attempt found data: keep making it.
    pub(crate) fn hit(&self) {
        self.window.store(0, Ordering::Relaxed);
    }

    /// The attempt found nothing: skip it for the next few receives, more after each miss.
    pub(crate) fn missed(&self) {
        let window = self.window.load(Ordering::Relaxed);
        let window = window.saturating_mul(2).clamp(MISS_SKIPS, MAX_MISS_SKIPS);
        self.window.store(window, Ordering::Relaxed);
        self.skips.store(window, Ordering::Relaxed);
    }

    /// Make the attempt again from the next receive on.
    pub(crate) fn retry(&self) {
        self.skips.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_back_off_and_a_hit_starts_over() {
        let b = Backoff::default();
        assert!(b.should_try(), "a new socket tries");
        b.missed();
        let skipped = (0..8).filter(|_| !b.should_try()).count();
        assert_eq!(skipped, 8);
        assert!(b.should_try());
        b.missed();
        assert!((0..16).all(|_| !b.should_try()), "the window doubles");
        for _ in 0..10 {
            b.missed();
        }
        assert!((0..128).all(|_| !b.should_try()), "capped at 128");
        assert!(b.should_try());
        b.missed();
        b.retry();
        assert!(b.should_try(), "retry tries at once");
        b.hit();
        b.missed();
        assert!((0..8).all(|_| !b.should_try()), "a hit resets the window");
    }
}

//! The short spin before a receive sleeps.
//!
//! In a request/response exchange on loopback the reply comes a few tens of microseconds
//! after the request, and a receive that goes to sleep for it pays the sleep and the
//! wake-up (a context switch, and on a virtual machine the idle CPU's exit) on every round
//! trip. So a blocking receive first retries the non-blocking syscall, with the GIL
//! released, for up to [`SPIN_BUDGET`], and sleeps only if nothing came. Between tries it
//! yields the CPU (`sched_yield`): when the peer (or another thread) is waiting for this
//! CPU it runs at once, and the exchange goes on without a sleep and a wake-up on either
//! side. Spinning with a pause instruction instead was measured slower here: it keeps the
//! peer off the CPU.
//!
//! Only receives of request/response sizes spin (at most [`SPIN_MAX_BYTES`]), and only
//! while it pays: a spin that finds nothing makes the next receives on the
//! socket sleep at once (8, doubling after every further miss up to 128), and only a wait
//! that ended within the budget anyway, or a spin that found data, turns spinning back on.
//! So an idle socket spins at most once per 128 receives, and never longer than the budget.
//! A spin watches `close()` and the deadline of a timed socket; signals and stop marks are
//! handled by the wait that follows (it is at most [`SPIN_BUDGET`] away).

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// Only receives of at most this many bytes spin: request/response sizes. A bulk reader
/// (`recv(65536)`) that spins while the stream flows was measured slower (its tries compete
/// with the sender for the socket) and gains nothing: its data is usually there already.
pub(crate) const SPIN_MAX_BYTES: usize = 4096;

/// The longest a receive retries before it sleeps.
pub(crate) const SPIN_BUDGET: Duration = Duration::from_micros(50);

/// Receives that sleep at once after a spin that found nothing (doubling per further miss).
const MISS_SKIPS: u8 = 8;

/// The most receives that sleep at once between two spins.
const MAX_MISS_SKIPS: u8 = 128;

/// Whether a socket's next receive spins: the adaptive state described in the module docs.
#[derive(Debug, Default)]
pub(crate) struct RecvSpin {
    /// Receives left that sleep without spinning.
    skips: AtomicU8,
    /// How many receives the last missed spin skipped (0 after a spin that found data).
    window: AtomicU8,
}

impl RecvSpin {
    /// Whether this receive should spin before it sleeps; when not, counts one skip.
    pub(crate) fn should_spin(&self) -> bool {
        if self.skips.load(Ordering::Relaxed) == 0 {
            return true;
        }
        self.skips.fetch_sub(1, Ordering::Relaxed);
        false
    }

    /// A spin found data: keep spinning.
    pub(crate) fn hit(&self) {
        self.window.store(0, Ordering::Relaxed);
    }

    /// A spin found nothing: sleep at once for the next few receives, more after each miss.
    pub(crate) fn missed(&self) {
        let window = self.window.load(Ordering::Relaxed);
        let window = window.saturating_mul(2).clamp(MISS_SKIPS, MAX_MISS_SKIPS);
        self.window.store(window, Ordering::Relaxed);
        self.skips.store(window, Ordering::Relaxed);
    }

    /// A receive that did not spin got its data after `waited`: if a spin would have
    /// caught it, spin from the next receive on.
    pub(crate) fn waited(&self, waited: Duration) {
        if waited <= SPIN_BUDGET {
            self.skips.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_back_off_and_short_waits_turn_spinning_back_on() {
        let spin = RecvSpin::default();
        assert!(spin.should_spin(), "a new socket tries");
        spin.missed();
        let skipped = (0..8).filter(|_| !spin.should_spin()).count();
        assert_eq!(skipped, 8);
        assert!(spin.should_spin());
        spin.missed();
        assert!((0..16).all(|_| !spin.should_spin()), "the window doubles");
        for _ in 0..10 {
            spin.missed();
        }
        assert!((0..128).all(|_| !spin.should_spin()), "capped at 128");
        assert!(spin.should_spin());
        spin.missed();
        spin.waited(Duration::from_millis(5));
        assert!(!spin.should_spin(), "a long wait keeps sleeping");
        spin.waited(Duration::from_micros(10));
        assert!(spin.should_spin(), "a short wait spins again");
        spin.hit();
        spin.missed();
        assert!(
            (0..8).all(|_| !spin.should_spin()),
            "a hit resets the window"
        );
    }
}

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
//! while it pays: a spin that finds nothing makes the next receives on the socket sleep
//! at once (the socket's spin [`Backoff`]: 8, doubling after every further miss up to
//! 128), and only a wait that ended within the budget anyway ([`after_wait`]), or a spin
//! that found data, turns spinning back on. So an idle socket spins at most once per 128
//! receives, and never longer than the budget.
//! A spin watches `close()` and the deadline of a timed socket; signals and stop marks are
//! handled by the wait that follows (it is at most [`SPIN_BUDGET`] away).

use std::time::Duration;

use super::backoff::Backoff;

/// Only receives of at most this many bytes spin: request/response sizes. A bulk reader
/// (`recv(65536)`) that spins while the stream flows was measured slower (its tries compete
/// with the sender for the socket) and gains nothing: its data is usually there already.
pub(crate) const SPIN_MAX_BYTES: usize = 4096;

/// The longest a receive retries before it sleeps.
pub(crate) const SPIN_BUDGET: Duration = Duration::from_micros(50);

/// A receive that did not spin got its data after `waited`: if a spin would have caught
/// it, spin from the next receive on.
pub(crate) fn after_wait(spin: &Backoff, waited: Duration) {
    if waited <= SPIN_BUDGET {
        spin.retry();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wait_a_spin_would_have_covered_turns_spinning_back_on() {
        let spin = Backoff::default();
        spin.missed();
        after_wait(&spin, Duration::from_millis(5));
        assert!(!spin.should_try(), "a long wait keeps sleeping");
        after_wait(&spin, Duration::from_micros(10));
        assert!(spin.should_try(), "a short wait spins again");
    }
}

//! The read turn: one stream read at a time per socket, as on the device.
//!
//! Two threads reading one stream at once would each get part of the bytes, and a
//! `readline` that refills the buffer while another thread also refills it splices lines
//! together or loses them. The device's stream reads run one at a time per socket, so here
//! every stream read (`recv`, `recvfrom`, `read`, `readinto`, `readline`) first takes the
//! socket's [`ReadTurn`]. The turn is re-entrant for the thread that holds it, so a
//! `readline` can hold it across its refills, and waiting for it never holds the GIL (the
//! binding waits detached), honours the socket's timeout and runs the caller's checkpoint
//! between slices, so Ctrl-C and `close()` end the wait.

use crate::error::{Error, Result, errno};
use crate::interrupt::{Checkpoint, Waiter, current_thread_ident};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

/// The per-socket read turn.
#[derive(Debug, Default)]
pub(crate) struct ReadGate {
    /// The thread holding the turn (`pthread_self`), 0 when free.
    owner: AtomicU64,
    /// How many times the owner took the turn (only the owner changes it).
    depth: AtomicU32,
    /// Threads waiting for the turn; the release notifies only when there are some.
    waiters: AtomicU32,
    /// Guards the sleep so a release cannot slip between a waiter's check and its wait.
    lock: Mutex<()>,
    /// Signalled when the turn is freed.
    freed: Condvar,
}

/// Proof that the calling thread holds a socket's read turn; dropping it gives it back.
#[derive(Debug)]
pub struct ReadTurn<'a> {
    gate: &'a ReadGate,
}

impl ReadGate {
    /// Takes the turn if it is free or already ours; never waits.
    pub(crate) fn try_take(&self) -> Option<ReadTurn<'_>> {
        let me = current_thread_ident();
        let owner = self.owner.load(Ordering::Acquire);
        if owner == me {
            self.depth.fetch_add(1, Ordering::Relaxed);
            return Some(ReadTurn { gate: self });
        }
        if owner == 0
            && self
                .owner
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.depth.store(1, Ordering::Relaxed);
            return Some(ReadTurn { gate: self });
        }
        None
    }

    /// Takes the turn, waiting (per `w`) while another thread holds it.
    ///
    /// `nonblocking`: a busy turn is `OSError(11)` at once. Timed out: `OSError(110)`.
    /// `closed()` true: `OSError(9)`. Between wait slices the checkpoint runs.
    pub(crate) fn take(
        &self,
        w: &Waiter,
        nonblocking: bool,
        closed: &dyn Fn() -> bool,
        check: Checkpoint<'_>,
    ) -> Result<ReadTurn<'_>> {
        if let Some(turn) = self.try_take() {
            return Ok(turn);
        }
        if nonblocking {
            return Err(Error::Os(errno::EAGAIN));
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let r = self.wait_for_turn(w, closed, check);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        r.map(|()| ReadTurn { gate: self })
    }

    fn wait_for_turn(
        &self,
        w: &Waiter,
        closed: &dyn Fn() -> bool,
        check: Checkpoint<'_>,
    ) -> Result<()> {
        let me = current_thread_ident();
        loop {
            {
                let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                if self
                    .owner
                    .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    self.depth.store(1, Ordering::Relaxed);
                    return Ok(());
                }
                if closed() {
                    return Err(Error::Os(errno::EBADF));
                }
                let slice = w.next_slice()?;
                drop(self.freed.wait_timeout(guard, slice));
            }
            w.between_slices(false, check)?;
        }
    }

    fn give_back(&self) {
        if self.depth.fetch_sub(1, Ordering::Relaxed) != 1 {
            return;
        }
        self.owner.store(0, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.freed.notify_one();
        }
    }
}

impl Drop for ReadTurn<'_> {
    fn drop(&mut self) {
        self.gate.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_turn_is_reentrant_and_exclusive() {
        let gate = Arc::new(ReadGate::default());
        let outer = gate.try_take().expect("free");
        let inner = gate.try_take().expect("re-entrant for the owner");
        let g2 = Arc::clone(&gate);
        let other = std::thread::spawn(move || g2.try_take().is_some());
        assert!(!other.join().unwrap(), "another thread must not get it");
        drop(inner);
        let g2 = Arc::clone(&gate);
        let waiter = std::thread::spawn(move || {
            let w = Waiter::new(Some(Duration::from_secs(5)));
            g2.take(&w, false, &|| false, &mut || Ok(())).map(drop)
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(outer);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }

    #[test]
    fn waiting_for_a_busy_turn_times_out_or_fails_fast() {
        let gate = Arc::new(ReadGate::default());
        let _held = gate.try_take().unwrap();
        let g2 = Arc::clone(&gate);
        let r = std::thread::spawn(move || {
            let nb = g2
                .take(&Waiter::new(None), true, &|| false, &mut || Ok(()))
                .map(drop);
            let w = Waiter::new(Some(Duration::from_millis(30)));
            let timed = g2.take(&w, false, &|| false, &mut || Ok(())).map(drop);
            let closed = g2
                .take(&Waiter::new(None), false, &|| true, &mut || Ok(()))
                .map(drop);
            (nb, timed, closed)
        })
        .join()
        .unwrap();
        assert_eq!(
            r,
            (
                Err(Error::Os(errno::EAGAIN)),
                Err(Error::Os(errno::ETIMEDOUT)),
                Err(Error::Os(errno::EBADF))
            )
        );
    }
}

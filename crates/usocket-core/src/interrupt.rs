//! How blocking waits end early: 100 ms slices, the caller's checkpoint between slices,
//! deadlines for timed sockets, and per-thread stop marks.
//!
//! A blocking call never sleeps in the kernel for longer than [`SLICE`]. Between slices
//! it checks the calling thread's stop mark and runs the caller's [`Checkpoint`] (the
//! Python binding re-attaches there and runs the signal handlers, so Ctrl-C works).
//!
//! A timed wait skips the checkpoint where it could only make the timeout late: once the
//! deadline has passed (the call ends with `OSError(110)` at once) and in the last slice
//! before it, unless a signal interrupted that slice. Re-attaching means waiting for the
//! GIL, which under load takes milliseconds; the call returns within one slice anyway, and
//! Python runs pending signal handlers itself as soon as it does.

use crate::error::{Error, Result, errno};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest single kernel wait of any blocking call.
pub const SLICE: Duration = Duration::from_millis(100);

/// Run between wait slices; an `Err` ends the blocking call with that error (normally
/// [`Error::Interrupted`], the caller keeping the reason).
pub type Checkpoint<'a> = &'a mut dyn FnMut() -> Result<()>;

/// The deadline of one socket operation, shared by the syscalls that make it up (a
/// `send` that loops, a `readline` that refills), so the timeout covers the whole call.
#[derive(Debug, Clone, Copy)]
pub struct Waiter {
    /// `None` waits forever; `Some` ends the operation with `OSError(110)` at that instant.
    deadline: Option<Instant>,
}

impl Waiter {
    /// A waiter for a call starting now with `timeout` (`None`: no limit).
    pub fn new(timeout: Option<Duration>) -> Waiter {
        Waiter {
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
        }
    }

    /// What runs between two slices of a wait with this deadline: the thread's stop mark,
    /// `OSError(110)` once the deadline has passed, then the caller's checkpoint, except
    /// in the last slice before the deadline when no signal `interrupted` the slice just
    /// ended (see the module docs).
    pub fn between_slices(&self, interrupted: bool, check: Checkpoint<'_>) -> Result<()> {
        check_thread_stop()?;
        if let (false, Some(deadline)) = (interrupted, self.deadline) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Os(errno::ETIMEDOUT));
            }
            if left <= SLICE {
                return Ok(());
            }
        }
        check()
    }

    /// Whether this waiter has a deadline.
    pub fn is_timed(&self) -> bool {
        self.deadline.is_some()
    }

    /// How long the next kernel wait may last: at most [`SLICE`], at most the time left.
    /// `Err(OSError(110))` once the deadline has passed.
    pub fn next_slice(&self) -> Result<Duration> {
        match self.deadline {
            None => Ok(SLICE),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(Error::Os(errno::ETIMEDOUT))
                } else {
                    Ok(left.min(SLICE))
                }
            }
        }
    }
}

/// Set while any thread has a stop mark, so the common case costs one atomic load.
static ANY_STOP: AtomicBool = AtomicBool::new(false);
/// The marked threads, by `pthread_self()` (equal to Python's `threading.get_ident()`).
static STOP_MARKS: Mutex<Option<HashSet<u64>>> = Mutex::new(None);

/// The calling thread's identifier as `threading.get_ident()` reports it on Linux.
pub fn current_thread_ident() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as u64 }
}

/// Marks thread `ident`: its blocking usocket calls end within one slice with
/// [`Error::ThreadStopped`], now and later, until [`clear_thread_stop`].
pub fn request_thread_stop(ident: u64) {
    let mut marks = STOP_MARKS.lock().unwrap_or_else(|e| e.into_inner());
    marks.get_or_insert_with(HashSet::new).insert(ident);
    ANY_STOP.store(true, Ordering::SeqCst);
}

/// Removes thread `ident`'s stop mark (no-op when it has none).
pub fn clear_thread_stop(ident: u64) {
    let mut marks = STOP_MARKS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(set) = marks.as_mut() {
        set.remove(&ident);
        ANY_STOP.store(!set.is_empty(), Ordering::SeqCst);
    }
}

/// `Err(ThreadStopped)` when the calling thread is marked.
pub fn check_thread_stop() -> Result<()> {
    if !ANY_STOP.load(Ordering::Relaxed) {
        return Ok(());
    }
    let me = current_thread_ident();
    let marks = STOP_MARKS.lock().unwrap_or_else(|e| e.into_inner());
    match marks.as_ref() {
        Some(set) if set.contains(&me) => Err(Error::ThreadStopped),
        _ => Ok(()),
    }
}

/// What runs between slices: the stop mark first, then the caller's checkpoint.
pub(crate) fn between_slices(check: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    check_thread_stop()?;
    check()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_never_exceed_100ms_or_the_time_left() {
        assert_eq!(Waiter::new(None).next_slice(), Ok(SLICE));
        let short = Waiter::new(Some(Duration::from_millis(30)));
        assert!(short.next_slice().unwrap() <= Duration::from_millis(30));
        let long = Waiter::new(Some(Duration::from_secs(5)));
        assert_eq!(long.next_slice(), Ok(SLICE));
        let expired = Waiter::new(Some(Duration::ZERO));
        assert_eq!(expired.next_slice(), Err(Error::Os(110)));
    }

    #[test]
    fn timed_waits_skip_the_checkpoint_near_and_past_the_deadline() {
        let mut calls = 0;
        let mut check = || -> Result<()> {
            calls += 1;
            Ok(())
        };
        Waiter::new(None).between_slices(false, &mut check).unwrap();
        Waiter::new(Some(Duration::from_secs(5)))
            .between_slices(false, &mut check)
            .unwrap();
        let last = Waiter::new(Some(Duration::from_millis(50)));
        last.between_slices(false, &mut check).unwrap();
        last.between_slices(true, &mut check).unwrap(); // a signal: run it now
        let expired = Waiter::new(Some(Duration::ZERO));
        assert_eq!(
            expired.between_slices(false, &mut check),
            Err(Error::Os(110))
        );
        assert_eq!(calls, 3);
    }

    #[test]
    fn stop_marks_are_per_thread() {
        let me = current_thread_ident();
        assert_eq!(check_thread_stop(), Ok(()));
        request_thread_stop(me);
        assert_eq!(check_thread_stop(), Err(Error::ThreadStopped));
        let other = std::thread::spawn(check_thread_stop).join().unwrap();
        assert_eq!(other, Ok(()));
        clear_thread_stop(me);
        assert_eq!(check_thread_stop(), Ok(()));
    }
}

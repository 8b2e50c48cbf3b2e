//! The socket's descriptor, safe to close from another thread.
//!
//! `close()` must wake a thread blocked in `recv`/`accept`/`connect` on the same socket
//! without the classic fd-reuse race (closing a descriptor another thread is about to use,
//! which may by then name a different file). So every call holds a [`Guard`] (an in-flight
//! count) while it uses the descriptor; `close()` marks the handle closed and shuts down the
//! *receiving* side only (`shutdown(SHUT_RD)`), and the real `close(2)` runs when the last
//! guard drops.
//!
//! Why `SHUT_RD`: it wakes every waiter on the socket (a blocked `recv` returns 0, `accept`
//! and a pending `connect` fail, a `poll` reports the socket readable) for TCP, UDP,
//! listening and connecting sockets alike, and it sends nothing: no FIN, no RST. So what
//! reaches the peer is decided by `close(2)` alone and the socket's options: an orderly FIN,
//! or with `SO_LINGER` on and a zero time, a RST only (the peer's next read fails with
//! ECONNRESET). `SHUT_RDWR` would send a FIN first and turn an abort into a clean EOF.

use crate::error::{Error, Result, errno};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Handles created and not yet closed (or dropped), process-wide.
static OPEN_HANDLES: AtomicUsize = AtomicUsize::new(0);

/// How many handles are open.
pub(crate) fn open_handles() -> usize {
    OPEN_HANDLES.load(Ordering::Relaxed)
}

/// An owned descriptor with an in-flight count and a deferred close.
#[derive(Debug)]
pub(crate) struct Handle {
    /// The OS descriptor; valid until `released` is set.
    fd: RawFd,
    /// Set by `close()`: new calls fail with EBADF, running ones stop at their next check.
    closed: AtomicBool,
    /// Calls currently using `fd`; `close(2)` waits for this to reach zero.
    inflight: AtomicUsize,
    /// Set once `close(2)` has run, so it runs exactly once.
    released: AtomicBool,
}

/// Proof that a call may use the descriptor; dropping it may perform a deferred close.
pub(crate) struct Guard<'a> {
    handle: &'a Handle,
}

impl Handle {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: RawFd) -> Handle {
        OPEN_HANDLES.fetch_add(1, Ordering::Relaxed);
        Handle {
            fd,
            closed: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            released: AtomicBool::new(false),
        }
    }

    /// Enters a call: `Err(OSError(9))` if the socket is closed.
    pub(crate) fn enter(&self) -> Result<Guard<'_>> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let guard = Guard { handle: self };
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Os(errno::EBADF));
        }
        Ok(guard)
    }

    /// Whether `close()` has been called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The descriptor, or -1 after `close()`.
    pub(crate) fn raw(&self) -> RawFd {
        if self.is_closed() { -1 } else { self.fd }
    }

    /// Closes the socket: idempotent; wakes blocked calls without sending anything;
    /// `close(2)` (which sends the FIN, or the RST of a zero linger) once none is inside.
    pub(crate) fn close(&self) {
        // Hold a guard so a call leaving meanwhile cannot release the fd under shutdown().
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let _guard = Guard { handle: self };
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        OPEN_HANDLES.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: fd is still open (released only after inflight reaches zero, and we hold
        // one). ENOTCONN from an unconnected socket is expected and ignored (the waiters
        // are woken all the same).
        unsafe { libc::shutdown(self.fd, libc::SHUT_RD) };
    }

    fn release_if_idle(&self) {
        if self.inflight.load(Ordering::SeqCst) == 0
            && self.closed.load(Ordering::SeqCst)
            && !self.released.swap(true, Ordering::SeqCst)
        {
            // SAFETY: no call holds a guard and none can enter (closed is set), so nobody
            // uses fd any more; `released` makes this the only close.
            unsafe { libc::close(self.fd) };
        }
    }
}

impl Guard<'_> {
    /// The descriptor, valid while the guard lives.
    pub(crate) fn fd(&self) -> RawFd {
        self.handle.fd
    }

    /// Whether `close()` was called while this call was running.
    pub(crate) fn closed(&self) -> bool {
        self.handle.is_closed()
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.handle.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.handle.release_if_idle();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::SeqCst) {
            OPEN_HANDLES.fetch_sub(1, Ordering::Relaxed);
        }
        if !self.released.swap(true, Ordering::SeqCst) {
            // SAFETY: we own fd and nothing else can use it once the handle is dropped.
            unsafe { libc::close(self.fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only queries the descriptor table.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    #[test]
    fn close_is_deferred_until_the_last_call_leaves_and_drop_closes() {
        // SAFETY: plain socket(2) call; the handle takes ownership of the result.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0);
        let handle = Handle::new(fd);
        let guard = handle.enter().unwrap();
        handle.close();
        assert!(guard.closed() && handle.raw() == -1);
        assert!(is_open(fd), "a call in flight keeps the descriptor");
        assert_eq!(handle.enter().err(), Some(Error::Os(errno::EBADF)));
        drop(guard);
        assert!(!is_open(fd), "the last call out closes it");
        handle.close(); // idempotent

        // (Same test, so no parallel test can reuse the descriptor number in between.)
        // SAFETY: as above.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
        drop(Handle::new(fd));
        assert!(!is_open(fd));
    }
}

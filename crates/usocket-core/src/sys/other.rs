//! The side of [`crate::sys`] for Unix systems other than Linux (macOS, the BSDs):
//! close-on-exec with `fcntl`, no SIGPIPE through `SO_NOSIGPIPE` (Apple) or
//! `MSG_NOSIGNAL`, and no TCP state query: `tcp_state` reports `ENOPROTOOPT`, so
//! `getsocketsta()` falls back to the state estimated from what the socket has seen.

use super::{Errno, cvt};
use socket2::SockAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The send flag that keeps a write to a reset connection from raising SIGPIPE (Apple
/// has none: sockets get `SO_NOSIGPIPE` at creation instead).
#[cfg(target_vendor = "apple")]
pub(crate) const NOSIGNAL: i32 = 0;
/// The send flag that keeps a write to a reset connection from raising SIGPIPE.
#[cfg(not(target_vendor = "apple"))]
pub(crate) const NOSIGNAL: i32 = libc::MSG_NOSIGNAL;

/// The TCP-level option that sets keepalive's idle time in seconds.
pub(crate) fn keepalive_idle_option() -> i32 {
    #[cfg(target_vendor = "apple")]
    return libc::TCP_KEEPALIVE;
    #[cfg(not(target_vendor = "apple"))]
    return libc::TCP_KEEPIDLE;
}

/// Marks `fd` close-on-exec (and, on Apple systems, never-SIGPIPE); closes it on failure.
fn prepare(fd: RawFd) -> Result<RawFd, Errno> {
    let setup = || -> Result<(), Errno> {
        // SAFETY: fcntl on a descriptor we own.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
        #[cfg(target_vendor = "apple")]
        super::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
        Ok(())
    };
    setup().inspect_err(|_| {
        // SAFETY: fd is ours and not yet handed out.
        unsafe { libc::close(fd) };
    })?;
    Ok(fd)
}

/// `socket(2)`, then close-on-exec.
pub(crate) fn socket(domain: i32, kind: i32, proto: i32) -> Result<RawFd, Errno> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::socket(domain, kind, proto) })?;
    prepare(fd)
}

/// `accept(2)`, then close-on-exec; the peer address comes back with the descriptor.
pub(crate) fn accept(fd: RawFd) -> Result<(OwnedFd, SockAddr), Errno> {
    let mut newfd = -1;
    // SAFETY: try_init hands us storage and a length for the kernel to fill.
    let (_, addr) = unsafe {
        SockAddr::try_init(
            |storage, len| match cvt(libc::accept(fd, storage.cast(), len)) {
                Ok(got) => {
                    newfd = got;
                    Ok(())
                }
                Err(e) => Err(std::io::Error::from_raw_os_error(e)),
            },
        )
    }
    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    let newfd = prepare(newfd)?;
    // SAFETY: accept succeeded, so newfd is a fresh descriptor we now own.
    Ok((unsafe { OwnedFd::from_raw_fd(newfd) }, addr))
}

/// No portable TCP state query here: always `ENOPROTOOPT` (the caller estimates).
pub(crate) fn tcp_state(_fd: RawFd) -> Result<u8, Errno> {
    Err(libc::ENOPROTOOPT)
}

/// `poll(2)` on `fds` for at most `wait`, rounded up to the next millisecond (so a timed
/// wait never ends before its deadline and never spins). Returns how many descriptors
/// have events; EINTR is an error.
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], wait: Duration) -> Result<usize, Errno> {
    let ms = wait.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
    // SAFETY: fds is a valid, writable pollfd array of fds.len() entries.
    let n = cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) })?;
    Ok(n as usize)
}

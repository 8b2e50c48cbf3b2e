//! The Linux (and Android) side of [`crate::sys`]: close-on-exec at creation, `accept4`,
//! `MSG_NOSIGNAL`, the kernel's TCP state (`TCP_INFO`), `TCP_KEEPIDLE` and `ppoll`.

use super::{Errno, cvt};
use socket2::SockAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The send flag that keeps a write to a reset connection from raising SIGPIPE.
pub(crate) const NOSIGNAL: i32 = libc::MSG_NOSIGNAL;

/// The TCP-level option that sets keepalive's idle time in seconds.
pub(crate) fn keepalive_idle_option() -> i32 {
    libc::TCP_KEEPIDLE
}

/// `socket(2)` with close-on-exec.
pub(crate) fn socket(domain: i32, kind: i32, proto: i32) -> Result<RawFd, Errno> {
    // SAFETY: plain syscall with integer arguments.
    cvt(unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, proto) })
}

/// `accept4(2)` with close-on-exec; the peer address comes back with the descriptor.
pub(crate) fn accept(fd: RawFd) -> Result<(OwnedFd, SockAddr), Errno> {
    let mut newfd = -1;
    // SAFETY: try_init hands us storage and a length for the kernel to fill.
    let (_, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            match cvt(libc::accept4(fd, storage.cast(), len, libc::SOCK_CLOEXEC)) {
                Ok(got) => {
                    newfd = got;
                    Ok(())
                }
                Err(e) => Err(std::io::Error::from_raw_os_error(e)),
            }
        })
    }
    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    // SAFETY: accept4 succeeded, so newfd is a fresh descriptor we now own.
    Ok((unsafe { OwnedFd::from_raw_fd(newfd) }, addr))
}

/// The kernel's TCP state (`tcpi_state` of `TCP_INFO`), Linux numbering.
pub(crate) fn tcp_state(fd: RawFd) -> Result<u8, Errno> {
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: info/len describe a writable tcp_info.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    })?;
    Ok(info.tcpi_state)
}

/// `ppoll(2)` on `fds` for at most `wait`, to the nanosecond: a timed wait ends at its
/// deadline, not up to a millisecond after it (or, rounded down, a millisecond early and
/// then once more). Returns how many descriptors have events; EINTR is an error.
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], wait: Duration) -> Result<usize, Errno> {
    let timeout = libc::timespec {
        tv_sec: wait.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: wait.subsec_nanos() as _,
    };
    // SAFETY: fds is a valid, writable pollfd array of fds.len() entries; timeout is a
    // valid timespec; a null signal mask leaves the thread's mask alone.
    let n = cvt(unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &timeout,
            std::ptr::null(),
        )
    })?;
    Ok(n as usize)
}

//! Thin `libc` wrappers: each maps to one syscall, and [`cvt`] is the one place where a
//! `-1` return becomes an errno.
//!
//! # Porting
//!
//! Everything here is POSIX except what differs between systems, which lives in one
//! module per platform: `linux` (Linux and Android: `SOCK_CLOEXEC`, `accept4`,
//! `MSG_NOSIGNAL`, `TCP_INFO`, `TCP_KEEPIDLE`, `ppoll` for waits to the nanosecond) and
//! `other` (macOS and the BSDs: `fcntl` for close-on-exec, `SO_NOSIGPIPE` or
//! `MSG_NOSIGNAL`, no TCP state query, so `getsocketsta()` estimates the state from what
//! the socket has seen, and `poll` rounded up to the millisecond). Porting to
//! another Unix means filling in those few functions. Windows has no `libc` sockets: a
//! port there replaces this module (and the descriptor type in `fd`) with Winsock calls.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::{NOSIGNAL, accept, keepalive_idle_option, poll_fds, socket, tcp_state};

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod other;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use other::{NOSIGNAL, accept, keepalive_idle_option, poll_fds, socket, tcp_state};

use socket2::SockAddr;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::time::Duration;

/// The raw OS errno of a failed syscall.
pub(crate) type Errno = i32;

pub(crate) fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Turns a syscall's `-1` into `Err(errno)`.
pub(crate) fn cvt<T: PartialEq + From<i8>>(ret: T) -> Result<T, Errno> {
    if ret == T::from(-1) {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

/// `recv(2)` into possibly uninitialised memory.
pub(crate) fn recv(fd: RawFd, buf: &mut [MaybeUninit<u8>], flags: i32) -> Result<usize, Errno> {
    // SAFETY: buf is valid for writes of buf.len() bytes; recv only writes.
    let n = cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })?;
    Ok(n as usize)
}

/// `recvfrom(2)`; the address is `None` when the kernel reports none (connected TCP).
pub(crate) fn recvfrom(
    fd: RawFd,
    buf: &mut [MaybeUninit<u8>],
    flags: i32,
) -> Result<(usize, Option<SockAddr>), Errno> {
    let mut n = 0usize;
    // SAFETY: try_init hands us storage and a length for the kernel to fill.
    let (_, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let ret = libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
                storage.cast(),
                len,
            );
            match cvt(ret) {
                Ok(got) => {
                    n = got as usize;
                    Ok(())
                }
                Err(e) => Err(std::io::Error::from_raw_os_error(e)),
            }
        })
    }
    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    let addr = if addr.len() == 0 { None } else { Some(addr) };
    Ok((n, addr))
}

/// `send(2)`; never raises SIGPIPE.
pub(crate) fn send(fd: RawFd, data: &[u8], flags: i32) -> Result<usize, Errno> {
    // SAFETY: data is valid for reads of data.len() bytes.
    let n = cvt(unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags | NOSIGNAL) })?;
    Ok(n as usize)
}

/// `sendto(2)`; never raises SIGPIPE.
pub(crate) fn sendto(fd: RawFd, data: &[u8], flags: i32, addr: &SockAddr) -> Result<usize, Errno> {
    // SAFETY: data and addr are valid for reads of their lengths.
    let n = cvt(unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            flags | NOSIGNAL,
            addr.as_ptr().cast(),
            addr.len(),
        )
    })?;
    Ok(n as usize)
}

/// `connect(2)`.
pub(crate) fn connect(fd: RawFd, addr: &SockAddr) -> Result<(), Errno> {
    // SAFETY: addr is a valid sockaddr of addr.len() bytes.
    cvt(unsafe { libc::connect(fd, addr.as_ptr().cast(), addr.len()) }).map(drop)
}

/// `bind(2)`.
pub(crate) fn bind(fd: RawFd, addr: &SockAddr) -> Result<(), Errno> {
    // SAFETY: addr is a valid sockaddr of addr.len() bytes.
    cvt(unsafe { libc::bind(fd, addr.as_ptr().cast(), addr.len()) }).map(drop)
}

/// `listen(2)`.
pub(crate) fn listen(fd: RawFd, backlog: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    cvt(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// `getpeername(2)`.
pub(crate) fn peer_addr(fd: RawFd) -> Result<SockAddr, Errno> {
    // SAFETY: try_init hands us storage and a length for the kernel to fill.
    unsafe {
        SockAddr::try_init(|storage, len| {
            cvt(libc::getpeername(fd, storage.cast(), len))
                .map(drop)
                .map_err(std::io::Error::from_raw_os_error)
        })
    }
    .map(|(_, a)| a)
    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

/// `setsockopt(2)` with a raw byte value.
pub(crate) fn setsockopt_bytes(
    fd: RawFd,
    level: i32,
    name: i32,
    value: &[u8],
) -> Result<(), Errno> {
    // SAFETY: value is valid for reads of value.len() bytes.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `setsockopt(2)` with an `int` value.
pub(crate) fn setsockopt_int(fd: RawFd, level: i32, name: i32, value: i32) -> Result<(), Errno> {
    setsockopt_bytes(fd, level, name, &value.to_ne_bytes())
}

/// `getsockopt(2)` of an `int` option.
pub(crate) fn getsockopt_int(fd: RawFd, level: i32, name: i32) -> Result<i32, Errno> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value/len describe a writable int.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// Sets `SO_RCVTIMEO` and `SO_SNDTIMEO`, which bound each blocking syscall to one slice.
pub(crate) fn set_kernel_timeouts(fd: RawFd, slice: Duration) -> Result<(), Errno> {
    let tv = libc::timeval {
        tv_sec: slice.as_secs() as libc::time_t,
        tv_usec: slice.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: a timeval is plain old data; viewing it as bytes is sound.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&tv as *const libc::timeval).cast::<u8>(),
            std::mem::size_of::<libc::timeval>(),
        )
    };
    setsockopt_bytes(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, bytes)?;
    setsockopt_bytes(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, bytes)
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> Result<(), Errno> {
    // SAFETY: fcntl on a descriptor we hold.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// `poll(2)` on several descriptors (negative ones are skipped), at most `wait`; fills in
/// each `revents`. EINTR is an error, like [`poll_one`].
pub(crate) fn poll_many(fds: &mut [libc::pollfd], wait: Duration) -> Result<usize, Errno> {
    poll_fds(fds, wait)
}

/// `poll(2)` on one descriptor for `events`, at most `wait`; returns the revents (0 on
/// timeout). EINTR comes back as an error so the caller can run its checkpoint.
pub(crate) fn poll_one(fd: RawFd, events: i16, wait: Duration) -> Result<i16, Errno> {
    let mut pfd = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    poll_fds(&mut pfd, wait)?;
    Ok(pfd[0].revents)
}

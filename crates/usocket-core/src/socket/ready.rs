//! Waiting for any of several sockets to become readable, for the device's "socket
//! readable" callback (`setsockopt(SOL_SOCKET, 20, callback)`), whose dispatcher lives in
//! the binding.

use super::Socket;
use crate::sys;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What makes a socket readable for the callback: data, a FIN, an incoming connection, a
/// datagram, or a pending error (the read will raise it). A fresh, unconnected TCP socket
/// (which Linux reports as hung up) is not readable, as on lwIP.
const READABLE: i16 = libc::POLLIN | libc::POLLERR;

/// Waits until at least one of `sockets` is readable, `wake` is readable, or `timeout`
/// passes; returns which sockets are readable (closed ones never are). Bytes `readline`
/// buffered count as readable, so the callback also fires for lines already read ahead.
/// The caller drains `wake`. Nothing is read from the sockets: the callback reads itself.
pub fn wait_readable(sockets: &[&Socket], wake: RawFd, timeout: Duration) -> Vec<bool> {
    let guards: Vec<_> = sockets.iter().map(|s| s.handle.enter().ok()).collect();
    let mut ready: Vec<bool> = sockets
        .iter()
        .zip(&guards)
        .map(|(s, g)| g.is_some() && s.has_buffered_bytes())
        .collect();
    let mut fds: Vec<libc::pollfd> = guards
        .iter()
        .map(|g| libc::pollfd {
            fd: g.as_ref().map_or(-1, |g| g.fd()),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    fds.push(libc::pollfd {
        fd: wake,
        events: libc::POLLIN,
        revents: 0,
    });
    let wait = if ready.contains(&true) {
        Duration::ZERO
    } else {
        timeout
    };
    if sys::poll_many(&mut fds, wait).is_ok() {
        for (r, p) in ready.iter_mut().zip(&fds) {
            *r |= p.fd >= 0 && p.revents & READABLE != 0;
        }
    }
    ready
}

impl Socket {
    /// Whether `readline` holds bytes read ahead that no read has returned yet.
    pub(crate) fn has_buffered_bytes(&self) -> bool {
        self.maybe_buffered.load(Ordering::Acquire)
            && !self
                .rbuf
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }
}

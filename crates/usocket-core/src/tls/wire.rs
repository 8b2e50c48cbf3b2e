//! Moving bytes between rustls and the socket: feeding received ciphertext, flushing what
//! rustls queued (straight to the kernel when it takes it), reading more from the socket,
//! and `pull`, the one step every read method is built from.

use super::codes;
use super::stream::{Pull, Rx, TlsStream, Tx, lock};
use crate::error::{Error, Result, errno};
use crate::interrupt::{self, Checkpoint, Waiter};
use crate::socket::{Mode, Socket};
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;

/// Sends without waiting through the socket: what `write_tls` writes to when it can.
struct DirectSend<'a> {
    sock: &'a Socket,
    /// A failure other than would-block, kept for the caller.
    err: Option<Error>,
}

impl Write for DirectSend<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.sock.send(buf, libc::MSG_DONTWAIT, &mut || Ok(())) {
            Ok(n) => Ok(n),
            Err(Error::Os(errno::EAGAIN)) => Err(std::io::ErrorKind::WouldBlock.into()),
            Err(e) => {
                self.err = Some(e);
                Err(std::io::Error::other("send failed"))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: MaybeUninit<u8> has u8's layout, and recv only ever writes initialised bytes.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

impl TlsStream {
    /// Runs `process_new_packets`; on a protocol error the alert rustls queued is sent
    /// (best effort) and the error comes back as the device's code.
    pub(super) fn process(&self, conn: &mut rustls::Connection) -> Result<()> {
        conn.process_new_packets()
            .map(|_| ())
            .map_err(|e| codes::from_rustls(&e, self.server_side))
    }

    /// Gives rustls the buffered ciphertext (as much as it takes) and, at the end of the
    /// stream, tells it so.
    pub(super) fn feed(&self, conn: &mut rustls::Connection, rx: &mut Rx) -> Result<()> {
        while rx.start < rx.end {
            match conn.read_tls(&mut &rx.cipher[rx.start..rx.end]) {
                Ok(0) | Err(_) => break, // rustls is full: plaintext must be read first
                Ok(k) => {
                    rx.start += k;
                    self.process(conn)?;
                }
            }
        }
        if rx.eof && rx.start == rx.end {
            let _ = conn.read_tls(&mut &[][..]);
            self.process(conn)?;
        }
        Ok(())
    }

    /// Sends the alert a failed connection queued, without waiting, then returns `err`.
    pub(super) fn fail(&self, sock: &Socket, err: Error) -> Error {
        if let Ok(mut tx) = self.tx.try_lock() {
            let mut conn = lock(&self.conn);
            while conn.wants_write() {
                if conn.write_tls(&mut tx.out).is_err() {
                    break;
                }
            }
            drop(conn);
            if tx.pos < tx.out.len() {
                let pos = tx.pos;
                let _ = sock.send(&tx.out[pos..], libc::MSG_DONTWAIT, &mut || Ok(()));
            }
            tx.out.clear();
            tx.pos = 0;
        }
        err
    }

    /// Sends everything rustls has queued. Timeout: `OSError(110)` at the deadline, what
    /// was not sent stays queued; non-blocking: `OSError(11)` when the socket is full.
    pub(super) fn flush(
        &self,
        sock: &Socket,
        tx: &mut Tx,
        w: &Waiter,
        check: Checkpoint<'_>,
    ) -> Result<()> {
        loop {
            if tx.pos == tx.out.len() {
                tx.out.clear();
                tx.pos = 0;
                let mut conn = lock(&self.conn);
                // Straight from rustls to the kernel while the socket takes it (no copy,
                // never waits under the lock); what it does not take is copied out and
                // sent below under the socket's mode.
                let mut direct = DirectSend { sock, err: None };
                while conn.wants_write() {
                    match conn.write_tls(&mut direct) {
                        Ok(_) => {}
                        Err(_) => match direct.err.take() {
                            None => break, // would block
                            Some(e) => return Err(e),
                        },
                    }
                }
                while conn.wants_write() {
                    conn.write_tls(&mut tx.out)
                        .map_err(|_| Error::Os(errno::ENOMEM))?;
                }
                if tx.out.is_empty() {
                    return Ok(());
                }
            }
            let pos = tx.pos;
            let n = sock.send(&tx.out[pos..], 0, check)?;
            tx.pos += n;
            if tx.pos < tx.out.len() {
                if sock.mode() == Mode::NonBlocking {
                    return Err(Error::Os(errno::EAGAIN));
                }
                w.next_slice()?;
            }
        }
    }

    /// Reads ciphertext from the socket into `rx`. `Ok(false)` at the end of the stream
    /// (the socket's FIN rule result, 107 or 0 bytes, both mean the peer closed).
    pub(super) fn fill(&self, sock: &Socket, rx: &mut Rx, check: Checkpoint<'_>) -> Result<bool> {
        if rx.start > 0 {
            rx.cipher.copy_within(rx.start..rx.end, 0);
            rx.end -= rx.start;
            rx.start = 0;
        }
        let end = rx.end;
        if end == rx.cipher.len() {
            return Err(Error::Os(codes::INVALID_RECORD)); // rustls refused a full buffer
        }
        match sock.recv(as_uninit(&mut rx.cipher[end..]), 0, check) {
            Ok(0) | Err(Error::Os(errno::ENOTCONN)) => {
                self.check_open(sock)?;
                rx.eof = true;
                Ok(false)
            }
            Ok(n) => {
                rx.end += n;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Waits (in slices) until the descriptor is ready, for the handshake of a
    /// non-blocking socket, which always completes before `wrap_socket` returns.
    pub(super) fn wait_ready(
        &self,
        sock: &Socket,
        events: i16,
        check: Checkpoint<'_>,
    ) -> Result<()> {
        self.check_open(sock)?;
        let _ = crate::sys::poll_one(sock.fileno(), events, interrupt::SLICE);
        self.check_open(sock)?;
        interrupt::between_slices(check)
    }

    /// One step of getting plaintext into `out` (not empty): what rustls already holds,
    /// else ciphertext from the socket. Drives the handshake when it is not done.
    pub(super) fn pull(
        &self,
        sock: &Socket,
        rx: &mut Rx,
        out: &mut [u8],
        w: &Waiter,
        check: Checkpoint<'_>,
    ) -> Result<Pull> {
        loop {
            let wants_write;
            {
                let mut conn = lock(&self.conn);
                if let Err(e) = self.feed(&mut conn, rx) {
                    drop(conn);
                    return Err(self.fail(sock, e));
                }
                match conn.reader().read(out) {
                    Ok(0) => return Ok(Pull::Eof),
                    Ok(n) => return Ok(Pull::Data(n)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return Ok(Pull::Eof), // TCP FIN without close_notify
                }
                if !conn.is_handshaking() {
                    self.handshaken.store(true, Ordering::Release);
                }
                wants_write = conn.wants_write();
            }
            if wants_write {
                let mut tx = lock(&self.tx);
                match self.flush(sock, &mut tx, w, check) {
                    Ok(()) | Err(Error::Os(errno::EAGAIN)) => {}
                    Err(e) => return Err(e),
                }
            }
            if rx.eof {
                return Ok(Pull::Eof);
            }
            w.next_slice()?;
            match self.fill(sock, rx, check) {
                Ok(_) => {}
                Err(Error::Os(errno::EAGAIN)) => return Ok(Pull::WouldBlock),
                Err(e) => return Err(e),
            }
        }
    }
}

//! [`TlsStream`]: one TLS connection over a [`Socket`], driven through the socket's own
//! `recv`/`send` so every wait follows the socket's mode (blocking, timeout, non-blocking),
//! releases nothing it should not, and ends with `OSError(9)` when another thread closes
//! the socket.
//!
//! # Locking
//!
//! A reader and a writer may run at the same time (a thread blocked in `read` while the
//! main thread writes is the usual device pattern). So the rustls state sits behind a lock
//! that is only held for in-memory work (decrypting, encrypting), never across a wait.
//! Readers serialise on `rx` (which owns the received ciphertext), writers on `tx` (which
//! owns encrypted bytes not yet sent). The order is always `rx`, then `tx`, then `conn`.

use super::codes;
use super::config::TlsConfig;
use crate::error::{Error, Result, errno};
use crate::interrupt::{self, Checkpoint, Waiter};
use crate::profile;
use crate::socket::{Mode, ReadOutcome, Socket};
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Ciphertext asked of the kernel per `recv` (several full TLS records).
const RECV_BYTES: usize = 64 * 1024;
/// Plaintext encrypted per send (bounds the memory one large `write` takes).
const SEND_CHUNK: usize = 256 * 1024;
/// How often a writer looks whether a reader thread finished the handshake.
const HANDSHAKE_POLL: std::time::Duration = std::time::Duration::from_millis(2);
/// Room added per step when reading to the end of the stream or refilling `readline`.
const READ_STEP: usize = 16 * 1024;

/// What one attempt to get plaintext gave.
enum Pull {
    /// Bytes copied into the caller's buffer.
    Data(usize),
    /// The peer ended the stream (close_notify or TCP FIN).
    Eof,
    /// Non-blocking socket with nothing decryptable yet.
    WouldBlock,
}

/// The receive side: ciphertext read from the socket but not yet handed to rustls, and
/// plaintext that `readline` read past the end of a line.
struct Rx {
    /// Ciphertext storage; `start..end` is not yet given to rustls.
    cipher: Box<[u8]>,
    start: usize,
    end: usize,
    /// The socket has reported the end of the stream.
    eof: bool,
    /// Plaintext read ahead by `readline`; `line_pos..` is unconsumed.
    line: Vec<u8>,
    line_pos: usize,
}

/// The send side: encrypted bytes; `pos..` has not been sent yet.
struct Tx {
    out: Vec<u8>,
    pos: usize,
}

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

/// One TLS connection (client or server) over a socket the caller passes to every call.
pub struct TlsStream {
    /// The rustls state; locked only for in-memory work.
    conn: Mutex<rustls::Connection>,
    rx: Mutex<Rx>,
    tx: Mutex<Tx>,
    /// Which side we are (selects handshake error codes).
    server_side: bool,
    /// Set once the handshake has completed.
    handshaken: AtomicBool,
    /// The FIN rule's memory: the first read after the end raised `OSError(107)`.
    fin_seen: AtomicBool,
    /// `close()` was called.
    closed: AtomicBool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("server_side", &self.server_side)
            .field("handshaken", &self.handshaken)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Maps a non-blocking "nothing yet" on a stream method to the profile's result.
fn would_block<T>() -> Result<ReadOutcome<T>> {
    if profile::current().streams_raise_eagain() {
        Err(Error::Os(errno::EAGAIN))
    } else {
        Ok(ReadOutcome::WouldBlock)
    }
}

fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: MaybeUninit<u8> has u8's layout, and recv only ever writes initialised bytes.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

impl TlsStream {
    /// A connection in its initial state; nothing is sent until [`handshake`](Self::handshake)
    /// or the first read or write.
    pub fn new(config: TlsConfig) -> Result<TlsStream> {
        let (mut conn, server_side): (rustls::Connection, bool) = match config {
            TlsConfig::Client(cfg, name) => (
                rustls::ClientConnection::new(cfg, name)
                    .map_err(|e| codes::from_rustls(&e, false))?
                    .into(),
                false,
            ),
            TlsConfig::Server(cfg) => (
                rustls::ServerConnection::new(cfg)
                    .map_err(|e| codes::from_rustls(&e, true))?
                    .into(),
                true,
            ),
        };
        conn.set_buffer_limit(None);
        Ok(TlsStream {
            conn: Mutex::new(conn),
            rx: Mutex::new(Rx {
                cipher: vec![0; RECV_BYTES].into_boxed_slice(),
                start: 0,
                end: 0,
                eof: false,
                line: Vec::new(),
                line_pos: 0,
            }),
            tx: Mutex::new(Tx {
                out: Vec::new(),
                pos: 0,
            }),
            server_side,
            handshaken: AtomicBool::new(false),
            fin_seen: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }

    fn check_open(&self, sock: &Socket) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) || sock.is_closed() {
            return Err(Error::Os(errno::EBADF));
        }
        Ok(())
    }

    /// Whether the handshake has completed.
    pub fn is_handshaken(&self) -> bool {
        self.handshaken.load(Ordering::Acquire)
    }

    /// The peer's certificate in DER form (after the handshake; `None` if it sent none).
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        let conn = lock(&self.conn);
        conn.peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.as_ref().to_vec())
    }

    /// The negotiated protocol version, e.g. `"TLSv1.2"` (after the handshake).
    pub fn protocol_version(&self) -> Option<&'static str> {
        let conn = lock(&self.conn);
        conn.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        })
    }

    /// Runs `process_new_packets`; on a protocol error the alert rustls queued is sent
    /// (best effort) and the error comes back as the device's code.
    fn process(&self, conn: &mut rustls::Connection) -> Result<()> {
        conn.process_new_packets()
            .map(|_| ())
            .map_err(|e| codes::from_rustls(&e, self.server_side))
    }

    /// Gives rustls the buffered ciphertext (as much as it takes) and, at the end of the
    /// stream, tells it so.
    fn feed(&self, conn: &mut rustls::Connection, rx: &mut Rx) -> Result<()> {
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
    fn fail(&self, sock: &Socket, err: Error) -> Error {
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
    fn flush(&self, sock: &Socket, tx: &mut Tx, w: &Waiter, check: Checkpoint<'_>) -> Result<()> {
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
    fn fill(&self, sock: &Socket, rx: &mut Rx, check: Checkpoint<'_>) -> Result<bool> {
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
    fn wait_ready(&self, sock: &Socket, events: i16, check: Checkpoint<'_>) -> Result<()> {
        self.check_open(sock)?;
        let _ = crate::sys::poll_one(sock.fileno(), events, interrupt::SLICE);
        self.check_open(sock)?;
        interrupt::between_slices(check)
    }

    /// One step of getting plaintext into `out` (not empty): what rustls already holds,
    /// else ciphertext from the socket. Drives the handshake when it is not done.
    fn pull(
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

    /// Completes the handshake (a no-op once done), whatever the socket's mode: a
    /// non-blocking socket is waited on, as the device's `wrap_socket` does.
    pub fn handshake(&self, sock: &Socket, check: Checkpoint<'_>) -> Result<()> {
        if self.is_handshaken() {
            return Ok(());
        }
        self.check_open(sock)?;
        let w = sock.waiter();
        // A reader thread may hold `rx` while it drives the handshake (do_handshake=False):
        // wait for it to finish rather than for its read, which may never end.
        let mut rx = loop {
            match self.rx.try_lock() {
                Ok(guard) => break guard,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    std::thread::sleep(HANDSHAKE_POLL);
                    if self.is_handshaken() {
                        return Ok(());
                    }
                    self.check_open(sock)?;
                    w.next_slice()?;
                    interrupt::between_slices(check)?;
                }
            }
        };
        loop {
            let (handshaking, wants_write) = {
                let mut conn = lock(&self.conn);
                if let Err(e) = self.feed(&mut conn, &mut rx) {
                    drop(conn);
                    return Err(self.fail(sock, e));
                }
                (conn.is_handshaking(), conn.wants_write())
            };
            if wants_write {
                let mut tx = lock(&self.tx);
                match self.flush(sock, &mut tx, &w, check) {
                    Ok(()) => {}
                    Err(Error::Os(errno::EAGAIN)) => {
                        drop(tx);
                        self.wait_ready(sock, libc::POLLOUT, check)?;
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
            if !handshaking {
                self.handshaken.store(true, Ordering::Release);
                return Ok(());
            }
            if rx.eof {
                return Err(Error::Os(if profile::current().fin_raises() {
                    errno::ENOTCONN
                } else {
                    codes::CONN_EOF
                }));
            }
            w.next_slice()?;
            match self.fill(sock, &mut rx, check) {
                Ok(_) => {}
                Err(Error::Os(errno::EAGAIN)) => self.wait_ready(sock, libc::POLLIN, check)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// The FIN rule when a read finds the end of the stream with nothing read: the first
    /// time `OSError(107)` in device profiles, afterwards (and in micropython) empty.
    fn on_eof(&self, sock: &Socket) -> Result<()> {
        self.check_open(sock)?;
        if !self.fin_seen.swap(true, Ordering::SeqCst) && profile::current().fin_raises() {
            return Err(Error::Os(errno::ENOTCONN));
        }
        Ok(())
    }

    /// Copies plaintext `readline` read ahead into `out`; returns how much.
    fn take_line_buffer(rx: &mut Rx, out: &mut [u8]) -> usize {
        let avail = &rx.line[rx.line_pos..];
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        rx.line_pos += n;
        if rx.line_pos == rx.line.len() {
            rx.line.clear();
            rx.line_pos = 0;
        }
        n
    }

    /// `recv(n)` into `buf`: waits for at least one byte. End of stream: the FIN rule, then
    /// 0. Non-blocking with nothing decrypted: `OSError(11)`.
    pub fn recv(&self, sock: &Socket, buf: &mut [u8], check: Checkpoint<'_>) -> Result<usize> {
        self.check_open(sock)?;
        let mut rx = lock(&self.rx);
        let got = Self::take_line_buffer(&mut rx, buf);
        if got > 0 || buf.is_empty() {
            return Ok(got);
        }
        let w = sock.waiter();
        match self.pull(sock, &mut rx, buf, &w, check)? {
            Pull::Data(n) => Ok(n),
            Pull::Eof => self.on_eof(sock).map(|()| 0),
            Pull::WouldBlock => Err(Error::Os(errno::EAGAIN)),
        }
    }

    /// `read(n)`/`readinto(buf)`: fills `buf` unless the stream ends, a timeout expires
    /// after some data, or (non-blocking) nothing more is decryptable; the plain socket's
    /// rules for each case.
    pub fn read_into(
        &self,
        sock: &Socket,
        buf: &mut [u8],
        check: Checkpoint<'_>,
    ) -> Result<ReadOutcome<usize>> {
        self.check_open(sock)?;
        let mut rx = lock(&self.rx);
        let mut got = Self::take_line_buffer(&mut rx, buf);
        let w = sock.waiter();
        while got < buf.len() {
            match self.pull(sock, &mut rx, &mut buf[got..], &w, check) {
                Ok(Pull::Data(n)) => got += n,
                Ok(Pull::Eof) => {
                    if got == 0 {
                        self.on_eof(sock)?;
                    }
                    break;
                }
                Ok(Pull::WouldBlock) if got == 0 => return would_block(),
                Ok(Pull::WouldBlock) => break,
                Err(Error::Os(errno::ETIMEDOUT)) if got > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(ReadOutcome::Data(got))
    }

    /// `read()`: everything until the end of the stream (see [`read_into`](Self::read_into)
    /// for timeouts and non-blocking sockets).
    pub fn read_to_end(
        &self,
        sock: &Socket,
        check: Checkpoint<'_>,
    ) -> Result<ReadOutcome<Vec<u8>>> {
        self.check_open(sock)?;
        let mut rx = lock(&self.rx);
        let pos = rx.line_pos;
        let mut out = rx.line.split_off(pos);
        rx.line.clear();
        rx.line_pos = 0;
        let w = sock.waiter();
        loop {
            let len = out.len();
            out.resize(len + READ_STEP, 0);
            let r = self.pull(sock, &mut rx, &mut out[len..], &w, check);
            let got = match &r {
                Ok(Pull::Data(n)) => *n,
                _ => 0,
            };
            out.truncate(len + got);
            match r {
                Ok(Pull::Data(_)) => {}
                Ok(Pull::Eof) => {
                    if out.is_empty() {
                        self.on_eof(sock)?;
                    }
                    break;
                }
                Ok(Pull::WouldBlock) if out.is_empty() => return would_block(),
                Ok(Pull::WouldBlock) => break,
                Err(Error::Os(errno::ETIMEDOUT)) if !out.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(ReadOutcome::Data(out))
    }

    /// `readline([limit])`: through `\n`, or `limit` bytes, or what is left at the end.
    pub fn readline(
        &self,
        sock: &Socket,
        limit: Option<usize>,
        check: Checkpoint<'_>,
    ) -> Result<ReadOutcome<Vec<u8>>> {
        self.check_open(sock)?;
        let mut rx = lock(&self.rx);
        let w = sock.waiter();
        let mut scanned = 0;
        loop {
            let avail = &rx.line[rx.line_pos..];
            let window = limit.map_or(avail, |l| &avail[..avail.len().min(l)]);
            let found = match window[scanned.min(window.len())..]
                .iter()
                .position(|&b| b == b'\n')
            {
                Some(i) => Some(scanned + i + 1),
                None if limit.is_some_and(|l| avail.len() >= l) => limit,
                None => None,
            };
            scanned = window.len();
            if let Some(n) = found {
                let line = avail[..n].to_vec();
                rx.line_pos += n;
                return Ok(ReadOutcome::Data(line));
            }
            if rx.line_pos > 0 {
                let pos = rx.line_pos;
                rx.line.drain(..pos);
                rx.line_pos = 0;
            }
            let len = rx.line.len();
            let mut room = std::mem::take(&mut rx.line);
            room.resize(len + READ_STEP, 0);
            let r = self.pull(sock, &mut rx, &mut room[len..], &w, check);
            let got = match &r {
                Ok(Pull::Data(n)) => *n,
                _ => 0,
            };
            room.truncate(len + got);
            rx.line = room;
            let rest = |rx: &mut Rx| {
                let pos = rx.line_pos;
                let v = rx.line.split_off(pos);
                rx.line.clear();
                rx.line_pos = 0;
                v
            };
            match r {
                Ok(Pull::Data(_)) => {}
                Ok(Pull::Eof) => {
                    if rx.line.is_empty() {
                        self.on_eof(sock)?;
                    }
                    return Ok(ReadOutcome::Data(rest(&mut rx)));
                }
                Ok(Pull::WouldBlock) if rx.line.is_empty() => return would_block(),
                Ok(Pull::WouldBlock) => return Ok(ReadOutcome::Data(rest(&mut rx))),
                Err(Error::Os(errno::ETIMEDOUT)) if !rx.line.is_empty() => {
                    return Ok(ReadOutcome::Data(rest(&mut rx)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `write(data)`/`send(data)`: encrypts and sends; returns how many plaintext bytes
    /// were taken. Blocking sends everything. At a timeout (or, non-blocking, a full
    /// socket) the record in progress stays queued and goes out first on the next call;
    /// `None` when nothing could be taken (the socket's send rules: 110 or would-block).
    pub fn write(
        &self,
        sock: &Socket,
        data: &[u8],
        check: Checkpoint<'_>,
    ) -> Result<Option<usize>> {
        self.check_open(sock)?;
        self.handshake(sock, check)?;
        let w = sock.waiter();
        let mut tx = lock(&self.tx);
        match self.flush(sock, &mut tx, &w, check) {
            Ok(()) => {}
            Err(Error::Os(errno::EAGAIN)) => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut done = 0;
        while done < data.len() {
            let chunk = &data[done..data.len().min(done + SEND_CHUNK)];
            lock(&self.conn)
                .writer()
                .write_all(chunk)
                .map_err(|_| Error::Os(errno::ENOMEM))?;
            done += chunk.len();
            match self.flush(sock, &mut tx, &w, check) {
                Ok(()) => {}
                Err(Error::Os(errno::EAGAIN | errno::ETIMEDOUT)) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Some(done))
    }

    /// `close()`: sends close_notify when that cannot block, then closes the socket (which
    /// wakes any thread blocked on it with `OSError(9)`). Idempotent.
    pub fn close(&self, sock: &Socket) {
        if !self.closed.swap(true, Ordering::SeqCst)
            && self.is_handshaken()
            && !sock.is_closed()
            && let Ok(mut tx) = self.tx.try_lock()
        {
            {
                let mut conn = lock(&self.conn);
                conn.send_close_notify();
                let mut alert = Vec::new();
                while conn.wants_write() {
                    if conn.write_tls(&mut alert).is_err() {
                        break;
                    }
                }
                drop(conn);
                let pos = tx.pos;
                let mut pending = tx.out.split_off(pos);
                pending.extend_from_slice(&alert);
                tx.out.clear();
                tx.pos = 0;
                if !pending.is_empty() {
                    let _ = sock.send(&pending, libc::MSG_DONTWAIT, &mut || Ok(()));
                }
            }
        }
        sock.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_buffer_is_consumed_first() {
        let mut rx = Rx {
            cipher: vec![0; 4].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            line: b"abcdef".to_vec(),
            line_pos: 2,
        };
        let mut out = [0u8; 3];
        assert_eq!(TlsStream::take_line_buffer(&mut rx, &mut out), 3);
        assert_eq!(&out, b"cde");
        assert_eq!(TlsStream::take_line_buffer(&mut rx, &mut out), 1);
        assert!(rx.line.is_empty() && rx.line_pos == 0);
    }

    use crate::tls::TlsOptions;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use std::os::fd::BorrowedFd;

    /// A CA and a certificate for `localhost` it issued, as PEM.
    struct Pki {
        ca: String,
        cert: String,
        key: String,
    }

    fn pki() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        Pki {
            ca: ca.pem(),
            cert: leaf.pem(),
            key: key.serialize_pem(),
        }
    }

    fn no_check() -> impl FnMut() -> Result<()> {
        || Ok(())
    }

    /// A connected (client, server) pair of engine sockets on loopback.
    fn socket_pair() -> (Socket, Socket) {
        let listener = Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
        listener.bind("127.0.0.1", 0, &mut no_check()).unwrap();
        listener.listen(1).unwrap();
        // SAFETY: the listener's descriptor stays open for this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(listener.fileno()) };
        let port = socket2::SockRef::from(&fd)
            .local_addr()
            .unwrap()
            .as_socket()
            .unwrap()
            .port();
        let client = Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
        client.connect("127.0.0.1", port, &mut no_check()).unwrap();
        let (server, _) = listener.accept(&mut no_check()).unwrap();
        (client, server)
    }

    fn server_stream(pki: &Pki) -> TlsStream {
        let options = TlsOptions {
            server_side: true,
            key: Some(pki.key.clone().into_bytes()),
            cert: Some(pki.cert.clone().into_bytes()),
            ..TlsOptions::default()
        };
        TlsStream::new(options.build().unwrap()).unwrap()
    }

    #[test]
    fn verified_echo_then_close_notify_and_the_fin_rule() {
        let pki = pki();
        let (client_sock, server_sock) = socket_pair();
        let server = server_stream(&pki);
        let peer = std::thread::spawn(move || {
            let mut buf = [0u8; 5];
            let got = server.read_into(&server_sock, &mut buf, &mut no_check());
            assert_eq!(got, Ok(ReadOutcome::Data(5)));
            let sent = server.write(&server_sock, &buf, &mut no_check());
            assert_eq!(sent, Ok(Some(5)));
            server.close(&server_sock);
        });
        let options = TlsOptions {
            ca: Some(pki.ca.clone().into_bytes()),
            server_hostname: Some("localhost".into()),
            ..TlsOptions::default()
        };
        let client = TlsStream::new(options.build().unwrap()).unwrap();
        client.handshake(&client_sock, &mut no_check()).unwrap();
        assert_eq!(client.protocol_version(), Some("TLSv1.2"));
        assert!(client.peer_certificate().is_some());
        assert_eq!(
            client.write(&client_sock, b"hello", &mut no_check()),
            Ok(Some(5))
        );
        let line = client.readline(&client_sock, None, &mut no_check());
        assert_eq!(line, Ok(ReadOutcome::Data(b"hello".to_vec())));
        peer.join().unwrap();
        // After close_notify: 107 once in the default (device) profile, then empty.
        let mut buf = [0u8; 4];
        assert_eq!(
            client.recv(&client_sock, &mut buf, &mut no_check()),
            Err(Error::Os(errno::ENOTCONN))
        );
        assert_eq!(client.recv(&client_sock, &mut buf, &mut no_check()), Ok(0));
        client.close(&client_sock);
        assert_eq!(
            client.recv(&client_sock, &mut buf, &mut no_check()),
            Err(Error::Os(errno::EBADF))
        );
    }

    #[test]
    fn a_wrong_host_name_fails_verification_with_the_device_code() {
        let pki = pki();
        let (client_sock, server_sock) = socket_pair();
        let server = server_stream(&pki);
        let peer = std::thread::spawn(move || {
            let _ = server.handshake(&server_sock, &mut no_check());
            server_sock.close();
        });
        let options = TlsOptions {
            ca: Some(pki.ca.clone().into_bytes()),
            server_hostname: Some("elsewhere.example".into()),
            ..TlsOptions::default()
        };
        let client = TlsStream::new(options.build().unwrap()).unwrap();
        assert_eq!(
            client.handshake(&client_sock, &mut no_check()),
            Err(Error::Os(codes::CERT_VERIFY_FAILED))
        );
        peer.join().unwrap();
    }
}

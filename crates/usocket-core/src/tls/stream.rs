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
//!
//! This file holds the state, the handshake, `write` and `close`; `wire` moves bytes
//! between rustls and the socket, `reads` has the read methods.

use super::codes;
use super::config::TlsConfig;
use crate::error::{Error, Result, errno};
use crate::interrupt::{self, Checkpoint};
use crate::profile;
use crate::socket::Socket;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Ciphertext asked of the kernel per `recv` (several full TLS records).
const RECV_BYTES: usize = 64 * 1024;
/// Plaintext encrypted per send (bounds the memory one large `write` takes).
const SEND_CHUNK: usize = 256 * 1024;
/// How often a writer looks whether a reader thread finished the handshake.
const HANDSHAKE_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// What one attempt to get plaintext gave.
pub(super) enum Pull {
    /// Bytes copied into the caller's buffer.
    Data(usize),
    /// The peer ended the stream (close_notify or TCP FIN).
    Eof,
    /// Non-blocking socket with nothing decryptable yet.
    WouldBlock,
}

/// The receive side: ciphertext read from the socket but not yet handed to rustls, and
/// plaintext that `readline` read past the end of a line.
pub(super) struct Rx {
    /// Ciphertext storage; `start..end` is not yet given to rustls.
    pub(super) cipher: Box<[u8]>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// The socket has reported the end of the stream.
    pub(super) eof: bool,
    /// Plaintext read ahead by `readline`; `line_pos..` is unconsumed.
    pub(super) line: Vec<u8>,
    pub(super) line_pos: usize,
}

/// The send side: encrypted bytes; `pos..` has not been sent yet.
pub(super) struct Tx {
    pub(super) out: Vec<u8>,
    pub(super) pos: usize,
}

/// One TLS connection (client or server) over a socket the caller passes to every call.
pub struct TlsStream {
    /// The rustls state; locked only for in-memory work.
    pub(super) conn: Mutex<rustls::Connection>,
    pub(super) rx: Mutex<Rx>,
    pub(super) tx: Mutex<Tx>,
    /// Which side we are (selects handshake error codes).
    pub(super) server_side: bool,
    /// Set once the handshake has completed.
    pub(super) handshaken: AtomicBool,
    /// The FIN rule's memory: the first read after the end raised `OSError(107)`.
    pub(super) fin_seen: AtomicBool,
    /// `close()` was called.
    pub(super) closed: AtomicBool,
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

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

    pub(super) fn check_open(&self, sock: &Socket) -> Result<()> {
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

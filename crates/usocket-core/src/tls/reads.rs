//! The read methods of [`TlsStream`]: `recv`, `read`/`readinto`, `read()` to the end and
//! `readline`, with the plain socket's rules for the end of the stream (the FIN rule),
//! timeouts after partial data and non-blocking sockets.

use super::stream::{Pull, Rx, TlsStream, lock};
use crate::error::{Error, Result, errno};
use crate::interrupt::Checkpoint;
use crate::profile;
use crate::socket::{ReadOutcome, Socket};
use std::sync::atomic::Ordering;

/// Room added per step when reading to the end of the stream or refilling `readline`.
const READ_STEP: usize = 16 * 1024;

/// Maps a non-blocking "nothing yet" on a stream method to the profile's result.
fn would_block<T>() -> Result<ReadOutcome<T>> {
    if profile::current().streams_raise_eagain() {
        Err(Error::Os(errno::EAGAIN))
    } else {
        Ok(ReadOutcome::WouldBlock)
    }
}

impl TlsStream {
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
    pub(super) fn take_line_buffer(rx: &mut Rx, out: &mut [u8]) -> usize {
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
}

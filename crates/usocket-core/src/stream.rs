//! The socket's read buffer: bytes `readline` read past the end of a line, which every
//! later read (`recv`, `read`, `readinto`, `readline`) consumes before the kernel's.
//!
//! The device's `readline` reads one byte per call into lwIP; doing that through syscalls
//! would be far slower than CPython's buffered reader, so usocket-rs reads a chunk and keeps
//! the rest here. (As with CPython's `makefile()`, `select()` cannot see these bytes.)

use std::mem::MaybeUninit;

/// How much one refill asks the kernel for.
pub(crate) const FILL_BYTES: usize = 64 * 1024;

/// Bytes received but not yet returned to the script.
#[derive(Debug, Default)]
pub(crate) struct ReadBuf {
    /// Storage; bytes before `pos` are already consumed.
    data: Vec<u8>,
    /// Start of the unconsumed bytes (avoids shifting the vector on every line).
    pos: usize,
}

impl ReadBuf {
    /// Unconsumed bytes.
    pub(crate) fn available(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Whether nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }

    /// Marks `n` bytes consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.data.len());
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
        }
    }

    /// Copies up to `out.len()` bytes out, consuming them unless `peek`.
    pub(crate) fn copy_out(&mut self, out: &mut [MaybeUninit<u8>], peek: bool) -> usize {
        let avail = self.available();
        let n = avail.len().min(out.len());
        for (dst, src) in out[..n].iter_mut().zip(&avail[..n]) {
            dst.write(*src);
        }
        if !peek {
            self.consume(n);
        }
        n
    }

    /// The length of the first line (through `\n`) within `limit`, or `limit` itself when
    /// that many bytes are buffered without a newline.
    pub(crate) fn line_len(&self, limit: Option<usize>) -> Option<usize> {
        let avail = self.available();
        let window = limit.map_or(avail, |l| &avail[..avail.len().min(l)]);
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => Some(i + 1),
            None if limit.is_some_and(|l| avail.len() >= l) => limit,
            None => None,
        }
    }

    /// Spare room for a refill of up to [`FILL_BYTES`], compacting consumed bytes first.
    pub(crate) fn spare(&mut self) -> &mut [MaybeUninit<u8>] {
        if self.pos > 0 {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        self.data.reserve(FILL_BYTES);
        let room = FILL_BYTES.min(self.data.capacity() - self.data.len());
        &mut self.data.spare_capacity_mut()[..room]
    }

    /// Marks `n` bytes of the spare room as received.
    pub(crate) fn commit(&mut self, n: usize) {
        let new_len = self.data.len() + n;
        assert!(new_len <= self.data.capacity());
        // SAFETY: the kernel initialised n bytes of the spare capacity returned by spare().
        unsafe { self.data.set_len(new_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(bytes: &[u8]) -> ReadBuf {
        let mut b = ReadBuf::default();
        let spare = b.spare();
        for (d, s) in spare.iter_mut().zip(bytes) {
            d.write(*s);
        }
        b.commit(bytes.len());
        b
    }

    #[test]
    fn lines_and_limits() {
        let mut b = filled(b"ab\ncdef");
        assert_eq!(b.line_len(None), Some(3));
        assert_eq!(b.line_len(Some(2)), Some(2));
        b.consume(3);
        assert_eq!(b.line_len(None), None);
        assert_eq!(b.line_len(Some(4)), Some(4));
        assert_eq!(b.line_len(Some(5)), None);
        let mut out = [MaybeUninit::uninit(); 10];
        assert_eq!(b.copy_out(&mut out, true), 4);
        assert_eq!(b.copy_out(&mut out, false), 4);
        assert!(b.is_empty());
    }
}

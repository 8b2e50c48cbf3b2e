//! How a listener cuts what a device sends into the messages its auto-reply rules test.
//!
//! TCP is a byte stream: one `send` on the device can arrive in two reads, and two sends
//! can arrive in one. By default ([`Framing::Read`]) each read (a TCP chunk, or a UDP
//! datagram) is tested as it arrives, so a reply depends on how the network chunked the
//! data. [`Framing::Line`] and [`Framing::Delimiter`] collect bytes until the line end or
//! the delimiter and test each complete frame on its own, however it was chunked.
//!
//! A frame is tested without its line end or delimiter, so `exact:PING` answers `PING\r\n`.
//! A frame that grows past [`MAX_FRAME_BYTES`] without a delimiter is tested as it is and
//! collection starts again, so a device that never sends the delimiter cannot grow memory.
//! A UDP datagram is cut the same way, but a frame never spans two datagrams: what
//! follows the last delimiter in a datagram is a frame of its own.
//!
//! Only the rules see frames. Echo, history and the live views still see each read as it
//! arrived.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::rules::{RuleError, decode_hex, escape, unescape};

/// The longest frame collected while waiting for its line end or delimiter.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How incoming data is cut into frames for the auto-reply rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// Each read or datagram is one frame, as it arrived.
    #[default]
    Read,
    /// Frames end at `\n`; the `\n` and a `\r` before it are not part of the frame.
    Line,
    /// Frames end at these bytes (not part of the frame).
    Delimiter(Vec<u8>),
}

impl Framing {
    /// Parses `read`, `line` or `delim:TEXT` (TEXT understands `\r \n \t \0 \\ \xHH`).
    pub fn parse(text: &str) -> Result<Framing, RuleError> {
        match text.trim() {
            "read" => Ok(Framing::Read),
            "line" => Ok(Framing::Line),
            other => match other.strip_prefix("delim:") {
                Some(delim) => Framing::delimiter(unescape(delim)?),
                None => Err(RuleError::Invalid(format!(
                    "unknown framing {other:?} (use read, line or delim:TEXT)"
                ))),
            },
        }
    }

    /// Delimiter framing; the delimiter must be 1 to 16 bytes.
    pub fn delimiter(delim: Vec<u8>) -> Result<Framing, RuleError> {
        if delim.is_empty() || delim.len() > 16 {
            return Err(RuleError::Invalid(
                "a framing delimiter is 1 to 16 bytes".into(),
            ));
        }
        Ok(Framing::Delimiter(delim))
    }

    /// The delimiter bytes, for the delimiter form.
    pub fn delimiter_bytes(&self) -> Option<&[u8]> {
        match self {
            Framing::Delimiter(d) => Some(d),
            _ => None,
        }
    }

    /// The kind's name: `read`, `line` or `delimiter`.
    pub fn kind(&self) -> &'static str {
        match self {
            Framing::Read => "read",
            Framing::Line => "line",
            Framing::Delimiter(_) => "delimiter",
        }
    }
}

impl std::fmt::Display for Framing {
    /// The form [`Framing::parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Framing::Delimiter(d) => write!(f, "delim:{}", escape(d)),
            other => f.write_str(other.kind()),
        }
    }
}

/// The JSON shape of a framing, as the API lists and accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FramingSpec {
    /// `read`, `line` or `delimiter`.
    pub kind: String,
    /// The delimiter as hex digits (only with `delimiter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter_hex: Option<String>,
}

impl FramingSpec {
    /// The JSON shape of `framing`.
    pub fn of(framing: &Framing) -> FramingSpec {
        FramingSpec {
            kind: framing.kind().to_string(),
            delimiter_hex: framing.delimiter_bytes().map(hex::encode),
        }
    }

    /// Validates the shape into a framing. Errors are user-facing messages.
    pub fn to_framing(&self) -> Result<Framing, RuleError> {
        match (self.kind.as_str(), &self.delimiter_hex) {
            ("read", None) => Ok(Framing::Read),
            ("line", None) => Ok(Framing::Line),
            ("delimiter", Some(hex)) => Framing::delimiter(decode_hex(hex)?),
            ("delimiter", None) => Err(RuleError::Invalid(
                "delimiter framing needs delimiter_hex".into(),
            )),
            ("read" | "line", Some(_)) => Err(RuleError::Invalid(
                "delimiter_hex goes only with kind delimiter".into(),
            )),
            (other, _) => Err(RuleError::Invalid(format!(
                "unknown framing kind {other:?} (use read, line or delimiter)"
            ))),
        }
    }
}

/// The part of a frame collected so far on one connection.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    /// Bytes after the last delimiter (empty and unallocated when nothing waits).
    pending: BytesMut,
    /// The framing `pending` was collected under: a change of framing starts afresh.
    framing: Framing,
}

impl FrameBuffer {
    /// Cuts one read from a TCP stream into the frames it completes, keeping the rest
    /// for the next read.
    pub fn push(&mut self, framing: &Framing, data: &Bytes) -> Vec<Bytes> {
        if *framing != self.framing {
            self.pending = BytesMut::new();
            self.framing = framing.clone();
        }
        let Some(delim) = end_of_frame(framing) else {
            return vec![data.clone()];
        };
        let mut frames = Vec::new();
        self.pending.extend_from_slice(data);
        // Only the new bytes (plus a delimiter's length before them) can hold a delimiter.
        let mut from = self.pending.len() - data.len();
        from = from.saturating_sub(delim.len() - 1);
        while let Some(at) = find(&self.pending[from..], delim) {
            let end = from + at;
            let frame = self.pending.split_to(end + delim.len()).freeze();
            frames.push(trim_frame(framing, frame.slice(..end)));
            from = 0;
        }
        while self.pending.len() > MAX_FRAME_BYTES {
            frames.push(self.pending.split_to(MAX_FRAME_BYTES).freeze());
        }
        if self.pending.is_empty() {
            self.pending = BytesMut::new();
        }
        frames
    }
}

/// Cuts one datagram into its frames (no frame spans two datagrams).
pub fn datagram_frames(framing: &Framing, data: &Bytes) -> Vec<Bytes> {
    let Some(delim) = end_of_frame(framing) else {
        return vec![data.clone()];
    };
    let mut frames = Vec::new();
    let mut rest = data.clone();
    while let Some(at) = find(&rest, delim) {
        frames.push(trim_frame(framing, rest.slice(..at)));
        rest = rest.slice(at + delim.len()..);
    }
    if !rest.is_empty() {
        frames.push(rest);
    }
    frames
}

/// The bytes that end a frame, or `None` when each read is a frame.
fn end_of_frame(framing: &Framing) -> Option<&[u8]> {
    match framing {
        Framing::Read => None,
        Framing::Line => Some(b"\n"),
        Framing::Delimiter(d) => Some(d),
    }
}

/// A line frame loses the `\r` of a `\r\n` line end.
fn trim_frame(framing: &Framing, frame: Bytes) -> Bytes {
    match framing {
        Framing::Line if frame.last() == Some(&b'\r') => frame.slice(..frame.len() - 1),
        _ => frame,
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn parses_and_prints_each_form() {
        assert_eq!(Framing::parse("read").unwrap(), Framing::Read);
        assert_eq!(Framing::parse("line").unwrap(), Framing::Line);
        let d = Framing::parse("delim:\\r\\n").unwrap();
        assert_eq!(d, Framing::Delimiter(b"\r\n".to_vec()));
        assert_eq!(d.to_string(), "delim:\\r\\n");
        assert_eq!(Framing::parse(&d.to_string()).unwrap(), d);
        assert!(Framing::parse("delim:").is_err());
        assert!(Framing::parse("words").is_err());
        assert!(Framing::parse("delim:\\q").is_err());
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut buf = FrameBuffer::default();
        let f = Framing::Line;
        assert!(buf.push(&f, &b("PI")).is_empty());
        assert_eq!(buf.push(&f, &b("NG\r\nST")), vec![b("PING")]);
        assert_eq!(
            buf.push(&f, &b("ATUS\nA\n\n")),
            vec![b("STATUS"), b("A"), b("")]
        );
        assert!(buf.pending.is_empty());
    }

    #[test]
    fn a_delimiter_split_between_reads_is_found() {
        let mut buf = FrameBuffer::default();
        let f = Framing::Delimiter(b"||".to_vec());
        assert!(buf.push(&f, &b("a|")).is_empty());
        assert_eq!(buf.push(&f, &b("|b||")), vec![b("a"), b("b")]);
    }

    #[test]
    fn read_framing_passes_each_read_and_a_change_drops_the_partial_frame() {
        let mut buf = FrameBuffer::default();
        assert!(buf.push(&Framing::Line, &b("half")).is_empty());
        assert_eq!(buf.push(&Framing::Read, &b("x\n")), vec![b("x\n")]);
        assert_eq!(buf.push(&Framing::Line, &b("y\n")), vec![b("y")]);
    }

    #[test]
    fn an_endless_frame_is_cut_at_the_cap() {
        let mut buf = FrameBuffer::default();
        let big = Bytes::from(vec![b'z'; MAX_FRAME_BYTES + 10]);
        let frames = buf.push(&Framing::Line, &big);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), MAX_FRAME_BYTES);
        assert_eq!(
            buf.push(&Framing::Line, &b("\n")),
            vec![Bytes::from(vec![b'z'; 10])]
        );
    }

    #[test]
    fn datagrams_are_cut_without_carrying_over() {
        let f = Framing::Line;
        assert_eq!(datagram_frames(&f, &b("A\r\nB")), vec![b("A"), b("B")]);
        assert_eq!(datagram_frames(&f, &b("C\n")), vec![b("C")]);
        assert_eq!(datagram_frames(&Framing::Read, &b("C\n")), vec![b("C\n")]);
    }
}

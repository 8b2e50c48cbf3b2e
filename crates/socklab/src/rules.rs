//! Auto-reply rules and the text escapes shared by the CLI and the console.
//!
//! A rule pairs a matcher with a reply. Each frame from a device is tested against a
//! listener's rules in order and the first match is answered. By default a frame is one
//! read (a TCP chunk or a UDP datagram, as the network delivered it); a listener can cut
//! lines or delimited frames instead (see [`crate::framing`]):
//!
//! * `exact:TEXT` — the whole chunk equals TEXT, or equals it once one trailing line end
//!   (`\r\n` or `\n`) is removed, so `exact:1234567890` answers `1234567890\r\n`;
//! * `hex:HEX` — the chunk contains those bytes;
//! * `regex:RE` — the regex (bytes mode, see the `regex` crate) matches somewhere in it.
//!
//! The reply is `text:TEXT` or `hex:HEX`. On the command line a rule reads
//! `MATCHER=>REPLY`, e.g. `--auto-reply 'exact:1234567890=>text:0123456789'`; TEXT in both
//! halves understands `\r \n \t \0 \\ \xHH`.

use bytes::Bytes;
use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

/// The JSON shape of a rule, as the API lists and accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// `exact`, `hex` or `regex`.
    #[serde(rename = "match")]
    pub kind: String,
    /// The text, hex digits or regex (raw, no escapes: JSON has its own).
    pub pattern: String,
    /// Reply as text; exactly one of `reply_text` and `reply_hex` is set.
    #[serde(default)]
    pub reply_text: Option<String>,
    /// Reply as hex digits.
    #[serde(default)]
    pub reply_hex: Option<String>,
}

/// How a rule recognises incoming data.
#[derive(Clone, Debug)]
enum Matcher {
    Exact(Vec<u8>),
    Contains(Vec<u8>),
    Regex(Regex),
}

/// A validated, compiled auto-reply rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule as shown to users (kept so the API echoes back what it was given).
    spec: RuleSpec,
    matcher: Matcher,
    /// The reply, shared by every session the rule answers.
    reply: Bytes,
}

/// Why a rule, hex string or escaped text was refused; the messages are user-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Not hex digits.
    #[error("invalid hex {text:?}: {reason}")]
    Hex {
        /// The text given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A backslash escape that is not one of `\r \n \t \0 \\ \xHH`.
    #[error("{what} in {text:?}")]
    Escape {
        /// The escape problem.
        what: String,
        /// The text given.
        text: String,
    },
    /// Text with escapes that would not be valid UTF-8.
    #[error("text with \\x escapes must stay valid UTF-8; use hex: instead")]
    NotUtf8,
    /// A rule that cannot be built (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// A command-line rule, with what was wrong with it.
    #[error("auto-reply {flag:?}: {problem}")]
    Flag {
        /// The flag given.
        flag: String,
        /// What is wrong.
        problem: Box<RuleError>,
    },
}

impl Rule {
    /// Validates and compiles a rule from its JSON shape. Errors are user-facing messages.
    pub fn from_spec(spec: RuleSpec) -> Result<Rule, RuleError> {
        let matcher = match spec.kind.as_str() {
            "exact" => Matcher::Exact(spec.pattern.as_bytes().to_vec()),
            "hex" => {
                let bytes = decode_hex(&spec.pattern)?;
                if bytes.is_empty() {
                    return Err(RuleError::Invalid("hex pattern is empty".into()));
                }
                Matcher::Contains(bytes)
            }
            "regex" => Matcher::Regex(
                Regex::new(&spec.pattern)
                    .map_err(|e| RuleError::Invalid(format!("invalid regex: {e}")))?,
            ),
            other => {
                return Err(RuleError::Invalid(format!(
                    "unknown match kind {other:?} (use exact, hex or regex)"
                )));
            }
        };
        let reply = match (&spec.reply_text, &spec.reply_hex) {
            (Some(text), None) => Bytes::from(text.clone().into_bytes()),
            (None, Some(hex)) => Bytes::from(decode_hex(hex)?),
            _ => {
                return Err(RuleError::Invalid(
                    "a rule needs exactly one of reply_text and reply_hex".into(),
                ));
            }
        };
        Ok(Rule {
            spec,
            matcher,
            reply,
        })
    }

    /// Parses the command-line form `MATCHER=>REPLY` described in the module docs.
    pub fn parse_flag(flag: &str) -> Result<Rule, RuleError> {
        Rule::parse_flag_inner(flag).map_err(|problem| RuleError::Flag {
            flag: flag.to_string(),
            problem: Box::new(problem),
        })
    }

    fn parse_flag_inner(flag: &str) -> Result<Rule, RuleError> {
        let split = ["=>text:", "=>hex:"]
            .iter()
            .filter_map(|sep| flag.find(sep).map(|at| (at, *sep)))
            .min_by_key(|(at, _)| *at);
        let Some((at, sep)) = split else {
            return Err(RuleError::Invalid(
                "expected MATCHER=>text:REPLY or MATCHER=>hex:REPLY".into(),
            ));
        };
        let (matcher, reply) = (&flag[..at], &flag[at + sep.len()..]);
        let (kind, pattern) = matcher.split_once(':').ok_or_else(|| {
            RuleError::Invalid("matcher must be exact:TEXT, hex:HEX or regex:RE".into())
        })?;
        let pattern = match kind {
            "exact" => lossless_text(&unescape(pattern)?)?,
            _ => pattern.to_string(),
        };
        let (reply_text, reply_hex) = if sep == "=>text:" {
            (Some(lossless_text(&unescape(reply)?)?), None)
        } else {
            (None, Some(reply.to_string()))
        };
        let spec = RuleSpec {
            kind: kind.to_string(),
            pattern,
            reply_text,
            reply_hex,
        };
        Rule::from_spec(spec)
    }

    /// The rule's JSON shape.
    pub fn spec(&self) -> &RuleSpec {
        &self.spec
    }

    /// Whether `data` (one read or datagram) triggers this rule.
    pub fn matches(&self, data: &[u8]) -> bool {
        match &self.matcher {
            Matcher::Exact(want) => {
                let trimmed = data
                    .strip_suffix(b"\r\n")
                    .or_else(|| data.strip_suffix(b"\n"))
                    .unwrap_or(data);
                data == want.as_slice() || trimmed == want.as_slice()
            }
            Matcher::Contains(want) => data.windows(want.len()).any(|w| w == want.as_slice()),
            Matcher::Regex(re) => re.is_match(data),
        }
    }

    /// The bytes to send back when the rule matches.
    pub fn reply(&self) -> Bytes {
        self.reply.clone()
    }
}

/// Decodes hex digits, ignoring spaces and `:` so `0a 0b` and `0a:0b` work too.
pub fn decode_hex(s: &str) -> Result<Vec<u8>, RuleError> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&digits).map_err(|e| RuleError::Hex {
        text: s.to_string(),
        reason: e.to_string(),
    })
}

/// Turns `\r \n \t \0 \\ \xHH` escapes into bytes; any other backslash sequence is an error.
pub fn unescape(s: &str) -> Result<Vec<u8>, RuleError> {
    let bad = |what: String| RuleError::Escape {
        what,
        text: s.to_string(),
    };
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hi = chars.next();
                let lo = chars.next();
                let pair: String = [hi, lo].iter().flatten().collect();
                let byte = u8::from_str_radix(&pair, 16)
                    .ok()
                    .filter(|_| pair.len() == 2)
                    .ok_or_else(|| bad(format!("bad escape \\x{pair}")))?;
                out.push(byte);
            }
            Some(other) => return Err(bad(format!("unknown escape \\{other}"))),
            None => return Err(bad("trailing backslash".into())),
        }
    }
    Ok(out)
}

/// Renders bytes as printable ASCII with `\r \n \t \\ \xHH` escapes (the console's view).
pub fn escape(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Rule text must round-trip through JSON, so escapes may not produce invalid UTF-8 there.
fn lossless_text(bytes: &[u8]) -> Result<String, RuleError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| RuleError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's rule answers the tutorial's upload, with or without its line end.
    #[test]
    fn exact_rule_matches_with_and_without_line_end() {
        let rule = Rule::parse_flag("exact:1234567890=>text:0123456789").unwrap();
        assert!(rule.matches(b"1234567890\r\n"));
        assert!(rule.matches(b"1234567890"));
        assert!(!rule.matches(b"12345678901"));
        assert_eq!(&rule.reply()[..], b"0123456789");
        let rule = Rule::parse_flag("exact:hi\\r\\n=>hex:0a0b").unwrap();
        assert!(rule.matches(b"hi\r\n"));
        assert_eq!(&rule.reply()[..], &[0x0a, 0x0b]);
    }

    /// Hex rules match contained bytes, regex rules search.
    #[test]
    fn hex_and_regex_rules() {
        let rule = Rule::parse_flag("hex:ff00=>text:bin").unwrap();
        assert!(rule.matches(&[1, 0xff, 0, 2]));
        assert!(!rule.matches(&[0xff]));
        let rule = Rule::parse_flag("regex:^AT\\+\\w+=>text:OK\\r\\n").unwrap();
        assert!(rule.matches(b"AT+CSQ\r\n"));
        assert_eq!(&rule.reply()[..], b"OK\r\n");
    }

    /// Malformed flags are rejected with a message, never a panic.
    #[test]
    fn bad_rules_are_errors() {
        for bad in [
            "exact:x",
            "nope:x=>text:y",
            "hex:zz=>text:y",
            "regex:(=>text:y",
            "exact:x=>hex:0",
            "exact:\\q=>text:y",
            "exact:\\xff=>text:y",
        ] {
            assert!(Rule::parse_flag(bad).is_err(), "{bad}");
        }
    }

    /// Escaping and unescaping are inverse for printable text with control characters.
    #[test]
    fn escape_round_trip() {
        let raw = b"a\r\n\t\\\x00\xff";
        assert_eq!(unescape(&escape(raw)).unwrap(), raw);
        assert_eq!(escape(b"<b>"), "<b>");
    }
}

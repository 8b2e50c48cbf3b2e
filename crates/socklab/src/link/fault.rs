//! Faults an operator injects into a live session, and the one parser every front end
//! uses for them: the console and schedule files give text (`outage 10s`, `reset`,
//! `nat_drop`), the API gives a kind and seconds; both end in [`Fault::new`], so all three
//! accept and refuse exactly the same faults with the same messages.

use std::time::Duration;

use super::spec::parse_duration;

/// The longest outage that can be injected (a day): longer ones are almost certainly a
/// typo, and instants that far out are not useful to a test run.
pub const MAX_OUTAGE: Duration = Duration::from_secs(86_400);

/// A fault injected now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing moves for this long; TCP data waits and then arrives in order, UDP
    /// datagrams in the window are lost.
    Outage(Duration),
    /// TCP: the connection is reset (RST, the device sees ECONNRESET). UDP: the session ends.
    Reset,
    /// The carrier NAT forgets the connection: data either way is silently discarded.
    NatDrop,
}

/// A fault that could not be understood.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    /// Not one of the known fault kinds.
    #[error("unknown fault {0:?}: use outage, reset or nat_drop")]
    Unknown(String),
    /// An outage without a usable length.
    #[error("an outage needs a length between 1 ms and 24 h (e.g. outage 5s)")]
    BadOutage,
    /// A length given to a fault that takes none.
    #[error("{0} takes no length")]
    Unexpected(&'static str),
}

impl Fault {
    /// The fault of `kind` (`outage`, `reset`, `nat_drop`) with its length (outages only).
    pub fn new(kind: &str, length: Option<Duration>) -> Result<Fault, FaultParseError> {
        match (kind, length) {
            ("outage", Some(d)) if d >= Duration::from_millis(1) && d <= MAX_OUTAGE => {
                Ok(Fault::Outage(d))
            }
            ("outage", _) => Err(FaultParseError::BadOutage),
            ("reset", None) => Ok(Fault::Reset),
            ("nat_drop", None) => Ok(Fault::NatDrop),
            ("reset", Some(_)) => Err(FaultParseError::Unexpected("reset")),
            ("nat_drop", Some(_)) => Err(FaultParseError::Unexpected("nat_drop")),
            (other, _) => Err(FaultParseError::Unknown(other.to_string())),
        }
    }

    /// The fault of `kind` with a length in seconds, as the API gives it.
    pub fn from_seconds(kind: &str, seconds: Option<f64>) -> Result<Fault, FaultParseError> {
        let length = match seconds {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s <= MAX_OUTAGE.as_secs_f64() => {
                Some(Duration::from_secs_f64(s))
            }
            Some(_) => return Err(FaultParseError::BadOutage),
        };
        Fault::new(kind, length)
    }

    /// Parses `outage DURATION` (also `outage=10s`), `reset` or `nat_drop`.
    pub fn parse(s: &str) -> Result<Fault, FaultParseError> {
        let s = s.trim();
        let (word, arg) = match s.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((w, a)) => (w, Some(a.trim())),
            None => (s, None),
        };
        let length = match arg {
            None => None,
            // Only an outage takes a length; others report that they take none.
            Some(_) if word != "outage" => Some(Duration::ZERO),
            Some(a) => Some(parse_duration(a).map_err(|_| FaultParseError::BadOutage)?),
        };
        Fault::new(word, length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Faults parse from the console/schedule words.
    #[test]
    fn faults_parse() {
        assert_eq!(
            Fault::parse("outage 10s"),
            Ok(Fault::Outage(Duration::from_secs(10)))
        );
        assert_eq!(
            Fault::parse("outage=500ms"),
            Ok(Fault::Outage(Duration::from_millis(500)))
        );
        assert_eq!(Fault::parse("reset"), Ok(Fault::Reset));
        assert_eq!(Fault::parse("nat_drop"), Ok(Fault::NatDrop));
        assert!(Fault::parse("outage").is_err());
        assert!(Fault::parse("explode").is_err());
    }

    /// The text form and the API form accept and refuse the same faults with the same
    /// messages (the console once took `nat-drop` and a 30-year outage the API refused).
    #[test]
    fn text_and_api_forms_agree() {
        for (text, kind, secs) in [
            ("outage 2s", "outage", Some(2.0)),
            ("outage 1000000000", "outage", Some(1e9)),
            ("outage 0", "outage", Some(0.0)),
            ("reset", "reset", None),
            ("nat_drop", "nat_drop", None),
            ("nat-drop", "nat-drop", None),
            ("reset 5s", "reset", Some(5.0)),
        ] {
            let a = Fault::parse(text).map_err(|e| e.to_string());
            let b = Fault::from_seconds(kind, secs).map_err(|e| e.to_string());
            assert_eq!(a, b, "{text}");
        }
        assert!(Fault::parse("nat-drop").is_err());
        assert!(Fault::parse("outage 1000000000").is_err());
    }
}

//! The link model: what a link does to a session's traffic in each direction, and the
//! `PROFILE[,param=value...]` syntax that names one (command line, API, schedule files).
//!
//! A [`LinkSpec`] is plain data. It starts from a built-in profile
//! ([`super::profiles`], which also holds [`LinkSpec::parse`]) and applies overrides in order, so
//! `nbiot,nat_idle=270s,latency=1s` is NB-IoT with a carrier-NAT idle timeout and a
//! shorter latency. [`LinkSpec::is_noop`] tells the session tasks when they can skip the
//! shaper entirely (`perfect` and no link at all cost nothing on the hot path).

use std::fmt;
use std::time::Duration;

/// What the link does to one direction of a session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirParams {
    /// Mean one-way delay added to every piece of data.
    pub latency: Duration,
    /// Spread of the delay: each piece gets `latency ± jitter` (uniform). On TCP a piece
    /// never overtakes the one before it, as a real byte stream does.
    pub jitter: Duration,
    /// Bandwidth cap in bits per second (token bucket); `None` is unlimited.
    pub rate_bps: Option<u64>,
    /// Long-run fraction of datagrams lost (UDP only; TCP never loses, it stalls).
    pub loss: f64,
    /// Mean number of datagrams lost in a row (Gilbert–Elliott burst length, ≥ 1).
    pub loss_burst: f64,
    /// Mean time between stalls (exponentially distributed); `None`: no stalls.
    pub stall_every: Option<Duration>,
    /// How long a stall delivers nothing.
    pub stall_for: Duration,
}

impl DirParams {
    /// Whether this direction passes everything through untouched and at once.
    pub fn is_noop(&self) -> bool {
        self.latency.is_zero()
            && self.jitter.is_zero()
            && self.rate_bps.is_none()
            && self.loss <= 0.0
            && self.stall_every.is_none()
    }
}

/// A whole link: both directions plus the session-level faults.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkSpec {
    /// The profile it started from (`gprs`, `nbiot`, `ltem`, `cat1`, `perfect`).
    pub profile: String,
    /// The overrides as given, in order (kept for display: `nbiot,nat_idle=270s`).
    pub overrides: Vec<(String, String)>,
    /// Device → server.
    pub up: DirParams,
    /// Server → device.
    pub down: DirParams,
    /// Burst delivery: arrivals are held and released together at multiples of this
    /// period since the session started (how NB-IoT's scheduling looks from above).
    pub batch: Option<Duration>,
    /// Carrier-NAT idle timeout: after this long without traffic either way the
    /// connection is silently dropped.
    pub nat_idle: Option<Duration>,
    /// Reset (TCP RST) once this many bytes went through, both directions together.
    pub reset_after_bytes: Option<u64>,
    /// Reset this long after the session started.
    pub reset_at: Option<Duration>,
}

/// A link description that could not be understood.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkParseError(pub String);

impl LinkSpec {
    /// The `perfect` link: nothing added.
    pub fn perfect() -> LinkSpec {
        LinkSpec {
            profile: "perfect".into(),
            overrides: Vec::new(),
            up: DirParams::default(),
            down: DirParams::default(),
            batch: None,
            nat_idle: None,
            reset_after_bytes: None,
            reset_at: None,
        }
    }

    /// Overrides one parameter. Times take `ms`, `s`, `m`, `h` (bare = seconds), rates
    /// take `k`/`M` (bits/s, `off` = unlimited), loss a fraction or a percentage.
    /// `latency`, `jitter`, `loss`, `stall_every`, `stall_for` set both directions;
    /// `_up`/`_down` suffixes set one. `up`/`down` are the bandwidth caps.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), LinkParseError> {
        let (base, which) = match key.rsplit_once('_') {
            Some((b, w @ ("up" | "down"))) => (b, w),
            _ => (key, "both"),
        };
        let apply = |spec: &mut LinkSpec, f: &dyn Fn(&mut DirParams)| {
            if which != "down" {
                f(&mut spec.up);
            }
            if which != "up" {
                f(&mut spec.down);
            }
        };
        match base {
            "latency" => {
                let v = parse_duration(value)?;
                apply(self, &|d| d.latency = v);
            }
            "jitter" => {
                let v = parse_duration(value)?;
                apply(self, &|d| d.jitter = v);
            }
            "up" | "down" if which == "both" => {
                let v = parse_rate(value)?;
                if base == "up" {
                    self.up.rate_bps = v;
                } else {
                    self.down.rate_bps = v;
                }
            }
            "rate" => {
                let v = parse_rate(value)?;
                apply(self, &|d| d.rate_bps = v);
            }
            "loss" => {
                let v = parse_fraction(value)?;
                apply(self, &|d| d.loss = v);
            }
            "loss_burst" => {
                let v: f64 = value
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite() && *v >= 1.0)
                    .ok_or_else(|| bad(key, value, "a mean burst length >= 1"))?;
                apply(self, &|d| d.loss_burst = v);
            }
            "stall_every" => {
                let v = parse_optional_duration(value)?;
                apply(self, &|d| d.stall_every = v);
            }
            "stall_for" => {
                let v = parse_duration(value)?;
                apply(self, &|d| d.stall_for = v);
            }
            "batch" if which == "both" => self.batch = parse_optional_duration(value)?,
            "nat_idle" if which == "both" => self.nat_idle = parse_optional_duration(value)?,
            "reset_at" if which == "both" => self.reset_at = parse_optional_duration(value)?,
            "reset_after" if which == "both" => {
                self.reset_after_bytes = match value {
                    "off" | "0" => None,
                    v => Some(parse_count(v).ok_or_else(|| bad(key, value, "a byte count"))?),
                }
            }
            _ => {
                return Err(LinkParseError(format!(
                    "unknown link parameter {key:?}: use latency, jitter, up, down, rate, \
                     loss, loss_burst, stall_every, stall_for (each also _up/_down), batch, \
                     nat_idle, reset_after, reset_at"
                )));
            }
        }
        self.overrides.retain(|(k, _)| k != key);
        self.overrides.push((key.to_string(), value.to_string()));
        Ok(())
    }

    /// Whether the link does nothing at all (then sessions skip the shaper).
    pub fn is_noop(&self) -> bool {
        self.up.is_noop()
            && self.down.is_noop()
            && self.batch.is_none()
            && self.nat_idle.is_none()
            && self.reset_after_bytes.is_none()
            && self.reset_at.is_none()
    }
}

impl fmt::Display for LinkSpec {
    /// The canonical text: the profile then the overrides, as accepted by `parse`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.profile)?;
        for (k, v) in &self.overrides {
            write!(f, ",{k}={v}")?;
        }
        Ok(())
    }
}

fn bad(key: &str, value: &str, want: &str) -> LinkParseError {
    LinkParseError(format!("{key}={value}: expected {want}"))
}

/// Parses `500ms`, `2s`, `1.5`, `4m`, `6h` (bare numbers are seconds).
pub fn parse_duration(s: &str) -> Result<Duration, LinkParseError> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * mult < 1e9 => {
            Ok(Duration::from_secs_f64(v * mult))
        }
        _ => Err(LinkParseError(format!(
            "{s:?} is not a time: use e.g. 500ms, 2s, 4m, 6h"
        ))),
    }
}

fn parse_optional_duration(s: &str) -> Result<Option<Duration>, LinkParseError> {
    match s {
        "off" | "none" => Ok(None),
        _ => parse_duration(s).map(|d| (!d.is_zero()).then_some(d)),
    }
}

/// Parses a bit rate: `20k`, `2.5M`, `9600`, `off` (unlimited).
pub fn parse_rate(s: &str) -> Result<Option<u64>, LinkParseError> {
    if matches!(s, "off" | "none" | "0") {
        return Ok(None);
    }
    let t = s.trim_end_matches("bps").trim_end_matches("bit");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v * mult >= 1.0 && v * mult < 1e12 => {
            Ok(Some((v * mult).round() as u64))
        }
        _ => Err(LinkParseError(format!(
            "{s:?} is not a bit rate: use e.g. 20k, 2M, 9600 or off"
        ))),
    }
}

/// Parses a loss: `0.01` or `1%`.
pub fn parse_fraction(s: &str) -> Result<f64, LinkParseError> {
    let (num, div) = match s.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (s, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&(v / div)) => Ok(v / div),
        _ => Err(LinkParseError(format!(
            "{s:?} is not a loss: use a fraction 0..1 or a percentage like 2%"
        ))),
    }
}

/// Parses a byte count with an optional `k`/`M` (1000-based) suffix.
fn parse_count(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1_000u64),
        'M' => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .map(|v| v.saturating_mul(mult))
        .filter(|v| *v > 0)
}

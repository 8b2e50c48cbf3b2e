//! The built-in link profiles. The figures are indicative: typical of what a device sees
//! from above the modem on a loaded commercial network, not a standard's numbers. Any
//! of them can be changed parameter by parameter (`nbiot,latency=1s`).
//!
//! | profile | down / up      | one-way latency | stalls            | UDP loss (burst) | batch |
//! |---------|----------------|-----------------|-------------------|------------------|-------|
//! | gprs    | 40 / 20 kbit/s | 600 ± 200 ms    | 2 s, every ~60 s  | 2 % (2)          | –     |
//! | nbiot   | 20 / 50 kbit/s | 2 ± 1.5 s       | –                 | 1 % (2)          | 1 s   |
//! | ltem    | 300 / 375 kbit/s | 150 ± 50 ms   | –                 | 0.5 % (1)        | –     |
//! | cat1    | 5 / 2 Mbit/s   | 80 ± 30 ms      | –                 | 0.1 % (1)        | –     |
//! | perfect | unlimited      | 0               | –                 | 0                | –     |

use std::time::Duration;

use super::spec::{DirParams, LinkParseError, LinkSpec};

/// Profile names, in the order the docs list them.
pub const NAMES: [&str; 5] = ["gprs", "nbiot", "ltem", "cat1", "perfect"];

fn dir(rate_bps: u64, latency_ms: u64, jitter_ms: u64, loss: f64, burst: f64) -> DirParams {
    DirParams {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(jitter_ms),
        rate_bps: Some(rate_bps),
        loss,
        loss_burst: burst,
        stall_every: None,
        stall_for: Duration::ZERO,
    }
}

impl LinkSpec {
    /// Parses `PROFILE[,param=value...]` (see [`LinkSpec::set`] for the parameters).
    pub fn parse(s: &str) -> Result<LinkSpec, LinkParseError> {
        let mut parts = s.split(',').map(str::trim);
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut spec = get(&name).ok_or_else(|| {
            LinkParseError(format!(
                "unknown link profile {name:?}: use one of {}",
                NAMES.join(", ")
            ))
        })?;
        for part in parts.filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| LinkParseError(format!("{part:?} is not param=value")))?;
            spec.set(key.trim(), value.trim())?;
        }
        Ok(spec)
    }
}

/// The profile called `name` (lowercase), or `None`.
pub fn get(name: &str) -> Option<LinkSpec> {
    let mut spec = LinkSpec::perfect();
    spec.profile = name.to_string();
    match name {
        "perfect" => {}
        "gprs" => {
            spec.down = dir(40_000, 600, 200, 0.02, 2.0);
            spec.up = dir(20_000, 600, 200, 0.02, 2.0);
            for d in [&mut spec.up, &mut spec.down] {
                d.stall_every = Some(Duration::from_secs(60));
                d.stall_for = Duration::from_secs(2);
            }
        }
        "nbiot" => {
            spec.down = dir(20_000, 2000, 1500, 0.01, 2.0);
            spec.up = dir(50_000, 2000, 1500, 0.01, 2.0);
            spec.batch = Some(Duration::from_secs(1));
        }
        "ltem" => {
            spec.down = dir(300_000, 150, 50, 0.005, 1.0);
            spec.up = dir(375_000, 150, 50, 0.005, 1.0);
        }
        "cat1" => {
            spec.down = dir(5_000_000, 80, 30, 0.001, 1.0);
            spec.up = dir(2_000_000, 80, 30, 0.001, 1.0);
        }
        _ => return None,
    }
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listed profile exists; only `perfect` is a no-op.
    #[test]
    fn profiles_exist() {
        for name in NAMES {
            let spec = get(name).unwrap();
            assert_eq!(spec.is_noop(), name == "perfect", "{name}");
        }
        assert!(get("5g").is_none());
    }

    /// Overrides apply in order, per direction or both, and print back canonically.
    #[test]
    fn overrides() {
        let spec = LinkSpec::parse("nbiot,nat_idle=270s,latency_up=1s,down=10k").unwrap();
        assert_eq!(spec.nat_idle, Some(Duration::from_secs(270)));
        assert_eq!(spec.up.latency, Duration::from_secs(1));
        assert_eq!(spec.down.latency, Duration::from_secs(2));
        assert_eq!(spec.down.rate_bps, Some(10_000));
        assert_eq!(spec.up.rate_bps, Some(50_000));
        assert_eq!(
            spec.to_string(),
            "nbiot,nat_idle=270s,latency_up=1s,down=10k"
        );
        assert_eq!(LinkSpec::parse(&spec.to_string()).unwrap(), spec);
        let p = LinkSpec::parse("perfect,loss=5%,loss_burst=3,nat_idle=6h").unwrap();
        assert!((p.up.loss - 0.05).abs() < 1e-12 && p.down.loss_burst == 3.0);
        assert_eq!(p.nat_idle, Some(Duration::from_secs(6 * 3600)));
        assert!(LinkSpec::parse("perfect,nat_idle=off").unwrap().is_noop());
        assert!(
            LinkSpec::parse("perfect,reset_after=4k")
                .unwrap()
                .reset_after_bytes
                == Some(4000)
        );
    }

    /// Bad names, keys and values are errors that say what is expected.
    #[test]
    fn errors() {
        assert!(LinkSpec::parse("lte").unwrap_err().0.contains("nbiot"));
        assert!(
            LinkSpec::parse("gprs,foo=1")
                .unwrap_err()
                .0
                .contains("unknown link parameter")
        );
        assert!(LinkSpec::parse("gprs,latency").is_err());
        assert!(LinkSpec::parse("gprs,latency=fast").is_err());
        assert!(LinkSpec::parse("gprs,loss=150%").is_err());
        assert!(LinkSpec::parse("gprs,up=-3k").is_err());
        assert!(LinkSpec::parse("gprs,loss_burst=0.5").is_err());
        assert!(LinkSpec::parse("gprs,nat_idle_up=3s").is_err());
    }
}

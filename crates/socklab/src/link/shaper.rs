//! The per-direction shaper: given a piece of data handed to the link now, when does it
//! come out at the other end, and (UDP) is it lost? Pure arithmetic over instants, owned by
//! one session task, so it needs no lock and tests drive it with made-up times.
//!
//! The order of effects follows a real link: the bandwidth cap ([`TokenBucket`]) decides
//! when the piece leaves, stalls push that later, then the one-way delay (latency ±
//! jitter) is added; on TCP a piece never arrives before the one sent ahead of it.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::spec::DirParams;

/// The smallest bucket depth: one Ethernet-sized packet may always go at once.
const MIN_BURST_BYTES: f64 = 1500.0;

/// How much the bucket may hold beyond one packet: this much time at the full rate.
const BURST_TIME_S: f64 = 0.05;

/// A token bucket in bytes that may go into debt: a piece bigger than what is left waits
/// for the missing tokens, so the long-run rate is exact whatever the piece sizes.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Refill rate, bytes per second.
    rate: f64,
    /// Depth, bytes.
    burst: f64,
    /// Current level (negative while in debt).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate_bps` bits per second.
    pub fn new(rate_bps: u64, now: Instant) -> TokenBucket {
        let rate = rate_bps as f64 / 8.0;
        let burst = (rate * BURST_TIME_S).max(MIN_BURST_BYTES);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `bytes` at `now` and returns how long they must wait before leaving.
    pub fn take(&mut self, bytes: usize, now: Instant) -> Duration {
        if now > self.last {
            let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.burst);
            self.last = now;
        }
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Bytes per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// When a planned piece arrives, and why it is late.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// When the piece comes out of the link.
    pub at: Instant,
    /// Time spent waiting for bandwidth.
    pub throttled: Duration,
    /// Whether a stall held it.
    pub stalled: bool,
}

/// One direction of one session's link.
#[derive(Debug)]
pub struct DirShaper {
    params: DirParams,
    bucket: Option<TokenBucket>,
    rng: SmallRng,
    /// Arrival of the last piece (TCP order).
    last_arrival: Option<Instant>,
    /// The current or next stall window.
    stall: Option<(Instant, Instant)>,
    /// Gilbert–Elliott state: `true` while in the losing ("bad") state.
    bad: bool,
}

impl DirShaper {
    /// A shaper for `params`, its randomness from `seed`.
    pub fn new(params: DirParams, seed: u64, now: Instant) -> DirShaper {
        DirShaper {
            bucket: params.rate_bps.map(|r| TokenBucket::new(r, now)),
            params,
            rng: SmallRng::seed_from_u64(seed),
            last_arrival: None,
            stall: None,
            bad: false,
        }
    }

    /// The parameters in force.
    pub fn params(&self) -> &DirParams {
        &self.params
    }

    /// The largest piece to hand over at once: about 100 ms of the capped rate (at least
    /// 256 B, at most one 1460 B segment), so a slow link delivers a steady trickle rather
    /// than one big chunk after a long wait; unlimited links take whole reads.
    pub fn piece_bytes(&self) -> usize {
        match &self.bucket {
            Some(b) => ((b.rate() / 10.0) as usize).clamp(256, 1460),
            None => usize::MAX,
        }
    }

    /// Plans a piece of `len` bytes handed to the link at `now`. `ordered` keeps arrivals
    /// in sending order (TCP).
    pub fn plan(&mut self, now: Instant, len: usize, ordered: bool) -> Plan {
        let throttled = match &mut self.bucket {
            Some(b) => b.take(len, now),
            None => Duration::ZERO,
        };
        let (depart, stalled) = self.after_stalls(now + throttled);
        let mut at = depart + self.delay();
        if ordered {
            if let Some(last) = self.last_arrival {
                at = at.max(last);
            }
            self.last_arrival = Some(at);
        }
        Plan {
            at,
            throttled,
            stalled,
        }
    }

    /// One draw of the one-way delay: `latency ± jitter`, uniform, never negative.
    fn delay(&mut self) -> Duration {
        let (lat, jit) = (
            self.params.latency.as_secs_f64(),
            self.params.jitter.as_secs_f64(),
        );
        if jit == 0.0 {
            return self.params.latency;
        }
        let v = lat - jit + self.rng.random::<f64>() * 2.0 * jit;
        Duration::from_secs_f64(v.max(0.0))
    }

    /// Moves a departure out of any stall window it falls in.
    fn after_stalls(&mut self, mut depart: Instant) -> (Instant, bool) {
        let Some(mean) = self.params.stall_every else {
            return (depart, false);
        };
        let mut stalled = false;
        let (mut start, mut end) = match self.stall {
            Some(w) => w,
            None => self.next_stall(depart),
        };
        loop {
            if depart < start {
                break;
            }
            if depart < end {
                // Keep this window: later pieces leaving inside it wait for its end too.
                depart = end;
                stalled = true;
                break;
            }
            (start, end) = self.next_stall_after(end, mean);
        }
        self.stall = Some((start, end));
        (depart, stalled)
    }

    fn next_stall(&mut self, from: Instant) -> (Instant, Instant) {
        let mean = self.params.stall_every.unwrap_or(Duration::MAX);
        self.next_stall_after(from, mean)
    }

    fn next_stall_after(&mut self, from: Instant, mean: Duration) -> (Instant, Instant) {
        let u: f64 = self.rng.random();
        let gap = Duration::from_secs_f64(-mean.as_secs_f64() * (1.0 - u).ln());
        let start = from + gap.max(Duration::from_millis(1));
        (start, start + self.params.stall_for)
    }

    /// Whether the next datagram is lost (Gilbert–Elliott with mean burst length
    /// `loss_burst` and long-run rate `loss`).
    pub fn lose(&mut self) -> bool {
        let loss = self.params.loss;
        if loss <= 0.0 {
            return false;
        }
        if loss >= 1.0 {
            return true;
        }
        let leave_bad = 1.0 / self.params.loss_burst.max(1.0);
        let enter_bad = loss * leave_bad / (1.0 - loss);
        let u: f64 = self.rng.random();
        self.bad = if self.bad {
            u >= leave_bad
        } else {
            u < enter_bad
        };
        self.bad
    }
}

/// The seed of one direction of one session: the same `--seed` and session id give the
/// same jitter and loss.
pub fn session_seed(seed: Option<u64>, session_id: u64, up: bool) -> u64 {
    match seed {
        Some(s) => {
            // SplitMix64 finaliser: nearby ids give unrelated streams.
            let mut z = s ^ session_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (up as u64);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        None => rand::random(),
    }
}

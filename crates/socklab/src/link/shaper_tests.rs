//! Unit tests of the shaper: token bucket, jitter with order, stalls, loss with a seed.

use std::time::Duration;

use tokio::time::Instant;

use super::shaper::{DirShaper, TokenBucket, session_seed};
use super::spec::{DirParams, LinkSpec};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A full bucket lets a burst through, then paces to the rate exactly, debt included.
#[test]
fn token_bucket_paces_to_rate() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(80_000, t0); // 10,000 B/s, 1500 B deep
    assert_eq!(b.take(1500, t0), Duration::ZERO);
    assert_eq!(b.take(1000, t0), ms(100));
    assert_eq!(b.take(1000, t0), ms(200));
    // A second later the debt (2000 B) is paid and 8000 B are back, capped at the depth.
    assert_eq!(b.take(1500, t0 + ms(1000) + ms(200)), Duration::ZERO);
    // Many small pieces at one instant: the last waits for all of them at the rate.
    let mut b = TokenBucket::new(8_000, t0); // 1000 B/s
    let mut wait = Duration::ZERO;
    for _ in 0..100 {
        wait = b.take(100, t0);
    }
    assert_eq!(wait, ms(8500)); // 10,000 B - 1500 B of burst at 1000 B/s
}

fn dir(latency: u64, jitter: u64) -> DirParams {
    DirParams {
        latency: ms(latency),
        jitter: ms(jitter),
        ..DirParams::default()
    }
}

/// Delays stay inside latency ± jitter; ordered pieces never overtake each other, while
/// unordered ones (UDP) do.
#[test]
fn jitter_keeps_tcp_order() {
    let t0 = Instant::now();
    let mut tcp = DirShaper::new(dir(600, 200), 1, t0);
    let mut udp = DirShaper::new(dir(600, 200), 1, t0);
    let (mut last, mut overtaken) = (t0, 0);
    let mut last_udp = t0;
    for i in 0..1000u64 {
        let now = t0 + ms(i);
        let p = tcp.plan(now, 10, true);
        assert!(p.at >= last, "piece {i} overtook the one before");
        assert!(p.at <= now + ms(800) + ms(200));
        last = p.at;
        let u = udp.plan(now, 10, false);
        assert!(u.at >= now + ms(400) && u.at <= now + ms(800));
        if u.at < last_udp {
            overtaken += 1;
        }
        last_udp = u.at;
    }
    assert!(overtaken > 100, "UDP jitter should reorder ({overtaken})");
}

/// The same seed gives the same delays; another seed different ones.
#[test]
fn seeded_jitter_repeats() {
    let t0 = Instant::now();
    let run = |seed| {
        let mut s = DirShaper::new(dir(2000, 1500), seed, t0);
        (0..50).map(|_| s.plan(t0, 1, false).at).collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    assert_eq!(
        session_seed(Some(1), 5, true),
        session_seed(Some(1), 5, true)
    );
    assert_ne!(
        session_seed(Some(1), 5, true),
        session_seed(Some(1), 5, false)
    );
}

/// Gilbert–Elliott loss: long-run rate as configured, losses come in bursts of the
/// configured mean length, and a seed makes the pattern repeat.
#[test]
fn loss_model_rate_and_bursts() {
    let t0 = Instant::now();
    let params = DirParams {
        loss: 0.1,
        loss_burst: 4.0,
        ..DirParams::default()
    };
    let pattern = |seed| {
        let mut s = DirShaper::new(params.clone(), seed, t0);
        (0..200_000).map(|_| s.lose()).collect::<Vec<bool>>()
    };
    let lost = pattern(42);
    assert_eq!(lost, pattern(42));
    let n = lost.iter().filter(|l| **l).count() as f64;
    let rate = n / lost.len() as f64;
    assert!((rate - 0.1).abs() < 0.01, "rate {rate}");
    let bursts = lost.windows(2).filter(|w| w[1] && !w[0]).count() as f64;
    let mean_burst = n / bursts;
    assert!((mean_burst - 4.0).abs() < 0.3, "mean burst {mean_burst}");
    let mut none = DirShaper::new(DirParams::default(), 1, t0);
    assert!((0..1000).all(|_| !none.lose()));
}

/// A stall holds every piece that would leave inside it until it ends.
#[test]
fn stalls_hold_data() {
    let t0 = Instant::now();
    let params = DirParams {
        stall_every: Some(Duration::from_secs(1)),
        stall_for: Duration::from_secs(1),
        ..DirParams::default()
    };
    let mut s = DirShaper::new(params, 3, t0);
    let mut stalled = 0;
    let mut last = t0;
    for i in 0..2000u64 {
        let now = t0 + ms(10 * i);
        let p = s.plan(now, 1, true);
        assert!(p.at >= now && p.at >= last);
        last = p.at;
        stalled += p.stalled as u32;
    }
    // Stalls take about half the time here, so about half the pieces wait.
    assert!((500..1500).contains(&stalled), "{stalled}");
}

/// Only `perfect` and an empty override list make a no-op link.
#[test]
fn noop_detection() {
    assert!(LinkSpec::perfect().is_noop());
    assert!(!LinkSpec::parse("perfect,latency=1ms").unwrap().is_noop());
    assert!(!LinkSpec::parse("perfect,reset_at=5s").unwrap().is_noop());
}

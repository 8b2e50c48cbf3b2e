//! The process-wide behaviour profile and the module constants each profile exposes.
//!
//! `quecpython` is current firmware (the default), `legacy` the 2021 firmware, and
//! `micropython` upstream MicroPython's socket so upstream test programs run on the same
//! engine. The profile is global because device scripts never pass it anywhere: it is
//! chosen by the environment (`USOCKET_PROFILE`) or the script runner.

use std::sync::atomic::{AtomicU8, Ordering};

/// Which device (or upstream) behaviour the engine reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Current QuecPython firmware: 3-tuple accept, FIN raises 107 once, refused is 104.
    QuecPython,
    /// 2021 firmware: non-blocking stream methods raise 11, `getaddrinfo` returns `[]` on
    /// failure, `send(b'')` raises 110, DNS failure in `connect()` raises 202.
    Legacy,
    /// Upstream MicroPython: 2-tuple accept, `b''` on FIN, refused is 111, Linux constants.
    MicroPython,
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

impl Profile {
    /// Every profile, in `u8` order.
    pub const ALL: [Profile; 3] = [Profile::QuecPython, Profile::Legacy, Profile::MicroPython];

    /// The profile's name as `USOCKET_PROFILE` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::QuecPython => "quecpython",
            Profile::Legacy => "legacy",
            Profile::MicroPython => "micropython",
        }
    }

    /// Parses a profile name; `None` for unknown names.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether this profile reproduces a device (not upstream MicroPython).
    pub fn is_device(self) -> bool {
        self != Profile::MicroPython
    }

    /// The first read after the peer's FIN raises `OSError(107)` (device profiles).
    pub fn fin_raises(self) -> bool {
        self.is_device()
    }

    /// `accept()` returns `(conn, ip, port)` rather than `(conn, (ip, port))`.
    pub fn accept_three_tuple(self) -> bool {
        self.is_device()
    }

    /// Non-blocking `read`/`readinto`/`readline`/`write` raise `OSError(11)` instead of
    /// returning `None` (legacy firmware has MICROPY_STREAMS_NON_BLOCK off).
    pub fn streams_raise_eagain(self) -> bool {
        self == Profile::Legacy
    }

    /// The module constants of this profile, as `(name, value)`.
    pub fn constants(self) -> &'static [(&'static str, i32)] {
        match self {
            Profile::QuecPython => DEVICE_CONSTANTS,
            Profile::Legacy => LEGACY_CONSTANTS,
            Profile::MicroPython => MICROPYTHON_CONSTANTS,
        }
    }
}

/// The device's constant table (lwIP values plus Quectel's 7 and 8, §1 of the spec),
/// followed by the `extra` entries a profile adds.
macro_rules! device_constants {
    ($($extra:expr),* $(,)?) => {
        &[
            ("AF_INET", 2),
            ("AF_INET6", 10),
            ("SOCK_STREAM", 1),
            ("SOCK_DGRAM", 2),
            ("SOCK_RAW", 3),
            ("IPPROTO_IP", 0),
            ("IPPROTO_TCP", 6),
            ("IPPROTO_UDP", 17),
            ("IPPROTO_TCP_SER", 7),
            ("TCP_CUSTOMIZE_PORT", 8),
            ("SOL_SOCKET", 4095),
            ("SO_REUSEADDR", 4),
            ("TCP_KEEPALIVE", 2),
            $($extra),*
        ]
    };
}

/// The device's constants, §1 of the spec.
const DEVICE_CONSTANTS: &[(&str, i32)] = device_constants!();

/// Legacy firmware: the device set plus `IP_ADD_MEMBERSHIP` (0x400).
const LEGACY_CONSTANTS: &[(&str, i32)] = device_constants!(("IP_ADD_MEMBERSHIP", 1024));

/// Upstream MicroPython's unix port: Linux values, upstream's extra names.
const MICROPYTHON_CONSTANTS: &[(&str, i32)] = &[
    ("AF_INET", libc::AF_INET),
    ("AF_INET6", libc::AF_INET6),
    ("SOCK_STREAM", libc::SOCK_STREAM),
    ("SOCK_DGRAM", libc::SOCK_DGRAM),
    ("SOCK_RAW", libc::SOCK_RAW),
    ("IPPROTO_IP", libc::IPPROTO_IP),
    ("IPPROTO_TCP", libc::IPPROTO_TCP),
    ("IPPROTO_UDP", libc::IPPROTO_UDP),
    ("SOL_SOCKET", libc::SOL_SOCKET),
    ("SO_REUSEADDR", libc::SO_REUSEADDR),
    ("SO_BROADCAST", libc::SO_BROADCAST),
    ("SO_KEEPALIVE", libc::SO_KEEPALIVE),
    ("SO_LINGER", libc::SO_LINGER),
    ("SO_ERROR", libc::SO_ERROR),
    ("IP_ADD_MEMBERSHIP", libc::IP_ADD_MEMBERSHIP),
    ("IP_DROP_MEMBERSHIP", libc::IP_DROP_MEMBERSHIP),
    ("MSG_PEEK", libc::MSG_PEEK),
    ("MSG_DONTWAIT", libc::MSG_DONTWAIT),
    ("MSG_DONTROUTE", libc::MSG_DONTROUTE),
];

/// The current process-wide profile.
pub fn current() -> Profile {
    Profile::ALL[CURRENT.load(Ordering::Relaxed) as usize]
}

/// Switches the process-wide profile (affects every socket from the next call on).
pub fn set_current(profile: Profile) {
    let index = Profile::ALL.iter().position(|p| *p == profile).unwrap_or(0);
    CURRENT.store(index as u8, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_tables_differ() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_name(p.name()), Some(p));
        }
        assert_eq!(Profile::from_name("nope"), None);
        let lookup = |p: Profile, n: &str| p.constants().iter().find(|c| c.0 == n).map(|c| c.1);
        assert_eq!(lookup(Profile::QuecPython, "SOL_SOCKET"), Some(4095));
        assert_eq!(lookup(Profile::MicroPython, "SOL_SOCKET"), Some(1));
        assert_eq!(lookup(Profile::MicroPython, "TCP_KEEPALIVE"), None);
        assert_eq!(lookup(Profile::Legacy, "IP_ADD_MEMBERSHIP"), Some(1024));
        assert_eq!(lookup(Profile::QuecPython, "IP_ADD_MEMBERSHIP"), None);
    }
}

//! TCP states as `getsocketsta()` reports them: lwIP's numbering 0–10, -1 after close.
//!
//! On Linux the state is the kernel's own (`TCP_INFO`), so it is always the real one; this
//! module translates Linux's numbering (`TCP_ESTABLISHED` = 1, ...) to lwIP's. Where the
//! system has no such query, [`TcpState::estimate`] derives the state from what the socket
//! has seen ([`Phase`] and the peer's FIN), which covers the states scripts test for.

/// What a socket has been through, as far as its own calls show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Created; no connect or listen yet (or the connect failed).
    New = 0,
    /// A connect is in progress (blocking, or non-blocking after `OSError(115)`).
    Connecting = 1,
    /// Connected (a connect succeeded, or accepted from a listener).
    Connected = 2,
    /// Listening.
    Listening = 3,
}

impl Phase {
    /// The phase stored as `raw` (unknown values are `New`).
    pub fn from_u8(raw: u8) -> Phase {
        match raw {
            1 => Phase::Connecting,
            2 => Phase::Connected,
            3 => Phase::Listening,
            _ => Phase::New,
        }
    }
}

use std::fmt;

/// An lwIP TCP PCB state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    /// Created and unused, or fully closed (also every UDP socket): 0.
    Closed,
    /// Listening: 1.
    Listen,
    /// Connect sent, no answer yet: 2.
    SynSent,
    /// Connection request received: 3.
    SynRcvd,
    /// Connected: 4.
    Established,
    /// Local close sent: 5.
    FinWait1,
    /// Local close acknowledged: 6.
    FinWait2,
    /// The peer sent FIN, not closed locally: 7.
    CloseWait,
    /// Both sides closing: 8.
    Closing,
    /// Closed locally after the peer's FIN: 9.
    LastAck,
    /// Waiting out old segments: 10.
    TimeWait,
}

impl TcpState {
    /// lwIP's number for the state (what `getsocketsta()` returns).
    pub fn lwip_code(self) -> i32 {
        self as i32
    }

    /// The state estimated from the socket's phase and whether a read saw the peer's FIN.
    pub fn estimate(phase: Phase, fin_seen: bool) -> TcpState {
        match phase {
            Phase::New => TcpState::Closed,
            Phase::Connecting => TcpState::SynSent,
            Phase::Listening => TcpState::Listen,
            Phase::Connected if fin_seen => TcpState::CloseWait,
            Phase::Connected => TcpState::Established,
        }
    }

    /// Translates Linux's `tcpi_state` (include/net/tcp_states.h).
    pub fn from_linux(state: u8) -> TcpState {
        match state {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRcvd,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::SynRcvd, // TCP_NEW_SYN_RECV
            _ => TcpState::Closed,   // 7 = TCP_CLOSE and anything unknown
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRcvd => "SYN_RCVD",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_states_map_to_lwip_numbers() {
        assert_eq!(TcpState::from_linux(7).lwip_code(), 0);
        assert_eq!(TcpState::from_linux(10).lwip_code(), 1);
        assert_eq!(TcpState::from_linux(2).lwip_code(), 2);
        assert_eq!(TcpState::from_linux(1).lwip_code(), 4);
        assert_eq!(TcpState::from_linux(8).lwip_code(), 7);
        assert_eq!(TcpState::from_linux(6).lwip_code(), 10);
        assert_eq!(TcpState::CloseWait.to_string(), "CLOSE_WAIT");
    }

    #[test]
    fn estimates_follow_the_phase() {
        let est = |p, fin| TcpState::estimate(p, fin).lwip_code();
        assert_eq!(est(Phase::New, false), 0);
        assert_eq!(est(Phase::Connecting, false), 2);
        assert_eq!(est(Phase::Connected, false), 4);
        assert_eq!(est(Phase::Connected, true), 7);
        assert_eq!(est(Phase::Listening, false), 1);
        assert_eq!(Phase::from_u8(Phase::Listening as u8), Phase::Listening);
    }
}

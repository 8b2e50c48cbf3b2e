//! TCP states as `getsocketsta()` reports them: lwIP's numbering 0–10, -1 after close.
//!
//! The state is the kernel's own (`TCP_INFO`), so it is always the real one; this module
//! only translates Linux's numbering (`TCP_ESTABLISHED` = 1, ...) to lwIP's.

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
}

//! [`ActionError`]: why an operator action could not be done. Every front end (console,
//! API, schedules, a cluster bridge) gets these and shows their `Display` text, so the
//! console prints what the API answers.

/// Why an operator action could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such session is online (it may exist in history: [`crate::hub::Hub::explain`]
    /// tells [`ActionError::Offline`] from [`ActionError::NoSession`]).
    #[error("session {0} is not online")]
    NotOnline(u64),
    /// The session exists in history but is offline.
    #[error("session {0} is offline")]
    Offline(u64),
    /// No session with this id ever existed.
    #[error("no session {0}")]
    NoSession(u64),
    /// No listener has that id.
    #[error("no listener {0}")]
    NoListener(u32),
    /// The session's outbox is full: the device is not reading.
    #[error("session {0} is not reading: its outbox is full")]
    Busy(u64),
    /// A datagram larger than UDP can carry.
    #[error("{len} bytes do not fit in one UDP datagram (at most {max})")]
    TooLarge {
        /// The size asked for.
        len: usize,
        /// The most one datagram carries.
        max: usize,
    },
    /// The socket refused the data (recorded as failed in the history).
    #[error("session {id}: send failed: {reason}")]
    SendFailed {
        /// The session.
        id: u64,
        /// The OS error text.
        reason: String,
    },
    /// The history could not be read to tell an offline session from an unknown one.
    #[error("history unavailable: {0}")]
    History(String),
}

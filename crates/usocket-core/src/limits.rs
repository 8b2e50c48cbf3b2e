//! What a real module can hold, so the PC can say where the device would fail.
//!
//! The PC is lenient (nothing here ever refuses a call); the binding turns these numbers
//! into a `DeviceCompatibilityWarning` the first time a script goes past them.
//!
//! * Sockets open at once: QuecPython documents a per-model limit (EC200A series 64,
//!   ECxxxG/ECxxxU series 15, BG95 20). The device profiles default to 15, the smallest
//!   documented limit, so a script that stays under it fits every documented model; the
//!   micropython profile has no limit. `USOCKET_MAX_SOCKETS` overrides it (0: no limit);
//!   the script runner's `--device` file sets that variable from its `max_sockets`.
//! * One receive buffer: `recv(n)`/`read(n)` allocate `n` bytes on the device's
//!   MicroPython heap, a few hundred KiB in all, so sizes above
//!   [`MAX_DEVICE_BUFFER_BYTES`] risk `MemoryError` there.

use crate::error::{Error, Result};
use crate::profile::Profile;

/// The environment variable that sets the socket limit (a number; 0 means no limit).
pub const MAX_SOCKETS_ENV: &str = "USOCKET_MAX_SOCKETS";

/// The smallest documented per-model socket limit (ECxxxG/ECxxxU series).
pub const DEFAULT_DEVICE_MAX_SOCKETS: usize = 15;

/// The largest single receive buffer assumed to fit the device's heap.
pub const MAX_DEVICE_BUFFER_BYTES: usize = 64 * 1024;

/// The socket limit `profile` uses without an override (`None`: no limit).
pub fn default_max_sockets(profile: Profile) -> Option<usize> {
    profile.is_device().then_some(DEFAULT_DEVICE_MAX_SOCKETS)
}

/// The socket limit in effect: `USOCKET_MAX_SOCKETS` when set (0 is no limit), else the
/// profile's default. A value that is not a non-negative integer is a `ValueError`.
pub fn max_sockets(profile: Profile) -> Result<Option<usize>> {
    match std::env::var(MAX_SOCKETS_ENV) {
        Ok(raw) if !raw.trim().is_empty() => match raw.trim().parse::<usize>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(Error::Value(format!(
                "{MAX_SOCKETS_ENV} must be a non-negative integer, not {raw:?}"
            ))),
        },
        _ => Ok(default_max_sockets(profile)),
    }
}

/// How many usocket sockets are open (created or accepted, not yet closed or dropped).
pub fn open_sockets() -> usize {
    crate::fd::open_handles()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_have_their_defaults() {
        assert_eq!(default_max_sockets(Profile::QuecPython), Some(15));
        assert_eq!(default_max_sockets(Profile::Legacy), Some(15));
        assert_eq!(default_max_sockets(Profile::MicroPython), None);
    }
}

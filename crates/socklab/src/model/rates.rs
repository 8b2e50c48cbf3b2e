//! Per-session traffic rates as the API shows them on a session object.

use serde::Serialize;

/// Seconds a session's rates are averaged over (one-second figures alone flicker).
pub const RATE_WINDOW_SECONDS: i64 = 5;

/// Bytes and messages per second, up and down, averaged over the last complete seconds
/// (at most [`RATE_WINDOW_SECONDS`]; fewer for a session younger than that).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SessionRates {
    /// Bytes per second from the device.
    pub bytes_up_per_s: f64,
    /// Bytes per second to the device.
    pub bytes_down_per_s: f64,
    /// Messages per second from the device.
    pub msgs_up_per_s: f64,
    /// Messages per second to the device.
    pub msgs_down_per_s: f64,
    /// The seconds averaged over.
    pub window_s: i64,
}

// Rates are finite averages (never NaN), so equality is an equivalence.
impl Eq for SessionRates {}

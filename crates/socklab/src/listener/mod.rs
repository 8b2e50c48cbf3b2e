//! Device listeners: [`tcp`] accepts connections and runs one task per connection;
//! [`udp`] runs one task per socket that turns peer addresses into sessions.

pub mod tcp;
pub mod udp;

/// The most bytes read from a device at once. Each read is one stored message; the
/// buffer exists only while data is being read, so idle connections cost no buffer.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Messages socklab may queue for one TCP device (operator sends waiting to be written).
pub const OUTBOX_CAPACITY: usize = 16;

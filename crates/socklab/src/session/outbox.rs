//! [`Outbox`]: a bounded queue of data for one reader (a TCP session's connection task,
//! or a UDP listener's loop), bounded in bytes, refusing at once when full.
//!
//! It replaces a `tokio::sync::mpsc::channel`, which allocates ~1.5 KiB up front (the
//! shared channel plus a block of 32 slots) even for the many devices nobody ever sends
//! to. This lives inline in its owner and allocates only when data is queued.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

/// Bookkeeping counted per queued entry on top of its bytes, so a flood of tiny sends is
/// bounded too.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// What an outbox entry weighs, in bytes.
pub trait Weighed {
    /// The payload bytes this entry holds.
    fn weight(&self) -> usize;
}

impl Weighed for Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// Why a send to an [`Outbox`] failed.
#[derive(Debug, PartialEq, Eq)]
pub enum OutboxError {
    /// Still full when the wait ran out: the device is not reading.
    Full,
    /// The connection task has finished; nothing will be written any more.
    Closed,
}

/// A queue of data for one reader: bounded in bytes, many senders. An entry is taken
/// when it fits, or when the queue is empty (so one big send can always go).
#[derive(Debug)]
pub struct Outbox<T = Bytes> {
    /// Queued entries and their total weight; locked only to push or pop, never across an
    /// await.
    queue: Mutex<(VecDeque<T>, usize)>,
    /// Most bytes (weights plus [`ENTRY_OVERHEAD_BYTES`] each) the queue may hold.
    capacity_bytes: usize,
    /// Set when the connection task is done: sends fail instead of queueing.
    closed: AtomicBool,
    /// Wakes the reader after a push (a stored permit if it is not waiting).
    data_ready: Notify,
    /// Wakes a sender waiting for room after a pop; all of them on close.
    room: Notify,
}

impl<T: Weighed> Outbox<T> {
    /// An empty outbox holding at most `capacity_bytes` (no allocation yet).
    pub fn new(capacity_bytes: usize) -> Outbox<T> {
        Outbox {
            queue: Mutex::new((VecDeque::new(), 0)),
            capacity_bytes,
            closed: AtomicBool::new(false),
            data_ready: Notify::new(),
            room: Notify::new(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, (VecDeque<T>, usize)> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `data`, waiting up to `wait` for room (with `Duration::ZERO`: only if there
    /// is room now). On failure the entry comes back with the reason.
    pub async fn send_timeout(&self, data: T, wait: Duration) -> Result<(), (OutboxError, T)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut data = Some(data);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Register before checking, so a pop or close in between is not missed.
            room.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return Err((OutboxError::Closed, data.take().expect("still held")));
            }
            {
                let mut queue = self.queue();
                let cost = data
                    .as_ref()
                    .map_or(0, |d| d.weight() + ENTRY_OVERHEAD_BYTES);
                if queue.0.is_empty() || queue.1 + cost <= self.capacity_bytes {
                    queue.1 += cost;
                    queue.0.extend(data.take());
                }
            }
            if data.is_none() {
                self.data_ready.notify_one();
                return Ok(());
            }
            if wait.is_zero() || tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err((OutboxError::Full, data.take().expect("still held")));
            }
        }
    }

    /// Waits for the oldest queued entry and takes it. Cancel-safe: an entry is taken only
    /// in the poll that returns it, so a `select!` that picks another branch loses nothing.
    pub async fn recv(&self) -> T {
        loop {
            let ready = self.data_ready.notified();
            tokio::pin!(ready);
            // Register before checking, so a push in between is not missed.
            ready.as_mut().enable();
            let popped = {
                let mut queue = self.queue();
                let popped = queue.0.pop_front();
                if let Some(p) = &popped {
                    queue.1 -= p.weight() + ENTRY_OVERHEAD_BYTES;
                }
                popped
            };
            if let Some(data) = popped {
                self.room.notify_one();
                return data;
            }
            ready.await;
        }
    }

    /// Refuses further sends, wakes the senders waiting for room (they fail as closed) and
    /// returns what is still queued (it will never be written: the caller records it as
    /// undelivered). Called by the reader when it is done.
    pub fn close(&self) -> Vec<T> {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
        let (left, _) = std::mem::take(&mut *self.queue());
        left.into()
    }

    /// Bytes queued now (weights plus overhead).
    pub fn queued_bytes(&self) -> usize {
        self.queue().1
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// The outbox keeps order, refuses a send when full after the wait, lets a waiting
    /// sender in once the reader makes room, and fails waiting senders on close.
    #[tokio::test]
    async fn outbox_bounded_ordered_closable() {
        // Room for two one-byte entries.
        let outbox = Arc::new(Outbox::new(2 * (1 + ENTRY_OVERHEAD_BYTES)));
        let zero = Duration::ZERO;
        outbox.send_timeout(Bytes::from("a"), zero).await.unwrap();
        outbox.send_timeout(Bytes::from("b"), zero).await.unwrap();
        let full = outbox.send_timeout(Bytes::from("x"), Duration::from_millis(20));
        assert_eq!(full.await.map_err(|e| e.0), Err(OutboxError::Full));
        let waiter = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                let wait = Duration::from_secs(5);
                outbox.send_timeout(Bytes::from("c"), wait).await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(outbox.recv().await, "a");
        assert_eq!(waiter.await.unwrap().map_err(|e| e.0), Ok(()));
        assert_eq!(outbox.recv().await, "b");
        assert_eq!(outbox.recv().await, "c");
        // A recv that loses a select takes nothing.
        tokio::select! {
            biased;
            _ = std::future::ready(()) => {}
            _ = outbox.recv() => unreachable!(),
        }
        outbox.send_timeout(Bytes::from("d"), zero).await.unwrap();
        outbox.send_timeout(Bytes::from("e"), zero).await.unwrap();
        let blocked = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                let wait = Duration::from_secs(5);
                outbox.send_timeout(Bytes::from("f"), wait).await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(outbox.close(), vec![Bytes::from("d"), Bytes::from("e")]);
        let closed = tokio::time::timeout(Duration::from_secs(1), blocked).await;
        assert_eq!(
            closed.unwrap().unwrap().map_err(|e| e.0),
            Err(OutboxError::Closed)
        );
        let after = outbox.send_timeout(Bytes::from("g"), zero).await;
        assert_eq!(after.map_err(|e| e.0), Err(OutboxError::Closed));
    }
}

#[cfg(test)]
mod byte_tests {
    use super::*;

    /// The bound is in bytes: one big entry fits an empty outbox, then a full one refuses
    /// at once (no waiting with a zero wait) and gives the data back.
    #[tokio::test]
    async fn bounded_in_bytes() {
        let outbox: Outbox = Outbox::new(1000);
        let big = Bytes::from(vec![0u8; 5000]);
        outbox
            .send_timeout(big.clone(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(outbox.queued_bytes(), 5000 + ENTRY_OVERHEAD_BYTES);
        let (e, back) = outbox
            .send_timeout(Bytes::from("x"), Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!((e, back), (OutboxError::Full, Bytes::from("x")));
        assert_eq!(outbox.recv().await, big);
        assert_eq!(outbox.queued_bytes(), 0);
    }
}

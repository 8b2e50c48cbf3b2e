//! One server per database: an exclusive `flock` on the database file itself.
//!
//! The lock is taken on the opened file, so every name that reaches the same file (the
//! path itself, a symlink, a hard link, a bind mount) finds it held: two servers on one
//! database would continue the same session ids and end each other's sessions. SQLite's
//! own locks are POSIX record locks, which on Linux are independent of `flock`, so this
//! lock and SQLite's never interfere. The lock goes with the descriptor: it is released
//! when the [`DbLock`] is dropped or the process ends, however it ends.

use std::fs::File;
use std::path::Path;

use super::StoreError;

/// An exclusive lock on a database file, held while this value lives.
#[derive(Debug)]
pub struct DbLock {
    /// The open database file; closing it releases the lock.
    _file: File,
}

impl DbLock {
    /// Opens (creating if needed) the database file at `path` and locks it without
    /// waiting. A file already locked by another server, under whatever name, gives
    /// [`StoreError::Locked`] with the holder's pid when the system can tell it.
    pub fn acquire(path: &Path) -> Result<DbLock, StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if !try_lock(&file) {
            return Err(StoreError::Locked {
                path: path.to_path_buf(),
                pid: holder_pid(&file),
            });
        }
        Ok(DbLock { _file: file })
    }
}

/// An exclusive lock on `file` without waiting (`flock(LOCK_EX | LOCK_NB)` on Unix): true
/// when this descriptor now holds it.
fn try_lock(file: &File) -> bool {
    match file.try_lock() {
        Ok(()) => true,
        Err(std::fs::TryLockError::WouldBlock) => false,
        Err(std::fs::TryLockError::Error(e)) => {
            // A file system without locks: run unlocked rather than refuse to start.
            tracing::warn!("cannot lock the database file: {e}");
            true
        }
    }
}

/// The pid holding a `flock` on the same file, from `/proc/locks` (Linux); `None` where
/// the system does not say.
#[cfg(target_os = "linux")]
fn holder_pid(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let inode = meta.ino();
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let mut id = fields.get(5)?.split(':');
        let maj = u32::from_str_radix(id.next()?, 16).ok()?;
        let min = u32::from_str_radix(id.next()?, 16).ok()?;
        let ino: u64 = id.next()?.parse().ok()?;
        (ino == inode && maj == major && min == minor)
            .then(|| fields.get(4)?.parse().ok())
            .flatten()
    })
}

#[cfg(not(target_os = "linux"))]
fn holder_pid(_file: &File) -> Option<u32> {
    None
}

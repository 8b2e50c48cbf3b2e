//! Operating-system limits.

use std::io;

/// Raises this process's soft `RLIMIT_NOFILE` to `wanted`, capped by the hard limit, and
/// tries to raise the hard limit too when `wanted` is above it (works only with
/// `CAP_SYS_RESOURCE`; a refusal is not an error). Returns the `(soft, hard)` limits in force
/// afterwards.
///
/// Every idle connection costs one descriptor, so this limit, not memory, is usually what
/// stops a connection-count benchmark first.
pub fn raise_nofile_limit(wanted: u64) -> io::Result<(u64, u64)> {
    let mut lim = get_nofile()?;
    if wanted > lim.rlim_max as u64 {
        let bigger = libc::rlimit {
            rlim_cur: wanted as libc::rlim_t,
            rlim_max: wanted as libc::rlim_t,
        };
        // SAFETY: `bigger` is a valid rlimit that outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &bigger) } == 0 {
            return current();
        }
    }
    let target = (wanted as libc::rlim_t).min(lim.rlim_max);
    if target > lim.rlim_cur {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit that outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    current()
}

/// The `(soft, hard)` `RLIMIT_NOFILE` of this process.
pub fn current() -> io::Result<(u64, u64)> {
    let lim = get_nofile()?;
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

fn get_nofile() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asking for no more than we have keeps the limits as they are.
    #[test]
    fn raise_to_current_is_a_no_op() {
        let (soft, hard) = current().unwrap();
        assert_eq!(raise_nofile_limit(soft).unwrap(), (soft, hard));
    }
}

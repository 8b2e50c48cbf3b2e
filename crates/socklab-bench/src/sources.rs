//! Local source addresses, and connecting from them.
//!
//! A client connection needs a free (source address, source port) pair, and Linux hands out
//! source ports from `net.ipv4.ip_local_port_range` (about 28,000 by default) per source
//! address. Spreading connections round-robin over several loopback addresses (all of
//! 127.0.0.0/8 is local on Linux) gets past that limit without touching sysctls.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// The most addresses one `--sources` range may name (bounds the pool's size).
pub const MAX_SOURCES: usize = 1024;

/// Parses `--sources`: a comma-separated list of IPv4 addresses and ranges
/// `A.B.C.X-A.B.C.Y` (same first three octets). Every address must be loopback, because
/// these benchmarks never leave the machine.
pub fn parse_sources(spec: &str) -> Result<Vec<Ipv4Addr>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (parse_loopback(a)?, parse_loopback(b)?),
            None => {
                let a = parse_loopback(part)?;
                (a, a)
            }
        };
        let (f, l) = (first.octets(), last.octets());
        if f[..3] != l[..3] || f[3] > l[3] {
            return Err(format!(
                "{part:?}: a range must be A.B.C.X-A.B.C.Y with X <= Y"
            ));
        }
        out.extend((f[3]..=l[3]).map(|x| Ipv4Addr::new(f[0], f[1], f[2], x)));
        if out.len() > MAX_SOURCES {
            return Err(format!("more than {MAX_SOURCES} source addresses"));
        }
    }
    if out.is_empty() {
        return Err("no source address given".into());
    }
    Ok(out)
}

fn parse_loopback(s: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))?;
    if !ip.is_loopback() {
        return Err(format!("{ip} is not a loopback address (127.0.0.0/8)"));
    }
    Ok(ip)
}

/// Checks that a target address is loopback.
pub fn parse_loopback_target(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an ADDR:PORT"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address"));
    }
    Ok(addr)
}

/// The source address for the `i`-th connection: round-robin over `sources`.
pub fn source_for(sources: &[Ipv4Addr], i: usize) -> Ipv4Addr {
    sources[i % sources.len()]
}

/// Connects to `target` from `source` (port chosen by the kernel), giving up after
/// `timeout` with `TimedOut`.
///
/// `SO_REUSEADDR` lets the kernel reuse a source port whose previous connection is still
/// in TIME_WAIT from an earlier run, which otherwise shrinks the port range run after run.
pub async fn connect_from(
    source: Ipv4Addr,
    target: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let socket = match target.ip() {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    if target.is_ipv4() {
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    }
    match tokio::time::timeout(timeout, socket.connect(target)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lists and ranges expand in order; non-loopback and reversed ranges are refused.
    #[test]
    fn parses_lists_and_ranges() {
        let v = parse_sources("127.0.0.2-127.0.0.4, 127.1.0.1").unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[3], Ipv4Addr::new(127, 1, 0, 1));
        assert!(parse_sources("10.0.0.1").is_err());
        assert!(parse_sources("127.0.0.5-127.0.0.2").is_err());
        assert!(parse_sources("127.0.0.1-127.0.1.1").is_err());
        assert!(parse_sources("").is_err());
        assert!(parse_loopback_target("192.168.1.1:80").is_err());
        assert!(parse_loopback_target("127.0.0.1:80").is_ok());
    }

    /// Connections take the sources in turn.
    #[test]
    fn round_robin() {
        let v = parse_sources("127.0.0.2-127.0.0.3").unwrap();
        assert_eq!(source_for(&v, 0), source_for(&v, 2));
        assert_ne!(source_for(&v, 0), source_for(&v, 1));
    }
}

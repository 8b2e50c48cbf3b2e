//! Addresses: resolving `(host, port)` the way the device does, `getaddrinfo`, and
//! formatting socket addresses as `(ip_str, port_int)`.
//!
//! Resolution goes through the system resolver (`getaddrinfo(3)`) after the address map
//! ([`crate::addrmap`]) has had its say. It blocks in libc and is not sliced.
//!
//! # Dual stack
//!
//! As in lwIP built with IPv4 and IPv6 (the device's stack): an `AF_INET6` socket is dual
//! stack. Bound to `::` (or `''`) it also accepts IPv4 connections and datagrams, whose
//! addresses it reports IPv4-mapped (`'::ffff:127.0.0.1'`); it reaches IPv4 peers through
//! IPv4-mapped addresses. A numeric address of the other family (`'127.0.0.1'` on an
//! `AF_INET6` socket, any IPv6 address on an `AF_INET` socket) is refused with
//! `OSError(22)` (EINVAL), as lwIP refuses it, in `bind`, `connect` and `sendto`. Host
//! names resolve within the socket's family.

use crate::addrmap;
use crate::error::{Error, Result, errno};
use crate::interrupt::{self, Checkpoint, SLICE};
use crate::profile::{self, Profile};
use socket2::SockAddr;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::mpsc;
use std::thread;

/// One `getaddrinfo` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// Address family (2 or 10).
    pub family: i32,
    /// Socket type as reported to the script (always 1 on the device).
    pub socktype: i32,
    /// Protocol as reported to the script (always 0 on the device).
    pub proto: i32,
    /// Canonical name: the host exactly as passed on the device, `''` upstream.
    pub canonname: String,
    /// The resolved address.
    pub addr: SocketAddr,
}

/// The port argument of `getaddrinfo`: a number or a service string.
#[derive(Debug, Clone, Copy)]
pub enum Port<'a> {
    /// A numeric port.
    Number(u16),
    /// A service name or numeric string, passed to the resolver as is.
    Service(&'a str),
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::value("embedded null character"))
}

/// Resolver results: (family, socktype, proto, address).
type Resolved = Vec<(i32, i32, i32, SocketAddr)>;

/// Runs the system resolver; `Ok(None)` on any resolver failure (the profile decides
/// the errno).
fn resolve_blocking(
    host: &str,
    service: &str,
    family: i32,
    socktype: i32,
    proto: i32,
    flags: i32,
) -> Result<Option<Resolved>> {
    let node = cstring(host)?;
    let serv = cstring(service)?;
    // SAFETY: addrinfo is plain old data; all-zero is the documented "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_protocol = proto;
    hints.ai_flags = flags;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: node/serv are NUL-terminated, hints is initialised, res receives a list we free.
    let rc = unsafe { libc::getaddrinfo(node.as_ptr(), serv.as_ptr(), &hints, &mut res) };
    if rc != 0 {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: cur walks the list getaddrinfo returned, which stays valid until freed.
        let ai = unsafe { &*cur };
        if !ai.ai_addr.is_null() {
            // SAFETY: ai_addr points at ai_addrlen bytes of a sockaddr.
            let (_, sa) = unsafe {
                SockAddr::try_init(|storage, len| {
                    let n =
                        (ai.ai_addrlen as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
                    std::ptr::copy_nonoverlapping(ai.ai_addr.cast::<u8>(), storage.cast::<u8>(), n);
                    *len = n as libc::socklen_t;
                    Ok(())
                })
            }
            .expect("copying a sockaddr cannot fail");
            if let Some(sa) = sa.as_socket() {
                out.push((ai.ai_family, ai.ai_socktype, ai.ai_protocol, sa));
            }
        }
        cur = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    Ok(Some(out))
}

/// Runs the resolver without blocking the caller for more than one slice at a time: a
/// name is resolved on a helper thread while the caller runs its checkpoint (so Ctrl-C
/// ends a slow DNS lookup); IP literals resolve inline.
fn system_resolve(
    host: &str,
    service: &str,
    family: i32,
    socktype: i32,
    proto: i32,
    flags: i32,
    check: Checkpoint<'_>,
) -> Result<Option<Resolved>> {
    if host.parse::<IpAddr>().is_ok() {
        return resolve_blocking(host, service, family, socktype, proto, flags);
    }
    let (tx, rx) = mpsc::channel();
    let (h, s) = (host.to_owned(), service.to_owned());
    thread::Builder::new()
        .name("usocket-dns".into())
        .spawn(move || {
            let _ = tx.send(resolve_blocking(&h, &s, family, socktype, proto, flags));
        })
        .map_err(|_| Error::Os(errno::ENOMEM))?;
    loop {
        match rx.recv_timeout(SLICE) {
            Ok(result) => return result,
            Err(mpsc::RecvTimeoutError::Timeout) => interrupt::between_slices(check)?,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
        }
    }
}

/// `usocket.getaddrinfo(host, port, af, type, proto, flags)` for the current profile.
///
/// Device profiles resolve with family unspecified and type SOCK_STREAM, keep one result
/// (IPv4 first) and report type 1, proto 0 and canonname = `host` as passed; `''` means
/// `0.0.0.0`. On failure quecpython raises `OSError(-202)` and legacy returns `[]`. The
/// micropython profile honours the hints and returns every result.
pub fn getaddrinfo(
    host: &str,
    port: Port<'_>,
    af: i32,
    socktype: i32,
    proto: i32,
    flags: i32,
    check: Checkpoint<'_>,
) -> Result<Vec<AddrInfo>> {
    let profile = profile::current();
    let (mut target, mut service) = (host.to_string(), port_string(port));
    if let Port::Number(p) = port
        && let Some((h, p2)) = addrmap::apply(host, p)
    {
        target = h;
        service = p2.to_string();
    }
    if target.is_empty() {
        target = "0.0.0.0".into();
    }
    if profile == Profile::MicroPython {
        let st = if socktype == 0 {
            libc::SOCK_STREAM
        } else {
            socktype
        };
        return match system_resolve(&target, &service, af, st, proto, flags, check)? {
            Some(list) if !list.is_empty() => Ok(list
                .into_iter()
                .map(|(family, socktype, proto, addr)| AddrInfo {
                    family,
                    socktype,
                    proto,
                    canonname: String::new(),
                    addr,
                })
                .collect()),
            _ => Err(Error::Os(errno::DNS_FAILURE)),
        };
    }
    let found = match system_resolve(
        &target,
        &service,
        libc::AF_UNSPEC,
        libc::SOCK_STREAM,
        0,
        0,
        check,
    )? {
        Some(list) => list
            .iter()
            .find(|e| e.3.is_ipv4())
            .or(list.first())
            .map(|e| e.3),
        None => None,
    };
    match found {
        Some(addr) => Ok(vec![AddrInfo {
            family: if addr.is_ipv4() { 2 } else { 10 },
            socktype: 1,
            proto: 0,
            canonname: host.to_string(),
            addr,
        }]),
        None if profile == Profile::Legacy => Ok(Vec::new()),
        None => Err(Error::Os(errno::DNS_FAILURE)),
    }
}

fn port_string(port: Port<'_>) -> String {
    match port {
        Port::Number(p) => p.to_string(),
        Port::Service(s) => s.to_string(),
    }
}

/// The unspecified address of `family` (what `''` means in `bind`).
fn any_addr(family: i32) -> IpAddr {
    if family == libc::AF_INET6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Parses a numeric host for a socket of `family` (`''` is the unspecified address).
pub fn parse_numeric(host: &str, family: i32) -> Option<IpAddr> {
    if host.is_empty() {
        return Some(any_addr(family));
    }
    if family == libc::AF_INET6 {
        host.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// `OSError(22)` when `host` is a numeric address of the other family than the socket's.
///
/// Dual stack as lwIP does it: an `AF_INET6` socket takes IPv6 addresses, IPv4-mapped ones
/// (`::ffff:a.b.c.d`) included, which reach IPv4 peers; a plain IPv4 address there, or any
/// IPv6 address on an `AF_INET` socket, is a family mismatch that lwIP refuses with
/// `EINVAL` in `bind`, `connect` and `sendto`.
fn family_mismatch(host: &str, family: i32) -> Result<()> {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) if family == libc::AF_INET6 => Err(Error::Os(errno::EINVAL)),
        Ok(IpAddr::V6(_)) if family == libc::AF_INET => Err(Error::Os(errno::EINVAL)),
        _ => Ok(()),
    }
}

/// Resolves `(host, port)` for a socket of `family` (bind and connect accept host names).
///
/// A numeric address of the other family is `OSError(22)` (see the module docs on dual
/// stack). A DNS failure is `OSError(-202)`, or `OSError(202)` with `legacy_positive`
/// (legacy firmware inside `connect()`).
pub fn resolve_for(
    family: i32,
    host: &str,
    port: u16,
    legacy_positive: bool,
    check: Checkpoint<'_>,
) -> Result<SockAddr> {
    if let Some(ip) = parse_numeric(host, family) {
        return Ok(SockAddr::from(SocketAddr::new(ip, port)));
    }
    family_mismatch(host, family)?;
    let dns_error = if legacy_positive {
        errno::DNS_FAILURE_LEGACY
    } else {
        errno::DNS_FAILURE
    };
    match system_resolve(
        host,
        &port.to_string(),
        family,
        libc::SOCK_STREAM,
        0,
        0,
        check,
    )? {
        Some(list) => list
            .first()
            .map(|e| SockAddr::from(e.3))
            .ok_or(Error::Os(dns_error)),
        None => Err(Error::Os(dns_error)),
    }
}

/// Where a call sends: the address map first, then resolution (`connect`) or the
/// device's numeric-only rule (`sendto`, where a name is `ValueError("invalid arguments")`
/// unless a map rule rewrote it). An unmapped destination then passes the map's guard
/// ([`addrmap::check_unmapped`]): refused with `OSError(113)` under `--strict-map`.
pub fn destination(
    family: i32,
    host: &str,
    port: u16,
    numeric_only: bool,
    check: Checkpoint<'_>,
) -> Result<SockAddr> {
    if let Some((to_host, to_port)) = addrmap::apply(host, port) {
        return resolve_for(family, &to_host, to_port, false, check);
    }
    let dest = if numeric_only {
        family_mismatch(host, family)?;
        match parse_numeric(host, family) {
            Some(ip) => SockAddr::from(SocketAddr::new(ip, port)),
            None => return Err(Error::value("invalid arguments")),
        }
    } else {
        let legacy = profile::current() == Profile::Legacy;
        resolve_for(family, host, port, legacy, check)?
    };
    if let Some(sa) = dest.as_socket() {
        addrmap::check_unmapped(host, sa).map_err(|()| Error::Os(errno::EHOSTUNREACH))?;
    }
    Ok(dest)
}

/// `(ip_str, port)` of a socket address; IPv6 too is a 2-tuple (no flowinfo/scope).
pub fn split(addr: &SockAddr) -> (String, u16) {
    match addr.as_socket() {
        Some(sa) => (sa.ip().to_string(), sa.port()),
        None => (String::new(), 0),
    }
}

/// `inet_pton(af, text)`: the packed address bytes; `OSError(22)` when text is not an
/// address of `af`.
pub fn inet_pton(af: i32, text: &str) -> Result<Vec<u8>> {
    match af {
        libc::AF_INET => text
            .parse::<Ipv4Addr>()
            .map(|a| a.octets().to_vec())
            .map_err(|_| Error::Os(errno::EINVAL)),
        libc::AF_INET6 => text
            .parse::<Ipv6Addr>()
            .map(|a| a.octets().to_vec())
            .map_err(|_| Error::Os(errno::EINVAL)),
        _ => Err(Error::Os(errno::EINVAL)),
    }
}

/// `inet_ntop(af, packed)`: the text form; `ValueError` when the length does not fit `af`.
pub fn inet_ntop(af: i32, packed: &[u8]) -> Result<String> {
    match (af, packed.len()) {
        (libc::AF_INET, 4) => {
            Ok(Ipv4Addr::new(packed[0], packed[1], packed[2], packed[3]).to_string())
        }
        (libc::AF_INET6, 16) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(packed);
            Ok(Ipv6Addr::from(b).to_string())
        }
        (libc::AF_INET | libc::AF_INET6, _) => {
            Err(Error::value("invalid length of packed IP address string"))
        }
        _ => Err(Error::Os(errno::EINVAL)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_hosts_and_the_empty_host() {
        assert_eq!(
            parse_numeric("", libc::AF_INET),
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
        assert_eq!(
            parse_numeric("", libc::AF_INET6),
            Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
        );
        assert_eq!(parse_numeric("::1", libc::AF_INET), None);
        assert_eq!(
            parse_numeric("10.0.0.1", libc::AF_INET),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            destination(libc::AF_INET, "example.com", 80, true, &mut || Ok(())),
            Err(Error::value("invalid arguments"))
        );
    }

    #[test]
    fn the_other_family_is_einval_and_mapped_addresses_are_ipv6() {
        let ok = |f, h| resolve_for(f, h, 80, false, &mut || Ok(())).is_ok();
        let err = |f, h| resolve_for(f, h, 80, false, &mut || Ok(())).err();
        assert_eq!(
            err(libc::AF_INET6, "127.0.0.1"),
            Some(Error::Os(errno::EINVAL))
        );
        assert_eq!(err(libc::AF_INET, "::1"), Some(Error::Os(errno::EINVAL)));
        assert!(ok(libc::AF_INET6, "::ffff:127.0.0.1"));
        assert_eq!(
            destination(libc::AF_INET, "::ffff:1.2.3.4", 80, true, &mut || Ok(())),
            Err(Error::Os(errno::EINVAL))
        );
    }

    #[test]
    fn pton_and_ntop_round_trip() {
        let b = inet_pton(libc::AF_INET6, "::1").unwrap();
        assert_eq!(inet_ntop(libc::AF_INET6, &b).unwrap(), "::1");
        assert_eq!(inet_pton(libc::AF_INET, "1.2.3"), Err(Error::Os(22)));
    }

    #[test]
    fn device_getaddrinfo_shape() {
        let r = getaddrinfo("127.0.0.1", Port::Number(80), 0, 0, 0, 0, &mut || Ok(())).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (
                r[0].family,
                r[0].socktype,
                r[0].proto,
                r[0].canonname.as_str()
            ),
            (2, 1, 0, "127.0.0.1")
        );
        assert_eq!(r[0].addr, "127.0.0.1:80".parse().unwrap());
    }
}

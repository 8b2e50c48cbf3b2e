//! Access control for the API and dashboard.
//!
//! * Token: when one is in force, every protected route needs `Authorization: Bearer
//!   TOKEN` or `?token=TOKEN` (EventSource and the first page load cannot set headers).
//! * Origin: a state-changing call (POST/PUT/DELETE/PATCH) carrying an `Origin` header
//!   that is not this server's own origin is refused, so a web page on another site cannot
//!   drive socklab through the operator's browser. Calls without `Origin` (curl, scripts)
//!   are allowed: browsers always send it on cross-origin requests.
//! * Host: without a token (loopback only), the `Host` header must name a loopback
//!   address or `localhost`. Otherwise a web page could rebind its own DNS name to
//!   127.0.0.1 and talk to socklab as a "same-origin" page (DNS rebinding).

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppContext, AppError, AppState};

/// Fewest characters a token must have when the API listens beyond loopback (a generated
/// token has 32).
pub const MIN_TOKEN_CHARS: usize = 16;

/// Refuses a token that cannot protect the API at `http`: blank, with spaces around it or
/// control characters in it (a header cannot carry them intact), or shorter than [`MIN_TOKEN_CHARS`] on a
/// non-loopback address. A short token on loopback is allowed with a warning.
pub fn check_token_strength(token: Option<&str>, http: std::net::SocketAddr) -> Result<(), String> {
    let Some(token) = token else {
        return Ok(());
    };
    if token.trim().is_empty() {
        return Err(format!(
            "the API token (--token) is blank; give one of at least {MIN_TOKEN_CHARS} characters, \
             or leave --token out (a non-loopback --http then gets a generated one)"
        ));
    }
    if token.trim() != token || token.chars().any(char::is_control) {
        return Err(
            "the API token (--token) must not start or end with spaces or contain control characters"
                .into(),
        );
    }
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        if !http.ip().is_loopback() {
            return Err(format!(
                "the API token (--token) has {chars} characters; on a non-loopback --http \
                 ({http}) it needs at least {MIN_TOKEN_CHARS}, or leave --token out to get a generated one"
            ));
        }
        tracing::warn!(
            "the API token has only {chars} characters; use at least {MIN_TOKEN_CHARS} before \
             exposing the API beyond loopback"
        );
    }
    Ok(())
}

/// Middleware: 401 without the token, 403 for a foreign origin, else the route.
pub async fn check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match refusal(&st, &req) {
        Some(refused) => refused.into_response(),
        None => next.run(req).await,
    }
}

/// Why `req` may not reach a protected route (the checks of [`check`]), or `None`.
pub fn refusal(st: &AppContext, req: &Request) -> Option<AppError> {
    match &st.token {
        Some(token) if !presents_token(req, token) => return Some(AppError::Unauthorized),
        None if !local_host(req) => {
            return Some(AppError::Forbidden(
                "Host header is not a loopback address (DNS rebinding protection); \
                 use http://127.0.0.1:PORT/ or start socklab with --token"
                    .into(),
            ));
        }
        _ => {}
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && let Some(origin) = foreign_origin(req) {
        return Some(AppError::Forbidden(format!(
            "cross-origin request from {origin} refused"
        )));
    }
    None
}

/// Whether the request carries `token` in the header or the query string.
fn presents_token(req: &Request, token: &str) -> bool {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if bearer.is_some_and(|b| same(b, token)) {
        return true;
    }
    req.uri().query().unwrap_or("").split('&').any(|pair| {
        pair.strip_prefix("token=")
            .is_some_and(|v| same(&percent_decode(v), token))
    })
}

/// Compares without an early exit, so timing does not reveal how much of a guess matched.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Minimal %XX decoding for the token parameter (generated tokens are hex, but a user's
/// own token may contain anything).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the `Host` header (if any) names loopback: `localhost`, `127.x.x.x` or `[::1]`,
/// with or without a port.
fn local_host(req: &Request) -> bool {
    let Some(host) = req.headers().get(header::HOST) else {
        return true; // HTTP/1.0 clients; browsers always send Host
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The request's `Origin` if it is present and differs from `http(s)://<Host>`.
fn foreign_origin(req: &Request) -> Option<String> {
    let origin = req
        .headers()
        .get(header::ORIGIN)?
        .to_str()
        .unwrap_or("<invalid>");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => None,
        _ => Some(origin.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blank tokens are refused everywhere, short ones beyond loopback only.
    #[test]
    fn token_strength() {
        let lo: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let strong = "0123456789abcdef";
        assert!(check_token_strength(None, any).is_ok());
        assert!(check_token_strength(Some(strong), any).is_ok());
        assert!(check_token_strength(Some("x"), lo).is_ok());
        assert!(check_token_strength(Some("0123456789 abcdef"), any).is_ok());
        for bad in [
            "",
            " ",
            "x",
            "0123456789abcde",
            " 0123456789abcdef",
            "0123456789abcdef\n",
        ] {
            assert!(check_token_strength(Some(bad), any).is_err(), "{bad:?}");
        }
        assert!(check_token_strength(Some(""), lo).is_err());
    }

    /// Query tokens are percent-decoded; comparison is exact.
    #[test]
    fn token_helpers() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    fn with_host(host: &str) -> Request {
        Request::builder()
            .header(header::HOST, host)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    /// Loopback names pass the rebinding check; anything else does not.
    #[test]
    fn local_hosts() {
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8080",
            "127.9.9.9",
        ] {
            assert!(local_host(&with_host(ok)), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "192.168.1.2:8080",
            "[::2]:1",
            "localhost.evil",
        ] {
            assert!(!local_host(&with_host(bad)), "{bad}");
        }
    }
}

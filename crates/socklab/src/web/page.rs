//! What a browser sees when it opens the dashboard without the right to: a short page that
//! says how to open it, instead of the API's JSON error (the status stays 401 or 403).
//! Only requests that accept HTML get it; scripts keep the JSON error.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const NEEDS_TOKEN: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>socklab: token needed</title></head><body style=\"font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.5\">\
<h1>This socklab needs a token</h1>\
<p>The dashboard and the API of this socklab are protected by a token. Open the address \
socklab printed when it started; it ends in <code>?token=...</code>:</p>\
<pre>socklab: dashboard http://HOST:PORT/?token=TOKEN</pre>\
<p>The token is also on the line <code>socklab: API token ...</code>, and in the \
<code>--ready-file</code> if one was given. Scripts send it as \
<code>Authorization: Bearer TOKEN</code>.</p></body></html>";

const NEEDS_LOOPBACK: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>socklab: open it through loopback</title></head><body style=\"font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.5\">\
<h1>Open this socklab through loopback</h1>\
<p>This socklab has no token, so it only answers pages opened as \
<code>http://127.0.0.1:PORT/</code> or <code>http://localhost:PORT/</code> on the machine \
it runs on. That keeps other web sites from reaching it through your browser.</p>\
<p>To open it from another machine, restart socklab with <code>--token TOKEN</code> (a long \
random one, e.g. from <code>openssl rand -hex 16</code>) and open \
<code>http://HOST:PORT/?token=TOKEN</code>.</p></body></html>";

/// Whether `req` is a browser opening the dashboard page (one that accepts HTML).
pub fn wants_page(req: &Request) -> bool {
    req.uri().path() == "/"
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

/// The help page, with the same status, in place of a 401 or 403 answer to a
/// [`wants_page`] request (the router's front middleware applies it); any other answer
/// unchanged.
pub fn explain(resp: Response) -> Response {
    let body = match resp.status() {
        StatusCode::UNAUTHORIZED => NEEDS_TOKEN,
        StatusCode::FORBIDDEN => NEEDS_LOOPBACK,
        _ => return resp,
    };
    (
        resp.status(),
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        Html(body),
    )
        .into_response()
}

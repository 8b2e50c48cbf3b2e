//! The dashboard, embedded in the binary (no Node build): `index.html`, the script's ES
//! modules (`main.js` and what it imports) and `style.css` from `crates/socklab/assets/`.

use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::AppError;

/// Content-Security-Policy of the dashboard: only its own script, style and API. Device
/// payloads are rendered as text by the page; this is the second line of defence should a
/// payload ever reach the DOM as markup (no inline script or handler can run).
pub const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// The dashboard page. No referrer is sent from it, since its URL may carry the token.
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, DASHBOARD_CSP),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(include_str!("../../assets/index.html")),
    )
}

/// The dashboard's static files besides the page: (name under `/assets/`, content,
/// content type). The script is a set of ES modules loaded from `main.js`, all same-origin,
/// so `script-src 'self'` covers them.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("main.js", include_str!("../../assets/main.js"), JS),
    ("state.js", include_str!("../../assets/state.js"), JS),
    ("bytes.js", include_str!("../../assets/bytes.js"), JS),
    ("frame.js", include_str!("../../assets/frame.js"), JS),
    ("api.js", include_str!("../../assets/api.js"), JS),
    ("model.js", include_str!("../../assets/model.js"), JS),
    ("sessions.js", include_str!("../../assets/sessions.js"), JS),
    ("log.js", include_str!("../../assets/log.js"), JS),
    ("events.js", include_str!("../../assets/events.js"), JS),
    ("chart.js", include_str!("../../assets/chart.js"), JS),
    (
        "listeners.js",
        include_str!("../../assets/listeners.js"),
        JS,
    ),
    ("send.js", include_str!("../../assets/send.js"), JS),
    ("search.js", include_str!("../../assets/search.js"), JS),
    ("devices.js", include_str!("../../assets/devices.js"), JS),
    (
        "clientmode.js",
        include_str!("../../assets/clientmode.js"),
        JS,
    ),
    ("snippets.js", include_str!("../../assets/snippets.js"), JS),
    (
        "sessionchart.js",
        include_str!("../../assets/sessionchart.js"),
        JS,
    ),
    ("style.css", include_str!("../../assets/style.css"), CSS),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One file of [`ASSETS`] by name; 404 for any other name.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, body, kind)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => AppError::NotFound(format!("no asset {name}")).into_response(),
    }
}

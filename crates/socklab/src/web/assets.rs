//! The dashboard, embedded in the binary (no Node build): `index.html`, `app.js` and
//! `style.css` from `crates/socklab/assets/`.

use axum::http::header;
use axum::response::{Html, IntoResponse};

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

/// The dashboard's script.
pub async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/app.js"),
    )
}

/// The dashboard's style sheet.
pub async fn style_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/style.css"),
    )
}

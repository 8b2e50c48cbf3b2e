//! The dashboard, embedded in the binary (no Node build): `index.html`, `app.js` and
//! `style.css` from `crates/socklab/assets/`.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// The dashboard page.
pub async fn index() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
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

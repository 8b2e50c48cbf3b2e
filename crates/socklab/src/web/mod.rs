//! The HTTP side: JSON API, live event stream, OpenAPI document, Prometheus metrics and
//! the embedded dashboard, as one axum [`Router`] built by [`app`] (tests drive it with
//! `tower::ServiceExt::oneshot`, the server with `axum::serve`).
//!
//! Layout: [`api`] (session and listener routes), [`link`] (link emulation routes),
//! [`auth`] (token and Origin checks),
//! [`sse`] (live events), [`openapi`] (the document), [`metrics`], [`assets`].

pub mod api;
pub mod assets;
pub mod auth;
pub mod cluster;
pub mod history;
pub mod link;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod search;
pub mod sse;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::hub::Hub;
use crate::shutdown::Shutdown;
use crate::store::StoreError;

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Sessions, listeners and the store.
    pub hub: Arc<Hub>,
    /// Required token, if any (see [`auth`]).
    pub token: Option<Arc<str>>,
    /// Ends live event streams so graceful shutdown does not wait for browsers.
    pub shutdown: Shutdown,
}

/// The one error type of the HTTP layer; each variant is one status code, and the body is
/// always `{"error": "message"}`.
#[derive(Debug)]
pub enum AppError {
    /// 400: malformed JSON, invalid hex, bad parameter.
    BadRequest(String),
    /// 401: token missing or wrong.
    Unauthorized,
    /// 403: state-changing call from a foreign `Origin`.
    Forbidden(String),
    /// 404: unknown session, listener or route.
    NotFound(String),
    /// 409: the session exists but is offline.
    Conflict(String),
    /// 503: the device is not reading (its outbox stayed full).
    Unavailable(String),
    /// 500: the database failed.
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send 'Authorization: Bearer TOKEN' or ?token=TOKEN"
                    .to_string(),
            ),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            AppError::Conflict(m) => (StatusCode::CONFLICT, m),
            AppError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            AppError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (status, axum::Json(json!({ "error": message }))).into_response()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        tracing::error!("api: {e}");
        AppError::Internal(e.to_string())
    }
}

/// Builds the router. Everything except the static assets sits behind [`auth::check`];
/// the assets are code, not data, and `<script src>` cannot carry the token.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/api/sessions", get(api::list_sessions))
        .route("/api/sessions/{id}", get(api::get_session))
        .route("/api/sessions/{id}/messages", get(api::messages))
        .route("/api/sessions/{id}/send", post(api::send))
        .route("/api/sessions/{id}/close", post(api::close))
        .route("/api/broadcast", post(api::broadcast))
        .route("/api/listeners", get(api::listeners))
        .route("/api/listeners/{id}/echo", put(api::set_echo))
        .route(
            "/api/listeners/{id}/auto-replies",
            put(api::set_auto_replies),
        )
        .route("/api/link-profiles", get(link::profiles_list))
        .route("/api/listeners/{id}/link", put(link::set_listener_link))
        .route("/api/sessions/{id}/link", put(link::set_session_link))
        .route("/api/sessions/{id}/fault", post(link::inject_fault))
        .route("/api/rates", get(history::rates))
        .route("/api/messages", get(search::messages))
        .route("/api/events", get(sse::events))
        .route("/api/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics::metrics))
        .route_layer(from_fn_with_state(state.clone(), auth::check))
        .route("/assets/{name}", get(assets::asset))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(page::explain_refusals))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("no route {}", uri.path()))
}

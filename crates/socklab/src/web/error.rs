//! The HTTP layer's one error type, [`AppError`]: each variant is one status code, and the
//! body is always `{"error": "message"}`. Messages are for the API's user: they never carry
//! an internal path or a database detail (those go to the server log).
//!
//! [`json_errors`] gives the same body to the errors axum answers before a handler runs
//! (405 wrong method, 413 body too large, a path segment that is not valid UTF-8), so every
//! error a client sees has one shape.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// Largest request body the API reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Every way an API call can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: malformed JSON, invalid hex, a bad parameter or id.
    #[error("{0}")]
    BadRequest(String),
    /// 401: token missing or wrong.
    #[error("missing or wrong token: send 'Authorization: Bearer TOKEN' or ?token=TOKEN")]
    Unauthorized,
    /// 403: a foreign `Origin`, or a non-loopback `Host` without a token.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown session, listener, asset or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the session exists but is offline.
    #[error("{0}")]
    Conflict(String),
    /// 413: the request body is larger than [`MAX_BODY_BYTES`].
    #[error("request body too large: the limit is {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// 502: a device socklab connects to (client mode) refused or did not answer.
    #[error("{0}")]
    BadGateway(String),
    /// 503: the device is not reading, the database is not answering, or the server is
    /// at its connection limit or shutting down; the message says which.
    #[error("{0}")]
    Unavailable(String),
    /// 500: something failed that the client cannot fix; the details are logged.
    #[error("internal error (details are in the server log)")]
    Internal,
}

impl AppError {
    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The database did not answer within `waited`: the disk is full or something holds
    /// the database, and the writer is retrying.
    pub fn store_stalled(waited: Duration) -> AppError {
        AppError::Unavailable(format!(
            "the database did not answer within {:.1} s (disk full or database locked?); \
             devices are paused until it can write again; try again later",
            waited.as_secs_f64()
        ))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            self.status(),
            axum::Json(json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

impl From<StoreError> for AppError {
    /// Logs the full error (with the database path) and answers without it.
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Closed => AppError::Unavailable("the server is shutting down".into()),
            StoreError::Sqlite { source, .. }
                if matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::DatabaseBusy)
                ) =>
            {
                tracing::warn!("api: {e}");
                AppError::Unavailable(
                    "the database cannot answer now (disk full or database locked); try again later"
                        .into(),
                )
            }
            _ => {
                tracing::error!("api: {e}");
                AppError::Internal
            }
        }
    }
}

/// Middleware: an error response that is not already JSON (axum's own rejections: 405, 413,
/// an undecodable path) gets the API's `{"error": ...}` body, keeping its status and headers
/// such as `Allow`.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let response = next.run(req).await;
    as_json_error(&method, &uri, response).await
}

/// What [`json_errors`] does to the response of a `method` request for `uri`: an error
/// that is not JSON yet gets the `{"error": ...}` body; anything else passes unchanged.
pub async fn as_json_error(method: &Method, uri: &Uri, response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let path = uri.path();
    let (mut parts, body) = response.into_parts();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            AppError::MethodNotAllowed(format!(
                "method {method} is not allowed on {path} (allowed: {allowed})"
            ))
        }
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        _ => {
            // axum's rejection texts are short and safe to show ("Invalid URL: ...").
            let text = axum::body::to_bytes(body, 1024).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_string();
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text
            };
            AppError::BadRequest(message)
        }
    };
    let body = json!({ "error": error.to_string() }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

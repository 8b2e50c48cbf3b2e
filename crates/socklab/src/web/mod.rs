//! The HTTP side: JSON API, live event stream, OpenAPI document, Prometheus metrics and
//! the embedded dashboard, as one axum [`Router`] built by [`app`] (tests drive it with
//! `tower::ServiceExt::oneshot`, the server with `axum::serve`).
//!
//! Layout: [`api`] (session and listener routes), [`link`] (link emulation routes),
//! [`auth`] (token and Origin checks), [`error`] (the one [`AppError`] and its JSON body),
//! [`sse`] (live events), [`openapi`] (the document, its `links` from [`links`]), [`metrics`], [`assets`],
//! [`snippets`] (saved snippets, send bodies), [`periodic`] (send every N ms), and
//! [`serve`] (the HTTP server loop with its limits: header timeout, connection cap,
//! shutdown grace).

pub mod api;
pub mod assets;
pub mod auth;
pub mod cluster;
pub mod cluster_doc;
pub mod cluster_ops;
pub mod cluster_state;
pub mod connect;
mod doc;
pub mod error;
pub mod export;
pub mod history;
pub mod housekeeping;
pub mod labels;
pub mod link;
mod links;
pub mod listeners;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod periodic;
pub mod search;
pub mod serve;
pub mod snippets;
pub mod sse;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

pub use error::AppError;
pub use serve::{HttpLimits, WebStats};

use crate::hub::Hub;
use crate::shutdown::Shutdown;

/// What every handler gets: one shared [`AppContext`], so handing it to a handler or a
/// middleware per request costs one reference count, not a copy of each field.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppContext>);

/// The fields behind an [`AppState`].
#[derive(Debug)]
pub struct AppContext {
    /// Sessions, listeners and the store.
    pub hub: Arc<Hub>,
    /// Required token, if any (see [`auth`]).
    pub token: Option<Arc<str>>,
    /// Ends live event streams so graceful shutdown does not wait for browsers.
    pub shutdown: Shutdown,
    /// Timeouts and caps of the HTTP side.
    pub limits: HttpLimits,
    /// Connection and event-stream counters, for `/metrics`.
    pub stats: Arc<WebStats>,
}

impl AppState {
    /// A state with the default limits (what tests and embedders usually want).
    pub fn new(hub: Arc<Hub>, token: Option<Arc<str>>, shutdown: Shutdown) -> AppState {
        AppState::from(AppContext {
            hub,
            token,
            shutdown,
            limits: HttpLimits::default(),
            stats: Arc::default(),
        })
    }

    /// The same state without a token (calls that passed another node's checks).
    pub fn without_token(&self) -> AppState {
        AppState::from(AppContext {
            hub: self.hub.clone(),
            token: None,
            shutdown: self.shutdown.clone(),
            limits: self.limits,
            stats: self.stats.clone(),
        })
    }
}

impl From<AppContext> for AppState {
    fn from(context: AppContext) -> AppState {
        AppState(Arc::new(context))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppContext;

    fn deref(&self) -> &AppContext {
        &self.0
    }
}

/// Builds the router. Everything except the static assets sits behind [`auth::check`];
/// the assets are code, not data, and `<script src>` cannot carry the token.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/api/sessions", get(api::list_sessions))
        .route(
            "/api/sessions/{id}",
            get(api::get_session).delete(housekeeping::delete_session),
        )
        .route(
            "/api/sessions/{id}/messages",
            get(api::messages).delete(housekeeping::delete_session_messages),
        )
        .route("/api/sessions/{id}/label", put(labels::set_label))
        .route("/api/sessions/{id}/send", post(api::send))
        .route("/api/sessions/{id}/close", post(api::close))
        .route("/api/broadcast", post(api::broadcast))
        .route("/api/listeners", get(api::listeners).post(listeners::add))
        .route("/api/listeners/{id}", delete(listeners::remove))
        .route("/api/connect", post(connect::connect))
        .route("/api/snippets", get(snippets::list).post(snippets::save))
        .route("/api/snippets/{name}", delete(snippets::delete))
        .route("/api/sessions/{id}/periodic", post(periodic::start_session))
        .route("/api/broadcast/periodic", post(periodic::start_broadcast))
        .route("/api/periodic", get(periodic::list))
        .route("/api/periodic/{id}", delete(periodic::stop))
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
        .route(
            "/api/messages",
            get(search::messages).delete(housekeeping::delete_before),
        )
        .route("/api/export", get(export::export_route))
        .route("/api/events", get(sse::events))
        .route("/api/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics::metrics))
        .route(ASSETS_ROUTE, get(assets::asset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(error::MAX_BODY_BYTES))
        .layer(from_fn_with_state(state.clone(), front))
        .with_state(state)
}

/// The one route [`front`] leaves open: the dashboard's scripts and styles.
const ASSETS_ROUTE: &str = "/assets/{name}";

/// The middleware in front of every route, in one pass (one layer costs less per request
/// than three): [`auth::refusal`] for every route but the assets (unknown paths answer
/// 404 either way), then [`error::as_json_error`] (axum's own rejections get the JSON error
/// body), then [`page::explain`] (a browser opening the dashboard without the right to gets
/// a help page instead of the JSON refusal).
async fn front(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let page = page::wants_page(&req);
    let guarded = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|route| route.as_str() != ASSETS_ROUTE);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let response = match guarded.then(|| auth::refusal(&st, &req)).flatten() {
        Some(refused) => refused.into_response(),
        None => next.run(req).await,
    };
    let response = error::as_json_error(&method, &uri, response).await;
    if page {
        page::explain(response)
    } else {
        response
    }
}

async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("no route {}", uri.path()))
}

//! `provkit serve`: the HTTP API over provkit-service. It adds transport,
//! identity and limits, not tenant logic: every handler authenticates a
//! bearer token ([`auth`]), checks the token's role, runs one
//! provkit-service call on the blocking pool over a pool of store
//! connections, and answers JSON, or an RFC 9457 problem with a stable code.
//!
//! The endpoints are one table (`routes.rs`), from which both the router and
//! `GET /api/v1/openapi.json` are built.
//!
//! ```
//! use provkit_server::{Limits, router, state::{AppState, StorePool}};
//! use provkit_store::MemoryStore;
//! # fn main() {
//! let state = AppState::new(StorePool::single(Box::new(MemoryStore::default())), Limits::default());
//! let app: axum::Router = router(state);
//! # let _ = app;
//! # }
//! ```
//!
//! Run it with [`serve`] on a bound listener; it stops on SIGINT or SIGTERM
//! after the requests in flight finish.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
pub mod auth;
pub mod problem;
mod routes;
pub mod state;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// The server's bounds, each configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request body, except uploads of apps (bytes).
    pub max_body_bytes: u64,
    /// Largest `.ipa` upload (bytes), streamed to a temporary file.
    pub max_upload_bytes: u64,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Most requests handled at once; the rest wait.
    pub concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_upload_bytes: 4 << 30,
            request_timeout: Duration::from_secs(300),
            concurrency: 512,
        }
    }
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn openapi_json(caller: Caller) -> Result<impl IntoResponse, Problem> {
    caller.require(provkit_service::tokens::Role::Viewer)?;
    Ok(Json(routes::openapi()))
}

async fn not_found() -> Problem {
    Problem::not_found("endpoint")
}

/// Request ids: the process id and a counter (`X-Request-Id`), unless the
/// client sent one.
#[derive(Debug, Clone, Copy, Default)]
struct Ids;

static REQUESTS: AtomicU64 = AtomicU64::new(0);

impl MakeRequestId for Ids {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = REQUESTS.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", std::process::id())
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

/// The whole application: every route, with request ids, a tracing span
/// per request (method, path, id, caller), the timeout and the concurrency
/// limit.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let id = HeaderName::from_static("x-request-id");
    routes::router(&state)
        .fallback(not_found)
        .with_state(state)
        .layer(ConcurrencyLimitLayer::new(limits.concurrency.max(1)))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::map_response(problem::normalize))
        .layer(PropagateRequestIdLayer::new(id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id, caller = tracing::field::Empty)
        }))
        .layer(SetRequestIdLayer::new(id, Ids))
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

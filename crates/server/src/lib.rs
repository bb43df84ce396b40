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
//! The web console is served beside the API under `/console/`: pages for
//! console users (see `provkit_service::console`), over the same service
//! calls and the same role and organization-group checks.
//!
//! Run it with [`serve`] on a bound listener; it stops on SIGINT or SIGTERM
//! after the requests in flight finish.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
pub mod auth;
mod console;
pub mod delivery;
pub mod problem;
mod routes;
pub mod state;
pub mod tls;

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
    /// After a change, a console page waits for the tenant to be read
    /// again when its last reading took at most this long; when it took
    /// longer (a large tenant), the page answers from the last reading at
    /// once and says that it lags, while the new one is made in the
    /// background. The JSON API always waits.
    pub console_build_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_upload_bytes: 4 << 30,
            request_timeout: Duration::from_secs(300),
            concurrency: 512,
            console_build_wait: Duration::from_secs(1),
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
        .merge(console::router(limits))
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

/// The scheduler's settings: re-plan at least every `period`, and within a
/// renewal tick (a third of `lease_ttl`) of any audited change by any
/// process; one process at a time holds the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Schedule {
    /// The longest between two plans (default 15 minutes).
    pub period: Duration,
    /// How long the lease lasts unless renewed (default 30 s): a process
    /// that dies is replaced within it.
    pub lease_ttl: Duration,
    /// This process's id for the lease.
    pub holder: String,
    /// The delivery worker beside the scheduler (every process runs one;
    /// `None`: this process delivers nothing).
    pub delivery: Option<delivery::Delivery>,
    /// Asking devices for their profile lists (the lease holder does,
    /// every `reconcile_every`): unanswered commands, and everyone once a
    /// period.
    pub reconcile: provkit_service::delivery::Reconcile,
    /// How often the holder reconciles (default five minutes; each pass
    /// reads the outbox and the devices whole).
    pub reconcile_every: Duration,
}

impl Schedule {
    /// The defaults for a process called `holder`.
    pub fn new(holder: impl Into<String>) -> Self {
        Schedule {
            period: Duration::from_secs(15 * 60),
            lease_ttl: Duration::from_secs(30),
            holder: holder.into(),
            delivery: Some(delivery::Delivery::default()),
            reconcile: provkit_service::delivery::Reconcile::default(),
            reconcile_every: Duration::from_secs(300),
        }
    }
}

/// Runs the scheduler until `stop` completes: every third of the lease's
/// lifetime it takes or renews the lease and, holding it, plans when the
/// period has passed or the tenant changed; on stop it gives the lease up,
/// so another process takes over at once.
pub async fn run_scheduler(
    state: AppState,
    schedule: Schedule,
    stop: impl std::future::Future<Output = ()>,
) {
    use provkit_service::schedule;
    tokio::pin!(stop);
    let tick = (schedule.lease_ttl / 3).max(Duration::from_millis(100));
    let ttl = chrono::Duration::from_std(schedule.lease_ttl)
        .unwrap_or_else(|_| chrono::Duration::seconds(30));
    let mut last_plan: Option<tokio::time::Instant> = None;
    let mut seen: Option<String> = None;
    let mut leader = false;
    // Reconciled up to this instant (set when the lease is taken).
    let mut reconciled: Option<(chrono::DateTime<chrono::Utc>, tokio::time::Instant)> = None;
    loop {
        let due = last_plan.is_none_or(|t| t.elapsed() >= schedule.period);
        let (now, holder, since) = (state.now(), schedule.holder.clone(), seen.clone());
        let result = state
            .run(provkit_store::org::ROOT, move |store| {
                Ok(schedule::step(
                    store,
                    &holder,
                    now,
                    ttl,
                    due,
                    since.as_deref(),
                )?)
            })
            .await;
        match result {
            Ok(step) => {
                if !step.leader {
                    reconciled = None;
                }
                if step.leader && reconciled.is_none() {
                    reconciled = Some((now, tokio::time::Instant::now()));
                }
                if let Some((since, when)) = reconciled
                    && step.leader
                    && when.elapsed() >= schedule.reconcile_every
                {
                    let cfg = schedule.reconcile;
                    let asked = state
                        .run(provkit_store::org::ROOT, move |store| {
                            Ok(provkit_service::delivery::reconcile(
                                store, since, now, &cfg,
                            )?)
                        })
                        .await;
                    match asked {
                        Ok(n) => {
                            reconciled = Some((now, tokio::time::Instant::now()));
                            if n > 0 {
                                tracing::info!(devices = n, "asked for profile lists");
                            }
                        }
                        Err(p) => {
                            tracing::warn!(detail = %p.detail, "reconciling failed; trying again")
                        }
                    }
                }
                if step.leader != leader {
                    tracing::info!(holder = %step.holder, "scheduler lease: {}", if step.leader { "taken" } else { "held elsewhere" });
                    leader = step.leader;
                }
                if step.planned {
                    last_plan = Some(tokio::time::Instant::now());
                    seen = step.change;
                    tracing::info!(
                        commands = step.commands,
                        notifications = step.notifications,
                        "planned and queued"
                    );
                }
            }
            Err(p) => {
                tracing::warn!(code = p.code, detail = %p.detail, "scheduler step failed; trying again")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = &mut stop => break,
        }
    }
    if leader {
        let (now, holder) = (state.now(), schedule.holder.clone());
        let released = state
            .run(provkit_store::org::ROOT, move |store| {
                // An expired lease: whoever asks next takes it.
                Ok(store.lease(schedule::LEASE, &holder, now, now)?)
            })
            .await;
        if let Err(p) = released {
            tracing::warn!(detail = %p.detail, "could not give the scheduler lease up");
        }
    }
}

/// Serves the API over `state` on `listener` (plain TCP, or a
/// [`tls::TlsListener`]) and, with a `schedule`, runs
/// the scheduler beside it, until `shutdown` completes; then finishes the
/// requests in flight and gives the scheduler lease up. The tenant and its
/// outbox are read in the background from the start, so the first console
/// pages wait for less (and say they are loading while it runs).
///
/// # Errors
/// I/O errors of the listener.
pub async fn run<L>(
    listener: L,
    state: AppState,
    schedule: Option<Schedule>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let warm = state.clone();
    tokio::spawn(async move { warm.warm_up().await });
    let worker = schedule.as_ref().and_then(|s| s.delivery.clone()).map(|d| {
        let mut stopped = stopped.clone();
        tokio::spawn(delivery::run_delivery(state.clone(), d, async move {
            let _ = stopped.wait_for(|v| *v).await;
        }))
    });
    let scheduler = schedule.map(|s| {
        let mut stopped = stopped.clone();
        tokio::spawn(run_scheduler(state.clone(), s, async move {
            let _ = stopped.wait_for(|v| *v).await;
        }))
    });
    let served = serve(listener, router(state), async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    if let Some(w) = worker {
        let _ = w.await;
    }
    served
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve<L>(
    listener: L,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
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

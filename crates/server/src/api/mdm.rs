//! MDM connections (`/api/v1/mdm-connections`) and the servers' webhooks
//! (`/webhooks/nanomdm`, `/webhooks/micromdm`): a webhook answers within
//! milliseconds, after keeping the event durably; the delivery worker
//! processes it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use provkit_service::tokens::Role;
use provkit_store::{MdmConnection, MdmKind, TargetState};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// Dispatches failing this many times in a row mark a connection degraded.
const DEGRADED_AFTER: u32 = 3;

/// A connection as the API shows it: never its keys.
#[derive(Debug, Serialize)]
struct ConnectionView {
    name: String,
    kind: &'static str,
    url: String,
    org_group: String,
    webhook_signed: bool,
    created_by: String,
    created_at: DateTime<Utc>,
    /// Dispatches waiting to go.
    due: usize,
    /// Devices whose command the server queued but never got pushed.
    push_errors: usize,
    /// Failing again and again: its commands stay due.
    degraded: bool,
    last_error: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let conns = state
        .run(caller.scope(), |store| Ok(store.mdm_connections()?))
        .await?;
    let dispatches = state
        .run(provkit_store::org::ROOT, |store| Ok(store.dispatches()?))
        .await?;
    let views: Vec<ConnectionView> = conns
        .into_iter()
        .map(|c| {
            let mine = dispatches.iter().filter(|d| d.connection == c.name);
            let (mut due, mut push_errors, mut degraded, mut last_error) = (0, 0, false, None);
            for d in mine {
                if d.due.is_some() {
                    due += 1;
                    if d.attempts >= DEGRADED_AFTER && d.last_error.is_some() {
                        degraded = true;
                        last_error.clone_from(&d.last_error);
                    }
                }
                if d.push_error.is_some() {
                    push_errors += d
                        .targets
                        .iter()
                        .filter(|t| t.state == TargetState::Queued)
                        .count();
                }
            }
            ConnectionView {
                name: c.name,
                kind: c.kind.as_str(),
                url: c.url,
                org_group: c.org_group,
                webhook_signed: c.webhook_hmac_key.is_some(),
                created_by: c.created_by,
                created_at: c.created_at,
                due,
                push_errors,
                degraded,
                last_error,
            }
        })
        .collect();
    Ok(Json(views))
}

/// `POST /api/v1/mdm-connections`: the keys travel once, here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConnection {
    name: Option<String>,
    kind: String,
    url: String,
    api_key: String,
    webhook_hmac_key: Option<String>,
    org_group: Option<String>,
}

pub(crate) async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewConnection>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let kind = MdmKind::parse(&new.kind).ok_or_else(|| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("kind {:?}: give nanomdm or micromdm", new.kind),
        )
    })?;
    let actor = caller.actor(state.now());
    let c: MdmConnection = state
        .run(caller.scope(), move |store| {
            Ok(provkit_service::delivery::add_connection(
                store,
                new.name.as_deref(),
                kind,
                &new.url,
                &new.api_key,
                new.webhook_hmac_key.as_deref(),
                new.org_group.as_deref(),
                &actor,
            )?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "name": c.name, "kind": c.kind.as_str(), "url": c.url, "org_group": c.org_group,
            "webhook_signed": c.webhook_hmac_key.is_some(),
        })),
    ))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let actor = caller.actor(state.now());
    state
        .run(caller.scope(), move |store| {
            Ok(store.remove_mdm_connection(&name, &actor)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks the signature against the keys of `kind`'s connections: with no
/// key set anywhere the events are taken unsigned; with keys, one must
/// match.
async fn authentic(
    state: &AppState,
    kind: MdmKind,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), Problem> {
    let conns = state
        .run(provkit_store::org::ROOT, |store| {
            Ok(store.mdm_connections()?)
        })
        .await?;
    let keys: Vec<String> = conns
        .into_iter()
        .filter(|c| c.kind == kind)
        .filter_map(|c| c.webhook_hmac_key)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let sig = headers
        .get(provkit_mdm::webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if keys
        .iter()
        .any(|k| provkit_mdm::webhook::signature_ok(k.as_bytes(), body, sig))
    {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "bad-signature",
            "the X-Hmac-Signature is missing or matches no connection's key",
        ))
    }
}

async fn receive(
    state: AppState,
    kind: MdmKind,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    authentic(&state, kind, &headers, &body).await?;
    // Read now, so a malformed event is refused while the sender listens.
    if let Err(e) = provkit_mdm::webhook::Event::parse(&body) {
        tracing::warn!(error = %e, "webhook event refused");
        return Err(Problem::bad_request("invalid-event", e.to_string()));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| Problem::bad_request("invalid-event", "the body is not UTF-8"))?;
    let id = provkit_service::delivery::event_id(&body);
    let at = state.now();
    let fresh = state
        .run(provkit_store::org::ROOT, move |store| {
            Ok(store.receive_event(&id, &text, at)?)
        })
        .await?;
    if fresh {
        state.wake.notify_one();
    }
    Ok(StatusCode::OK)
}

pub(crate) async fn nanomdm_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    receive(state, MdmKind::NanoMdm, headers, body).await
}

pub(crate) async fn micromdm_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    receive(state, MdmKind::MicroMdm, headers, body).await
}

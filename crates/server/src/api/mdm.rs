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
pub(crate) struct ConnectionView {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) url: String,
    pub(crate) org_group: String,
    pub(crate) webhook_signed: bool,
    pub(crate) created_by: String,
    pub(crate) created_at: DateTime<Utc>,
    /// Dispatches waiting to go.
    pub(crate) due: usize,
    /// Devices whose command the server queued but never got pushed.
    pub(crate) push_errors: usize,
    /// Failing again and again: its commands stay due.
    pub(crate) degraded: bool,
    pub(crate) last_error: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    Ok(Json(views(&state, &caller).await?))
}

/// The connections within the caller's scope, with their delivery status
/// (the API's list and the console's settings page).
pub(crate) async fn views(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<ConnectionView>, Problem> {
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
    Ok(views)
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
    super::remove_named(&state, &caller, name, |store, name, actor| {
        store.remove_mdm_connection(name, actor)
    })
    .await
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
    let keys = webhook_keys(state, kind).await?;
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

/// How long the webhook keys are taken from memory before the store is
/// asked again (a key added or removed counts within this).
const KEYS_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// The webhook keys of `kind`'s connections, read at most every
/// [`KEYS_FOR`].
async fn webhook_keys(state: &AppState, kind: MdmKind) -> Result<Vec<String>, Problem> {
    {
        let cached = state
            .webhook_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((when, conns)) = cached.as_ref()
            && when.elapsed() < KEYS_FOR
        {
            return Ok(of_kind(conns, kind));
        }
    }
    let conns: Vec<(MdmKind, String)> = state
        .run(provkit_store::org::ROOT, |store| {
            Ok(store.mdm_connections()?)
        })
        .await?
        .into_iter()
        .filter_map(|c| Some((c.kind, c.webhook_hmac_key?)))
        .collect();
    let keys = of_kind(&conns, kind);
    *state
        .webhook_keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some((std::time::Instant::now(), conns));
    Ok(keys)
}

fn of_kind(conns: &[(MdmKind, String)], kind: MdmKind) -> Vec<String> {
    conns
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, key)| key.clone())
        .collect()
}

async fn receive(
    state: AppState,
    kind: MdmKind,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    authentic(&state, kind, &headers, &body).await?;
    // Read now, so a malformed event is refused while the sender listens.
    let event = provkit_mdm::webhook::Event::parse(&body).map_err(|e| {
        tracing::warn!(error = %e, "webhook event refused");
        Problem::bad_request("invalid-event", e.to_string())
    })?;
    let id = provkit_service::delivery::event_id(&event, &body);
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| Problem::bad_request("invalid-event", "the body is not UTF-8"))?;
    let writer = state
        .inbox
        .get_or_init(|| InboxWriter::start(state.clone()));
    let (reply, answer) = tokio::sync::oneshot::channel();
    writer
        .0
        .send((id, text, reply))
        .await
        .map_err(|_| Problem::unavailable("the event writer stopped"))?;
    let fresh = answer
        .await
        .map_err(|_| Problem::unavailable("the event writer stopped"))??;
    if fresh {
        state.wake.notify_one();
    }
    Ok(StatusCode::OK)
}

/// An event waiting to be kept, and where to say whether it was new.
type Waiting = (
    String,
    String,
    tokio::sync::oneshot::Sender<Result<bool, Problem>>,
);

/// Keeps webhook events in groups: every event that arrived while the
/// previous group was being written goes into the next transaction, and
/// each receiver answers once its group is committed (durable before the
/// 200, one commit for many deliveries).
pub(crate) struct InboxWriter(tokio::sync::mpsc::Sender<Waiting>);

/// The most events one transaction keeps.
const GROUP: usize = 512;

impl InboxWriter {
    fn start(state: AppState) -> InboxWriter {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Waiting>(GROUP * 4);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < GROUP {
                    match rx.try_recv() {
                        Ok(w) => group.push(w),
                        Err(_) => break,
                    }
                }
                let events: Vec<(String, String)> = group
                    .iter()
                    .map(|(id, body, _)| (id.clone(), body.clone()))
                    .collect();
                let at = state.now();
                let kept = state
                    .run(provkit_store::org::ROOT, move |store| {
                        Ok(store.receive_events(&events, at)?)
                    })
                    .await;
                match kept {
                    Ok(fresh) => {
                        for ((_, _, reply), f) in group.into_iter().zip(fresh) {
                            let _ = reply.send(Ok(f));
                        }
                    }
                    Err(p) => {
                        tracing::warn!(detail = %p.detail, "webhook events not kept");
                        for (_, _, reply) in group {
                            let _ = reply.send(Err(p.clone()));
                        }
                    }
                }
            }
        });
        InboxWriter(tx)
    }
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

//! What admins manage beside the tenant's contents: tokens, organization
//! groups and trust anchors, each within the caller's organization group
//! (the store enforces the scope; outside it answers as unknown).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use provkit_service::tokens::{self, Role};
use provkit_store::{TokenRecord, TrustAnchorRecord};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// A token as the API shows it: never the token, nor its hash.
#[derive(Debug, Serialize)]
struct TokenView {
    name: String,
    role: String,
    org_group: String,
    created_by: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        TokenView {
            name: t.name,
            role: t.role,
            org_group: t.org_group,
            created_by: t.created_by,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        }
    }
}

pub(crate) async fn tokens_list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let list = state
        .run(caller.scope(), |store| Ok(tokens::list(store)?))
        .await?;
    Ok(Json(
        list.into_iter().map(TokenView::from).collect::<Vec<_>>(),
    ))
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    name: String,
    role: String,
    /// Within the caller's group (default: the caller's group).
    org_group: Option<String>,
}

/// The new token, shown this once.
#[derive(Debug, Serialize)]
struct CreatedView {
    token: String,
    #[serde(flatten)]
    record: TokenView,
}

pub(crate) async fn tokens_create(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewToken>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let role = Role::parse(&new.role)?;
    let random = random()?;
    let actor = caller.actor(state.now());
    let group = new.org_group.unwrap_or_else(|| caller.scope().to_owned());
    let created = state
        .run(caller.scope(), move |store| {
            Ok(tokens::create(
                store,
                &new.name,
                role,
                Some(&group),
                &random,
                &actor,
            )?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedView {
            token: created.token,
            record: created.record.into(),
        }),
    ))
}

pub(crate) async fn tokens_revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let actor = caller.actor(state.now());
    let revoked = state
        .run(caller.scope(), move |store| {
            Ok(tokens::revoke(store, &name, &actor)?)
        })
        .await?;
    Ok(Json(TokenView::from(revoked)))
}

pub(crate) async fn org_groups_list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let list = state
        .run(caller.scope(), |store| Ok(store.org_groups()?))
        .await?;
    Ok(Json(list))
}

/// `POST /api/v1/org-groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrgGroup {
    /// `Global/EMEA/Benelux`: missing parents are made too.
    path: String,
}

/// The groups a create made (empty: they were all there).
#[derive(Debug, Serialize)]
struct MadeView {
    created: Vec<String>,
}

pub(crate) async fn org_groups_create(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewOrgGroup>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let actor = caller.actor(state.now());
    let created = state
        .run(caller.scope(), move |store| {
            Ok(store.add_org_group(&new.path, &actor)?)
        })
        .await?;
    let status = if created.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(MadeView { created })))
}

/// A trust anchor as the API shows it (the certificate as base64 DER is
/// left out; its SHA-256 names it).
#[derive(Debug, Serialize)]
struct AnchorView {
    sha256: String,
    subject: Option<String>,
    not_after: DateTime<Utc>,
    added_by: String,
    added_at: DateTime<Utc>,
}

impl From<TrustAnchorRecord> for AnchorView {
    fn from(a: TrustAnchorRecord) -> Self {
        AnchorView {
            sha256: a.sha256,
            subject: a.subject,
            not_after: a.not_after,
            added_by: a.added_by,
            added_at: a.added_at,
        }
    }
}

pub(crate) async fn anchors_list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let list = state
        .run(caller.scope(), |store| Ok(store.trust_anchors()?))
        .await?;
    Ok(Json(
        list.into_iter().map(AnchorView::from).collect::<Vec<_>>(),
    ))
}

pub(crate) async fn anchors_add(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let actor = caller.actor(state.now());
    let added = state
        .run(caller.scope(), move |store| {
            Ok(provkit_service::trust::add_anchor(store, &body, &actor)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(AnchorView::from(added))))
}

pub(crate) async fn anchors_remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let actor = caller.actor(state.now());
    let removed = state
        .run(caller.scope(), move |store| {
            Ok(store.remove_trust_anchor(&sha256, &actor)?)
        })
        .await?;
    Ok(Json(AnchorView::from(removed)))
}

/// 32 bytes from the operating system's generator.
fn random() -> Result<[u8; 32], Problem> {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Problem::internal("the system random generator failed"))?;
    Ok(b)
}

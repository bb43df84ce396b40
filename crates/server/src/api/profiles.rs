//! `/api/v1/profiles`: upload, list, show, delete, assignments, renew.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use provkit_service::tokens::Role;
use provkit_service::{assign, catalog, lifecycle, trust};
use provkit_store::{AssignmentChange, AssignmentEdit, ProfileLabel, TargetName};
use serde::{Deserialize, Serialize};

use super::Page;
use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// `GET /api/v1/profiles` filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    kind: Option<String>,
    team: Option<String>,
    /// A substring of the name, UUID or App ID (case-insensitive).
    q: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let snap = state.snapshot(caller.scope()).await?;
    let q = query.q.as_deref().map(str::to_lowercase);
    let items = snap
        .by_expiry
        .iter()
        .map(|&i| &snap.summaries[i])
        .filter(|p| {
            query.kind.as_deref().is_none_or(|k| p.kind == k)
                && query.team.as_deref().is_none_or(|t| p.team == t)
                && q.as_deref().is_none_or(|q| {
                    [&p.name, &p.uuid, &p.app_id]
                        .iter()
                        .any(|s| s.to_lowercase().contains(q))
                })
        });
    Ok(Json(Page::of(items, query.limit, query.offset)?.owned()))
}

/// Options of the calls that store a profile's bytes (upload, renew).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrustQuery {
    /// Store a profile that fails its trust checks (admin; audited).
    #[serde(default)]
    allow_untrusted: bool,
}

/// `POST /api/v1/profiles` options: Intune's Name and Description, and the
/// trust override.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    allow_untrusted: bool,
}

impl TrustQuery {
    /// An operator stores trusted profiles; overriding trust takes an admin.
    fn role(&self) -> Role {
        if self.allow_untrusted {
            Role::Admin
        } else {
            Role::Operator
        }
    }
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let trust = TrustQuery {
        allow_untrusted: query.allow_untrusted,
    };
    caller.require(trust.role())?;
    let at = state.now();
    let actor = caller.actor(at);
    let label = ProfileLabel {
        name: query.name,
        description: query.description,
    };
    let detail = state
        .run(caller.scope(), move |store| {
            let verifier = trust::tenant_verifier(store)?;
            let rec = trust::store_labeled_profile(
                store,
                &body,
                &label,
                &verifier,
                at,
                &actor,
                trust.allow_untrusted,
            )?;
            Ok(catalog::profile(store, &rec.uuid, at)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// `PATCH /api/v1/profiles/{uuid}`: the admin's name and description.
pub(crate) async fn relabel(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
    Json(label): Json<ProfileLabel>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Operator)?;
    let at = state.now();
    let actor = caller.actor(at);
    let uuid = summary_of(&state, &caller, &uuid).await?.uuid;
    let rec = state
        .run(caller.scope(), move |store| {
            Ok(store.label_profile(&uuid, &label, &actor)?)
        })
        .await?;
    // The write is audited, so the snapshot is built anew with the label.
    Ok(Json(view(&state, &caller, &rec.uuid).await?))
}

/// One profile: its summary and its versions (its devices, paginated, at
/// `.../devices`).
#[derive(Debug, Serialize)]
struct ProfileView {
    #[serde(flatten)]
    summary: catalog::ProfileSummary,
    /// Every stored version: (version, SHA-256 of the bytes, uploaded at).
    versions: Vec<(i64, String, chrono::DateTime<chrono::Utc>)>,
}

/// The summary of the profile `given` names, from the snapshot.
async fn summary_of(
    state: &AppState,
    caller: &Caller,
    given: &str,
) -> Result<catalog::ProfileSummary, Problem> {
    let snap = state.snapshot(caller.scope()).await?;
    let id = provkit_service::names::profile(snap.engine.tenant(), given)?;
    Ok(snap.summaries[id.index()].clone())
}

pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    Ok(Json(view(&state, &caller, &uuid).await?))
}

/// The profile `given` names: its summary from the snapshot, its versions
/// from the store.
async fn view(state: &AppState, caller: &Caller, given: &str) -> Result<ProfileView, Problem> {
    let summary = summary_of(state, caller, given).await?;
    let uuid = summary.uuid.clone();
    let versions = state
        .run(caller.scope(), move |store| {
            Ok(store
                .profile_versions(&uuid)?
                .into_iter()
                .map(|v| (v.version, v.sha256, v.uploaded_at))
                .collect())
        })
        .await?;
    Ok(ProfileView { summary, versions })
}

/// `GET .../devices` pagination.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(crate) async fn devices(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let limit = super::page_limit(q.limit, super::DEFAULT_PAGE)?;
    let offset = q.offset.unwrap_or(0);
    let snap = state.snapshot(caller.scope()).await?;
    let index = state.commands(caller.scope(), &snap).await?;
    let page = state
        .compute(move || {
            let h = snap.holders();
            Ok(catalog::device_status_page(
                &snap.engine,
                &index,
                h,
                &uuid,
                offset,
                limit,
            )?)
        })
        .await?;
    Ok(Json(Page::cut(page.items, page.total, limit, offset)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let actor = caller.actor(state.now());
    state
        .run(caller.scope(), move |store| {
            let uuid = provkit_service::names::profile_uuid(store, &uuid)?;
            Ok(lifecycle::delete(store, &uuid, &actor)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Include and exclude targets, as admins write them (`all-users`,
/// `all-devices`, or a group name).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Targets {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

fn names(t: &[String]) -> Vec<TargetName> {
    t.iter().map(|s| TargetName::parse(s)).collect()
}

fn words(t: &[TargetName]) -> Vec<String> {
    t.iter().map(ToString::to_string).collect()
}

pub(crate) async fn assignments(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let summary = summary_of(&state, &caller, &uuid).await?;
    Ok(Json(Targets {
        include: summary.include,
        exclude: summary.exclude,
    }))
}

/// `PATCH` body: targets to add, or targets to remove.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Patch {
    #[serde(default)]
    add: Targets,
    #[serde(default)]
    remove: Targets,
}

/// What an edit changed, targets in the admin's words.
#[derive(Debug, Serialize)]
struct Changed {
    profile_uuid: String,
    include_before: Vec<String>,
    exclude_before: Vec<String>,
    include_after: Vec<String>,
    exclude_after: Vec<String>,
    devices_gaining: Vec<String>,
    devices_losing: Vec<String>,
}

impl From<AssignmentChange> for Changed {
    fn from(c: AssignmentChange) -> Self {
        Changed {
            include_before: words(&c.include_before),
            exclude_before: words(&c.exclude_before),
            include_after: words(&c.include_after),
            exclude_after: words(&c.exclude_after),
            profile_uuid: c.profile_uuid,
            devices_gaining: c.devices_gaining,
            devices_losing: c.devices_losing,
        }
    }
}

async fn edit(
    state: AppState,
    caller: Caller,
    uuid: String,
    edit: AssignmentEdit,
) -> Result<Json<Changed>, Problem> {
    caller.require(Role::Operator)?;
    // The devices gaining and losing come from the snapshot's engine, not
    // from two plans of the tenant in the store.
    let snap = state.snapshot(caller.scope()).await?;
    let at = state.now();
    let actor = caller.actor(at);
    let change = state
        .run(caller.scope(), move |store| {
            Ok(assign::edit_on(
                store,
                &snap.engine,
                &uuid,
                &edit,
                at,
                &actor,
            )?)
        })
        .await?;
    Ok(Json(change.into()))
}

pub(crate) async fn put_assignments(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
    Json(t): Json<Targets>,
) -> Result<impl IntoResponse, Problem> {
    let e = AssignmentEdit::Replace {
        include: names(&t.include),
        exclude: names(&t.exclude),
    };
    edit(state, caller, uuid, e).await
}

pub(crate) async fn patch_assignments(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
    Json(p): Json<Patch>,
) -> Result<impl IntoResponse, Problem> {
    let empty = |t: &Targets| t.include.is_empty() && t.exclude.is_empty();
    let e = match (empty(&p.add), empty(&p.remove)) {
        (false, true) => AssignmentEdit::Add {
            include: names(&p.add.include),
            exclude: names(&p.add.exclude),
        },
        (true, false) => AssignmentEdit::Remove {
            include: names(&p.remove.include),
            exclude: names(&p.remove.exclude),
        },
        _ => {
            return Err(Problem::bad_request(
                "invalid-edit",
                "give targets under add or under remove (one edit, one transaction)",
            ));
        }
    };
    edit(state, caller, uuid, e).await
}

pub(crate) async fn renew(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
    Query(query): Query<TrustQuery>,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    caller.require(query.role())?;
    let at = state.now();
    let actor = caller.actor(at);
    let renewed = state
        .run(caller.scope(), move |store| {
            let old = provkit_service::names::profile_uuid(store, &uuid)?;
            let verifier = trust::tenant_verifier(store)?;
            Ok(lifecycle::renew(
                store,
                &old,
                &body,
                &verifier,
                at,
                &actor,
                query.allow_untrusted,
            )?)
        })
        .await?;
    Ok(Json(renewed))
}

//! Tenant-wide reads and the inventory: `plan`, `expiring`, a device's
//! `explain`, `audit`, `inventory`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use provkit_service::expiry::{ExpiryFilter, ItemKind};
use provkit_service::inventory::{self, Format};
use provkit_service::tokens::Role;
use provkit_service::{audit, expiry, lifecycle, plan};
use provkit_store::Replace;
use serde::{Deserialize, Serialize};

use super::Page;
use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// `GET /api/v1/plan` pagination: of the commands and the device-user
/// notices (the lists that grow with the devices).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

/// A page of the plan: everything but the commands and user notices whole,
/// those paged, with their totals.
#[derive(Debug, Serialize)]
struct PlanPage {
    #[serde(flatten)]
    view: plan::PlanView,
    commands_total: usize,
    user_notices_total: usize,
    limit: usize,
    offset: usize,
}

pub(crate) async fn get_plan(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PlanQuery>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let limit = super::page_limit(q.limit, super::MAX_PAGE)?;
    let offset = q.offset.unwrap_or(0);
    let snap = state.snapshot(caller.scope()).await?;
    let page = state
        .compute(move || {
            let mut view = plan::plan_with(&snap.engine);
            let (commands_total, user_notices_total) =
                (view.commands.len(), view.user_notices.len());
            view.commands = view.commands.into_iter().skip(offset).take(limit).collect();
            view.user_notices = view
                .user_notices
                .into_iter()
                .skip(offset)
                .take(limit)
                .collect();
            Ok(PlanPage {
                view,
                commands_total,
                user_notices_total,
                limit,
                offset,
            })
        })
        .await?;
    Ok(Json(page))
}

/// `GET /api/v1/expiring` options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpiringQuery {
    /// A window such as `60d` (the default) or `8w`.
    within: Option<String>,
    kind: Option<String>,
    team: Option<String>,
    app: Option<String>,
}

/// Days in `60d`, `8w` or `60`.
fn days(s: &str) -> Result<i64, Problem> {
    let bad = || {
        Problem::bad_request(
            "invalid-window",
            format!("within={s:?}: give days such as 60d or weeks such as 8w, up to 100 years"),
        )
    };
    let (n, unit) = match s.strip_suffix('d') {
        Some(n) => (n, 1),
        None => match s.strip_suffix('w') {
            Some(n) => (n, 7),
            None => (s, 1),
        },
    };
    let n: i64 = n.parse().map_err(|_| bad())?;
    let d = n.checked_mul(unit).ok_or_else(bad)?;
    if (0..=36_525).contains(&d) {
        Ok(d)
    } else {
        Err(bad())
    }
}

pub(crate) async fn expiring(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ExpiringQuery>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let within = days(q.within.as_deref().unwrap_or("60d"))?;
    let kind = match q.kind.as_deref() {
        None => None,
        Some("profile") => Some(ItemKind::Profile),
        Some("certificate") => Some(ItemKind::Certificate),
        Some(k) => {
            return Err(Problem::bad_request(
                "invalid-kind",
                format!("kind={k:?}: give profile or certificate"),
            ));
        }
    };
    let filter = ExpiryFilter::default()
        .with_kind(kind)
        .with_team(q.team)
        .with_app(q.app);
    let snap = state.snapshot(caller.scope()).await?;
    let report = state
        .compute(move || Ok(expiry::report_with(&snap.engine, within, &filter)))
        .await?;
    Ok(Json(report))
}

/// `GET /api/v1/devices/{udid}/explain` options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainQuery {
    profile: String,
}

pub(crate) async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    Path(udid): Path<String>,
    Query(q): Query<ExplainQuery>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let snap = state.snapshot(caller.scope()).await?;
    let device = snap
        .keys
        .device(&udid)
        .ok_or_else(|| Problem::not_found("device"))?;
    let explained = state
        .compute(move || Ok(lifecycle::explain_device(&snap.engine, device, &q.profile)?))
        .await?;
    Ok(Json(explained))
}

/// `GET /api/v1/audit` pagination.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(crate) async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let all = state
        .run(caller.scope(), move |store| Ok(audit::log(store, None)?))
        .await?;
    // Newest first.
    Ok(Json(Page::of(all.into_iter().rev(), q.limit, q.offset)?))
}

/// `POST /api/v1/inventory` options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InventoryQuery {
    /// Replace every group and device the batch names instead of merging.
    #[serde(default)]
    replace: bool,
    /// Replace only these groups' members and subgroups (comma-separated).
    replace_groups: Option<String>,
    /// Report the change and write nothing.
    #[serde(default)]
    dry_run: bool,
}

pub(crate) async fn post_inventory(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InventoryQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    caller.require(if q.dry_run {
        Role::Viewer
    } else {
        Role::Operator
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let format = if content_type.starts_with("text/csv") {
        Format::Csv
    } else if content_type.starts_with("application/json") {
        Format::Json
    } else {
        return Err(Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("Content-Type {content_type:?}: send application/json or text/csv"),
        ));
    };
    let replace = match (q.replace, q.replace_groups) {
        (true, None) => Replace::Batch,
        (false, None) => Replace::Nothing,
        (false, Some(g)) => Replace::Groups(
            g.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        (true, Some(_)) => {
            return Err(Problem::bad_request(
                "invalid-replace",
                "give replace or replace_groups, not both",
            ));
        }
    };
    let inv = inventory::parse(&body, format)?;
    let at = state.now();
    let actor = caller.actor(at);
    let change = state
        .run(caller.scope(), move |store| {
            Ok(inventory::import(
                store, &inv, &replace, q.dry_run, at, &actor,
            )?)
        })
        .await?;
    Ok(Json(change))
}

//! The dashboard, the groups tree, the audit log and the settings.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use chrono::{Datelike as _, Months};
use maud::{Markup, html};
use provkit_service::catalog;
use provkit_service::expiry::ItemKind;
use provkit_service::tokens::Role;
use serde::Deserialize;

use super::layout::{self, date, days_class};
use super::session::FormData;
use super::{Console, Out};
use crate::api;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::IntoResponse;

pub(crate) async fn dashboard(State(state): State<AppState>, console: Console) -> Out {
    console.require(Role::Viewer)?;
    let snap = state.page_snapshot(&console).await?;
    let at = state.now();
    let report = snap.expiry60();
    let failed = state.page_commands(&console, &snap).await?.failed_devices();
    let conns = api::mdm::views(&state, &console.caller).await?;
    let channels = api::notify::views(&state, &console.caller).await?;
    let live: Vec<_> = snap.summaries.iter().filter(|p| !p.retired).collect();
    let within = |d: i64| {
        live.iter()
            .filter(|p| (0..=d).contains(&p.days_left))
            .count()
    };
    let resign: BTreeSet<&String> = report
        .dead_in_use
        .iter()
        .chain(&report.dying)
        .filter(|i| i.kind == ItemKind::Certificate)
        .flat_map(|i| &i.apps)
        .collect();
    let degraded = conns.iter().filter(|c| c.degraded).count()
        + channels.iter().filter(|c| c.last_error.is_some()).count();
    // Death dates per month for the next twelve: profiles, and the distinct
    // certificates of the profiles.
    let start = at.date_naive().with_day(1).unwrap_or(at.date_naive());
    let month_of = |d: chrono::DateTime<chrono::Utc>| -> Option<usize> {
        let m = (d.year() - start.year()) * 12 + d.month0() as i32 - start.month0() as i32;
        usize::try_from(m).ok().filter(|m| *m < 12)
    };
    let mut profiles_by_month = [0usize; 12];
    let mut certs_by_month = [0usize; 12];
    let tenant = snap.engine.tenant();
    let mut certs = BTreeMap::new();
    for p in tenant.profiles.iter().filter(|p| !p.retired) {
        if let Some(m) = month_of(p.expires) {
            profiles_by_month[m] += 1;
        }
        for c in &p.certificates {
            certs.insert(c.sha256, c.not_after);
        }
    }
    for na in certs.values() {
        if let Some(m) = month_of(*na) {
            certs_by_month[m] += 1;
        }
    }
    let top = profiles_by_month
        .iter()
        .chain(&certs_by_month)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let card = |label: &str, n: usize, class: &str| -> Markup {
        html! { div class={"card " (class)} { span.n { (n) } (label) } }
    };
    let body = html! {
        h1 { "Dashboard" }
        p.muted { "Organization group " strong { (console.scope()) } ", as of " (at.format("%Y-%m-%d %H:%M UTC")) "." }
        section.cards aria-label="Counts" {
            (card("profiles", live.len(), ""))
            (card("dying within 60 days", within(60), if within(60) > 0 { "warn" } else { "" }))
            (card("dying within 30 days", within(30), if within(30) > 0 { "bad" } else { "" }))
            (card("dying within 7 days", within(7), if within(7) > 0 { "bad" } else { "" }))
            (card("dead but still in use", report.dead_in_use.len(), if report.dead_in_use.is_empty() { "" } else { "bad" }))
            (card("apps to re-sign", resign.len(), if resign.is_empty() { "" } else { "warn" }))
            (card("devices with failed installs", failed, if failed > 0 { "bad" } else { "" }))
            (card("MDM connections and channels degraded", degraded, if degraded > 0 { "bad" } else { "" }))
        }
        h2 id="timeline" { "Death dates, next 12 months" }
        p.legend.muted { span.bar-p style="background:#0a58ca" {} "profiles" span style="background:#8250df" {} "certificates" }
        div.timeline role="img" aria-label="Profiles and certificates expiring per month" {
            @for m in 0..12usize {
                @let month = start.checked_add_months(Months::new(u32::try_from(m).unwrap_or(0))).unwrap_or(start);
                div.m {
                    div.bar-p style={"height:" (profiles_by_month[m] * 120 / top) "px"} title={(profiles_by_month[m]) " profiles"} {}
                    div.bar-c style={"height:" (certs_by_month[m] * 120 / top) "px"} title={(certs_by_month[m]) " certificates"} {}
                    span { (month.format("%b %y")) }
                    span.muted { (profiles_by_month[m]) " / " (certs_by_month[m]) }
                }
            }
        }
        h2 { "Needs action" }
        @if report.dead_in_use.is_empty() && report.dying.is_empty() {
            p { "Nothing dies within 60 days." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Kind" } th { "Name" } th { "Team" } th { "Dies" } th.num { "Days left" } th { "Action" } th { "Apps" } th.num { "Devices" } } }
                tbody {
                    @for i in report.dead_in_use.iter().chain(&report.dying).take(50) {
                        tr {
                            td { (i.kind.as_str()) }
                            td { @if i.kind == ItemKind::Profile { a href={"/console/profiles/" (i.id)} { (i.name) } } @else { (i.name) } }
                            td { (i.team) }
                            td { (date(i.death)) }
                            td class=(days_class(i.days_left)) { (i.days_left) }
                            td { (i.action) " (" (i.cause) ")" }
                            td { (i.apps.join(", ")) }
                            td.num { (i.devices) }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page(Some(&console), "Dashboard", "/console/", body))
}

/// Lines of the groups outline per page.
const OUTLINE_PAGE: usize = 500;

pub(crate) async fn groups(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<PageQuery>,
) -> Out {
    console.require(Role::Viewer)?;
    let snap = state.page_snapshot(&console).await?;
    let offset = q.offset.unwrap_or(0);
    let (lines, total) = state
        .compute(move || {
            let all = catalog::group_outline(snap.engine.tenant());
            let total = all.len();
            let page: Vec<_> = all.into_iter().skip(offset).take(OUTLINE_PAGE).collect();
            Ok((page, total))
        })
        .await?;
    let orgs = console.groups.clone();
    let body = html! {
        h1 { "Groups" }
        h2 { "Organization groups" }
        ul.tree { @for g in &orgs { li { (g) } } }
        h2 { "User and device groups" }
        @if total == 0 { p { "No groups yet: import an inventory." } } @else {
            @if total > OUTLINE_PAGE { (layout::pager("/console/groups", offset, OUTLINE_PAGE, total)) }
            ul.outline aria-label="Groups, nested groups indented under the group that holds them" {
                @for l in &lines {
                    li style={"margin-left:" (l.depth.min(24) * 18) "px"} {
                        strong { (l.name) } " "
                        span.muted { "(" (format!("{:?}", l.kind).to_lowercase()) ", " (l.members) " direct members)" }
                        @if l.repeated { " " span.muted { "(shown above)" } }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        Some(&console),
        "Groups",
        "/console/groups",
        body,
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    offset: Option<usize>,
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<PageQuery>,
) -> Out {
    console.require(Role::Viewer)?;
    let all = state
        .run(console.scope(), |store| {
            Ok(provkit_service::audit::log(store, None)?)
        })
        .await?;
    let (offset, limit, total) = (q.offset.unwrap_or(0), 100, all.len());
    let body = html! {
        h1 { "Audit log" }
        (layout::pager("/console/audit", offset, limit, total))
        div.scroll { table {
            thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Object" } th { "Group" } th { "After" } } }
            tbody {
                @for e in all.iter().rev().skip(offset).take(limit) {
                    tr {
                        td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                        td { (e.actor) }
                        td { (e.action) }
                        td.mono { (e.object) }
                        td { (e.org_group.as_deref().unwrap_or(provkit_store::org::ROOT)) }
                        td.mono { @if let Some(a) = &e.after { (a.to_string()) } }
                    }
                }
            }
        } }
    };
    Ok(layout::page(
        Some(&console),
        "Audit log",
        "/console/audit",
        body,
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SettingsQuery {
    note: Option<String>,
}

pub(crate) async fn settings(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<SettingsQuery>,
) -> Out {
    console.require(Role::Viewer)?;
    let note = match q.note.as_deref() {
        Some("added") => Some("Added."),
        Some("removed") => Some("Removed."),
        Some("saved") => Some("Saved."),
        _ => None,
    };
    render_settings(&state, &console, note, None, StatusCode::OK).await
}

async fn render_settings(
    state: &AppState,
    console: &Console,
    note: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Out {
    let conns = api::mdm::views(state, &console.caller).await?;
    let channels = api::notify::views(state, &console.caller).await?;
    let snap = state.page_snapshot(console).await?;
    let config = snap.engine.tenant().config.clone();
    let admin = console.caller.0.role >= Role::Admin;
    let csrf = console.session.csrf.clone();
    let remove = |what: &str, name: &str| -> Markup {
        html! {
            @if admin {
                form method="post" action={"/console/settings/" (what) "/remove"} data-confirm={"Remove " (name) "?"} {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="name" value=(name);
                    button.secondary type="submit" { "Remove" }
                }
            }
        }
    };
    let body = html! {
        h1 { "Settings" }
        @if let Some(n) = note { div.note role="status" { (n) } }
        @if let Some(e) = error { div.error role="alert" { (e) } }
        p.muted { "Keys and secrets are write-only: entered once (here, with " span.mono { "provkit mdm add" } " or " span.mono { "provkit notify add" } ", or through the API) and never shown again." }
        h2 { "MDM connections" }
        div.scroll { table {
            thead { tr { th { "Name" } th { "Kind" } th { "URL" } th { "Group" } th { "Webhook signed" } th.num { "Due" } th.num { "Push errors" } th { "Status" } th { } } }
            tbody {
                @for c in &conns {
                    tr {
                        td { (c.name) } td { (c.kind) } td.mono { (c.url) } td { (c.org_group) }
                        td { @if c.webhook_signed { "yes" } @else { "no" } }
                        td.num { (c.due) } td.num { (c.push_errors) }
                        td { @if c.degraded { span.days-red { "degraded" } " " (c.last_error.as_deref().unwrap_or("")) } @else { "ok" } }
                        td { (remove("mdm", &c.name)) }
                    }
                }
                @if conns.is_empty() { tr { td colspan="9" { "None." } } }
            }
        } }
        h2 { "Notification channels" }
        div.scroll { table {
            thead { tr { th { "Name" } th { "Kind" } th { "URL" } th { "To" } th { "Group" } th { "Signed" } th.num { "Waiting" } th { "Last error" } th { } } }
            tbody {
                @for c in &channels {
                    tr {
                        td { (c.name) } td { (c.kind) } td.mono { (c.url) } td { (c.to.join(", ")) } td { (c.org_group) }
                        td { @if c.signed { "yes" } @else { "no" } }
                        td.num { (c.pending) }
                        td { @if let Some(e) = &c.last_error { span.days-red { (e) } } }
                        td { (remove("channels", &c.name)) }
                    }
                }
                @if channels.is_empty() { tr { td colspan="9" { "None." } } }
            }
        } }
        @if admin {
            details {
                summary { "Add an MDM connection" }
                form.stack method="post" action="/console/settings/mdm" autocomplete="off" {
                    input type="hidden" name="csrf" value=(console.session.csrf);
                    label { "Name (default: the organization group)" input type="text" name="name"; }
                    label { "Kind" select name="kind" { option value="nanomdm" { "NanoMDM" } option value="micromdm" { "MicroMDM" } } }
                    label { "URL" input type="text" name="url" required placeholder="https://mdm.example.com"; }
                    label { "API key (write-only)" input type="password" name="api_key" required autocomplete="new-password"; }
                    label { "Webhook HMAC key (write-only, optional)" input type="password" name="webhook_hmac_key" autocomplete="new-password"; }
                    label { "Organization group" select name="org_group" { @for g in &console.groups { option value=(g) selected[*g == console.scope()] { (g) } } } }
                    div { button type="submit" { "Add connection" } }
                }
            }
            details {
                summary { "Add a notification channel" }
                form.stack method="post" action="/console/settings/channels" autocomplete="off" {
                    input type="hidden" name="csrf" value=(console.session.csrf);
                    label { "Name" input type="text" name="name" required; }
                    label { "Kind" select name="kind" { @for k in ["webhook", "slack", "teams", "smtp"] { option value=(k) { (k) } } } }
                    label { "URL (smtp://host:port or smtps://user@host:port for email)" input type="text" name="url" required; }
                    label { "Secret: the webhook's signing key or the SMTP password (write-only)" input type="password" name="secret" autocomplete="new-password"; }
                    label { "Email addresses (comma-separated, SMTP only)" input type="text" name="to"; }
                    label { "Organization group" select name="org_group" { @for g in &console.groups { option value=(g) selected[*g == console.scope()] { (g) } } } }
                    div { button type="submit" { "Add channel" } }
                }
            }
        }
        h2 { "Thresholds" }
        dl.facts {
            dt { "Admin notices" } dd { (config.admin_thresholds_days.iter().map(|d| format!("{d} days")).collect::<Vec<_>>().join(", ")) " before a death date" }
            dt { "Device-user notice" } dd { (config.user_notice_days) " days before" }
        }
        @if admin && console.scope() == provkit_store::org::ROOT {
            form.inline method="post" action="/console/settings/stages" {
                input type="hidden" name="csrf" value=(console.session.csrf);
                label { "Admin stages (days, comma-separated)" input type="text" name="admin" id="stages-admin" value=(config.admin_thresholds_days.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")); }
                label { "Device-user notice (days)" input type="text" name="user" id="stages-user" value=(config.user_notice_days); }
                button type="submit" { "Save stages" }
            }
        }
        p.muted { "The tenant's stages (set here at the root group, with " span.mono { "provkit notify stages" } " or " span.mono { "PUT /api/v1/notify-stages" } "); a profile may have its own or none (on its page, or " span.mono { "provkit notify profile" } "), and so may an app (on the Apps page, or " span.mono { "provkit notify app" } ")." }
    };
    let page = layout::page(Some(console), "Settings", "/console/settings", body);
    Ok((status, page).into_response())
}

/// A settings form's outcome: back to the settings with a note, or the
/// settings again with the refusal.
async fn settled<T>(
    state: &AppState,
    console: &Console,
    done: Result<T, crate::problem::Problem>,
    note: &str,
) -> Out {
    match done {
        Ok(_) => Ok(
            axum::response::Redirect::to(&format!("/console/settings?note={note}")).into_response(),
        ),
        Err(p) => render_settings(state, console, None, Some(&p.detail), p.status).await,
    }
}

fn field(form: &FormData, key: &str) -> Option<String> {
    form.get(key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

pub(crate) async fn set_stages(
    State(state): State<AppState>,
    console: Console,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    let actor = console.form_as(Role::Admin, &form, state.now())?;
    let days = |key: &str| super::notices::days_list(form.get(key).unwrap_or_default());
    let done = match (days("admin"), days("user")) {
        (Ok(admin), Ok(user)) if user.len() == 1 => {
            state
                .run(console.scope(), move |store| {
                    let mut stages = store.load_tenant()?.config;
                    stages.admin_thresholds_days = admin;
                    stages.user_notice_days = user[0];
                    Ok(store.set_notice_stages(&stages, &actor)?)
                })
                .await
        }
        (Err(p), _) | (_, Err(p)) => Err(p),
        _ => Err(crate::problem::Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "give one number of days for the device users' notice",
        )),
    };
    settled(&state, &console, done, "saved").await
}

pub(crate) async fn add_mdm(
    State(state): State<AppState>,
    console: Console,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    let actor = console.form_as(Role::Admin, &form, state.now())?;
    let kind = provkit_store::MdmKind::parse(form.get("kind").unwrap_or_default());
    let done = match kind {
        None => Err(crate::problem::Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "give NanoMDM or MicroMDM",
        )),
        Some(kind) => {
            state
                .run(console.scope(), move |store| {
                    let (name, url, key) = (
                        field(&form, "name"),
                        field(&form, "url").unwrap_or_default(),
                        field(&form, "api_key").unwrap_or_default(),
                    );
                    Ok(provkit_service::delivery::add_connection(
                        store,
                        name.as_deref(),
                        kind,
                        &url,
                        &key,
                        field(&form, "webhook_hmac_key").as_deref(),
                        field(&form, "org_group").as_deref(),
                        &actor,
                    )?)
                })
                .await
        }
    };
    settled(&state, &console, done, "added").await
}

pub(crate) async fn add_channel(
    State(state): State<AppState>,
    console: Console,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    let actor = console.form_as(Role::Admin, &form, state.now())?;
    let kind = provkit_store::ChannelKind::parse(form.get("kind").unwrap_or_default());
    let done = match kind {
        None => Err(crate::problem::Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "give webhook, slack, teams or smtp",
        )),
        Some(kind) => {
            state
                .run(console.scope(), move |store| {
                    let to: Vec<String> = field(&form, "to")
                        .unwrap_or_default()
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned)
                        .collect();
                    let options = provkit_service::notify::ChannelOptions::default()
                        .secret(field(&form, "secret").as_deref())
                        .to(&to)
                        .org_group(field(&form, "org_group").as_deref());
                    let (name, url) = (
                        field(&form, "name").unwrap_or_default(),
                        field(&form, "url").unwrap_or_default(),
                    );
                    Ok(provkit_service::notify::add_channel(
                        store, &name, kind, &url, &options, &actor,
                    )?)
                })
                .await
        }
    };
    settled(&state, &console, done, "added").await
}

/// Removes the connection or channel the form names, as the API's DELETE
/// does (an admin's, within the group).
async fn remove_named<T: Send + 'static>(
    state: AppState,
    console: Console,
    form: FormData,
    remove: fn(
        &mut dyn provkit_store::Store,
        &str,
        &provkit_store::Actor,
    ) -> Result<T, provkit_store::StoreError>,
) -> Out {
    console.require(Role::Admin)?;
    console.check_csrf(&form)?;
    let name = form.get("name").unwrap_or_default().to_owned();
    let done = api::remove_named(&state, &console.caller, name, remove).await;
    settled(&state, &console, done, "removed").await
}

pub(crate) async fn remove_mdm(
    State(state): State<AppState>,
    console: Console,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    remove_named(state, console, form, |s, n, a| {
        s.remove_mdm_connection(n, a)
    })
    .await
}

pub(crate) async fn remove_channel(
    State(state): State<AppState>,
    console: Console,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    remove_named(state, console, form, |s, n, a| s.remove_channel(n, a)).await
}

/// Days-left cell, shared with the profile pages.
pub(crate) fn days_cell(days: i64) -> Markup {
    html! { td class=(days_class(days)) { (days) } }
}

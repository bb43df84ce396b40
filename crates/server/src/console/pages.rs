//! The dashboard, the groups tree, the audit log and the settings.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use chrono::{Datelike as _, Months};
use maud::{Markup, html};
use provkit_service::catalog::{self, GroupNode};
use provkit_service::expiry::{self, ExpiryFilter, ItemKind};
use provkit_service::tokens::Role;
use serde::Deserialize;

use super::layout::{self, date, days_class};
use super::{Console, Out};
use crate::api;
use crate::state::AppState;

/// Devices whose newest install command failed, from the outbox.
fn failed_devices(store: &mut dyn provkit_store::Store) -> Result<usize, crate::problem::Problem> {
    let mut newest: BTreeMap<(String, String), (chrono::DateTime<chrono::Utc>, bool)> =
        BTreeMap::new();
    for e in store.outbox()? {
        if e.request_type != "InstallProvisioningProfile" {
            continue;
        }
        let failed = e.status == provkit_store::CommandStatus::Error;
        let key = (e.udid, e.profile_uuid.to_ascii_uppercase());
        match newest.get(&key) {
            Some((at, _)) if *at >= e.updated_at => {}
            _ => {
                newest.insert(key, (e.updated_at, failed));
            }
        }
    }
    Ok(newest
        .into_iter()
        .filter(|(_, (_, failed))| *failed)
        .map(|((udid, _), _)| udid)
        .collect::<BTreeSet<_>>()
        .len())
}

pub(crate) async fn dashboard(State(state): State<AppState>, console: Console) -> Out {
    console.require(Role::Viewer)?;
    let snap = state.snapshot(console.scope()).await?;
    let at = state.now();
    let s2 = std::sync::Arc::clone(&snap);
    let report = state
        .compute(move || {
            Ok(expiry::report_with(
                &s2.engine,
                60,
                &ExpiryFilter::default(),
            ))
        })
        .await?;
    let failed = state.run(console.scope(), failed_devices).await?;
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

fn tree(nodes: &[GroupNode]) -> Markup {
    html! {
        ul.tree {
            @for n in nodes {
                li {
                    strong { (n.name) } " "
                    span.muted { "(" (format!("{:?}", n.kind).to_lowercase()) ", " (n.members.len()) " members)" }
                    @if n.repeated { " " span.muted { "(shown above)" } }
                    @if !n.subgroups.is_empty() { (tree(&n.subgroups)) }
                }
            }
        }
    }
}

pub(crate) async fn groups(State(state): State<AppState>, console: Console) -> Out {
    console.require(Role::Viewer)?;
    let nodes = state
        .run(console.scope(), |store| Ok(catalog::group_tree(store)?))
        .await?;
    let orgs = console.groups.clone();
    let body = html! {
        h1 { "Groups" }
        h2 { "Organization groups" }
        ul.tree { @for g in &orgs { li { (g) } } }
        h2 { "User and device groups" }
        @if nodes.is_empty() { p { "No groups yet: import an inventory." } } @else { (tree(&nodes)) }
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

pub(crate) async fn settings(State(state): State<AppState>, console: Console) -> Out {
    console.require(Role::Viewer)?;
    let conns = api::mdm::views(&state, &console.caller).await?;
    let channels = api::notify::views(&state, &console.caller).await?;
    let snap = state.snapshot(console.scope()).await?;
    let config = snap.engine.tenant().config.clone();
    let body = html! {
        h1 { "Settings" }
        p.muted { "Keys and secrets are write-only: they are set with " span.mono { "provkit mdm add" } " and " span.mono { "provkit notify add" } " (or the API) and never shown again." }
        h2 { "MDM connections" }
        div.scroll { table {
            thead { tr { th { "Name" } th { "Kind" } th { "URL" } th { "Group" } th { "Webhook signed" } th.num { "Due" } th.num { "Push errors" } th { "Status" } } }
            tbody {
                @for c in &conns {
                    tr {
                        td { (c.name) } td { (c.kind) } td.mono { (c.url) } td { (c.org_group) }
                        td { @if c.webhook_signed { "yes" } @else { "no" } }
                        td.num { (c.due) } td.num { (c.push_errors) }
                        td { @if c.degraded { span.days-red { "degraded" } " " (c.last_error.as_deref().unwrap_or("")) } @else { "ok" } }
                    }
                }
                @if conns.is_empty() { tr { td colspan="8" { "None." } } }
            }
        } }
        h2 { "Notification channels" }
        div.scroll { table {
            thead { tr { th { "Name" } th { "Kind" } th { "URL" } th { "To" } th { "Group" } th { "Signed" } th.num { "Waiting" } th { "Last error" } } }
            tbody {
                @for c in &channels {
                    tr {
                        td { (c.name) } td { (c.kind) } td.mono { (c.url) } td { (c.to.join(", ")) } td { (c.org_group) }
                        td { @if c.signed { "yes" } @else { "no" } }
                        td.num { (c.pending) }
                        td { @if let Some(e) = &c.last_error { span.days-red { (e) } } }
                    }
                }
                @if channels.is_empty() { tr { td colspan="8" { "None." } } }
            }
        } }
        h2 { "Thresholds" }
        dl.facts {
            dt { "Admin notices" } dd { (config.admin_thresholds_days.iter().map(|d| format!("{d} days")).collect::<Vec<_>>().join(", ")) " before a death date" }
            dt { "Device-user notice" } dd { (config.user_notice_days) " days before" }
        }
        p.muted { "Thresholds come from the server's configuration file (" span.mono { "provkit serve --config" } "); per-profile stages are set on each profile's notifications." }
    };
    Ok(layout::page(
        Some(&console),
        "Settings",
        "/console/settings",
        body,
    ))
}

/// Days-left cell, shared with the profile pages.
pub(crate) fn days_cell(days: i64) -> Markup {
    html! { td class=(days_class(days)) { (days) } }
}

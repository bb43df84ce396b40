//! Devices: search by UDID or user, and one device's profiles (desired,
//! installed, pending, failed) with "why" through nested groups.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use maud::html;
use provkit_policy::DeviceId;
use provkit_service::catalog::CommandFact;
use provkit_service::lifecycle;
use provkit_service::tokens::Role;
use serde::Deserialize;

use super::layout;
use super::profiles::encode;
use super::{Console, Out};
use crate::problem::Problem;
use crate::state::AppState;

/// Rows per page.
const PAGE: usize = 50;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    q: Option<String>,
    offset: Option<usize>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<ListQuery>,
) -> Out {
    console.require(Role::Viewer)?;
    let snap = state.page_snapshot(&console).await?;
    let t = snap.engine.tenant();
    let needle =
        q.q.as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_lowercase();
    let offset = q.offset.unwrap_or(0);
    let user_of = |d: &provkit_policy::Device| d.user.map(|u| t.users[u.index()].name.as_str());
    let mut total = 0usize;
    let mut rows = Vec::new();
    for (i, d) in t.devices.iter().enumerate() {
        let hit = needle.is_empty()
            || d.udid.to_lowercase().contains(&needle)
            || user_of(d).is_some_and(|u| u.to_lowercase().contains(&needle));
        if hit {
            if total >= offset && rows.len() < PAGE {
                rows.push(i);
            }
            total += 1;
        }
    }
    let base = format!("/console/devices?q={}", encode(&needle));
    let body = html! {
        h1 { "Devices" }
        form.inline method="get" action="/console/devices" role="search" {
            label { "UDID or user" input type="search" name="q" id="device-q" value=(needle); }
            button type="submit" { "Search" }
        }
        (layout::pager(&base, offset, PAGE, total))
        div.scroll { table {
            thead { tr { th { "UDID" } th { "User" } th { "Platform" } th.num { "Profiles desired" } th.num { "Profiles reported" } } }
            tbody { @for &i in &rows {
                @let d = &t.devices[i];
                tr {
                    td.mono { a href={"/console/devices/" (d.udid)} { (d.udid) } }
                    td { (user_of(d).unwrap_or("—")) }
                    td { (d.platform) }
                    td.num { (snap.engine.desired(DeviceId(u32::try_from(i).unwrap_or(u32::MAX))).len()) }
                    td.num { (d.reported.len()) }
                }
            } @if total == 0 { tr { td colspan="5" { "No device matches." } } } }
        } }
    };
    Ok(layout::page(
        Some(&console),
        "Devices",
        "/console/devices",
        body,
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ShowQuery {
    /// The profile whose "why" to show.
    profile: Option<String>,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(udid): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Out {
    console.require(Role::Viewer)?;
    let snap = state
        .page_snapshot_having(&console, |s| s.keys.device(&udid).is_some())
        .await?;
    let Some(id) = snap.keys.device(&udid) else {
        return Err(console.fail(Problem::not_found("device")));
    };
    let t = snap.engine.tenant();
    let d = &t.devices[id.index()];
    let udid = d.udid.clone();
    let index = state.page_commands(&console, &snap).await?;
    // The newest command per profile for this device.
    let commands: BTreeMap<String, &CommandFact> = index
        .of_device(id)
        .map(|f| (t.profiles[f.profile.index()].uuid.to_ascii_uppercase(), f))
        .collect();
    let desired: Vec<&provkit_policy::ProfileFacts> = snap
        .engine
        .desired(id)
        .iter()
        .map(|p| &t.profiles[p.index()])
        .collect();
    let reported: Vec<String> = d
        .reported
        .iter()
        .map(|r| r.uuid.to_string().to_ascii_uppercase())
        .collect();
    let why = match q.profile.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            let (s2, p) = (std::sync::Arc::clone(&snap), p.to_owned());
            Some(
                state
                    .compute(move || Ok(lifecycle::explain_device(&s2.engine, id, &p)?))
                    .await
                    .map_err(|p| console.fail(p))?,
            )
        }
        None => None,
    };
    let mut rows: Vec<(String, String, &'static str, Option<&CommandFact>)> = Vec::new();
    for p in &desired {
        let key = p.uuid.to_ascii_uppercase();
        let cmd = commands.get(&key).copied();
        let state_word = if reported.contains(&key) {
            "installed"
        } else {
            match cmd.map(|c| c.status) {
                Some(provkit_store::CommandStatus::Error) => "failed",
                Some(_) => "pending",
                None => "desired",
            }
        };
        rows.push((p.uuid.clone(), p.name.clone(), state_word, cmd));
    }
    for r in &d.reported {
        let key = r.uuid.to_string().to_ascii_uppercase();
        if !desired.iter().any(|p| p.uuid.eq_ignore_ascii_case(&key)) {
            let name = t
                .profile_by_uuid(&key)
                .map(|p| t.profiles[p.index()].name.clone())
                .unwrap_or_default();
            rows.push((
                key.clone(),
                name,
                "installed, not desired",
                commands.get(&key).copied(),
            ));
        }
    }
    let body = html! {
        p { a href="/console/devices" { "← Devices" } }
        h1.mono { (udid) }
        dl.facts {
            dt { "User" } dd { (d.user.map_or("—", |u| t.users[u.index()].name.as_str())) }
            dt { "Platform" } dd { (d.platform) }
            dt { "Apps" } dd { (d.apps.iter().map(|a| t.apps[a.index()].bundle_id.as_str()).collect::<Vec<_>>().join(", ")) }
        }
        h2 { "Profiles" }
        div.scroll { table id="device-profiles" {
            thead { tr { th { "Profile" } th { "UUID" } th { "State" } th { "Last command" } th { "Error chain" } th { "Why" } } }
            tbody { @for (uuid, name, word, cmd) in &rows {
                tr {
                    td { a href={"/console/profiles/" (uuid)} { (name) } }
                    td.mono { (uuid) }
                    td { (word) }
                    td { @if let Some(c) = cmd { (if c.install { "install" } else { "remove" }) " " (format!("{:?}", c.status).to_lowercase()) " " (c.updated_at.format("%Y-%m-%d %H:%M")) } }
                    td { @if let Some(e) = cmd.and_then(|c| c.error_chain.as_deref()) { span.days-red { (e) } } }
                    td { a href={"/console/devices/" (udid) "?profile=" (uuid) "#why"} { "why" } }
                }
            } @if rows.is_empty() { tr { td colspan="6" { "No profile is desired or reported." } } } }
        } }
        @if let Some(w) = &why {
            h2 id="why" { "Why " (if w.desired { "it should hold " } else { "it should not hold " }) span.mono { (w.profile) } }
            ol id="why-steps" { @for s in &w.steps { li { (s) } } }
        }
        form.inline method="get" action={"/console/devices/" (udid)} {
            label { "Explain a profile (UUID)" input type="text" name="profile" id="why-profile" value=[q.profile.as_deref()]; }
            button type="submit" { "Why?" }
        }
    };
    Ok(layout::page(
        Some(&console),
        &udid,
        "/console/devices",
        body,
    ))
}

//! Profiles: the table (sort, filter, search, CSV), creation by upload,
//! and one profile's page with its assignments editor, devices, renewal
//! and deletion.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use provkit_service::catalog::ProfileSummary;
use provkit_service::tokens::Role;
use provkit_service::{assign, catalog, lifecycle, trust};
use provkit_store::{AssignmentEdit, ProfileLabel, TargetName};
use serde::Deserialize;

use super::layout::{self, date, days_text};
use super::notices;
use super::pages::days_cell;
use super::session::FormData;
use super::{Console, Failure, Out};
use crate::problem::Problem;
use crate::state::AppState;

/// Rows per page of the table.
const PAGE: usize = 50;

/// The table's filters, sort and page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    q: Option<String>,
    kind: Option<String>,
    team: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    offset: Option<usize>,
    note: Option<String>,
}

impl ListQuery {
    fn matches(&self, p: &ProfileSummary) -> bool {
        let q = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        let kind = self.kind.as_deref().filter(|k| !k.is_empty());
        let team = self.team.as_deref().filter(|t| !t.is_empty());
        !p.retired
            && kind.is_none_or(|k| p.kind == k)
            && team.is_none_or(|t| p.team == t)
            && q.as_deref().is_none_or(|q| {
                [&p.name, &p.uuid, &p.app_id, &p.team]
                    .iter()
                    .any(|s| s.to_lowercase().contains(q))
                    || p.label
                        .name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(q))
            })
    }

    /// The query string without `offset` and with `sort`/`dir` as given.
    fn link(&self, sort: Option<&str>, dir: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("q", self.q.as_deref()),
            ("kind", self.kind.as_deref()),
            ("team", self.team.as_deref()),
            ("sort", sort),
            ("dir", dir),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.join("&")
    }

    /// The matching profiles in the asked order.
    fn select<'a>(&self, snap: &'a crate::state::Snapshot) -> Vec<&'a ProfileSummary> {
        let mut rows: Vec<&ProfileSummary> = snap
            .by_expiry
            .iter()
            .map(|&i| &snap.summaries[i])
            .filter(|p| self.matches(p))
            .collect();
        match self.sort.as_deref() {
            Some("name") => rows.sort_by(|a, b| {
                display_name(a)
                    .to_lowercase()
                    .cmp(&display_name(b).to_lowercase())
            }),
            Some("team") => rows.sort_by(|a, b| a.team.cmp(&b.team)),
            Some("devices") => rows.sort_by_key(|p| p.devices),
            Some("apps") => rows.sort_by_key(|p| p.apps.len()),
            _ => {}
        }
        if self.dir.as_deref() == Some("desc") {
            rows.reverse();
        }
        rows
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The admin's name for a profile, else the profile's own.
fn display_name(p: &ProfileSummary) -> &str {
    p.label.name.as_deref().unwrap_or(&p.name)
}

/// "Include: all-users; exclude: Executives".
fn assignment_summary(p: &ProfileSummary) -> String {
    match (p.include.is_empty(), p.exclude.is_empty()) {
        (true, _) => "not assigned".to_owned(),
        (false, true) => format!("include {}", p.include.join(", ")),
        (false, false) => format!(
            "include {}; exclude {}",
            p.include.join(", "),
            p.exclude.join(", ")
        ),
    }
}

fn note_text(note: &str) -> Option<&'static str> {
    Some(match note {
        "created" => "Profile created.",
        "deleted" => "Profile deleted.",
        "notifications" => "Notification settings saved.",
        "assigned" => "Assignments saved; the devices gaining or losing the profile are planned.",
        "renewed" => {
            "Renewed: every app that shared the old profile now uses this one, and its devices are planned."
        }
        _ => return None,
    })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<ListQuery>,
) -> Out {
    console.require(Role::Viewer)?;
    let snap = state.page_snapshot(&console).await?;
    let rows = q.select(&snap);
    let offset = q.offset.unwrap_or(0);
    let total = rows.len();
    let mut teams: Vec<&str> = snap.summaries.iter().map(|p| p.team.as_str()).collect();
    teams.sort_unstable();
    teams.dedup();
    let sort = q.sort.as_deref().unwrap_or("days");
    let dir = q.dir.as_deref().unwrap_or("asc");
    let header_link = |key: &str, label: &str| -> Markup {
        let next_dir = if sort == key && dir == "asc" {
            "desc"
        } else {
            "asc"
        };
        let aria = (sort == key).then_some(if dir == "asc" {
            "ascending"
        } else {
            "descending"
        });
        html! {
            th aria-sort=[aria] class=[(matches!(key, "days" | "devices" | "apps")).then_some("num")] {
                a href={"/console/profiles?" (q.link(Some(key), Some(next_dir)))} { (label) @if sort == key { @if dir == "asc" { " ▲" } @else { " ▼" } } }
            }
        }
    };
    let body = html! {
        h1 { "Profiles" }
        @if let Some(n) = q.note.as_deref().and_then(note_text) { div.note role="status" { (n) } }
        @if console.caller.0.role >= Role::Operator {
            p { a.button href="/console/profiles/new" { "Create profile" } }
        }
        form.inline method="get" action="/console/profiles" role="search" {
            label { "Search" input type="search" name="q" value=[q.q.as_deref()] placeholder="name, UUID, app id, team" data-filter="profiles-table"; }
            label { "Kind" select name="kind" {
                option value="" { "any" }
                @for k in ["development", "ad-hoc", "enterprise", "app-store"] {
                    option value=(k) selected[q.kind.as_deref() == Some(k)] { (k) }
                }
            } }
            label { "Team" select name="team" {
                option value="" { "any" }
                @for t in &teams { option value=(t) selected[q.team.as_deref() == Some(*t)] { (t) } }
            } }
            input type="hidden" name="sort" value=(sort);
            input type="hidden" name="dir" value=(dir);
            button type="submit" { "Filter" }
            a.button.secondary href={"/console/profiles.csv?" (q.link(Some(sort), Some(dir)))} download { "Export CSV" }
        }
        (layout::pager(&format!("/console/profiles?{}", q.link(Some(sort), Some(dir))), offset, PAGE, total))
        div.scroll { table id="profiles-table" {
            thead { tr {
                (header_link("name", "Name"))
                th { "Kind" }
                (header_link("team", "Team"))
                th { "App ID" }
                th { "Expires" }
                (header_link("days", "Days left"))
                (header_link("apps", "Apps"))
                (header_link("devices", "Devices"))
                th { "Assignments" }
            } }
            tbody {
                @for p in rows.iter().skip(offset).take(PAGE) {
                    tr {
                        td { a href={"/console/profiles/" (p.uuid)} { (display_name(p)) } }
                        td { (p.kind) }
                        td { (p.team) }
                        td.mono { (p.app_id) }
                        td { (date(p.expires)) }
                        (days_cell(p.days_left))
                        td.num { (p.apps.len()) }
                        td.num { (p.devices) }
                        td { (assignment_summary(p)) }
                    }
                }
                @if total == 0 { tr { td colspan="9" { "No profiles match." } } }
            }
        } }
    };
    Ok(layout::page(
        Some(&console),
        "Profiles",
        "/console/profiles",
        body,
    ))
}

/// A CSV field: quoted, with formula-starting values defused.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(crate) async fn csv(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<ListQuery>,
) -> Out {
    console.require(Role::Viewer)?;
    // A file has no notice to show: an export waits for the tenant as it
    // is now.
    let snap = state.snapshot(console.scope()).await?;
    let mut out = String::from(
        "name,uuid,kind,team,app_id,expires,days_left,apps,devices,include,exclude\r\n",
    );
    for p in q.select(&snap) {
        let row = [
            csv_field(display_name(p)),
            csv_field(&p.uuid),
            csv_field(&p.kind),
            csv_field(&p.team),
            csv_field(&p.app_id),
            csv_field(&p.expires.to_rfc3339()),
            p.days_left.to_string(),
            csv_field(&p.apps.join(" ")),
            p.devices.to_string(),
            csv_field(&p.include.join(" ")),
            csv_field(&p.exclude.join(" ")),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"profiles.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

fn upload_form(console: &Console, error: Option<&str>) -> Markup {
    html! {
        h1 { "Create profile" }
        @if let Some(e) = error { div.error role="alert" { (e) } }
        form.stack method="post" action="/console/profiles" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(console.session.csrf);
            label { "Name" input type="text" name="name" id="profile-name" required; }
            label { "Description" textarea name="description" id="profile-description" rows="3" {} }
            label { "Provisioning profile (.mobileprovision)" input type="file" name="file" id="profile-file" accept=".mobileprovision,.provisionprofile" required; }
            div { button type="submit" { "Create" } " " a href="/console/profiles" { "Cancel" } }
        }
    }
}

pub(crate) async fn new_form(console: Console) -> Out {
    console.require(Role::Operator)?;
    let body = upload_form(&console, None);
    Ok(layout::page(
        Some(&console),
        "Create profile",
        "/console/profiles",
        body,
    ))
}

/// A multipart form's text fields and its one file, held in memory (the
/// body limit bounds it).
#[derive(Debug, Default)]
pub(crate) struct Upload {
    pub(crate) form: FormData,
    pub(crate) file: Vec<u8>,
}

pub(crate) async fn read_multipart(
    console: &Console,
    mut mp: Multipart,
) -> Result<Upload, Failure> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        console.fail(Problem::new(e.status(), "invalid-form", e.body_text()))
    };
    let mut up = Upload::default();
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            up.file = field.bytes().await.map_err(bad)?.to_vec();
        } else {
            let text = field.text().await.map_err(bad)?;
            up.form.0.push((name, text));
        }
    }
    Ok(up)
}

pub(crate) async fn create(State(state): State<AppState>, console: Console, mp: Multipart) -> Out {
    console.require(Role::Operator)?;
    let up = read_multipart(&console, mp).await?;
    console.check_csrf(&up.form)?;
    let label = ProfileLabel {
        name: up
            .form
            .get("name")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        description: up
            .form
            .get("description")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    };
    let at = state.now();
    let actor = console.caller.actor(at);
    let bytes = up.file;
    let stored = state
        .run(console.scope(), move |store| {
            let verifier = trust::tenant_verifier(store)?;
            Ok(trust::store_labeled_profile(
                store, &bytes, &label, &verifier, at, &actor, false,
            )?)
        })
        .await;
    match stored {
        Ok(rec) => Ok(
            Redirect::to(&format!("/console/profiles/{}?note=created", rec.uuid)).into_response(),
        ),
        Err(p) => {
            let status = p.status;
            let body = upload_form(&console, Some(&p.detail));
            Ok((
                status,
                layout::page(Some(&console), "Create profile", "/console/profiles", body),
            )
                .into_response())
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ShowQuery {
    note: Option<String>,
    offset: Option<usize>,
}

/// What a profile page shows beyond the profile: a note, an error, a
/// preview of an assignment edit.
#[derive(Debug, Default)]
struct Extra {
    note: Option<String>,
    error: Option<String>,
    preview: Option<assign::PreviewSample>,
    /// The editor's targets as last submitted (kept across a preview).
    targets: Option<(Vec<String>, Vec<String>)>,
    /// The stored targets the editor was first shown with (kept across a
    /// preview, so that a save refuses to undo an edit made meanwhile).
    base: Option<(Vec<String>, Vec<String>)>,
    /// What the editor's group search asked for (a tenant with more than
    /// [`GROUPS_LISTED`] groups).
    find: Option<String>,
}

/// A tenant with at most this many groups has every group offered in the
/// assignments editor; above it (a generated 1M-device tenant has 100,000,
/// and a page listing them twice weighed megabytes), the editor offers the
/// chosen targets and the groups a search finds.
const GROUPS_LISTED: usize = 200;

/// A set of the posted target names (a form may name any number of
/// them, and every group offered is looked up).
fn names_set(names: &[String]) -> std::collections::HashSet<&str> {
    names.iter().map(String::as_str).collect()
}

/// Most devices a preview names on each side (the counts are whole).
const PREVIEW_NAMED: usize = 20;

/// Most groups one search offers.
const GROUPS_FOUND: usize = 50;

/// The group names the editor offers, by name: every group in a small
/// tenant, else the `chosen` ones and up to [`GROUPS_FOUND`] whose name
/// contains `find` (any case); and how many more the search matched.
fn offered_groups<'a>(
    all: impl ExactSizeIterator<Item = &'a str>,
    chosen: &std::collections::HashSet<&str>,
    find: Option<&str>,
) -> (Vec<&'a str>, usize) {
    if all.len() <= GROUPS_LISTED {
        let mut names: Vec<&str> = all.collect();
        names.sort_unstable();
        return (names, 0);
    }
    let needle = find
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_lowercase);
    let mut names: Vec<&str> = Vec::new();
    let mut matches: Vec<&str> = Vec::new();
    for name in all {
        if chosen.contains(name) {
            names.push(name);
        } else if let Some(n) = &needle
            && name.to_lowercase().contains(n.as_str())
        {
            matches.push(name);
        }
    }
    matches.sort_unstable();
    let more = matches.len().saturating_sub(GROUPS_FOUND);
    matches.truncate(GROUPS_FOUND);
    names.extend(matches);
    names.sort_unstable();
    names.dedup();
    (names, more)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(uuid): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Out {
    console.require(Role::Viewer)?;
    let extra = Extra {
        note: q.note.as_deref().and_then(note_text).map(str::to_owned),
        ..Extra::default()
    };
    page(
        &state,
        &console,
        &uuid,
        q.offset.unwrap_or(0),
        extra,
        StatusCode::OK,
    )
    .await
}

async fn page(
    state: &AppState,
    console: &Console,
    given: &str,
    offset: usize,
    extra: Extra,
    status: StatusCode,
) -> Out {
    let snap = state
        .page_snapshot_having(console, |s| {
            provkit_service::names::profile(s.engine.tenant(), given).is_ok()
        })
        .await?;
    let t = snap.engine.tenant();
    let id = provkit_service::names::profile(t, given).map_err(|e| console.fail(e.into()))?;
    let p = snap.summaries[id.index()].clone();
    let facts = &t.profiles[id.index()];
    let uuid = p.uuid.clone();
    let index = state.page_commands(console, &snap).await?;
    let (u2, s2) = (uuid.clone(), std::sync::Arc::clone(&snap));
    let devices = state
        .compute(move || {
            let h = s2.holders();
            Ok(catalog::device_status_page(
                &s2.engine, &index, h, &u2, offset, PAGE,
            )?)
        })
        .await?;
    let u2 = uuid.clone();
    let (versions, notify, stored) = state
        .run(console.scope(), move |store| {
            let own = store
                .notify_settings()?
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&u2))
                .map(|(_, s)| s)
                .unwrap_or_default();
            // The editor starts from the stored targets, not the
            // snapshot's, which may lag behind the last save.
            let (mut include, mut exclude) = (Vec::new(), Vec::new());
            for a in store.profile_assignments(&u2)? {
                let side = if a.include {
                    &mut include
                } else {
                    &mut exclude
                };
                side.push(a.target.to_string());
            }
            Ok((store.profile_versions(&u2)?, own, (include, exclude)))
        })
        .await?;
    let label = versions.last().map(|v| v.label.clone()).unwrap_or_default();
    let (include, exclude) = extra.targets.clone().unwrap_or_else(|| stored.clone());
    // Sets: a posted form may name any number of targets, and every group
    // offered is looked up in them.
    let (included, excluded) = (names_set(&include), names_set(&exclude));
    let chosen: std::collections::HashSet<&str> = included.union(&excluded).copied().collect();
    let searching = t.groups.len() > GROUPS_LISTED;
    let (group_names, more) = offered_groups(
        t.groups.iter().map(|g| g.name.as_str()),
        &chosen,
        extra.find.as_deref(),
    );
    let (was_include, was_exclude) = extra.base.clone().unwrap_or(stored);
    let operator = console.caller.0.role >= Role::Operator;
    let admin = console.caller.0.role >= Role::Admin;
    // All users and All devices are assigned at the root only.
    let everyone: &[(&str, &str)] = if console.scope() == provkit_store::org::ROOT {
        &[("all-users", "All users"), ("all-devices", "All devices")]
    } else {
        &[]
    };
    let failed = devices.failed;
    let target_box = |side: &str, chosen: &std::collections::HashSet<&str>| -> Markup {
        html! {
            fieldset {
                legend { (if side == "include" { "Include" } else { "Exclude" }) }
                ul {
                    @for (value, label) in everyone.iter().copied().chain(group_names.iter().map(|g| (*g, *g))) {
                        li { label.check {
                            input type="checkbox" name=(side) value=(value) checked[chosen.contains(value)] disabled[!operator];
                            (label)
                        } }
                    }
                }
            }
        }
    };
    let body = html! {
        p { a href="/console/profiles" { "← Profiles" } }
        h1 { (label.name.as_deref().unwrap_or(&p.name)) }
        @if let Some(n) = &extra.note { div.note role="status" { (n) } }
        @if let Some(e) = &extra.error { div.error role="alert" id="error" { (e) } }
        p class=(if p.days_left <= 30 { "days-red" } else if p.days_left <= 60 { "days-amber" } else { "" }) { (days_text(p.days_left)) " (" (date(p.expires)) ")" }
        @if let Some(d) = &label.description { p { (d) } }
        dl.facts {
            dt { "Profile name" } dd { (p.name) }
            dt { "UUID" } dd.mono { (p.uuid) }
            dt { "Kind" } dd { (p.kind) }
            dt { "Team" } dd { (p.team) }
            dt { "App ID" } dd.mono { (p.app_id) }
            dt { "Created" } dd { (date(facts.created)) }
            dt { "Expires" } dd { (date(p.expires)) }
            @if let Some(s) = &p.successor { dt { "Renewed by" } dd { a href={"/console/profiles/" (s)} { (s) } } }
        }
        h2 { "Certificates" }
        div.scroll { table {
            thead { tr { th { "SHA-256" } th { "Expires" } th.num { "Days left" } } }
            tbody { @for c in &facts.certificates {
                @let days = (c.not_after - snap.engine.at()).num_days();
                tr { td.mono { (provkit_profile::hex(&c.sha256)) } td { (date(c.not_after)) } (days_cell(days)) }
            } }
        } }
        h2 { "Apps" }
        @if p.apps.is_empty() { p { "No app is linked to this profile." } } @else {
            ul id="apps" { @for a in &p.apps { li.mono { (a) } } }
        }
        h2 id="notifications" { "Notifications" }
        p id="notify-current" { "Expiry messages: " (notify) "." }
        (notices::form(&format!("/console/profiles/{uuid}/notifications"), &console.session.csrf, &notify, &notices::Item::Profile, operator))
        h2 { "Versions" }
        div.scroll { table {
            thead { tr { th.num { "Version" } th { "Uploaded" } th { "SHA-256" } } }
            tbody { @for v in &versions { tr { td.num { (v.version) } td { (v.uploaded_at.format("%Y-%m-%d %H:%M")) } td.mono { (v.sha256) } } } }
        } }
        h2 id="assignments" { "Assignments" }
        p { (assignment_summary(&p)) }
        @if let Some(c) = &extra.preview {
            div.preview role="status" id="preview" {
                p { strong { "Preview: " } span id="gaining" { (c.gaining) } " devices would gain this profile and "
                    span id="losing" { (c.losing) } " would lose it. Nothing is saved yet." }
                @if c.gaining > 0 { p.mono { "Gaining: " (c.change.devices_gaining.join(", ")) @if c.gaining > c.change.devices_gaining.len() { " …" } } }
                @if c.losing > 0 { p.mono { "Losing: " (c.change.devices_losing.join(", ")) @if c.losing > c.change.devices_losing.len() { " …" } } }
            }
        }
        form method="post" action={"/console/profiles/" (uuid) "/assignments"} {
            input type="hidden" name="csrf" value=(console.session.csrf);
            input type="hidden" name="base" value="1";
            @for t in &was_include { input type="hidden" name="was_include" value=(t); }
            @for t in &was_exclude { input type="hidden" name="was_exclude" value=(t); }
            div.targets { (target_box("include", &included)) (target_box("exclude", &excluded)) }
            @if searching {
                p.muted { "This tenant has " (t.groups.len()) " groups: the boxes offer the chosen ones and those a search finds (at most " (GROUPS_FOUND) ")." }
                p {
                    label for="find-groups" { "Find groups by name" } " "
                    input type="search" name="find" id="find-groups" value=(extra.find.as_deref().unwrap_or_default());
                    " " button.secondary type="submit" name="action" value="find" id="find-button" { "Find" }
                }
                @if let Some(f) = extra.find.as_deref().filter(|f| !f.trim().is_empty()) {
                    p id="found" role="status" {
                        @if more > 0 { "The first " (GROUPS_FOUND) " groups whose name contains “" (f) "” are offered; " (more) " more match: refine the search." }
                        @else { "Groups whose name contains “" (f) "” are offered." }
                    }
                }
            }
            @if operator {
                p { button.secondary type="submit" name="action" value="preview" id="preview-button" { "Preview" } " "
                    button type="submit" name="action" value="save" id="save-button" { "Save assignments" } }
            }
        }
        h2 id="devices" { "Devices" }
        p.muted { (devices.total) " devices want, hold or were sent this profile; " (failed) " failed." }
        (layout::pager(&format!("/console/profiles/{uuid}"), offset, PAGE, devices.total))
        div.scroll { table id="device-status" {
            thead { tr { th { "Device" } th { "State" } th { "Desired" } th { "Updated" } th { "Error chain" } } }
            tbody { @for d in &devices.items {
                tr {
                    td.mono { a href={"/console/devices/" (d.udid) "?profile=" (uuid)} { (d.udid) } }
                    td { (serde_json::to_value(d.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                    td { @if d.desired { "yes" } @else { "no" } }
                    td { @if let Some(u) = d.updated_at { (u.format("%Y-%m-%d %H:%M")) } }
                    td { @if let Some(e) = &d.error_chain { span.days-red { (e) } } }
                }
            } }
        } }
        @if operator {
            h2 id="renew" { "Renew" }
            form.stack method="post" action={"/console/profiles/" (uuid) "/renew"} enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(console.session.csrf);
                label { "Successor profile (.mobileprovision)" input type="file" name="file" id="renew-file" required; }
                label.check { input type="checkbox" name="all_apps" value="yes" id="renew-all-apps" checked;
                    "Update for all apps that share it (" (p.apps.len()) ")" }
                div { button type="submit" id="renew-button" { "Renew" } }
            }
        }
        @if admin {
            h2 id="delete" { "Delete" }
            form method="post" action={"/console/profiles/" (uuid) "/delete"} data-confirm="Delete this profile?" {
                input type="hidden" name="csrf" value=(console.session.csrf);
                button.danger type="submit" id="delete-button" { "Delete profile" }
            }
        }
    };
    let title = label.name.clone().unwrap_or(p.name.clone());
    Ok((
        status,
        layout::page(Some(console), &title, "/console/profiles", body),
    )
        .into_response())
}

/// The profile's page again with `message` in its error box.
async fn refused(
    state: &AppState,
    console: &Console,
    uuid: &str,
    message: String,
    status: StatusCode,
) -> Out {
    let extra = Extra {
        error: Some(message),
        ..Extra::default()
    };
    page(state, console, uuid, 0, extra, status).await
}

pub(crate) async fn assignments(
    State(state): State<AppState>,
    console: Console,
    Path(uuid): Path<String>,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    let at = state.now();
    let actor = console.form_as(Role::Operator, &form, at)?;
    let (include, exclude) = (form.all("include"), form.all("exclude"));
    let names = |v: &[String]| v.iter().map(|s| TargetName::parse(s)).collect();
    // The console's form names the targets it was shown (`base`): the
    // save refuses to undo an edit made since (a conflict, nothing
    // written). A form without them replaces whatever is stored.
    let base = form
        .get("base")
        .is_some()
        .then(|| (form.all("was_include"), form.all("was_exclude")));
    let edit = match &base {
        Some((was_include, was_exclude)) => AssignmentEdit::ReplaceFrom {
            was_include: names(was_include),
            was_exclude: names(was_exclude),
            include: names(&include),
            exclude: names(&exclude),
        },
        None => AssignmentEdit::Replace {
            include: names(&include),
            exclude: names(&exclude),
        },
    };
    let save = form.get("action") == Some("save");
    let find = form.get("find").map(str::to_owned);
    if form.get("action") == Some("find") {
        // The editor again with what was ticked kept and the groups found
        // offered; nothing read but the page.
        let extra = Extra {
            targets: Some((include, exclude)),
            base,
            find,
            ..Extra::default()
        };
        return page(&state, &console, &uuid, 0, extra, StatusCode::OK).await;
    }
    let u2 = uuid.clone();
    // A save writes the targets alone (the page shows no device lists
    // after it); a preview takes its devices from the snapshot's engine,
    // not from two plans of the tenant.
    let snap = if save {
        None
    } else {
        Some(state.page_snapshot(&console).await?)
    };
    let result = state
        .run(console.scope(), move |store| {
            Ok(match &snap {
                None => {
                    assign::edit_targets(store, &u2, &edit, &actor)?;
                    None
                }
                Some(snap) => Some(assign::preview_sample_on(
                    store,
                    &snap.engine,
                    &u2,
                    &edit,
                    at,
                    PREVIEW_NAMED,
                )?),
            })
        })
        .await;
    match result {
        Ok(_) if save => Ok(Redirect::to(&format!(
            "/console/profiles/{uuid}?note=assigned#assignments"
        ))
        .into_response()),
        Ok(sample) => {
            let extra = Extra {
                preview: sample,
                targets: Some((include, exclude)),
                base,
                find,
                ..Extra::default()
            };
            page(&state, &console, &uuid, 0, extra, StatusCode::OK).await
        }
        Err(p) => {
            let extra = Extra {
                error: Some(p.detail.clone()),
                targets: Some((include, exclude)),
                find,
                ..Extra::default()
            };
            page(&state, &console, &uuid, 0, extra, p.status).await
        }
    }
}

pub(crate) async fn renew(
    State(state): State<AppState>,
    console: Console,
    Path(uuid): Path<String>,
    mp: Multipart,
) -> Out {
    console.require(Role::Operator)?;
    let up = read_multipart(&console, mp).await?;
    console.check_csrf(&up.form)?;
    if up.form.get("all_apps") != Some("yes") {
        let why = "A renewal moves every app that shares the profile to the successor: tick \"Update for all apps that share it\" to go on.";
        return refused(
            &state,
            &console,
            &uuid,
            why.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let at = state.now();
    let actor = console.caller.actor(at);
    let (u2, bytes) = (uuid.clone(), up.file);
    let renewed = state
        .run(console.scope(), move |store| {
            let old = provkit_service::names::profile_uuid(store, &u2)?;
            let verifier = trust::tenant_verifier(store)?;
            Ok(lifecycle::renew(
                store, &old, &bytes, &verifier, at, &actor, false,
            )?)
        })
        .await;
    match renewed {
        Ok(r) => {
            Ok(Redirect::to(&format!("/console/profiles/{}?note=renewed", r.uuid)).into_response())
        }
        Err(p) => {
            refused(
                &state,
                &console,
                &uuid,
                format!("Not renewed: {}", p.detail),
                p.status,
            )
            .await
        }
    }
}

pub(crate) async fn notifications(
    State(state): State<AppState>,
    console: Console,
    Path(uuid): Path<String>,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    let actor = console.form_as(Role::Operator, &form, state.now())?;
    let saved = match notices::parse(&form) {
        Ok(settings) => {
            let u2 = uuid.clone();
            state
                .run(console.scope(), move |store| {
                    let uuid = provkit_service::names::profile_uuid(store, &u2)?;
                    Ok(store.set_notify_settings(&uuid, &settings, &actor)?)
                })
                .await
        }
        Err(p) => Err(p),
    };
    let next = format!("/console/profiles/{uuid}?note=notifications#notifications");
    after_write(&state, &console, &uuid, saved, &next, "Not saved").await
}

/// Where a profile's form goes after its write: on to `next`, "Not
/// found" for a profile outside the scope, else its page again with the
/// refusal after `failed`.
async fn after_write(
    state: &AppState,
    console: &Console,
    uuid: &str,
    done: Result<(), Problem>,
    next: &str,
    failed: &str,
) -> Out {
    match done {
        Ok(()) => Ok(Redirect::to(next).into_response()),
        Err(p) if p.status == StatusCode::NOT_FOUND => Err(console.fail(p)),
        Err(p) => {
            refused(
                state,
                console,
                uuid,
                format!("{failed}: {}", p.detail),
                p.status,
            )
            .await
        }
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(uuid): Path<String>,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    let actor = console.form_as(Role::Admin, &form, state.now())?;
    let u2 = uuid.clone();
    let deleted = state
        .run(console.scope(), move |store| {
            let uuid = provkit_service::names::profile_uuid(store, &u2)?;
            Ok(lifecycle::delete(store, &uuid, &actor)?)
        })
        .await;
    after_write(
        &state,
        &console,
        &uuid,
        deleted,
        "/console/profiles?note=deleted",
        "Not deleted",
    )
    .await
}

//! Apps: the linked apps with their death dates and causes, and an upload
//! that verifies an IPA (findings with installd's class and the fix) and,
//! when asked, stores it and links it to its profile.

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use provkit_codesign::{At, Options, Report, verify_archive};
use provkit_policy::AppId;
use provkit_service::tokens::Role;
use provkit_service::{import, trust};
use tokio::io::AsyncWriteExt as _;

use std::collections::HashMap;

use provkit_store::NotifySettings;

use super::layout::{self, date};
use super::notices;
use super::pages::days_cell;
use super::session::FormData;
use super::{Console, Failure, Out};
use crate::api::apps::{Upload, open};
use crate::problem::Problem;
use crate::state::AppState;

/// What an upload produced.
enum Outcome {
    Report(Report),
    Linked(import::ImportedApp),
}

async fn render(
    state: &AppState,
    console: &Console,
    outcome: Option<Outcome>,
    error: Option<String>,
    status: StatusCode,
) -> Out {
    let snap = state.page_snapshot(console).await?;
    let t = snap.engine.tenant();
    let at = snap.engine.at();
    let operator = console.caller.0.role >= Role::Operator;
    let own: HashMap<String, NotifySettings> = state
        .run(console.scope(), |store| Ok(store.app_notify_settings()?))
        .await?
        .into_iter()
        .collect();
    let mut bundles: Vec<String> = t.apps.iter().map(|a| a.bundle_id.clone()).collect();
    bundles.sort_unstable();
    bundles.dedup();
    let rows: Vec<Markup> = t
        .apps
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let death = t.app_death(AppId(u32::try_from(i).unwrap_or(u32::MAX)));
            let profile = a.profile.map(|p| &t.profiles[p.index()]);
            let cause = match profile {
                Some(p) if p.expires <= a.certificate_not_after => "its profile expires",
                Some(_) => "its signing certificate expires (re-sign)",
                None => "its signing certificate expires (re-sign); no profile linked",
            };
            html! {
                tr {
                    td.mono { (a.bundle_id) }
                    td { (a.version) }
                    td { (a.team) }
                    td { @if let Some(p) = profile { a href={"/console/profiles/" (p.uuid)} { (p.name) } } @else { "—" } }
                    td { (date(death)) }
                    (days_cell((death - at).num_days()))
                    td { (cause) }
                    td { (own.get(&a.bundle_id).cloned().unwrap_or_default()) }
                }
            }
        })
        .collect();
    let body = html! {
        h1 { "Apps" }
        @if let Some(e) = &error { div.error role="alert" { (e) } }
        @match &outcome {
            Some(Outcome::Linked(a)) => div.note role="status" id="linked" {
                "Stored " span.mono { (a.bundle_id) } " " (a.version) " and linked it to profile "
                a href={"/console/profiles/" (a.profile_uuid)} { (a.profile_uuid) } "."
                @if !a.today.is_empty() { " Today it would not install: " (a.today.join(", ")) }
            },
            Some(Outcome::Report(r)) => section aria-labelledby="report" {
                h2 id="report" { "Verification: " @if r.valid { "installs" } @else { "would not install" } }
                @for b in &r.bundles { p.mono { (b.path) " " (b.bundle_id.as_deref().unwrap_or("")) " " (b.version.as_deref().unwrap_or("")) } }
                @if r.findings.is_empty() { p { "No findings." } } @else {
                    div.scroll { table id="findings" {
                        thead { tr { th { "Code" } th { "Severity" } th { "installd class" } th { "Where" } th { "What" } th { "Fix" } } }
                        tbody { @for f in &r.findings { tr {
                            td.mono { (f.code.as_str()) }
                            td { (format!("{:?}", f.severity).to_lowercase()) }
                            td.mono { (f.class.unwrap_or("")) }
                            td.mono { (f.bundle) @if let Some(p) = &f.path { " " (p) } }
                            td { (f.message) }
                            td { (f.fix) }
                        } } }
                    } }
                }
            },
            None => {}
        }
        h2 { "Verify an app" }
        form.stack method="post" action="/console/apps" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(console.session.csrf);
            label { "App (.ipa)" input type="file" name="file" id="ipa-file" accept=".ipa" required; }
            @if operator { label.check { input type="checkbox" name="link" value="yes" id="ipa-link"; "Store it and link it to its profile" } }
            div { button type="submit" id="ipa-button" { "Verify" } }
        }
        h2 { "Linked apps" }
        div.scroll { table {
            thead { tr { th { "Bundle ID" } th { "Version" } th { "Team" } th { "Profile" } th { "Dies" } th.num { "Days left" } th { "Cause" } th { "Notifications" } } }
            tbody { @for r in &rows { (r) } @if rows.is_empty() { tr { td colspan="8" { "No apps yet." } } } }
        } }
        @if operator && !bundles.is_empty() {
            h2 id="notifications" { "An app's notifications" }
            p.muted { "Off: no device-user notices for the app, and its profiles' messages leave it out. Own admin stages apply to the profiles it uses (a profile's own settings come first); the device-user notice goes to the users of devices that run it." }
            (notices::form("/console/apps/notifications", &console.session.csrf, &NotifySettings::default(), &notices::Item::App(&bundles), true))
        }
    };
    Ok((
        status,
        layout::page(Some(console), "Apps", "/console/apps", body),
    )
        .into_response())
}

pub(crate) async fn list(State(state): State<AppState>, console: Console) -> Out {
    console.require(Role::Viewer)?;
    render(&state, &console, None, None, StatusCode::OK).await
}

/// Saves an app's own notification settings, then shows the apps again.
pub(crate) async fn notifications(
    State(state): State<AppState>,
    console: Console,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    let actor = console.form_as(Role::Operator, &form, state.now())?;
    let bundle = form.get("bundle_id").unwrap_or_default().to_owned();
    let saved = match notices::parse(&form) {
        Ok(settings) => {
            state
                .run(console.scope(), move |store| {
                    Ok(store.set_app_notify_settings(&bundle, &settings, &actor)?)
                })
                .await
        }
        Err(p) => Err(p),
    };
    match saved {
        Ok(()) => Ok(axum::response::Redirect::to("/console/apps#notifications").into_response()),
        Err(p) if p.status == StatusCode::NOT_FOUND => Err(console.fail(p)),
        Err(p) => render(&state, &console, None, Some(p.detail.clone()), p.status).await,
    }
}

/// Streams the form's file to a temporary file of at most `max` bytes;
/// the text fields come back beside it.
async fn spool_form(
    console: &Console,
    mut mp: Multipart,
    max: u64,
) -> Result<(FormData, Upload), Failure> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        console.fail(Problem::new(e.status(), "invalid-form", e.body_text()))
    };
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, "spooling an upload");
        console.fail(Problem::internal("the upload could not be stored"))
    };
    let mut form = FormData::default();
    let upload = Upload::fresh();
    let mut written = 0u64;
    while let Some(mut field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            form.0.push((name, field.text().await.map_err(bad)?));
            continue;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(upload.path())
            .await
            .map_err(internal)?;
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            written += chunk.len() as u64;
            if written > max {
                return Err(console.fail(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    format!("the upload is larger than {max} bytes"),
                )));
            }
            file.write_all(&chunk).await.map_err(internal)?;
        }
        file.flush().await.map_err(internal)?;
    }
    if written == 0 {
        return Err(console.fail(Problem::bad_request(
            "empty-body",
            "choose an .ipa to upload",
        )));
    }
    Ok((form, upload))
}

pub(crate) async fn upload(State(state): State<AppState>, console: Console, mp: Multipart) -> Out {
    console.require(Role::Viewer)?;
    let (form, upload) = spool_form(&console, mp, state.limits.max_upload_bytes).await?;
    console.check_csrf(&form)?;
    let link = form.get("link") == Some("yes");
    if link {
        console.require(Role::Operator)?;
    }
    let at = state.now();
    let actor = console.caller.actor(at);
    let result = state
        .run(console.scope(), move |store| {
            let archive = open(&upload)?;
            let verifier = trust::tenant_verifier(store)?;
            if link {
                return Ok(Outcome::Linked(import::import_ipa(
                    store, &archive, &verifier, at, &actor,
                )?));
            }
            verify_archive(&archive, &Options::new(&verifier, At::Instant(at)))
                .map(Outcome::Report)
                .map_err(|e| {
                    Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "not-an-app",
                        e.to_string(),
                    )
                })
        })
        .await;
    match result {
        Ok(o) => render(&state, &console, Some(o), None, StatusCode::OK).await,
        Err(p) => render(&state, &console, None, Some(p.detail.clone()), p.status).await,
    }
}

//! Notification channels (`/api/v1/notify-channels`) and the calendar feed
//! (`/api/v1/calendar.ics`): an event per death date, with reminders at the
//! profile's admin stages (its own, its apps', or the tenant's; none when
//! it is switched off), for the caller's organization group.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use provkit_service::tokens::Role;
use provkit_store::ChannelKind;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// A channel as the API shows it: never its secret.
#[derive(Debug, Serialize)]
pub(crate) struct ChannelView {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) url: String,
    pub(crate) to: Vec<String>,
    pub(crate) org_group: String,
    pub(crate) signed: bool,
    pub(crate) created_by: String,
    pub(crate) created_at: DateTime<Utc>,
    /// Messages waiting (failed at least once, or not yet sent).
    pub(crate) pending: usize,
    /// The last failure among them.
    pub(crate) last_error: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    Ok(Json(views(&state, &caller).await?))
}

/// The channels within the caller's scope, with what waits on each (the
/// API's list and the console's settings page).
pub(crate) async fn views(state: &AppState, caller: &Caller) -> Result<Vec<ChannelView>, Problem> {
    let channels = state
        .run(caller.scope(), |store| Ok(store.channels()?))
        .await?;
    let notices = state
        .run(provkit_store::org::ROOT, |store| Ok(store.notices()?))
        .await?;
    let views: Vec<ChannelView> = channels
        .into_iter()
        .map(|c| {
            let waiting: Vec<_> = notices
                .iter()
                .filter(|n| n.channel == c.name && n.sent_at.is_none())
                .collect();
            ChannelView {
                pending: waiting.len(),
                last_error: waiting.iter().find_map(|n| n.last_error.clone()),
                name: c.name,
                kind: c.kind.as_str(),
                url: c.url,
                to: c.to,
                org_group: c.org_group,
                signed: c.secret.is_some(),
                created_by: c.created_by,
                created_at: c.created_at,
            }
        })
        .collect();
    Ok(views)
}

/// `POST /api/v1/notify-channels`: the secret travels once, here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewChannel {
    name: String,
    kind: String,
    url: String,
    secret: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    org_group: Option<String>,
    template: Option<String>,
}

pub(crate) async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewChannel>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let kind = ChannelKind::parse(&new.kind).ok_or_else(|| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("kind {:?}: give webhook, slack, teams or smtp", new.kind),
        )
    })?;
    let actor = caller.actor(state.now());
    let c = state
        .run(caller.scope(), move |store| {
            Ok(provkit_service::notify::add_channel(
                store,
                &new.name,
                kind,
                &new.url,
                &provkit_service::notify::ChannelOptions::default()
                    .secret(new.secret.as_deref())
                    .to(&new.to)
                    .org_group(new.org_group.as_deref())
                    .template(new.template.as_deref()),
                &actor,
            )?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "name": c.name, "kind": c.kind.as_str(), "url": c.url, "org_group": c.org_group,
            "signed": c.secret.is_some(),
        })),
    ))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    super::remove_named(&state, &caller, name, |store, name, actor| {
        store.remove_channel(name, actor)
    })
    .await
}

/// Stores an item's own settings as an operator of the caller's group,
/// through `set` (which finds the item in scope), and answers them.
async fn save_settings(
    state: &AppState,
    caller: &Caller,
    settings: provkit_store::NotifySettings,
    set: impl FnOnce(
        &mut dyn provkit_store::Store,
        &provkit_store::NotifySettings,
        &provkit_store::Actor,
    ) -> Result<(), Problem>
    + Send
    + 'static,
) -> Result<Json<provkit_store::NotifySettings>, Problem> {
    caller.require(Role::Operator)?;
    let actor = caller.actor(state.now());
    let shown = settings.clone();
    state
        .run(caller.scope(), move |store| set(store, &settings, &actor))
        .await?;
    Ok(Json(shown))
}

/// `PUT /api/v1/profiles/{uuid}/notifications`: the profile's own
/// stages, or off; `{}` goes back to the tenant's.
pub(crate) async fn settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(uuid): Path<String>,
    Json(settings): Json<provkit_store::NotifySettings>,
) -> Result<impl IntoResponse, Problem> {
    save_settings(&state, &caller, settings, move |store, s, actor| {
        let full = provkit_service::names::profile_uuid(store, &uuid)?;
        Ok(store.set_notify_settings(&full, s, actor)?)
    })
    .await
}

/// `PUT /api/v1/apps/{bundle_id}/notifications`: the app's own settings
/// (off, admin stages for its profiles, its device users' stage); `{}`
/// goes back to the tenant's.
pub(crate) async fn app_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(bundle_id): Path<String>,
    Json(settings): Json<provkit_store::NotifySettings>,
) -> Result<impl IntoResponse, Problem> {
    save_settings(&state, &caller, settings, move |store, s, actor| {
        Ok(store.set_app_notify_settings(&bundle_id, s, actor)?)
    })
    .await
}

/// Escapes a text value (RFC 5545 section 3.3.11).
fn ics_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 5545 section 3.1).
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

pub(crate) async fn calendar(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let snap = state.snapshot(caller.scope()).await?;
    let stages = snap.engine.tenant().config.admin_thresholds_days.clone();
    let own = state
        .run(caller.scope(), |store| {
            Ok(provkit_service::notify::ItemSettings::read(store)?)
        })
        .await?;
    let stamp = state.now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut out = String::new();
    for l in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//provkit//expiry calendar//EN",
        "CALSCALE:GREGORIAN",
        "X-WR-CALNAME:provkit: what dies when",
    ] {
        fold(l, &mut out);
    }
    for &i in &snap.by_expiry {
        let p = &snap.summaries[i];
        if p.retired || p.successor.is_some() {
            continue;
        }
        let day = p.expires.format("%Y%m%d").to_string();
        let next = (p.expires + chrono::Duration::days(1))
            .format("%Y%m%d")
            .to_string();
        let title = p.label.name.clone().unwrap_or_else(|| p.name.clone());
        fold("BEGIN:VEVENT", &mut out);
        fold(&format!("UID:{}@provkit", p.uuid), &mut out);
        fold(&format!("DTSTAMP:{stamp}"), &mut out);
        fold(&format!("DTSTART;VALUE=DATE:{day}"), &mut out);
        fold(&format!("DTEND;VALUE=DATE:{next}"), &mut out);
        fold(
            &format!(
                "SUMMARY:{}",
                ics_text(&format!("Profile {title} expires: renew it"))
            ),
            &mut out,
        );
        let description = format!(
            "UUID {}, team {}, app ID {}. Apps: {}. Devices: {}.",
            p.uuid,
            p.team,
            p.app_id,
            if p.apps.is_empty() {
                "none".into()
            } else {
                p.apps.join(", ")
            },
            p.devices
        );
        fold(&format!("DESCRIPTION:{}", ics_text(&description)), &mut out);
        for s in &own.admin_stages(&p.uuid, &p.apps, &stages) {
            fold("BEGIN:VALARM", &mut out);
            fold("ACTION:DISPLAY", &mut out);
            fold(&format!("TRIGGER:-P{}D", s.max(&0)), &mut out);
            fold(
                &format!(
                    "DESCRIPTION:{}",
                    ics_text(&format!("{title}: {s} days left"))
                ),
                &mut out,
            );
            fold("END:VALARM", &mut out);
        }
        fold("END:VEVENT", &mut out);
    }
    fold("END:VCALENDAR", &mut out);
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        out,
    ))
}

/// `PUT /api/v1/notify-stages`: the tenant's admin stages and device-user
/// notice.
pub(crate) async fn stages(
    State(state): State<AppState>,
    caller: Caller,
    Json(stages): Json<provkit_policy::Config>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Admin)?;
    let actor = caller.actor(state.now());
    let stored = state
        .run(caller.scope(), move |store| {
            store.set_notice_stages(&stages, &actor)?;
            Ok(store.load_tenant()?.config)
        })
        .await?;
    Ok(Json(stored))
}

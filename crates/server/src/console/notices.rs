//! An item's own notification settings on its page: the form that shows
//! and edits them (the tenant's stages, its own, or off), and what a
//! posted form means. Profiles and apps share it; an app also has its
//! device users' stage.

use axum::http::StatusCode;
use maud::{Markup, html};
use provkit_store::NotifySettings;

use super::session::FormData;
use crate::problem::Problem;

/// What the form edits.
pub(crate) enum Item<'a> {
    /// A profile (admin stages only).
    Profile,
    /// An app, chosen from these bundle identifiers.
    App(&'a [String]),
}

/// The settings form posting to `action`; read-only unless `editable`.
pub(crate) fn form(
    action: &str,
    csrf: &str,
    current: &NotifySettings,
    item: &Item<'_>,
    editable: bool,
) -> Markup {
    let mode = if current.off {
        "off"
    } else if current.stages.is_some() || current.user_stage.is_some() {
        "own"
    } else {
        "tenant"
    };
    let stages = current
        .stages
        .as_ref()
        .map(|s| {
            s.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    html! {
        form.stack method="post" action=(action) id="notify-form" {
            input type="hidden" name="csrf" value=(csrf);
            @if let Item::App(bundles) = item {
                label { "App" select name="bundle_id" id="notify-app" disabled[!editable] {
                    @for b in *bundles { option value=(b) { (b) } }
                } }
            }
            fieldset {
                legend { "Messages" }
                label.check { input type="radio" name="mode" value="tenant" checked[mode == "tenant"] disabled[!editable]; "The tenant's stages" }
                label.check { input type="radio" name="mode" value="own" id="notify-own" checked[mode == "own"] disabled[!editable]; "Its own stages" }
                label.check { input type="radio" name="mode" value="off" id="notify-off" checked[mode == "off"] disabled[!editable]; "Off: no messages" }
            }
            label { "Own admin stages (days, comma-separated; empty: the tenant's)"
                input type="text" name="stages" id="notify-stages" value=(stages) disabled[!editable]; }
            @if let Item::App(_) = item {
                label { "Own device-user notice (days; empty: the tenant's)"
                    input type="text" name="user_stage" id="notify-user-stage"
                        value=(current.user_stage.map(|d| d.to_string()).unwrap_or_default()) disabled[!editable]; }
            }
            @if editable { div { button type="submit" id="notify-button" { "Save notification settings" } } }
        }
    }
}

fn invalid(detail: String) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail)
}

/// Whole days, as a form field holds them.
fn days(d: &str) -> Result<i64, Problem> {
    d.trim()
        .parse()
        .map_err(|_| invalid(format!("{d:?} is not a whole number of days")))
}

/// Comma-separated whole days (empty items skipped), as the stage fields
/// hold them.
///
/// # Errors
/// An item that is not a whole number.
pub(crate) fn days_list(text: &str) -> Result<Vec<i64>, Problem> {
    text.split(',')
        .filter(|d| !d.trim().is_empty())
        .map(days)
        .collect()
}

/// The settings a posted form asks for.
///
/// # Errors
/// A number of days that is not a whole number, or "own" with nothing of
/// its own given.
pub(crate) fn parse(form: &FormData) -> Result<NotifySettings, Problem> {
    match form.get("mode").unwrap_or("tenant") {
        "tenant" => Ok(NotifySettings::default()),
        "off" => Ok(NotifySettings {
            off: true,
            ..NotifySettings::default()
        }),
        "own" => {
            let stages = days_list(form.get("stages").unwrap_or_default())?;
            let user_stage = form
                .get("user_stage")
                .filter(|d| !d.trim().is_empty())
                .map(days)
                .transpose()?;
            if stages.is_empty() && user_stage.is_none() {
                return Err(invalid(
                    "give its own stages, or choose the tenant's stages".into(),
                ));
            }
            Ok(NotifySettings {
                off: false,
                stages: (!stages.is_empty()).then_some(stages),
                user_stage,
            })
        }
        other => Err(invalid(format!(
            "{other:?}: choose the tenant's stages, its own, or off"
        ))),
    }
}

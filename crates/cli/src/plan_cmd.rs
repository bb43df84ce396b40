//! `plan`, `ack` and `explain`: printing what provkit-service computes.

use anyhow::Result;
use chrono::{DateTime, Utc};
use provkit_service::plan::{IssueView, PlanView};
use provkit_store::Store;

use crate::output::{Style, outln};
use crate::profile_cmd::Outcome;

pub(crate) fn plan(
    store: &mut dyn Store,
    at: DateTime<Utc>,
    as_json: bool,
    enqueue: bool,
    style: Style,
) -> Result<Outcome> {
    let v = if enqueue {
        provkit_service::plan::plan_and_enqueue(store, at, Utc::now())?
    } else {
        provkit_service::plan::plan(store, at)?
    };
    if as_json {
        outln!("{}", serde_json::to_string(&v)?)?;
        return Ok(Outcome::Ok);
    }
    print_plan(&v, enqueue, style)?;
    Ok(Outcome::Ok)
}

fn print_plan(v: &PlanView, enqueued: bool, style: Style) -> std::io::Result<()> {
    outln!("Plan at {}", style.date(v.at))?;
    outln!(
        "\nCommands ({} for {} devices{}):",
        v.commands.len(),
        v.devices,
        if enqueued {
            ", queued in the outbox"
        } else {
            ""
        }
    )?;
    for c in &v.commands {
        outln!("  {:<28} {:<28} {}", c.udid, c.request_type, c.profile_uuid)?;
    }
    outln!("\nAdmin notifications ({}):", v.notifications.len())?;
    for n in &v.notifications {
        outln!(
            "  {} ({}): {}-day stage, apps die {} ({} days left), {} device(s), apps {}",
            n.profile,
            n.name,
            n.stage_days,
            style.date(n.death),
            n.days_left,
            n.devices,
            n.apps.join(", ")
        )?;
    }
    outln!("\nDevice-user notices ({}):", v.user_notices.len())?;
    for n in &v.user_notices {
        outln!(
            "  {} on {}: {} stops launching at {}",
            n.user,
            n.device,
            n.app,
            style.date(n.death)
        )?;
    }
    let issues = |title: &str, list: &[IssueView]| -> std::io::Result<()> {
        outln!("\n{title} ({}):", list.len())?;
        for i in list {
            match i.at {
                Some(at) => outln!("  {}: {} (at {})", i.kind, i.message, style.date(at))?,
                None => outln!("  {}: {}", i.kind, i.message)?,
            }
        }
        Ok(())
    };
    issues("Blockers", &v.blockers)?;
    issues("Warnings", &v.warnings)
}

/// Acknowledges queued commands as the devices would (all pending, or the
/// given command UUIDs, each of which must be queued).
pub(crate) fn ack(store: &mut dyn Store, only: &[String]) -> Result<Outcome> {
    use provkit_service::outbox::{Acknowledge, acknowledge};
    let which = if only.is_empty() {
        Acknowledge::AllPending
    } else {
        Acknowledge::Only(only.to_vec())
    };
    let done = acknowledge(store, &which, Utc::now())?;
    outln!(
        "acknowledged {} command(s) on {} device(s)",
        done.commands,
        done.devices
    )?;
    Ok(Outcome::Ok)
}

pub(crate) fn explain(
    store: &mut dyn Store,
    device: &str,
    profile: &str,
    at: DateTime<Utc>,
    as_json: bool,
) -> Result<Outcome> {
    let why = provkit_service::lifecycle::explain(store, device, profile, at)?;
    if as_json {
        outln!("{}", serde_json::to_string(&why)?)?;
        return Ok(Outcome::Ok);
    }
    outln!(
        "{device} {} {profile}:",
        if why.desired { "gets" } else { "does not get" }
    )?;
    for s in &why.steps {
        outln!("  - {s}")?;
    }
    Ok(Outcome::Ok)
}

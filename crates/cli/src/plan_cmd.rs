//! `plan`, `ack` and `explain`: printing what provkit-service computes.

use anyhow::Result;
use chrono::{DateTime, Utc};
use provkit_service::plan::{IssueView, PlanView};
use provkit_store::Store;

use crate::output::{Style, outln};
use crate::profile_cmd::Outcome;

/// What `provkit plan` was asked.
pub(crate) struct PlanArgs<'a> {
    pub(crate) at: DateTime<Utc>,
    /// `text`, `json` or `csv`.
    pub(crate) format: &'a str,
    pub(crate) enqueue: bool,
    pub(crate) device: Option<&'a str>,
    pub(crate) profile: Option<&'a str>,
}

pub(crate) fn plan(store: &mut dyn Store, args: &PlanArgs<'_>, style: Style) -> Result<Outcome> {
    let profile = args
        .profile
        .map(|p| provkit_service::names::profile_uuid(store, p))
        .transpose()?;
    let mut v = if args.enqueue {
        provkit_service::plan::plan_and_enqueue(store, args.at, Utc::now())?
    } else {
        provkit_service::plan::plan(store, args.at)?
    };
    narrow(&mut v, args.device, profile.as_deref());
    match args.format {
        "json" => outln!("{}", serde_json::to_string(&v)?)?,
        "csv" => {
            outln!("udid,request_type,profile_uuid,command_uuid")?;
            for c in &v.commands {
                outln!(
                    "{},{},{},{}",
                    c.udid,
                    c.request_type,
                    c.profile_uuid,
                    c.command_uuid
                )?;
            }
        }
        _ => print_plan(&v, args.enqueue, style)?,
    }
    Ok(Outcome::Ok)
}

/// Keeps what concerns the device and the profile, when given.
fn narrow(v: &mut PlanView, device: Option<&str>, profile: Option<&str>) {
    let same = |a: &str, b: Option<&str>| b.is_none_or(|b| a.eq_ignore_ascii_case(b));
    let maybe = |a: Option<&str>, b: Option<&str>| b.is_none() || a.is_some_and(|a| same(a, b));
    v.commands
        .retain(|c| same(&c.udid, device) && same(&c.profile_uuid, profile));
    v.devices = v
        .commands
        .iter()
        .map(|c| c.udid.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if device.is_some() {
        v.notifications.clear();
    }
    v.notifications.retain(|n| same(&n.profile, profile));
    v.user_notices.retain(|n| same(&n.device, device));
    for list in [&mut v.blockers, &mut v.warnings] {
        list.retain(|i| maybe(i.device.as_deref(), device) && maybe(i.profile.as_deref(), profile));
    }
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
    // Per profile: how many devices get it installed, how many lose it.
    let mut per: std::collections::BTreeMap<&str, (usize, usize)> =
        std::collections::BTreeMap::new();
    for c in &v.commands {
        let e = per.entry(c.profile_uuid.as_str()).or_default();
        if c.request_type == "InstallProvisioningProfile" {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    if !per.is_empty() {
        outln!("\nBy profile:")?;
        for (p, (install, remove)) in per {
            outln!("  {p}: {install} install(s), {remove} removal(s)")?;
        }
    }
    outln!("\nAdmin notifications ({}):", v.notifications.len())?;
    for n in &v.notifications {
        outln!(
            "  {} ({}): {}-day stage, apps die {} ({} days left; {}), {} device(s), apps {}",
            n.profile,
            n.name,
            n.stage_days,
            style.date(n.death),
            n.days_left,
            n.cause,
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

//! Listing what a tenant holds: profiles, apps, devices, users, groups as a
//! tree, and the inventory exported in the import form.

use anyhow::Result;
use chrono::Utc;
use provkit_service::catalog::{self, GroupNode};
use provkit_store::Store;
use serde_json::json;

use crate::output::{Style, outln};
use crate::profile_cmd::Outcome;

fn targets(include: &[String], exclude: &[String]) -> String {
    let list = |l: &[String]| {
        if l.is_empty() {
            "-".to_owned()
        } else {
            l.join(", ")
        }
    };
    format!("include {}; exclude {}", list(include), list(exclude))
}

pub(crate) fn profiles(store: &mut dyn Store, json: bool, style: Style) -> Result<Outcome> {
    let list = catalog::profiles(store, Utc::now())?;
    if json {
        outln!("{}", serde_json::to_string(&list)?)?;
        return Ok(Outcome::Ok);
    }
    for p in &list {
        let state = match (&p.successor, p.retired) {
            (_, true) => " [deleted]".to_owned(),
            (Some(s), _) => format!(" [renewed by {s}]"),
            _ => String::new(),
        };
        outln!(
            "{}  {} ({}, team {}){state}",
            p.uuid,
            p.name,
            p.kind,
            p.team
        )?;
        outln!(
            "    App ID {}; expires {} ({} days left); {} device(s); apps {}",
            p.app_id,
            style.date(p.expires),
            p.days_left,
            p.devices,
            if p.apps.is_empty() {
                "-".to_owned()
            } else {
                p.apps.join(", ")
            }
        )?;
        outln!("    {}", targets(&p.include, &p.exclude))?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn profile(
    store: &mut dyn Store,
    given: &str,
    json: bool,
    style: Style,
) -> Result<Outcome> {
    let p = catalog::profile(store, given, Utc::now())?;
    if json {
        outln!("{}", serde_json::to_string(&p)?)?;
        return Ok(Outcome::Ok);
    }
    let s = &p.summary;
    outln!("{}  {}", s.uuid, s.name)?;
    outln!("  kind {}, team {}, App ID {}", s.kind, s.team, s.app_id)?;
    outln!(
        "  expires {} ({} days left)",
        style.date(s.expires),
        s.days_left
    )?;
    outln!("  assignments: {}", targets(&s.include, &s.exclude))?;
    outln!(
        "  apps: {}",
        if s.apps.is_empty() {
            "-".to_owned()
        } else {
            s.apps.join(", ")
        }
    )?;
    outln!("  versions:")?;
    for (v, sha, at) in &p.versions {
        outln!("    {v}  {sha}  uploaded {}", style.date(*at))?;
    }
    outln!("  devices that should hold it ({}):", p.device_udids.len())?;
    for d in &p.device_udids {
        outln!("    {d}")?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn apps(store: &mut dyn Store, json: bool, style: Style) -> Result<Outcome> {
    let apps = store.apps()?;
    if json {
        let list: Vec<_> = apps
            .iter()
            .map(|a| {
                json!({"bundle_id": a.bundle_id, "version": a.version, "team": a.team,
                       "profile": a.profile_uuid, "certificate_sha256": a.certificate_sha256,
                       "certificate_not_after": a.certificate_not_after})
            })
            .collect();
        outln!("{}", serde_json::Value::Array(list))?;
        return Ok(Outcome::Ok);
    }
    for a in &apps {
        outln!(
            "{} {}  team {}  profile {}  certificate {}… until {}",
            a.bundle_id,
            a.version,
            a.team,
            a.profile_uuid.as_deref().unwrap_or("-"),
            a.certificate_sha256
                .get(..16)
                .unwrap_or(&a.certificate_sha256),
            style.date(a.certificate_not_after)
        )?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn devices(store: &mut dyn Store, json: bool) -> Result<Outcome> {
    let inv = catalog::export_inventory(store)?;
    if json {
        outln!("{}", serde_json::to_string(&inv.devices)?)?;
        return Ok(Outcome::Ok);
    }
    for d in &inv.devices {
        let apps: Vec<String> = d
            .apps
            .iter()
            .map(|a| format!("{} {}", a.bundle_id, a.version))
            .collect();
        outln!(
            "{}  {}  user {}  apps {}  reports {} profile(s)",
            d.udid,
            d.platform,
            d.user.as_deref().unwrap_or("-"),
            if apps.is_empty() {
                "-".to_owned()
            } else {
                apps.join(", ")
            },
            d.reported.len()
        )?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn users(store: &mut dyn Store, json: bool) -> Result<Outcome> {
    let inv = catalog::export_inventory(store)?;
    let mut devices: std::collections::BTreeMap<&str, Vec<&str>> =
        std::collections::BTreeMap::new();
    for d in &inv.devices {
        if let Some(u) = &d.user {
            devices.entry(u.as_str()).or_default().push(&d.udid);
        }
    }
    if json {
        let list: Vec<_> = inv
            .users
            .iter()
            .map(|u| json!({"name": u, "devices": devices.get(u.as_str()).cloned().unwrap_or_default()}))
            .collect();
        outln!("{}", serde_json::Value::Array(list))?;
        return Ok(Outcome::Ok);
    }
    for u in &inv.users {
        let d = devices
            .get(u.as_str())
            .map_or_else(|| "-".to_owned(), |d| d.join(", "));
        outln!("{u}  devices {d}")?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn groups(store: &mut dyn Store, json: bool) -> Result<Outcome> {
    let forest = catalog::group_tree(store)?;
    if json {
        outln!("{}", serde_json::to_string(&forest)?)?;
        return Ok(Outcome::Ok);
    }
    // Depth-first without recursion: (node, depth).
    let mut stack: Vec<(&GroupNode, usize)> = forest.iter().rev().map(|g| (g, 0)).collect();
    while let Some((g, depth)) = stack.pop() {
        let kind = match g.kind {
            provkit_policy::GroupKind::User => "users",
            provkit_policy::GroupKind::Device => "devices",
        };
        let note = if g.repeated { " (shown above)" } else { "" };
        outln!(
            "{}{} [{kind}: {}]{note}",
            "  ".repeat(depth),
            g.name,
            if g.members.is_empty() {
                "-".to_owned()
            } else {
                g.members.join(", ")
            }
        )?;
        stack.extend(g.subgroups.iter().rev().map(|s| (s, depth + 1)));
    }
    Ok(Outcome::Ok)
}

pub(crate) fn export(store: &mut dyn Store, format: &str) -> Result<Outcome> {
    let inv = catalog::export_inventory(store)?;
    if format == "csv" {
        let text = inv.to_csv().map_err(anyhow::Error::msg)?;
        outln!("{}", text.trim_end())?;
    } else {
        outln!("{}", serde_json::to_string_pretty(&inv)?)?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn remove(store: &mut dyn Store, what: &provkit_store::Removal) -> Result<Outcome> {
    let groups = store.remove(what, &crate::tenant_cmd::actor())?;
    let name = match what {
        provkit_store::Removal::App { bundle_id, version } => format!("app {bundle_id} {version}"),
        provkit_store::Removal::Device(u) => format!("device {u}"),
        provkit_store::Removal::User(u) => format!("user {u}"),
        provkit_store::Removal::Group(g) => format!("group {g}"),
    };
    if groups.is_empty() {
        outln!("removed {name}")?;
    } else {
        outln!("removed {name}, and took it out of {}", groups.join(", "))?;
    }
    Ok(Outcome::Ok)
}

/// `provkit profile devices`: each device's state with the profile.
pub(crate) fn device_status(
    store: &mut dyn Store,
    given: &str,
    json: bool,
    style: Style,
) -> Result<Outcome> {
    let rows = catalog::device_status(store, given, Utc::now())?;
    if json {
        outln!("{}", serde_json::to_string(&rows)?)?;
        return Ok(Outcome::Ok);
    }
    for d in &rows {
        let state = serde_json::to_value(d.state)?;
        outln!(
            "{}  {}{}{}",
            d.udid,
            state.as_str().unwrap_or_default(),
            d.updated_at
                .map(|t| format!("  since {}", style.date(t)))
                .unwrap_or_default(),
            d.error_chain
                .as_deref()
                .map(|e| format!("  {}", e.replace('\n', " / ")))
                .unwrap_or_default()
        )?;
    }
    Ok(Outcome::Ok)
}

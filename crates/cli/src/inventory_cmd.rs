//! `inventory import`: users, devices and groups from JSON or CSV, merged
//! or replaced as asked, with the change printed.

use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};
use provkit_service::{ServiceError, inventory};
use provkit_store::{Store, StoreError};

use crate::output::outln;
use crate::profile_cmd::Outcome;
use crate::tenant_cmd::actor;

pub(crate) fn import(
    store: &mut dyn Store,
    file: &Path,
    replace: &provkit_store::Replace,
    dry_run: bool,
    at: DateTime<Utc>,
) -> Result<Outcome> {
    let bytes = crate::output::read_input(file)?;
    let format = inventory::Format::of_file_name(&file.to_string_lossy());
    let inv = match inventory::parse(&bytes, format) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return Ok(Outcome::Unreadable);
        }
    };
    let change = match inventory::import(store, &inv, replace, dry_run, at, &actor()) {
        Ok(c) => c,
        Err(ServiceError::Store(
            e @ (StoreError::UnknownReference { .. } | StoreError::Invalid(_)),
        )) => {
            eprintln!("{}: {e}", file.display());
            return Ok(Outcome::Unreadable);
        }
        Err(e) => return Err(e.into()),
    };
    let verb = if change.written {
        "imported"
    } else {
        "would import (dry run, nothing written)"
    };
    outln!(
        "{verb}: {} new user(s), {} new device(s), {} device(s) updated, {} group(s) changed",
        change.users_added.len(),
        change.devices_added.len(),
        change.devices_updated.len(),
        change.groups.len()
    )?;
    for g in &change.groups {
        let mut parts = Vec::new();
        if g.created {
            parts.push("new".to_owned());
        }
        for (label, list) in [
            ("members added", &g.members_added),
            ("members removed", &g.members_removed),
            ("subgroups added", &g.subgroups_added),
            ("subgroups removed", &g.subgroups_removed),
        ] {
            if !list.is_empty() {
                parts.push(format!("{label}: {}", list.join(", ")));
            }
        }
        outln!("  group {}: {}", g.name, parts.join("; "))?;
    }
    if !change.desired.is_empty() {
        outln!(
            "  {} device(s) change desired profiles:",
            change.desired.len()
        )?;
        for d in &change.desired {
            outln!(
                "    {}: gains [{}], loses [{}]",
                d.udid,
                d.gained.join(", "),
                d.lost.join(", ")
            )?;
        }
    }
    Ok(Outcome::Ok)
}

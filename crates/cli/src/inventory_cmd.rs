//! `inventory import`: users, devices and groups from JSON or CSV, merged
//! or replaced as asked, with the change printed.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use provkit_store::{Inventory, Store, StoreError};

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
    let text = String::from_utf8(crate::output::read_input(file)?)
        .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let parsed = if csv {
        Inventory::from_csv(text)
    } else {
        serde_json::from_str(text).map_err(|e| e.to_string())
    };
    let inv: Inventory = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}: not an inventory: {e}", file.display());
            return Ok(Outcome::Unreadable);
        }
    };
    let change = match store.apply_inventory(&inv, replace, dry_run, at, &actor()) {
        Ok(c) => c,
        Err(e @ (StoreError::UnknownReference { .. } | StoreError::Invalid(_))) => {
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

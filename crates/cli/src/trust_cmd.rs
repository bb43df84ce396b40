//! `trust add | list | remove`: the tenant's anchors beside Apple's roots.

use std::path::Path;

use anyhow::Result;
use provkit_store::Store;

use crate::output::{Style, outln, rfc3339};
use crate::profile_cmd::Outcome;
use crate::tenant_cmd::actor;

pub(crate) fn add(store: &mut dyn Store, cert: &Path) -> Result<Outcome> {
    let bytes = crate::output::read_input(cert)?;
    let rec = provkit_service::trust::add_anchor(store, &bytes, &actor())?;
    outln!(
        "trusted {} ({}), valid until {}",
        rec.subject.as_deref().unwrap_or("unnamed certificate"),
        rec.sha256,
        rfc3339(rec.not_after)
    )?;
    Ok(Outcome::Ok)
}

pub(crate) fn list(store: &mut dyn Store, style: Style) -> Result<Outcome> {
    outln!("Apple's roots (always trusted)")?;
    for a in store.trust_anchors()? {
        outln!(
            "{}  {}  valid until {}  added by {} at {}",
            a.sha256,
            a.subject.as_deref().unwrap_or("-"),
            style.date(a.not_after),
            a.added_by,
            style.date(a.added_at)
        )?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn remove(store: &mut dyn Store, sha256: &str) -> Result<Outcome> {
    let rec = store.remove_trust_anchor(sha256, &actor())?;
    outln!(
        "no longer trusted: {} ({})",
        rec.subject.as_deref().unwrap_or("unnamed certificate"),
        rec.sha256
    )?;
    Ok(Outcome::Ok)
}

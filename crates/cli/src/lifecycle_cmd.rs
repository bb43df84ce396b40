//! `renew` and `delete`: a profile's life, as provkit-service decides it.

use std::path::Path;

use anyhow::Result;
use provkit_service::ServiceError;
use provkit_store::Store;

use crate::output::{outln, read_input};
use crate::profile_cmd::Outcome;
use crate::tenant_cmd::actor;

pub(crate) fn renew(
    store: &mut dyn Store,
    old: &str,
    new_file: &Path,
    allow_untrusted: bool,
) -> Result<Outcome> {
    let bytes = read_input(new_file)?;
    let a = actor();
    let verifier = provkit_service::trust::tenant_verifier(store)?;
    let done = match provkit_service::lifecycle::renew(
        store,
        old,
        &bytes,
        &verifier,
        a.at,
        &a,
        allow_untrusted,
    ) {
        Ok(done) => done,
        Err(ServiceError::Store(provkit_store::StoreError::Profile(e))) => {
            eprintln!("{}: {e}", new_file.display());
            return Ok(Outcome::Unreadable);
        }
        Err(ServiceError::Untrusted { uuid, findings }) => {
            eprintln!(
                "cannot renew {old} with {uuid}: it is not trusted ({}); trust its CA with \
                 `provkit trust add`, or pass --allow-untrusted (recorded in the audit log)",
                findings.join(", ")
            );
            return Ok(Outcome::Invalid);
        }
        Err(e @ ServiceError::NotASuccessor { .. }) => {
            eprintln!("{e}");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    outln!(
        "{} renews {old}: {} app(s) and {} assignment(s) moved",
        done.uuid,
        done.apps.len(),
        done.assignments
    )?;
    if !done.overridden.is_empty() {
        outln!(
            "  stored although not trusted ({}); the audit log records the override",
            done.overridden.join(", ")
        )?;
    }
    for app in &done.resign_required {
        outln!("  re-sign required: {app} (its certificate is not in the new profile)")?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn delete(store: &mut dyn Store, uuid: &str) -> Result<Outcome> {
    match provkit_service::lifecycle::delete(store, uuid, &actor()) {
        Ok(()) => {
            outln!(
                "deleted {uuid}; devices still holding it get RemoveProvisioningProfile in the next plan"
            )?;
            Ok(Outcome::Ok)
        }
        Err(ServiceError::InUse {
            apps, assignments, ..
        }) => {
            eprintln!("refused: profile {uuid} is still in use");
            for a in &apps {
                eprintln!("  linked app {a}");
            }
            for a in &assignments {
                eprintln!("  active assignment: {a}");
            }
            Ok(Outcome::Invalid)
        }
        Err(e) => Err(e.into()),
    }
}

//! A profile's life: renewing it for every app that shares it, deleting it
//! when nothing uses it, and explaining why a device gets it or not.

use chrono::{DateTime, Utc};
use provkit_policy::{DeviceId, Engine, ProfileFacts, ProfileId, Target};
use provkit_profile::{ProvisioningProfile, Verifier};
use provkit_store::{Actor, Store, StoreError};
use serde::Serialize;

use crate::ServiceError;
use crate::trust::trust_failures;

/// What a renewal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renewed {
    /// The successor's UUID.
    pub uuid: String,
    /// Its stored version.
    pub version: i64,
    /// Apps moved to it, as `bundle-id version`.
    pub apps: Vec<String>,
    /// Assignments moved to it.
    pub assignments: usize,
    /// Apps the successor does not help: their certificate is not in it.
    pub resign_required: Vec<String>,
    /// Trust findings the admin overrode (empty when trusted).
    pub overridden: Vec<String>,
}

fn unknown(kind: &'static str, name: &str) -> ServiceError {
    ServiceError::Unknown {
        kind,
        names: vec![name.to_owned()],
    }
}

/// Renews `old` with the profile in `bytes` for every app that shares it:
/// the successor must be genuine and trusted at `at` (or the override
/// given, which the audit log records) and qualify (same team, covers the
/// same apps); nothing is written before both checks pass.
///
/// # Errors
/// [`ServiceError::Unknown`] for an unknown `old`;
/// [`ServiceError::Untrusted`]; [`ServiceError::NotASuccessor`]; the
/// store's refusal of bytes that are not a profile.
pub fn renew(
    store: &mut dyn Store,
    old: &str,
    bytes: &[u8],
    verifier: &Verifier,
    at: DateTime<Utc>,
    actor: &Actor,
    allow_untrusted: bool,
) -> Result<Renewed, ServiceError> {
    let parsed = ProvisioningProfile::from_der(bytes).map_err(StoreError::from)?;
    let failures = trust_failures(&parsed, verifier, at);
    if !failures.is_empty() && !allow_untrusted {
        return Err(ServiceError::Untrusted {
            uuid: parsed.profile().uuid.clone(),
            findings: failures,
        });
    }
    let mut tenant = store.load_tenant()?;
    let old_id = crate::names::profile(&tenant, old)?;
    let old = tenant.profiles[old_id.index()].uuid.clone();
    let old = old.as_str();
    tenant
        .profiles
        .push(ProfileFacts::from_profile(parsed.profile()));
    let new_id = ProfileId(u32::try_from(tenant.profiles.len() - 1).unwrap_or(u32::MAX));
    let renewal = provkit_policy::renew(&mut tenant, old_id, new_id).map_err(|e| {
        ServiceError::NotASuccessor {
            old: old.to_owned(),
            new: parsed.profile().uuid.clone(),
            reason: e.to_string(),
        }
    })?;
    let untrusted = (!failures.is_empty()).then_some(failures.as_slice());
    let rec = store.renew(old, bytes, untrusted, actor)?;
    let name = |a: provkit_policy::AppId| {
        let app = &tenant.apps[a.index()];
        format!("{} {}", app.bundle_id, app.version)
    };
    Ok(Renewed {
        uuid: rec.uuid,
        version: rec.version,
        apps: renewal.apps.iter().map(|a| name(*a)).collect(),
        assignments: renewal.assignments.len(),
        resign_required: renewal.resign_required.iter().map(|a| name(*a)).collect(),
        overridden: failures,
    })
}

/// Deletes a profile that nothing uses; devices still holding it get a
/// removal in the next plan.
///
/// # Errors
/// [`ServiceError::Unknown`]; [`ServiceError::InUse`] naming the linked
/// apps and the active assignments (nothing is written).
pub fn delete(store: &mut dyn Store, uuid: &str, actor: &Actor) -> Result<(), ServiceError> {
    let tenant = store.load_tenant()?;
    let id = crate::names::profile(&tenant, uuid)?;
    let uuid = tenant.profiles[id.index()].uuid.clone();
    let uuid = uuid.as_str();
    if let Err(refused) = provkit_policy::check_delete(&tenant, id) {
        let apps = refused
            .apps
            .iter()
            .map(|a| {
                let app = &tenant.apps[a.index()];
                format!("{} {}", app.bundle_id, app.version)
            })
            .collect();
        let assignments = refused
            .assignments
            .iter()
            .map(|a| {
                let a = &tenant.assignments[a.index()];
                let target = match &a.target {
                    Target::AllUsers => "all-users".to_owned(),
                    Target::AllDevices => "all-devices".to_owned(),
                    Target::Group(g) => tenant.groups[g.index()].name.clone(),
                    Target::MissingGroup(n) => n.clone(),
                };
                let how = match a.intent {
                    provkit_policy::Intent::Include => "include",
                    provkit_policy::Intent::Exclude => "exclude",
                };
                format!("{how} {target}")
            })
            .collect();
        return Err(ServiceError::InUse {
            uuid: uuid.to_owned(),
            apps,
            assignments,
        });
    }
    store.retire_profile(uuid, actor)?;
    Ok(())
}

/// Why a device gets a profile or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explained {
    /// Device UDID.
    pub device: String,
    /// Profile UUID.
    pub profile: String,
    /// Whether the device gets it.
    pub desired: bool,
    /// Each fact and rule that decided it, in order.
    pub steps: Vec<String>,
}

/// Explains at `at` why `device` gets `profile` or not.
///
/// # Errors
/// [`ServiceError::Unknown`] for an unknown device or profile.
pub fn explain(
    store: &mut dyn Store,
    device: &str,
    profile: &str,
    at: DateTime<Utc>,
) -> Result<Explained, ServiceError> {
    explain_with(&Engine::new(store.load_tenant()?, at), device, profile)
}

/// [`explain`] over an engine already built (a server's snapshot).
///
/// # Errors
/// As [`explain`].
pub fn explain_with(
    engine: &Engine,
    device: &str,
    profile: &str,
) -> Result<Explained, ServiceError> {
    let d = engine
        .tenant()
        .devices
        .iter()
        .position(|x| x.udid.eq_ignore_ascii_case(device))
        .ok_or_else(|| unknown("device", device))?;
    let mut out = explain_device(
        engine,
        DeviceId(u32::try_from(d).unwrap_or(u32::MAX)),
        profile,
    )?;
    // The device as the caller named it.
    device.clone_into(&mut out.device);
    Ok(out)
}

/// [`explain_with`] for a device already found (a server indexes them by
/// UDID once per snapshot).
///
/// # Errors
/// [`ServiceError::Unknown`] when the device is not in the engine's tenant
/// or the profile names none.
pub fn explain_device(
    engine: &Engine,
    device: DeviceId,
    profile: &str,
) -> Result<Explained, ServiceError> {
    let tenant = engine.tenant();
    let udid = tenant
        .devices
        .get(device.index())
        .ok_or_else(|| unknown("device", &device.0.to_string()))?
        .udid
        .as_str()
        .to_owned();
    let p = crate::names::profile(tenant, profile)?;
    let profile = tenant.profiles[p.index()].uuid.clone();
    let why = engine.explain(device, p);
    Ok(Explained {
        device: udid,
        profile,
        desired: why.desired,
        steps: why.steps,
    })
}

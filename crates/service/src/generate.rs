//! A generated tenant with the large tenant's shape (users, nested groups
//! with cycles, profiles signed by the test CA, apps, assignments), imported
//! in one transaction: for benchmarks, load tests and demonstrations. Its
//! profiles chain to provkit-profile's test CA, never to Apple.

use provkit_policy::generate::{Shape, generate as make};
use provkit_profile::fixtures::TestCa;
use provkit_store::{Actor, Store};

use crate::ServiceError;

/// The largest tenant [`generate`] makes: 10 million devices (about 10 GB
/// of memory while generating).
pub const MAX_DEVICES: usize = 10_000_000;

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Generated {
    /// The tenant's counts, in one line.
    pub summary: String,
    /// The seed used.
    pub seed: u64,
}

/// Refuses a size [`generate`] cannot make, before any store is touched.
///
/// # Errors
/// [`ServiceError::OutOfRange`] outside 1 to [`MAX_DEVICES`].
pub fn check_size(devices: usize) -> Result<(), ServiceError> {
    if (1..=MAX_DEVICES).contains(&devices) {
        Ok(())
    } else {
        Err(ServiceError::OutOfRange(format!(
            "--devices {devices}: give from 1 to {MAX_DEVICES} devices"
        )))
    }
}

/// Generates a tenant of `devices` devices from `seed` and imports it in
/// one transaction; `step` hears each stage as it starts. A store that
/// already holds a tenant is refused unless `force`.
///
/// # Errors
/// [`ServiceError::OutOfRange`] for the size, [`ServiceError::NotEmpty`]
/// for a store that holds a tenant, [`ServiceError::Store`] when the import
/// fails (nothing is written).
pub fn generate(
    store: &mut dyn Store,
    devices: usize,
    seed: u64,
    force: bool,
    actor: &Actor,
    step: &mut dyn FnMut(&str),
) -> Result<Generated, ServiceError> {
    check_size(devices)?;
    let existing = store.load_tenant()?;
    if !force && (!existing.profiles.is_empty() || !existing.devices.is_empty()) {
        return Err(ServiceError::NotEmpty {
            profiles: existing.profiles.len(),
            devices: existing.devices.len(),
        });
    }
    step(&format!(
        "generating a tenant of {devices} devices (seed {seed})"
    ));
    let tenant = make(&Shape::scaled(devices), seed);
    step(&format!(
        "signing {} profiles with the test CA",
        tenant.profiles.len()
    ));
    let ca = TestCa::ecdsa();
    let profiles = provkit_store::sign_profiles(&tenant, &ca);
    step("importing in one transaction");
    provkit_store::import_tenant(store, &tenant, &profiles, &ca.developer.cert, actor)?;
    step("done");
    Ok(Generated {
        summary: tenant.summary(),
        seed,
    })
}

//! Naming things the way admins type them: a profile by its UUID or a
//! unique prefix of it (as the expiry report shows them).

use provkit_policy::{ProfileId, Tenant};

use crate::ServiceError;

/// The shortest prefix accepted for a profile UUID.
pub const MIN_PREFIX: usize = 8;

/// The profile named by a UUID or a unique prefix of at least
/// [`MIN_PREFIX`] characters (case-insensitive); retired profiles count.
///
/// # Errors
/// [`ServiceError::Unknown`] when nothing matches;
/// [`ServiceError::Ambiguous`] when a prefix matches several profiles.
pub fn profile(t: &Tenant, given: &str) -> Result<ProfileId, ServiceError> {
    if let Some(id) = t.profile_by_uuid(given) {
        return Ok(id);
    }
    let matches: Vec<usize> = if given.len() >= MIN_PREFIX {
        t.profiles
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.uuid
                    .get(..given.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(given))
            })
            .map(|(i, _)| i)
            .collect()
    } else {
        Vec::new()
    };
    match matches.as_slice() {
        [one] => Ok(ProfileId(u32::try_from(*one).unwrap_or(u32::MAX))),
        [] => Err(ServiceError::Unknown {
            kind: "profile",
            names: vec![given.to_owned()],
        }),
        many => Err(ServiceError::Ambiguous {
            given: given.to_owned(),
            matches: many.iter().map(|i| t.profiles[*i].uuid.clone()).collect(),
        }),
    }
}

/// The full UUID of the profile named by `given` (see [`profile`]).
///
/// # Errors
/// As [`profile`]; store failures.
pub fn profile_uuid(
    store: &mut dyn provkit_store::Store,
    given: &str,
) -> Result<String, ServiceError> {
    let t = store.load_tenant()?;
    let id = profile(&t, given)?;
    Ok(t.profiles[id.index()].uuid.clone())
}

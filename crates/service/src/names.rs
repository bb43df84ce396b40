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
    let i = resolve(t.profiles.iter().map(|p| p.uuid.as_str()), given)?;
    Ok(ProfileId(u32::try_from(i).unwrap_or(u32::MAX)))
}

/// The full UUID of the profile named by `given` (see [`profile`]), from the
/// stored profile records alone (no tenant snapshot is built): a whole
/// UUID is looked up by its key, only a prefix reads the list.
///
/// # Errors
/// As [`profile`]; store failures.
pub fn profile_uuid(
    store: &mut dyn provkit_store::Store,
    given: &str,
) -> Result<String, ServiceError> {
    if provkit_policy::Uuid::parse(given).is_some()
        && let Some(latest) = store.profile_versions(given)?.pop()
    {
        return Ok(latest.uuid);
    }
    let records = store.profiles()?;
    let i = resolve(records.iter().map(|r| r.uuid.as_str()), given)?;
    Ok(records[i].uuid.clone())
}

/// The position of the UUID `given` names: an exact match (any case), else
/// the one UUID it is a prefix of (at least [`MIN_PREFIX`] characters).
fn resolve<'a>(
    uuids: impl Iterator<Item = &'a str> + Clone,
    given: &str,
) -> Result<usize, ServiceError> {
    if let Some(i) = uuids.clone().position(|u| u.eq_ignore_ascii_case(given)) {
        return Ok(i);
    }
    let matches: Vec<(usize, &str)> = if given.len() >= MIN_PREFIX {
        uuids
            .enumerate()
            .filter(|(_, u)| {
                u.get(..given.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(given))
            })
            .collect()
    } else {
        Vec::new()
    };
    match matches.as_slice() {
        [(one, _)] => Ok(*one),
        [] => Err(ServiceError::Unknown {
            kind: "profile",
            names: vec![given.to_owned()],
        }),
        many => Err(ServiceError::Ambiguous {
            given: given.to_owned(),
            matches: many.iter().map(|(_, u)| (*u).to_owned()).collect(),
        }),
    }
}

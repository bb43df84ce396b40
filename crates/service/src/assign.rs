//! Assignment edits: a profile named by its UUID or a unique prefix, its
//! include and exclude targets added, removed or replaced.

use chrono::{DateTime, Utc};
use provkit_store::{Actor, AssignmentChange, AssignmentEdit, Store};

use crate::{ServiceError, names};

/// Edits a profile's assignments in one transaction; returns the targets
/// before and after and the devices that gain or lose the profile at `at`.
///
/// # Errors
/// [`ServiceError::Unknown`] or [`ServiceError::Ambiguous`] for the profile
/// name; [`ServiceError::Store`] for an unknown group, an empty edit or the
/// removal of a target that is not assigned (nothing is written).
pub fn edit(
    store: &mut dyn Store,
    profile: &str,
    edit: &AssignmentEdit,
    at: DateTime<Utc>,
    actor: &Actor,
) -> Result<AssignmentChange, ServiceError> {
    let uuid = names::profile_uuid(store, profile)?;
    Ok(store.edit_assignments(&uuid, edit, at, actor)?)
}

/// What [`edit`] would change at `at`, written nowhere: the targets before
/// and after and the devices that would gain or lose the profile.
///
/// # Errors
/// As [`edit`].
pub fn preview(
    store: &mut dyn Store,
    profile: &str,
    edit: &AssignmentEdit,
    at: DateTime<Utc>,
) -> Result<AssignmentChange, ServiceError> {
    let uuid = names::profile_uuid(store, profile)?;
    Ok(store.preview_assignments(&uuid, edit, at)?)
}

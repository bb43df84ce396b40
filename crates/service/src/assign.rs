//! Assignment edits: a profile named by its UUID or a unique prefix, its
//! include and exclude targets added, removed or replaced.

use chrono::{DateTime, Utc};
use provkit_policy::{DeviceId, Engine, GroupId, Intent, ProfileId, Target, Tenant};
use provkit_store::{Actor, AssignmentChange, AssignmentEdit, Store, TargetName};

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

/// [`edit`] without the devices (left empty): the targets written in one
/// transaction and returned before and after, the tenant neither loaded
/// nor planned (a console's save, which shows no device lists).
///
/// # Errors
/// As [`edit`].
pub fn edit_targets(
    store: &mut dyn Store,
    profile: &str,
    edit: &AssignmentEdit,
    actor: &Actor,
) -> Result<AssignmentChange, ServiceError> {
    let uuid = names::profile_uuid(store, profile)?;
    Ok(store.edit_assignment_targets(&uuid, edit, actor)?)
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

/// [`preview`] with the devices taken from `engine`, a plan of the same
/// tenant already in memory (a server's snapshot), instead of two loads and
/// plans of the tenant in the store: the store checks the edit and gives
/// the targets before and after (nothing written), the engine the devices
/// that would gain and lose the profile, sorted by UDID. When the engine
/// does not know the profile (a snapshot older than its upload), the
/// store's own [`preview`] answers.
///
/// # Errors
/// As [`edit`].
pub fn preview_on(
    store: &mut dyn Store,
    engine: &Engine,
    profile: &str,
    edit: &AssignmentEdit,
    at: DateTime<Utc>,
) -> Result<AssignmentChange, ServiceError> {
    Ok(preview_sample_on(store, engine, profile, edit, at, usize::MAX)?.change)
}

/// An assignment preview that names at most a few devices: the change
/// with at most `limit` UDIDs in each list (the first by UDID), and how
/// many devices gain and lose the profile in all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviewSample {
    /// The change, its device lists cut to the sample.
    pub change: AssignmentChange,
    /// How many devices would gain the profile.
    pub gaining: usize,
    /// How many devices would lose it.
    pub losing: usize,
}

/// [`preview_on`] naming at most `limit` devices on each side: a page that
/// shows a count and a few UDIDs does not copy a million of them (a
/// profile given to All devices at 1M devices).
///
/// # Errors
/// As [`edit`].
pub fn preview_sample_on(
    store: &mut dyn Store,
    engine: &Engine,
    profile: &str,
    edit: &AssignmentEdit,
    at: DateTime<Utc>,
    limit: usize,
) -> Result<PreviewSample, ServiceError> {
    let uuid = names::profile_uuid(store, profile)?;
    let Some(p) = engine_profile(engine, &uuid) else {
        let mut change = store.preview_assignments(&uuid, edit, at)?;
        let (gaining, losing) = (change.devices_gaining.len(), change.devices_losing.len());
        change.devices_gaining.truncate(limit);
        change.devices_losing.truncate(limit);
        return Ok(PreviewSample {
            change,
            gaining,
            losing,
        });
    };
    let mut change = store.check_assignment_edit(&uuid, edit, at)?;
    let after = engine_targets(
        engine.tenant(),
        &change.include_after,
        &change.exclude_after,
    );
    let (gaining, losing) = sorted_difference(&engine.wanting_if(p, &after), &engine.wanting(p));
    change.devices_gaining = udids(engine.tenant(), &gaining, limit);
    change.devices_losing = udids(engine.tenant(), &losing, limit);
    Ok(PreviewSample {
        change,
        gaining: gaining.len(),
        losing: losing.len(),
    })
}

/// [`edit`] with the devices taken from `engine` (a server's snapshot of
/// the same tenant), so that saving an edit neither loads nor plans the
/// tenant: the store writes the targets in one transaction and returns
/// them before and after; the engine gives the devices that want the
/// profile under each (every other fact as the engine has it), and their
/// difference is the devices gaining and losing it, sorted by UDID. When
/// the engine does not know the profile, [`edit`] answers.
///
/// # Errors
/// As [`edit`].
pub fn edit_on(
    store: &mut dyn Store,
    engine: &Engine,
    profile: &str,
    edit: &AssignmentEdit,
    at: DateTime<Utc>,
    actor: &Actor,
) -> Result<AssignmentChange, ServiceError> {
    let uuid = names::profile_uuid(store, profile)?;
    let Some(p) = engine_profile(engine, &uuid) else {
        return Ok(store.edit_assignments(&uuid, edit, at, actor)?);
    };
    let mut change = store.edit_assignment_targets(&uuid, edit, actor)?;
    let t = engine.tenant();
    let before = engine_targets(t, &change.include_before, &change.exclude_before);
    let after = engine_targets(t, &change.include_after, &change.exclude_after);
    let (gaining, losing) = sorted_difference(
        &engine.wanting_if(p, &after),
        &engine.wanting_if(p, &before),
    );
    change.devices_gaining = udids(t, &gaining, usize::MAX);
    change.devices_losing = udids(t, &losing, usize::MAX);
    Ok(change)
}

/// The engine's id of the profile `uuid`.
fn engine_profile(engine: &Engine, uuid: &str) -> Option<ProfileId> {
    engine
        .tenant()
        .profiles
        .iter()
        .position(|f| f.uuid.eq_ignore_ascii_case(uuid))
        .and_then(|i| u32::try_from(i).ok())
        .map(ProfileId)
}

/// Stored targets as the engine's (a group it does not know stays named).
fn engine_targets(
    t: &Tenant,
    include: &[TargetName],
    exclude: &[TargetName],
) -> Vec<(Intent, Target)> {
    let target = |n: &TargetName| match n {
        TargetName::AllUsers => Target::AllUsers,
        TargetName::AllDevices => Target::AllDevices,
        TargetName::Group(name) => t
            .groups
            .iter()
            .position(|g| g.name == *name)
            .and_then(|i| u32::try_from(i).ok())
            .map_or_else(
                || Target::MissingGroup(name.clone()),
                |i| Target::Group(GroupId(i)),
            ),
    };
    include
        .iter()
        .map(|n| (Intent::Include, target(n)))
        .chain(exclude.iter().map(|n| (Intent::Exclude, target(n))))
        .collect()
}

/// The first `limit` of the devices' UDIDs in UDID order (device ids
/// follow the UDIDs' order, so they usually come sorted already).
fn udids(t: &Tenant, ids: &[DeviceId], limit: usize) -> Vec<String> {
    let mut names: Vec<&str> = ids
        .iter()
        .map(|d| t.devices[d.index()].udid.as_str())
        .collect();
    if !names.is_sorted() {
        if limit < names.len() {
            names.select_nth_unstable(limit);
            names.truncate(limit);
        }
        names.sort_unstable();
    }
    names.into_iter().take(limit).map(str::to_owned).collect()
}

/// What is in `after` only and what is in `before` only, of two sorted
/// lists, in one pass.
fn sorted_difference<T: Ord + Copy>(after: &[T], before: &[T]) -> (Vec<T>, Vec<T>) {
    let (mut only_after, mut only_before) = (Vec::new(), Vec::new());
    let (mut a, mut b) = (after.iter().peekable(), before.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x == y => {
                a.next();
                b.next();
            }
            (Some(x), Some(y)) if x < y => {
                only_after.push(**x);
                a.next();
            }
            (Some(_), Some(y)) => {
                only_before.push(**y);
                b.next();
            }
            (Some(x), None) => {
                only_after.push(**x);
                a.next();
            }
            (None, Some(y)) => {
                only_before.push(**y);
                b.next();
            }
            (None, None) => return (only_after, only_before),
        }
    }
}

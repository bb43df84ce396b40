//! Assignment resolution (domain rules 1–5):
//!
//! targeted(D) = (U in a user include and not in a user exclude)
//!             ∪ (D in a device include and not in a device exclude)
//!
//! An exclusion cancels only includes of its own kind. A device without a
//! user matches only device targets. desired(D) = targeted(D) ∪ the profiles
//! linked to apps installed on D.

use crate::index::{Index, Marks, groups_of};
use crate::model::{AssignmentId, DeviceId, Intent, ProfileId, Tenant, UserId};

/// Per-thread scratch space.
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    pub(crate) marks: Marks,
    pub(crate) groups: Vec<crate::model::GroupId>,
    include: Vec<ProfileId>,
    exclude: Vec<ProfileId>,
    result: Vec<ProfileId>,
}

impl Scratch {
    pub(crate) fn new(groups: usize) -> Self {
        Scratch {
            marks: Marks::new(groups),
            groups: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            result: Vec::new(),
        }
    }
}

/// includes − excludes of the listed assignments, sorted, into `scratch.result`.
fn resolve<'a>(t: &Tenant, lists: impl Iterator<Item = &'a [AssignmentId]>, scratch: &mut Scratch) {
    scratch.include.clear();
    scratch.exclude.clear();
    for list in lists {
        for a in list {
            let a = &t.assignments[a.index()];
            if t.profiles.get(a.profile.index()).is_none() {
                continue;
            }
            match a.intent {
                Intent::Include => scratch.include.push(a.profile),
                Intent::Exclude => scratch.exclude.push(a.profile),
            }
        }
    }
    scratch.include.sort_unstable();
    scratch.include.dedup();
    scratch.exclude.sort_unstable();
    scratch.exclude.dedup();
    let exclude = &scratch.exclude;
    scratch.result.clear();
    scratch.result.extend(
        scratch
            .include
            .iter()
            .copied()
            .filter(|p| exclude.binary_search(p).is_err()),
    );
}

/// Profiles a user's includes minus user excludes select (sorted).
pub(crate) fn user_targets(
    t: &Tenant,
    idx: &Index,
    user: UserId,
    scratch: &mut Scratch,
) -> Vec<ProfileId> {
    let direct = &idx.user_groups[user.index()];
    let mut groups = std::mem::take(&mut scratch.groups);
    groups_of(idx, direct, &mut scratch.marks, &mut groups);
    let lists = std::iter::once(idx.all_users.as_slice())
        .chain(groups.iter().map(|g| idx.by_group[g.index()].as_slice()));
    resolve(t, lists, scratch);
    scratch.groups = groups;
    scratch.result.clone()
}

/// Profiles a device's own includes minus device excludes select (sorted), into `scratch.result`.
fn device_targets(t: &Tenant, idx: &Index, device: DeviceId, scratch: &mut Scratch) {
    let direct = &idx.device_groups[device.index()];
    let mut groups = std::mem::take(&mut scratch.groups);
    groups_of(idx, direct, &mut scratch.marks, &mut groups);
    let lists = std::iter::once(idx.all_devices.as_slice())
        .chain(groups.iter().map(|g| idx.by_group[g.index()].as_slice()));
    resolve(t, lists, scratch);
    scratch.groups = groups;
}

/// desired(D), sorted and deduplicated, given the user's targets.
pub(crate) fn desired(
    t: &Tenant,
    idx: &Index,
    device: DeviceId,
    user_part: &[ProfileId],
    scratch: &mut Scratch,
) -> Vec<ProfileId> {
    device_targets(t, idx, device, scratch);
    let apps = &t.devices[device.index()].apps;
    let mut out = Vec::with_capacity(scratch.result.len() + user_part.len() + apps.len());
    out.extend_from_slice(&scratch.result);
    out.extend_from_slice(user_part);
    for app in apps {
        if let Some(p) = t.apps.get(app.index()).and_then(|a| a.profile) {
            out.push(p);
        }
    }
    out.sort_unstable();
    out.dedup();
    out.retain(|p| t.profiles.get(p.index()).is_some_and(|f| !f.retired));
    out
}

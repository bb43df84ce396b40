//! Assignment resolution (domain rules 1–5):
//!
//! targeted(D) = (U in a user include and not in a user exclude)
//!             ∪ (D in a device include and not in a device exclude)
//!
//! An exclusion cancels only includes of its own kind. A device without a
//! user matches only device targets. desired(D) = targeted(D) ∪ the profiles
//! linked to apps installed on D.

use crate::index::{Index, Reach};
use crate::model::{DeviceId, ProfileId, Tenant, UserId};

/// A device's desired profiles, sorted: kept inline up to the number most
/// devices want (no allocation to make or free for them).
pub(crate) type Desired = smallvec::SmallVec<[ProfileId; 16]>;

/// A user's targets, sorted: most users have a few, kept inline.
pub(crate) type Targets = smallvec::SmallVec<[ProfileId; 8]>;

/// Per-thread scratch space.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    include: Vec<ProfileId>,
    exclude: Vec<ProfileId>,
    result: Vec<ProfileId>,
    desired: Vec<ProfileId>,
}

/// The union of the reaches' includes minus the union of their excludes,
/// sorted, into `scratch.result`.
fn resolve<'a>(reaches: impl Iterator<Item = &'a Reach>, scratch: &mut Scratch) {
    scratch.include.clear();
    scratch.exclude.clear();
    let mut sources = 0;
    for r in reaches {
        if !r.include.is_empty() {
            sources += 1;
            scratch.include.extend_from_slice(&r.include);
        }
        scratch.exclude.extend_from_slice(&r.exclude);
    }
    // One reach's list is sorted and without repeats already.
    if sources > 1 {
        scratch.include.sort_unstable();
        scratch.include.dedup();
    }
    scratch.exclude.sort_unstable();
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
pub(crate) fn user_targets(idx: &Index, user: UserId, scratch: &mut Scratch) -> Targets {
    let direct = &idx.user_groups[user.index()];
    let reaches =
        std::iter::once(&idx.all_users_reach).chain(direct.iter().map(|g| &idx.reach[g.index()]));
    resolve(reaches, scratch);
    Targets::from_slice(&scratch.result)
}

/// Profiles a device's own includes minus device excludes select (sorted), into `scratch.result`.
fn device_targets(idx: &Index, device: DeviceId, scratch: &mut Scratch) {
    let direct = &idx.device_groups[device.index()];
    let reaches =
        std::iter::once(&idx.all_devices_reach).chain(direct.iter().map(|g| &idx.reach[g.index()]));
    resolve(reaches, scratch);
}

/// The union of two sorted lists without repeats, sorted and without
/// repeats, appended to `out`.
fn union_into(a: &[ProfileId], b: &[ProfileId], out: &mut Vec<ProfileId>) {
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        out.push(x.min(y));
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// desired(D), sorted and deduplicated, given the user's targets.
pub(crate) fn desired(
    t: &Tenant,
    idx: &Index,
    device: DeviceId,
    user_part: &[ProfileId],
    scratch: &mut Scratch,
) -> Desired {
    device_targets(idx, device, scratch);
    let apps = &t.devices[device.index()].apps;
    let out = &mut scratch.desired;
    out.clear();
    union_into(&scratch.result, user_part, out);
    for app in apps {
        if let Some(p) = idx.app_profile.get(app.index()).copied().flatten()
            && let Err(at) = out.binary_search(&p)
        {
            out.insert(at, p);
        }
    }
    out.retain(|p| idx.checks.get(p.index()).is_some_and(|c| !c.retired));
    Desired::from_slice(out)
}

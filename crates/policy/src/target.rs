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

/// Per-thread scratch space.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    include: Vec<ProfileId>,
    exclude: Vec<ProfileId>,
    result: Vec<ProfileId>,
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
pub(crate) fn user_targets(idx: &Index, user: UserId, scratch: &mut Scratch) -> Vec<ProfileId> {
    let direct = &idx.user_groups[user.index()];
    let reaches =
        std::iter::once(&idx.all_users_reach).chain(direct.iter().map(|g| &idx.reach[g.index()]));
    resolve(reaches, scratch);
    scratch.result.clone()
}

/// Profiles a device's own includes minus device excludes select (sorted), into `scratch.result`.
fn device_targets(idx: &Index, device: DeviceId, scratch: &mut Scratch) {
    let direct = &idx.device_groups[device.index()];
    let reaches =
        std::iter::once(&idx.all_devices_reach).chain(direct.iter().map(|g| &idx.reach[g.index()]));
    resolve(reaches, scratch);
}

/// desired(D), sorted and deduplicated, given the user's targets.
pub(crate) fn desired(
    t: &Tenant,
    idx: &Index,
    device: DeviceId,
    user_part: &[ProfileId],
    scratch: &mut Scratch,
) -> Box<[ProfileId]> {
    device_targets(idx, device, scratch);
    let apps = &t.devices[device.index()].apps;
    let out = &mut scratch.include;
    out.clear();
    out.extend_from_slice(&scratch.result);
    out.extend_from_slice(user_part);
    for app in apps {
        if let Some(p) = t.apps.get(app.index()).and_then(|a| a.profile) {
            out.push(p);
        }
    }
    out.sort_unstable();
    out.dedup();
    out.retain(|p| idx.checks.get(p.index()).is_some_and(|c| !c.retired));
    out.as_slice().into()
}

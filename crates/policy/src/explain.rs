//! Why device D does or does not get profile P: the chain of groups,
//! assignments and rules that decided it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::index::Index;
use crate::model::{DeviceId, GroupId, GroupKind, Intent, ProfileId, Target, Tenant};

/// The answer to "why does (or doesn't) this device get this profile?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The device.
    pub device: DeviceId,
    /// The profile.
    pub profile: ProfileId,
    /// Whether the profile is desired on the device.
    pub desired: bool,
    /// Each fact and rule that decided it, in order.
    pub steps: Vec<String>,
}

/// The chain from one of `direct` up to `target` through nesting, if any.
fn path(t: &Tenant, idx: &Index, direct: &[GroupId], target: GroupId) -> Option<Vec<GroupId>> {
    let mut prev: HashMap<GroupId, Option<GroupId>> = HashMap::new();
    let mut queue: std::collections::VecDeque<GroupId> = direct.iter().copied().collect();
    for g in direct {
        prev.insert(*g, None);
    }
    while let Some(g) = queue.pop_front() {
        if g == target {
            let mut chain = vec![g];
            let mut cur = g;
            while let Some(Some(p)) = prev.get(&cur) {
                chain.push(*p);
                cur = *p;
            }
            chain.reverse();
            return Some(chain);
        }
        for p in &idx.parents[g.index()] {
            if !prev.contains_key(p) {
                prev.insert(*p, Some(g));
                queue.push_back(*p);
            }
        }
    }
    let _ = t;
    None
}

fn names(t: &Tenant, chain: &[GroupId]) -> String {
    chain
        .iter()
        .map(|g| format!("\"{}\"", t.groups[g.index()].name))
        .collect::<Vec<_>>()
        .join(" ⊂ ")
}

pub(crate) fn explain(
    t: &Tenant,
    idx: &Index,
    device: DeviceId,
    profile: ProfileId,
    desired: &[ProfileId],
    at: DateTime<Utc>,
) -> Explanation {
    let d = &t.devices[device.index()];
    let p = t.profile(profile);
    let mut steps = Vec::new();
    let user = d.user.map(|u| &t.users[u.index()]);
    match user {
        Some(u) => steps.push(format!("device {} has primary user {}", d.udid, u.name)),
        None => steps.push(format!(
            "device {} has no primary user: only device targets and All devices apply",
            d.udid
        )),
    }
    let mut matched = [[false; 2]; 2]; // [kind user/device][include/exclude]
    // The targets whose exclusions apply, to say when an app link overrides one.
    let mut excluded_through: Vec<String> = Vec::new();
    for a in t.assignments.iter().filter(|a| a.profile == profile) {
        let verb = if a.intent == Intent::Include {
            "includes"
        } else {
            "excludes"
        };
        let kind = t.target_kind(&a.target);
        let hit = match (&a.target, kind) {
            (Target::AllUsers, _) => user.map(|_| "All users".to_owned()),
            (Target::AllDevices, _) => Some("All devices".to_owned()),
            (Target::Group(g), Some(GroupKind::User)) => d
                .user
                .and_then(|u| path(t, idx, &idx.user_groups[u.index()], *g))
                .map(|c| format!("user group {}", names(t, &c))),
            (Target::Group(g), Some(GroupKind::Device)) => {
                path(t, idx, &idx.device_groups[device.index()], *g)
                    .map(|c| format!("device group {}", names(t, &c)))
            }
            (Target::MissingGroup(name), _) => {
                steps.push(format!(
                    "an assignment {verb} group \"{name}\", which does not exist: it matches nothing"
                ));
                None
            }
            _ => None,
        };
        if let (Some(how), Some(kind)) = (hit, kind) {
            steps.push(format!("the assignment {verb} {how}"));
            if a.intent == Intent::Exclude {
                excluded_through.push(how);
            }
            matched[usize::from(kind == GroupKind::Device)]
                [usize::from(a.intent == Intent::Exclude)] = true;
        }
    }
    let mut targeted = false;
    for (k, label) in [(0, "user"), (1, "device")] {
        match matched[k] {
            [true, false] => {
                steps.push(format!("a {label} include applies and no {label} exclude cancels it"));
                targeted = true;
            }
            [true, true] => steps.push(format!("the {label} include is cancelled by a {label} exclude")),
            [false, true] => steps.push(format!(
                "the {label} exclude has nothing of its kind to cancel here (a mixed-kind exclusion has no effect)"
            )),
            _ => {}
        }
    }
    for app in &d.apps {
        let a = &t.apps[app.index()];
        if a.profile == Some(profile) {
            if excluded_through.is_empty() {
                steps.push(format!(
                    "installed app {} {} links to the profile: the device gets it",
                    a.bundle_id, a.version
                ));
            } else {
                steps.push(format!(
                    "excluded through {}, but installed app {} {} links to the profile: \
                     the app link overrides the exclusion and the device keeps it",
                    excluded_through.join(" and "),
                    a.bundle_id,
                    a.version
                ));
            }
            targeted = true;
        }
    }
    let is_desired = desired.binary_search(&profile).is_ok();
    if p.retired {
        steps.push("the profile is deleted: it is never desired".to_owned());
    } else if !targeted {
        steps.push("no assignment or app link selects the profile for this device".to_owned());
    }
    if is_desired {
        if !p.allows_device(&d.udid) {
            steps.push(format!(
                "blocked: the {} profile does not list this device's UDID, so an install would fail",
                p.kind
            ));
        } else if p.expires < at {
            steps.push("the profile has expired: nothing is installed".to_owned());
        } else if d
            .reported
            .iter()
            .any(|r| Some(r.uuid) == idx.profile_uuid[profile.index()])
        {
            steps.push("the device already reports the profile: no command".to_owned());
        } else {
            steps.push(
                "the device does not report it: InstallProvisioningProfile is planned".to_owned(),
            );
        }
    } else if d
        .reported
        .iter()
        .any(|r| r.managed && Some(r.uuid) == idx.profile_uuid[profile.index()])
    {
        steps.push("the device holds it as managed but it is not desired: it is removed once any replacement is acknowledged".to_owned());
    }
    Explanation {
        device,
        profile,
        desired: is_desired,
        steps,
    }
}

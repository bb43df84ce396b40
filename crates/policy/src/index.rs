//! Derived indices: group closures (a group and every group it is nested in,
//! cycles tolerated), assignments by group, devices by user, apps by profile.

use std::collections::HashMap;

use rayon::prelude::*;

use chrono::{DateTime, Utc};

use crate::model::{
    AppId, AssignmentId, DeviceId, DeviceScope, GroupId, GroupKind, Intent, ProfileFacts,
    ProfileId, Target, Tenant, UserId, Uuid,
};

/// Indices derived from a tenant; rebuilt or patched as the tenant changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// For each group, the groups it is directly nested in (same kind only).
    pub(crate) parents: Vec<Vec<GroupId>>,
    /// For each group: itself and every group it is nested in, transitively.
    pub(crate) closure: Vec<Vec<GroupId>>,
    /// Direct user-group memberships.
    pub(crate) user_groups: Vec<Few<GroupId>>,
    /// Direct device-group memberships.
    pub(crate) device_groups: Vec<Few<GroupId>>,
    /// Assignments whose target is the group.
    pub(crate) by_group: Vec<Vec<AssignmentId>>,
    /// Assignments targeting All users.
    pub(crate) all_users: Vec<AssignmentId>,
    /// Assignments targeting All devices.
    pub(crate) all_devices: Vec<AssignmentId>,
    /// For each group: what the assignments to it and to every group it is
    /// nested in include and exclude (a member's targeting merges its
    /// direct groups' reaches instead of walking their closures).
    pub(crate) reach: Vec<Reach>,
    /// What the assignments to All users include and exclude.
    pub(crate) all_users_reach: Reach,
    /// What the assignments to All devices include and exclude.
    pub(crate) all_devices_reach: Reach,
    /// Devices whose primary user this is.
    pub(crate) user_devices: Vec<Few<DeviceId>>,
    /// Apps linked to the profile.
    pub(crate) profile_apps: Vec<Vec<AppId>>,
    /// Devices with the app installed, counted.
    pub(crate) app_device_count: Vec<usize>,
    /// Profiles by UUID.
    pub(crate) by_uuid: HashMap<Uuid, ProfileId, BuildUuidHasher>,
    /// Each profile's UUID, parsed (None when it is not a UUID).
    pub(crate) profile_uuid: Vec<Option<Uuid>>,
    /// What reconciliation reads of each profile, kept small and together
    /// (a device's plan reads it for every profile the device wants).
    pub(crate) checks: Vec<ProfileCheck>,
}

/// The facts of a profile every device's reconciliation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProfileCheck {
    /// ExpirationDate.
    pub(crate) expires: DateTime<Utc>,
    /// Deleted.
    pub(crate) retired: bool,
    /// Installable only on the devices it lists.
    pub(crate) listed: bool,
}

impl ProfileCheck {
    pub(crate) fn of(f: &ProfileFacts) -> Self {
        ProfileCheck {
            expires: f.expires,
            retired: f.retired,
            listed: matches!(f.devices, DeviceScope::Listed(_)),
        }
    }
}

/// The profiles a set of assignments includes and excludes, each sorted
/// and without repeats; assignments of profiles outside the tenant are
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reach {
    pub(crate) include: Box<[ProfileId]>,
    pub(crate) exclude: Box<[ProfileId]>,
}

impl Reach {
    /// The reach of the assignments `lists` name.
    fn of<'a>(t: &Tenant, lists: impl Iterator<Item = &'a [AssignmentId]>) -> Reach {
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        for a in lists.flatten() {
            let a = &t.assignments[a.index()];
            if t.profiles.get(a.profile.index()).is_none() {
                continue;
            }
            match a.intent {
                Intent::Include => include.push(a.profile),
                Intent::Exclude => exclude.push(a.profile),
            }
        }
        for v in [&mut include, &mut exclude] {
            v.sort_unstable();
            v.dedup();
        }
        Reach {
            include: include.into_boxed_slice(),
            exclude: exclude.into_boxed_slice(),
        }
    }
}

/// A short list kept inline: principals have one to three direct groups.
pub(crate) type Few<T> = smallvec::SmallVec<[T; 3]>;

/// Hashes a UUID by its low 64 bits, which are random in real UUIDs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BuildUuidHasher;

/// See [`BuildUuidHasher`].
#[derive(Debug, Default)]
pub(crate) struct UuidHasher(u64);

impl std::hash::Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u128(&mut self, v: u128) {
        let b = v.to_le_bytes();
        let mut lo = [0u8; 8];
        lo.copy_from_slice(&b[..8]);
        self.0 = u64::from_le_bytes(lo).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl std::hash::BuildHasher for BuildUuidHasher {
    type Hasher = UuidHasher;
    fn build_hasher(&self) -> UuidHasher {
        UuidHasher(0)
    }
}

fn aid(i: usize) -> AssignmentId {
    AssignmentId(u32::try_from(i).unwrap_or(u32::MAX))
}

/// A reusable "seen" marker over group ids, cleared in O(1) by bumping a generation.
#[derive(Debug, Clone)]
pub(crate) struct Marks {
    stamp: Vec<u32>,
    generation: u32,
}

impl Marks {
    pub(crate) fn new(n: usize) -> Self {
        Marks {
            stamp: vec![0; n],
            generation: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
    }

    /// Marks `i`; returns true the first time since the last clear.
    pub(crate) fn insert(&mut self, i: usize) -> bool {
        if self.stamp.len() <= i {
            self.stamp.resize(i + 1, 0);
        }
        if self.stamp[i] == self.generation {
            false
        } else {
            self.stamp[i] = self.generation;
            true
        }
    }
}

impl Index {
    pub(crate) fn build(t: &Tenant) -> Self {
        let n = t.groups.len();
        let mut idx = Index {
            parents: vec![Vec::new(); n],
            user_groups: vec![Few::new(); t.users.len()],
            device_groups: vec![Few::new(); t.devices.len()],
            by_group: vec![Vec::new(); n],
            user_devices: vec![Few::new(); t.users.len()],
            profile_apps: vec![Vec::new(); t.profiles.len()],
            app_device_count: vec![0; t.apps.len()],
            ..Index::default()
        };
        for (gi, g) in t.groups.iter().enumerate() {
            let gid = GroupId(u32::try_from(gi).unwrap_or(u32::MAX));
            for sub in &g.subgroups {
                if t.groups.get(sub.index()).is_some_and(|s| s.kind == g.kind) {
                    idx.parents[sub.index()].push(gid);
                }
            }
            match g.kind {
                GroupKind::User => {
                    for u in &g.users {
                        if let Some(list) = idx.user_groups.get_mut(u.index()) {
                            list.push(gid);
                        }
                    }
                }
                GroupKind::Device => {
                    for d in &g.devices {
                        if let Some(list) = idx.device_groups.get_mut(d.index()) {
                            list.push(gid);
                        }
                    }
                }
            }
        }
        idx.closure = (0..n)
            .into_par_iter()
            .with_min_len(n / 64 + 1)
            .map_init(
                || (Marks::new(n), Vec::new()),
                |(marks, stack), g| closure_of(&idx.parents, g, marks, stack),
            )
            .collect();
        for (i, a) in t.assignments.iter().enumerate() {
            match &a.target {
                Target::AllUsers => idx.all_users.push(aid(i)),
                Target::AllDevices => idx.all_devices.push(aid(i)),
                Target::Group(g) => {
                    if let Some(list) = idx.by_group.get_mut(g.index()) {
                        list.push(aid(i));
                    }
                }
                Target::MissingGroup(_) => {}
            }
        }
        idx.reach_all(t);
        for (di, d) in t.devices.iter().enumerate() {
            let did = DeviceId(u32::try_from(di).unwrap_or(u32::MAX));
            if let Some(list) = d.user.and_then(|u| idx.user_devices.get_mut(u.index())) {
                list.push(did);
            }
            for a in &d.apps {
                if let Some(c) = idx.app_device_count.get_mut(a.index()) {
                    *c += 1;
                }
            }
        }
        for (pi, p) in t.profiles.iter().enumerate() {
            let key = Uuid::parse(&p.uuid);
            if let Some(k) = key {
                idx.by_uuid
                    .entry(k)
                    .or_insert(ProfileId(u32::try_from(pi).unwrap_or(u32::MAX)));
            }
            idx.profile_uuid.push(key);
            idx.checks.push(ProfileCheck::of(p));
        }
        for (ai, a) in t.apps.iter().enumerate() {
            if let Some(list) = a.profile.and_then(|p| idx.profile_apps.get_mut(p.index())) {
                list.push(AppId(u32::try_from(ai).unwrap_or(u32::MAX)));
            }
        }
        idx
    }

    /// Recomputes the closures of `groups`, and their reaches.
    pub(crate) fn refresh_closures(&mut self, t: &Tenant, groups: &[GroupId], marks: &mut Marks) {
        let mut stack = Vec::new();
        for g in groups {
            self.closure[g.index()] = closure_of(&self.parents, g.index(), marks, &mut stack);
        }
        self.refresh_reach(t, groups);
    }

    /// The reach of group `g`: the assignments to each group of its closure.
    fn reach_of(&self, t: &Tenant, g: usize) -> Reach {
        Reach::of(
            t,
            self.closure[g]
                .iter()
                .map(|a| self.by_group[a.index()].as_slice()),
        )
    }

    /// Recomputes every group's reach and All users' and All devices'.
    pub(crate) fn reach_all(&mut self, t: &Tenant) {
        let n = self.closure.len();
        self.reach = (0..n)
            .into_par_iter()
            .with_min_len(n / 64 + 1)
            .map(|g| self.reach_of(t, g))
            .collect();
        self.all_users_reach = Reach::of(t, std::iter::once(self.all_users.as_slice()));
        self.all_devices_reach = Reach::of(t, std::iter::once(self.all_devices.as_slice()));
    }

    /// Recomputes the reaches of `groups` (whose closures or whose
    /// ancestors' assignments changed) and All users' and All devices'.
    pub(crate) fn refresh_reach(&mut self, t: &Tenant, groups: &[GroupId]) {
        for g in groups {
            self.reach[g.index()] = self.reach_of(t, g.index());
        }
        self.all_users_reach = Reach::of(t, std::iter::once(self.all_users.as_slice()));
        self.all_devices_reach = Reach::of(t, std::iter::once(self.all_devices.as_slice()));
    }

    /// `g` and every group nested in it, transitively (cycles tolerated).
    pub(crate) fn descendants(t: &Tenant, g: GroupId, marks: &mut Marks) -> Vec<GroupId> {
        marks.clear();
        let mut out = vec![g];
        marks.insert(g.index());
        let mut i = 0;
        while i < out.len() {
            let cur = &t.groups[out[i].index()];
            for s in &cur.subgroups {
                if t.groups
                    .get(s.index())
                    .is_some_and(|sg| sg.kind == cur.kind)
                    && marks.insert(s.index())
                {
                    out.push(*s);
                }
            }
            i += 1;
        }
        out
    }
}

fn closure_of(
    parents: &[Vec<GroupId>],
    g: usize,
    marks: &mut Marks,
    stack: &mut Vec<usize>,
) -> Vec<GroupId> {
    marks.clear();
    let mut out = Vec::new();
    stack.clear();
    stack.push(g);
    marks.insert(g);
    while let Some(cur) = stack.pop() {
        out.push(GroupId(u32::try_from(cur).unwrap_or(u32::MAX)));
        for p in &parents[cur] {
            if marks.insert(p.index()) {
                stack.push(p.index());
            }
        }
    }
    out.sort_unstable();
    out
}

/// Users and devices directly in any of `groups`.
pub(crate) fn members_of(t: &Tenant, groups: &[GroupId]) -> (Vec<UserId>, Vec<DeviceId>) {
    let mut users = Vec::new();
    let mut devices = Vec::new();
    for g in groups {
        let g = &t.groups[g.index()];
        users.extend_from_slice(&g.users);
        devices.extend_from_slice(&g.devices);
    }
    users.sort_unstable();
    users.dedup();
    devices.sort_unstable();
    devices.dedup();
    (users, devices)
}

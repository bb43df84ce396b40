//! Derived indices: each group's reach (what the assignments to it and to
//! every group it is nested in include and exclude, found by walking up the
//! nesting with cycles tolerated), direct memberships, assignments by
//! group, devices by user, apps by profile, and what reconciliation reads
//! of each profile.

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
    /// Each app's profile, by app: read for every app a device has, so
    /// kept apart from the app records (the tenant changes an app's
    /// profile only by a renewal, which builds the index anew).
    pub(crate) app_profile: Vec<Option<ProfileId>>,
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
    /// The reach of these assignments.
    fn of<'a>(t: &Tenant, ids: impl Iterator<Item = &'a AssignmentId>) -> Reach {
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        for a in ids {
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
        // Four independent walks, on both cores: user memberships, device
        // memberships, devices by user with apps counted, and nesting.
        let ((user_groups, device_groups), ((user_devices, app_device_count), parents)) =
            rayon::join(
                || {
                    rayon::join(
                        || memberships(t, t.users.len(), GroupKind::User),
                        || memberships(t, t.devices.len(), GroupKind::Device),
                    )
                },
                || rayon::join(|| device_links(t), || parents_of(t)),
            );
        let mut idx = Index {
            parents,
            user_groups,
            device_groups,
            by_group: vec![Vec::new(); n],
            user_devices,
            profile_apps: vec![Vec::new(); t.profiles.len()],
            app_device_count,
            ..Index::default()
        };
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
        idx.app_profile = t.apps.iter().map(|a| a.profile).collect();
        for (ai, a) in t.apps.iter().enumerate() {
            if let Some(list) = a.profile.and_then(|p| idx.profile_apps.get_mut(p.index())) {
                list.push(AppId(u32::try_from(ai).unwrap_or(u32::MAX)));
            }
        }
        idx
    }

    /// The reach of group `g`: the assignments to it and to each group it
    /// is nested in, found by walking up the nesting (cycles tolerated).
    fn reach_of(&self, t: &Tenant, g: usize, walk: &mut Walk) -> Reach {
        let Walk { marks, stack, ids } = walk;
        marks.clear();
        stack.clear();
        ids.clear();
        stack.push(g);
        marks.insert(g);
        while let Some(cur) = stack.pop() {
            ids.extend_from_slice(&self.by_group[cur]);
            for p in &self.parents[cur] {
                if marks.insert(p.index()) {
                    stack.push(p.index());
                }
            }
        }
        Reach::of(t, ids.iter())
    }

    /// Recomputes every group's reach and All users' and All devices'.
    pub(crate) fn reach_all(&mut self, t: &Tenant) {
        let n = self.parents.len();
        self.reach = (0..n)
            .into_par_iter()
            .with_min_len(n / 8 + 1)
            .map_init(|| Walk::new(n), |walk, g| self.reach_of(t, g, walk))
            .collect();
        self.reach_everyone(t);
    }

    /// Recomputes All users' and All devices' reaches.
    fn reach_everyone(&mut self, t: &Tenant) {
        self.all_users_reach = Reach::of(t, self.all_users.iter());
        self.all_devices_reach = Reach::of(t, self.all_devices.iter());
    }

    /// Recomputes the reaches of `groups` (whose nesting or whose
    /// ancestors' assignments changed) and All users' and All devices'.
    pub(crate) fn refresh_reach(&mut self, t: &Tenant, groups: &[GroupId], walk: &mut Walk) {
        for g in groups {
            self.reach[g.index()] = self.reach_of(t, g.index(), walk);
        }
        self.reach_everyone(t);
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

/// Each principal's direct groups of `kind` (users for user groups,
/// devices for device groups); `count` principals.
fn memberships(t: &Tenant, count: usize, kind: GroupKind) -> Vec<Few<GroupId>> {
    let mut lists = vec![Few::new(); count];
    for (gi, g) in t.groups.iter().enumerate().filter(|(_, g)| g.kind == kind) {
        let gid = GroupId(u32::try_from(gi).unwrap_or(u32::MAX));
        let members: &mut dyn Iterator<Item = usize> = match kind {
            GroupKind::User => &mut g.users.iter().map(|u| u.index()),
            GroupKind::Device => &mut g.devices.iter().map(|d| d.index()),
        };
        for m in members {
            if let Some(list) = lists.get_mut(m) {
                list.push(gid);
            }
        }
    }
    lists
}

/// Each user's devices, and how many devices have each app.
fn device_links(t: &Tenant) -> (Vec<Few<DeviceId>>, Vec<usize>) {
    let mut user_devices = vec![Few::new(); t.users.len()];
    let mut app_device_count = vec![0; t.apps.len()];
    for (di, d) in t.devices.iter().enumerate() {
        let did = DeviceId(u32::try_from(di).unwrap_or(u32::MAX));
        if let Some(list) = d.user.and_then(|u| user_devices.get_mut(u.index())) {
            list.push(did);
        }
        for a in &d.apps {
            if let Some(c) = app_device_count.get_mut(a.index()) {
                *c += 1;
            }
        }
    }
    (user_devices, app_device_count)
}

/// For each group, the groups it is directly nested in (same kind only).
fn parents_of(t: &Tenant) -> Vec<Vec<GroupId>> {
    let mut parents = vec![Vec::new(); t.groups.len()];
    for (gi, g) in t.groups.iter().enumerate() {
        let gid = GroupId(u32::try_from(gi).unwrap_or(u32::MAX));
        for sub in &g.subgroups {
            if t.groups.get(sub.index()).is_some_and(|s| s.kind == g.kind) {
                parents[sub.index()].push(gid);
            }
        }
    }
    parents
}

/// Scratch space for walking the nesting from one group.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    /// Groups seen in this walk (also lent to [`Index::descendants`]).
    pub(crate) marks: Marks,
    stack: Vec<usize>,
    ids: Vec<AssignmentId>,
}

impl Walk {
    pub(crate) fn new(groups: usize) -> Self {
        Walk {
            marks: Marks::new(groups),
            stack: Vec::new(),
            ids: Vec::new(),
        }
    }
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

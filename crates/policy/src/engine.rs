//! The engine: a tenant, its indices, and per-user and per-device results
//! cached so that a change recomputes only the devices it can affect.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Serialize;

use crate::index::{Few, Index, ProfileCheck, Walk, members_of};
use crate::model::{
    AppId, Assignment, DeviceId, GroupId, GroupKind, Intent, ProfileFacts, ProfileId, Reported,
    Target, Tenant, UserId,
};
use crate::ops::{self, DeleteRefused, RenewError};
use crate::plan::{Blocker, Command, DevicePlan, Plan, UserNotice, days_until, globals, reconcile};
use crate::target::{Desired, Scratch, Targets, desired, user_targets};

/// A member added to or removed from a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Member {
    /// A user (user groups).
    User(UserId),
    /// A device (device groups).
    Device(DeviceId),
    /// A nested group of the same kind.
    Group(GroupId),
}

/// One change to the tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Change {
    /// Membership added.
    AddMember {
        /// The group.
        group: GroupId,
        /// The member.
        member: Member,
    },
    /// Membership removed.
    RemoveMember {
        /// The group.
        group: GroupId,
        /// The member.
        member: Member,
    },
    /// A device reported its profiles (ProvisioningProfileList).
    DeviceReport {
        /// The device.
        device: DeviceId,
        /// What it holds now.
        reported: Vec<Reported>,
    },
    /// An assignment was added.
    Assign(Assignment),
    /// An assignment was removed (the first equal one).
    Unassign(Assignment),
    /// A new profile was uploaded.
    AddProfile(ProfileFacts),
    /// A profile was renewed by another.
    Renew {
        /// The old profile.
        old: ProfileId,
        /// Its successor.
        new: ProfileId,
    },
}

/// What a batch of changes did to the device commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// Devices whose command list changed, with the new list (possibly empty).
    pub devices: Vec<DevicePlan>,
    /// How many devices were recomputed.
    pub recomputed: usize,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// An id outside the tenant.
    #[error("{0} does not exist")]
    Unknown(String),
    /// A member of the wrong kind for the group.
    #[error("group {group} holds {kind:?} members")]
    WrongKind {
        /// The group's name.
        group: String,
        /// Its kind.
        kind: GroupKind,
    },
    /// A renewal that does not qualify.
    #[error(transparent)]
    Renew(#[from] RenewError),
}

/// The assignment and expiry engine for one tenant at one instant.
#[derive(Debug, Clone)]
pub struct Engine {
    // The large parts are shared between clones and copied on the first
    // change (`Arc::make_mut`), so a clone moved to another instant
    // ([`Engine::advance`]) costs what the instant changes.
    tenant: Arc<Tenant>,
    idx: Arc<Index>,
    at: DateTime<Utc>,
    user_part: Arc<Vec<Targets>>,
    states: Arc<Vec<DeviceState>>,
    scratch: Scratch,
    walk: Walk,
}

/// What the engine keeps per device.
#[derive(Debug, Clone, Default)]
struct DeviceState {
    desired: Desired,
    commands: Box<[Command]>,
    not_provisioned: Box<[ProfileId]>,
}

fn device_state(
    t: &Tenant,
    idx: &Index,
    user_part: &[Targets],
    d: DeviceId,
    at: DateTime<Utc>,
    s: &mut Scratch,
) -> DeviceState {
    let desired = device_desired(t, idx, user_part, d, s);
    let (commands, not_provisioned) = reconcile(t, idx, d, &desired, at);
    DeviceState {
        desired,
        commands: commands.into_boxed_slice(),
        not_provisioned: not_provisioned.into_boxed_slice(),
    }
}

/// A device's desired profiles, given every user's part of them.
fn device_desired(
    t: &Tenant,
    idx: &Index,
    user_part: &[Targets],
    d: DeviceId,
    s: &mut Scratch,
) -> Desired {
    let up = t.devices[d.index()]
        .user
        .map_or(&[][..], |u| user_part[u.index()].as_slice());
    desired(t, idx, d, up, s)
}

/// Every user's part of its devices' targets, on both cores.
fn all_user_targets(tenant: &Tenant, idx: &Index) -> Vec<Targets> {
    (0..tenant.users.len())
        .into_par_iter()
        .with_min_len(tenant.users.len() / 64 + 1)
        .map_init(Scratch::default, |s, u| {
            touch_ahead(u, |ahead| touch_reaches(idx, idx.user_groups.get(ahead)));
            user_targets(idx, UserId(u32::try_from(u).unwrap_or(u32::MAX)), s)
        })
        .collect()
}

/// Every device's desired profiles, without planning anything (no
/// reconciliation, no commands): what [`crate::generate::settle`] needs.
pub(crate) fn desired_all(tenant: &Tenant) -> Vec<Desired> {
    let idx = Index::build(tenant);
    let user_part = all_user_targets(tenant, &idx);
    (0..tenant.devices.len())
        .into_par_iter()
        .with_min_len(tenant.devices.len() / 64 + 1)
        .map_init(Scratch::default, |s, d| {
            touch_ahead(d, |ahead| touch_inputs(tenant, &idx, &user_part, ahead));
            device_desired(tenant, &idx, &user_part, did(d), s)
        })
        .collect()
}

/// Devices a plan assembles in one piece of work.
const PLAN_CHUNK: usize = 16_384;

/// The plan's per-device entries for a run of devices.
#[derive(Default)]
struct DeviceParts {
    devices: Vec<DevicePlan>,
    blockers: Vec<Blocker>,
    user_notices: Vec<UserNotice>,
}

/// Devices (or users) whose inputs are read at once, a run ahead.
const TOUCH_RUN: usize = 32;

/// At the start of each run of [`TOUCH_RUN`] items taken in order, calls
/// `touch` for every item of the next run.
fn touch_ahead(i: usize, touch: impl Fn(usize)) {
    if i.is_multiple_of(TOUCH_RUN) {
        (i + TOUCH_RUN..i + 2 * TOUCH_RUN).for_each(touch);
    }
}

/// Reads, without using them, the inputs of device `d` that lie at
/// random in memory too large for the caches: its user's targets, its
/// reported list (first and last entries) and its groups' reaches (each
/// list's first entry, so spilled lists are reached too). Devices are
/// planned in order, and each one's first steps used to wait on those
/// reads in turn; reading a whole run of later devices' inputs back to
/// back lets the waits overlap (out-of-order execution keeps many
/// independent reads in flight; the program cannot ask for a prefetch
/// without `unsafe`).
fn touch_inputs(t: &Tenant, idx: &Index, user_part: &[Targets], d: usize) {
    let Some(device) = t.devices.get(d) else {
        return;
    };
    if let Some(targets) = device.user.and_then(|u| user_part.get(u.index())) {
        std::hint::black_box(targets.first().copied());
    }
    std::hint::black_box(device.reported.first().map(|r| r.managed));
    std::hint::black_box(device.reported.last().map(|r| r.managed));
    touch_reaches(idx, idx.device_groups.get(d));
}

/// Reads, without using them, the reaches of `groups` (as [`touch_inputs`]).
fn touch_reaches(idx: &Index, groups: Option<&Few<GroupId>>) {
    for g in groups.into_iter().flatten() {
        if let Some(reach) = idx.reach.get(g.index()) {
            std::hint::black_box(reach.include.first().copied());
        }
    }
}

fn did(i: usize) -> DeviceId {
    DeviceId(u32::try_from(i).unwrap_or(u32::MAX))
}

impl Engine {
    /// Computes everything for `tenant` at `at` (both cores, through rayon).
    pub fn new(tenant: Tenant, at: DateTime<Utc>) -> Self {
        let idx = Index::build(&tenant);
        let groups = tenant.groups.len();
        let user_part = all_user_targets(&tenant, &idx);
        let states: Vec<DeviceState> = (0..tenant.devices.len())
            .into_par_iter()
            .with_min_len(tenant.devices.len() / 64 + 1)
            .map_init(Scratch::default, |s, d| {
                touch_ahead(d, |ahead| touch_inputs(&tenant, &idx, &user_part, ahead));
                device_state(&tenant, &idx, &user_part, did(d), at, s)
            })
            .collect();
        Engine {
            tenant: Arc::new(tenant),
            idx: Arc::new(idx),
            at,
            user_part: Arc::new(user_part),
            states: Arc::new(states),
            scratch: Scratch::default(),
            walk: Walk::new(groups),
        }
    }

    /// The tenant as the engine holds it (after changes).
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Gives the tenant back.
    pub fn into_tenant(self) -> Tenant {
        Arc::unwrap_or_clone(self.tenant)
    }

    /// The instant.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Moves the engine to the instant `at` (later or earlier) and returns
    /// the devices whose commands changed. One rule of the plan reads the
    /// instant (a desired profile that has expired is not installed), so
    /// only the devices that want a profile whose expiry lies between the
    /// two instants are planned again; everything else, and every notice,
    /// is answered for the new instant from what the engine holds. A clone
    /// shares its tenant and plan with the original until either changes,
    /// so cloning and advancing costs what the instant changes.
    ///
    /// ```
    /// use chrono::TimeDelta;
    /// use provkit_policy::{Engine, generate::{Shape, generate}};
    ///
    /// let shape = Shape::scaled(2_000);
    /// let tenant = generate(&shape, 7);
    /// let at = shape.around;
    /// let later = at + TimeDelta::days(120);
    /// let mut moved = Engine::new(tenant.clone(), at);
    /// moved.advance(later);
    /// assert_eq!(moved.plan(), Engine::new(tenant, later).plan());
    /// ```
    pub fn advance(&mut self, at: DateTime<Utc>) -> Delta {
        let (from, to) = if at >= self.at {
            (self.at, at)
        } else {
            (at, self.at)
        };
        self.at = at;
        // `expires < at` differs between the instants exactly for these.
        let crossed: Vec<ProfileId> = (0..self.tenant.profiles.len())
            .filter(|&i| {
                let e = self.tenant.profiles[i].expires;
                from <= e && e < to
            })
            .map(|i| ProfileId(u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        if crossed.is_empty() {
            return Delta {
                devices: Vec::new(),
                recomputed: 0,
            };
        }
        let devices = self
            .states
            .iter()
            .enumerate()
            .filter(|(_, st)| crossed.iter().any(|p| st.desired.binary_search(p).is_ok()))
            .map(|(i, _)| did(i))
            .collect();
        self.recompute(Vec::new(), devices)
    }

    /// Replaces the tenant's assignments with `assignments` (in that
    /// order, as a fresh [`Engine::new`] would hold them) and plans again
    /// only the users and devices that the assignments added or removed
    /// reach; returns the devices whose commands changed. For a store that
    /// reads a profile's assignments back after an edit: the engine ends as
    /// one built anew with that list.
    ///
    /// ```
    /// use provkit_policy::{Engine, generate::{Shape, generate}};
    ///
    /// let shape = Shape::scaled(2_000);
    /// let tenant = generate(&shape, 7);
    /// let mut fewer = tenant.clone();
    /// fewer.assignments.truncate(fewer.assignments.len() / 2);
    /// let mut engine = Engine::new(tenant, shape.around);
    /// engine.set_assignments(fewer.assignments.clone())?;
    /// assert_eq!(engine.plan(), Engine::new(fewer, shape.around).plan());
    /// # Ok::<(), provkit_policy::ChangeError>(())
    /// ```
    ///
    /// # Errors
    /// [`ChangeError::Unknown`] for a profile or group outside the tenant
    /// (nothing is changed then).
    pub fn set_assignments(&mut self, assignments: Vec<Assignment>) -> Result<Delta, ChangeError> {
        for a in &assignments {
            if a.profile.index() >= self.tenant.profiles.len() {
                return Err(ChangeError::Unknown(format!("profile #{}", a.profile.0)));
            }
            if let Target::Group(g) = a.target {
                self.check_group(g)?;
            }
        }
        // The assignments on one side only (counted, as a list may hold
        // one twice): their targets are what the change reaches.
        let mut count: std::collections::HashMap<&Assignment, isize> =
            std::collections::HashMap::new();
        for a in self.tenant.assignments.iter() {
            *count.entry(a).or_default() += 1;
        }
        for a in &assignments {
            *count.entry(a).or_default() -= 1;
        }
        let mut targets: Vec<Target> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (a, n) in count {
            if n != 0 && seen.insert(&a.target) {
                targets.push(a.target.clone());
            }
        }
        if targets.is_empty() && self.tenant.assignments == assignments {
            return Ok(Delta {
                devices: Vec::new(),
                recomputed: 0,
            });
        }
        Arc::make_mut(&mut self.tenant).assignments = assignments;
        self.reindex_assignments(&targets);
        let (mut users, mut devices) = (Vec::new(), Vec::new());
        for t in &targets {
            self.affected_by_target(t, &mut users, &mut devices);
        }
        Ok(self.recompute(users, devices))
    }

    /// desired(D): the profiles the device should hold.
    pub fn desired(&self, device: DeviceId) -> &[ProfileId] {
        &self.states[device.index()].desired
    }

    /// The commands currently planned for a device.
    pub fn commands(&self, device: DeviceId) -> &[Command] {
        &self.states[device.index()].commands
    }

    /// Assembles the full plan from the cached per-device results.
    pub fn plan(&self) -> Plan {
        let t = &self.tenant;
        let n = t.profiles.len();
        let desired_count = self
            .states
            .par_iter()
            .with_min_len(4096)
            .fold(
                || vec![0usize; n],
                |mut acc, st| {
                    for p in &st.desired {
                        acc[p.index()] += 1;
                    }
                    acc
                },
            )
            .reduce(
                || vec![0usize; n],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        let (notifications, mut blockers, warnings) = globals(
            t,
            &self.idx.profile_apps,
            &self.idx.app_device_count,
            &desired_count,
            self.at,
        );
        // Each app's death, when it is near enough for a notice to its users.
        let notice: Vec<Option<DateTime<Utc>>> = (0..t.apps.len())
            .map(|a| {
                let death = t.app_death(AppId(u32::try_from(a).unwrap_or(u32::MAX)));
                (days_until(death, self.at) <= t.config.user_notice_days).then_some(death)
            })
            .collect();
        // The per-device parts, a run of devices at a time on both cores,
        // then joined in device order.
        let parts: Vec<DeviceParts> = self
            .states
            .par_chunks(PLAN_CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                let mut part = DeviceParts::default();
                for (j, st) in chunk.iter().enumerate() {
                    let i = c * PLAN_CHUNK + j;
                    let d = &t.devices[i];
                    if !st.commands.is_empty() {
                        part.devices.push(DevicePlan {
                            device: did(i),
                            udid: d.udid.as_str().to_owned(),
                            commands: st.commands.to_vec(),
                        });
                    }
                    for &p in &st.not_provisioned {
                        part.blockers.push(Blocker::NotProvisioned {
                            device: did(i),
                            profile: p,
                        });
                    }
                    if let Some(user) = d.user {
                        for &app in &d.apps {
                            if let Some(&Some(death)) = notice.get(app.index()) {
                                part.user_notices.push(UserNotice {
                                    user,
                                    device: did(i),
                                    app,
                                    death,
                                });
                            }
                        }
                    }
                }
                part
            })
            .collect();
        let mut devices = Vec::with_capacity(parts.iter().map(|p| p.devices.len()).sum());
        let mut user_notices = Vec::with_capacity(parts.iter().map(|p| p.user_notices.len()).sum());
        blockers.reserve(parts.iter().map(|p| p.blockers.len()).sum());
        for part in parts {
            devices.extend(part.devices);
            blockers.extend(part.blockers);
            user_notices.extend(part.user_notices);
        }
        Plan {
            at: self.at,
            devices,
            notifications,
            user_notices,
            blockers,
            warnings,
        }
    }

    /// Applies one change; see [`Engine::apply_all`].
    ///
    /// # Errors
    /// As [`Engine::apply_all`].
    pub fn apply(&mut self, change: Change) -> Result<Delta, ChangeError> {
        self.apply_all(vec![change])
    }

    /// Applies a batch of changes, recomputing only the users and devices
    /// they can affect, once each, and returns the devices whose commands
    /// changed. A refused change leaves the changes before it applied.
    ///
    /// # Errors
    /// [`ChangeError`] naming the unknown object, wrong member kind or
    /// unqualified renewal.
    pub fn apply_all(&mut self, changes: Vec<Change>) -> Result<Delta, ChangeError> {
        let mut users: Vec<UserId> = Vec::new();
        let mut devices: Vec<DeviceId> = Vec::new();
        let mut result = Ok(());
        for change in changes {
            if let Err(e) = self.apply_one(change, &mut users, &mut devices) {
                result = Err(e);
                break;
            }
        }
        let delta = self.recompute(users, devices);
        result.map(|()| delta)
    }

    fn check_group(&self, g: GroupId) -> Result<&crate::model::Group, ChangeError> {
        self.tenant
            .groups
            .get(g.index())
            .ok_or_else(|| ChangeError::Unknown(format!("group #{}", g.0)))
    }

    fn apply_one(
        &mut self,
        change: Change,
        users: &mut Vec<UserId>,
        devices: &mut Vec<DeviceId>,
    ) -> Result<(), ChangeError> {
        let is_assign = matches!(change, Change::Assign(_));
        match change {
            Change::AddMember { group, member } | Change::RemoveMember { group, member } => {
                let add = matches!(change, Change::AddMember { .. });
                let g = self.check_group(group)?;
                let kind = g.kind;
                let wrong = || ChangeError::WrongKind {
                    group: g.name.clone(),
                    kind,
                };
                match member {
                    Member::User(u) => {
                        if kind != GroupKind::User {
                            return Err(wrong());
                        }
                        if u.index() >= self.tenant.users.len() {
                            return Err(ChangeError::Unknown(format!("user #{}", u.0)));
                        }
                        let g = &mut Arc::make_mut(&mut self.tenant).groups[group.index()];
                        toggle(&mut g.users, u, add);
                        toggle(
                            &mut Arc::make_mut(&mut self.idx).user_groups[u.index()],
                            group,
                            add,
                        );
                        users.push(u);
                    }
                    Member::Device(d) => {
                        if kind != GroupKind::Device {
                            return Err(wrong());
                        }
                        if d.index() >= self.tenant.devices.len() {
                            return Err(ChangeError::Unknown(format!("device #{}", d.0)));
                        }
                        let g = &mut Arc::make_mut(&mut self.tenant).groups[group.index()];
                        toggle(&mut g.devices, d, add);
                        toggle(
                            &mut Arc::make_mut(&mut self.idx).device_groups[d.index()],
                            group,
                            add,
                        );
                        devices.push(d);
                    }
                    Member::Group(child) => {
                        let same_kind = self.check_group(child)?.kind == kind;
                        let g = &mut Arc::make_mut(&mut self.tenant).groups[group.index()];
                        toggle(&mut g.subgroups, child, add);
                        if same_kind {
                            toggle(
                                &mut Arc::make_mut(&mut self.idx).parents[child.index()],
                                group,
                                add,
                            );
                            let below =
                                Index::descendants(&self.tenant, child, &mut self.walk.marks);
                            Arc::make_mut(&mut self.idx).refresh_reach(
                                &self.tenant,
                                &below,
                                &mut self.walk,
                            );
                            let (u, d) = members_of(&self.tenant, &below);
                            users.extend(u);
                            devices.extend(d);
                        }
                    }
                }
            }
            Change::DeviceReport { device, reported } => {
                let d = Arc::make_mut(&mut self.tenant)
                    .devices
                    .get_mut(device.index())
                    .ok_or_else(|| ChangeError::Unknown(format!("device #{}", device.0)))?;
                d.reported = reported;
                devices.push(device);
            }
            Change::Assign(a) | Change::Unassign(a) => {
                let add = is_assign;
                if a.profile.index() >= self.tenant.profiles.len() {
                    return Err(ChangeError::Unknown(format!("profile #{}", a.profile.0)));
                }
                if let Target::Group(g) = a.target {
                    self.check_group(g)?;
                }
                if add {
                    Arc::make_mut(&mut self.tenant).assignments.push(a.clone());
                } else if let Some(pos) = self.tenant.assignments.iter().position(|x| *x == a) {
                    Arc::make_mut(&mut self.tenant).assignments.remove(pos);
                } else {
                    return Ok(());
                }
                self.reindex_assignments(std::slice::from_ref(&a.target));
                self.affected_by_target(&a.target, users, devices);
            }
            Change::AddProfile(p) => {
                let id = ProfileId(u32::try_from(self.tenant.profiles.len()).unwrap_or(u32::MAX));
                let key = crate::model::Uuid::parse(&p.uuid);
                if let Some(k) = key {
                    Arc::make_mut(&mut self.idx).by_uuid.entry(k).or_insert(id);
                }
                Arc::make_mut(&mut self.idx).profile_uuid.push(key);
                Arc::make_mut(&mut self.idx)
                    .checks
                    .push(ProfileCheck::of(&p));
                Arc::make_mut(&mut self.tenant).profiles.push(p);
                Arc::make_mut(&mut self.idx).profile_apps.push(Vec::new());
            }
            Change::Renew { old, new } => {
                ops::renew(Arc::make_mut(&mut self.tenant), old, new)?;
                self.idx = Arc::new(Index::build(&self.tenant));
                // Every device that wanted the old profile may now want the new one.
                for (i, st) in self.states.iter().enumerate() {
                    if st.desired.binary_search(&old).is_ok() {
                        devices.push(did(i));
                    }
                }
                for (i, part) in self.user_part.iter().enumerate() {
                    if part.binary_search(&old).is_ok() {
                        users.push(UserId(u32::try_from(i).unwrap_or(u32::MAX)));
                    }
                }
            }
        }
        Ok(())
    }

    fn affected_by_target(
        &mut self,
        target: &Target,
        users: &mut Vec<UserId>,
        devices: &mut Vec<DeviceId>,
    ) {
        match target {
            Target::AllUsers => users.extend(
                (0..self.tenant.users.len()).map(|i| UserId(u32::try_from(i).unwrap_or(u32::MAX))),
            ),
            Target::AllDevices => devices.extend((0..self.tenant.devices.len()).map(did)),
            Target::Group(g) => {
                let below = Index::descendants(&self.tenant, *g, &mut self.walk.marks);
                let (u, d) = members_of(&self.tenant, &below);
                users.extend(u);
                devices.extend(d);
            }
            Target::MissingGroup(_) => {}
        }
    }

    fn recompute(&mut self, mut users: Vec<UserId>, mut devices: Vec<DeviceId>) -> Delta {
        users.sort_unstable();
        users.dedup();
        let mut scratch = std::mem::take(&mut self.scratch);
        for &u in &users {
            Arc::make_mut(&mut self.user_part)[u.index()] =
                user_targets(&self.idx, u, &mut scratch);
            devices.extend_from_slice(&self.idx.user_devices[u.index()]);
        }
        devices.sort_unstable();
        devices.dedup();
        let t = &self.tenant;
        let idx = &self.idx;
        let user_part = &self.user_part;
        let at = self.at;
        // Small batches run here with the engine's scratch; large ones on both cores.
        let results: Vec<(DeviceId, DeviceState)> = if devices.len() < 2048 {
            devices
                .iter()
                .map(|&d| (d, device_state(t, idx, user_part, d, at, &mut scratch)))
                .collect()
        } else {
            devices
                .par_iter()
                .with_min_len(1024)
                .map_init(Scratch::default, |s, &d| {
                    (d, device_state(t, idx, user_part, d, at, s))
                })
                .collect()
        };
        self.scratch = scratch;
        let recomputed = results.len();
        let mut changed = Vec::new();
        for (d, st) in results {
            let slot = &mut Arc::make_mut(&mut self.states)[d.index()];
            if slot.commands != st.commands {
                changed.push(DevicePlan {
                    device: d,
                    udid: self.tenant.devices[d.index()].udid.as_str().to_owned(),
                    commands: st.commands.to_vec(),
                });
            }
            *slot = st;
        }
        Delta {
            devices: changed,
            recomputed,
        }
    }

    /// The devices that want `profile` now, sorted.
    pub fn wanting(&self, profile: ProfileId) -> Vec<DeviceId> {
        self.states
            .iter()
            .enumerate()
            .filter(|(_, st)| st.desired.binary_search(&profile).is_ok())
            .map(|(i, _)| did(i))
            .collect()
    }

    /// The devices that would want `profile` if its own assignments were
    /// `assignments` (every other profile's stay as they are), sorted;
    /// nothing changes. The same rules as the plan: a user include minus
    /// user excludes through the device's primary user, a device include
    /// minus device excludes, or an installed app linked to the profile; a
    /// retired profile is wanted by none. Costs the members of the groups
    /// named (and their subgroups), not a plan: the preview of an
    /// assignment edit on a large tenant.
    pub fn wanting_if(
        &self,
        profile: ProfileId,
        assignments: &[(Intent, Target)],
    ) -> Vec<DeviceId> {
        let t = &self.tenant;
        if t.profiles.get(profile.index()).is_none_or(|p| p.retired) {
            return Vec::new();
        }
        // Who each side includes and excludes: users, then devices.
        let mut users = [vec![false; t.users.len()], vec![false; t.users.len()]];
        let mut devices = [vec![false; t.devices.len()], vec![false; t.devices.len()]];
        let mut marks = crate::index::Marks::new(t.groups.len());
        for (intent, target) in assignments {
            let side = usize::from(*intent == Intent::Exclude);
            match target {
                Target::AllUsers => users[side].fill(true),
                Target::AllDevices => devices[side].fill(true),
                Target::Group(g) if g.index() < t.groups.len() => {
                    let below = Index::descendants(t, *g, &mut marks);
                    let (u, d) = members_of(t, &below);
                    for u in u {
                        users[side][u.index()] = true;
                    }
                    for d in d {
                        devices[side][d.index()] = true;
                    }
                }
                Target::Group(_) | Target::MissingGroup(_) => {}
            }
        }
        let linked: Vec<bool> = t.apps.iter().map(|a| a.profile == Some(profile)).collect();
        t.devices
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                let by_user = d
                    .user
                    .is_some_and(|u| users[0][u.index()] && !users[1][u.index()]);
                let by_device = devices[0][*i] && !devices[1][*i];
                let by_app = d.apps.iter().any(|a| linked.get(a.index()) == Some(&true));
                by_user || by_device || by_app
            })
            .map(|(i, _)| did(i))
            .collect()
    }

    /// Renews `old` with `new` (see [`ops::renew`]) and updates the plan.
    ///
    /// # Errors
    /// [`ChangeError::Renew`] when `new` does not qualify as a successor.
    pub fn renew(&mut self, old: ProfileId, new: ProfileId) -> Result<Delta, ChangeError> {
        self.apply(Change::Renew { old, new })
    }

    /// Deletes a profile if nothing uses it: returns the remove commands
    /// (under make-before-break) it causes.
    ///
    /// # Errors
    /// [`DeleteRefused`] saying which apps link to it and which assignments
    /// are active.
    pub fn delete(&mut self, profile: ProfileId) -> Result<Delta, DeleteRefused> {
        ops::check_delete(&self.tenant, profile)?;
        Arc::make_mut(&mut self.tenant).profiles[profile.index()].retired = true;
        Arc::make_mut(&mut self.idx).checks[profile.index()].retired = true;
        let mut devices = Vec::new();
        let key = self.idx.profile_uuid[profile.index()];
        for (i, d) in self.tenant.devices.iter().enumerate() {
            if key.is_some_and(|k| d.reported.iter().any(|r| r.uuid == k)) {
                devices.push(did(i));
            }
        }
        Ok(self.recompute(Vec::new(), devices))
    }

    /// Explains why a device does or does not get a profile.
    pub fn explain(&self, device: DeviceId, profile: ProfileId) -> crate::explain::Explanation {
        crate::explain::explain(
            &self.tenant,
            &self.idx,
            device,
            profile,
            &self.states[device.index()].desired,
            self.at,
        )
    }
}

fn toggle<T: PartialEq + Copy, L: Extend<T> + std::ops::DerefMut<Target = [T]> + Retain<T>>(
    list: &mut L,
    item: T,
    add: bool,
) {
    if add {
        if !list.contains(&item) {
            list.extend(std::iter::once(item));
        }
    } else {
        list.keep(|x| *x != item);
    }
}

/// `retain` for both `Vec` and `SmallVec`.
trait Retain<T> {
    fn keep(&mut self, f: impl FnMut(&T) -> bool);
}

impl<T> Retain<T> for Vec<T> {
    fn keep(&mut self, mut f: impl FnMut(&T) -> bool) {
        self.retain(|x| f(x));
    }
}

impl<T, const N: usize> Retain<T> for smallvec::SmallVec<[T; N]> {
    fn keep(&mut self, mut f: impl FnMut(&T) -> bool) {
        self.retain(|x| f(x));
    }
}

impl Engine {
    /// Re-indexes the tenant's assignments after those to `changed`
    /// targets changed: the lists by target, and the reach of every group
    /// a changed group is part of.
    fn reindex_assignments(&mut self, changed: &[Target]) {
        let idx = Arc::make_mut(&mut self.idx);
        Index::rebuild_assignments(idx, &self.tenant);
        let mut groups = Vec::new();
        for target in changed {
            if let Target::Group(g) = target {
                groups.extend(Index::descendants(&self.tenant, *g, &mut self.walk.marks));
            }
        }
        groups.sort_unstable();
        groups.dedup();
        idx.refresh_reach(&self.tenant, &groups, &mut self.walk);
    }
}

impl Index {
    /// Re-indexes the assignments by target (not the reaches).
    fn rebuild_assignments(idx: &mut Index, t: &Tenant) {
        idx.by_group.iter_mut().for_each(Vec::clear);
        idx.all_users.clear();
        idx.all_devices.clear();
        for (i, a) in t.assignments.iter().enumerate() {
            let id = crate::model::AssignmentId(u32::try_from(i).unwrap_or(u32::MAX));
            match &a.target {
                Target::AllUsers => idx.all_users.push(id),
                Target::AllDevices => idx.all_devices.push(id),
                Target::Group(g) => {
                    if let Some(list) = idx.by_group.get_mut(g.index()) {
                        list.push(id);
                    }
                }
                Target::MissingGroup(_) => {}
            }
        }
    }
}

/// Convenience: the full plan for a tenant at an instant.
pub fn plan(tenant: Tenant, at: DateTime<Utc>) -> Plan {
    Engine::new(tenant, at).plan()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Rng, Shape, generate};

    /// Reaches are patched after nesting and assignment changes, not
    /// rebuilt: after each change they must equal those of an index built
    /// anew from the changed tenant.
    #[test]
    fn reaches_patched_after_changes_equal_reaches_built_anew() {
        let shape = Shape::scaled(3_000);
        let mut engine = Engine::new(generate(&shape, 5), shape.around);
        let mut rng = Rng::new(9);
        let groups = engine.tenant().groups.len();
        let profiles = engine.tenant().profiles.len();
        let group = |rng: &mut Rng| GroupId(u32::try_from(rng.below(groups)).unwrap_or(0));
        for step in 0..300 {
            let g = group(&mut rng);
            let change = match rng.below(4) {
                0 => Change::AddMember {
                    group: g,
                    member: Member::Group(group(&mut rng)),
                },
                1 => match engine.tenant().groups[g.index()].subgroups.first() {
                    Some(&child) => Change::RemoveMember {
                        group: g,
                        member: Member::Group(child),
                    },
                    None => continue,
                },
                2 => Change::Assign(Assignment {
                    profile: ProfileId(u32::try_from(rng.below(profiles)).unwrap_or(0)),
                    target: Target::Group(g),
                    intent: if rng.chance(0.3) {
                        Intent::Exclude
                    } else {
                        Intent::Include
                    },
                }),
                _ => match engine.tenant().assignments.get(rng.below(100)) {
                    Some(a) => Change::Unassign(a.clone()),
                    None => continue,
                },
            };
            engine.apply(change).expect("valid change");
            let built = Index::build(engine.tenant());
            assert!(engine.idx.reach == built.reach, "reaches after step {step}");
            assert_eq!(engine.idx.all_users_reach, built.all_users_reach);
            assert_eq!(engine.idx.all_devices_reach, built.all_devices_reach);
            assert_eq!(engine.idx.checks, built.checks);
        }
    }
}

//! What a tenant holds, listed and shown the way an admin asks: profiles
//! with their apps, devices, assignments and versions; apps; devices;
//! users; groups as a tree; and the inventory exported in the import form.

use chrono::{DateTime, Utc};
use provkit_policy::{DeviceId, Engine, GroupId, GroupKind, Intent, ProfileId, Target, Tenant};
use provkit_store::{Inventory, OutboxEntry, ProfileLabel, ProfileRecord, Store};
use serde::Serialize;

use crate::ServiceError;

/// One profile, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileSummary {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// Kind (`development`, `adhoc`, `enterprise`, `appstore`, ...).
    pub kind: String,
    /// Team.
    pub team: String,
    /// The App ID pattern.
    pub app_id: String,
    /// ExpirationDate.
    pub expires: DateTime<Utc>,
    /// Whole days left at the instant.
    pub days_left: i64,
    /// Apps linked to it, as `bundle-id version`.
    pub apps: Vec<String>,
    /// Devices that should hold it at the instant.
    pub devices: usize,
    /// Included targets.
    pub include: Vec<String>,
    /// Excluded targets.
    pub exclude: Vec<String>,
    /// The profile that renewed it.
    pub successor: Option<String>,
    /// Deleted.
    pub retired: bool,
    /// The admin's name and description, when given (see
    /// [`label_summaries`]).
    #[serde(skip_serializing_if = "ProfileLabel::is_empty")]
    pub label: ProfileLabel,
}

/// Sets each summary's [`ProfileSummary::label`] from the stored records
/// (the newest version of each UUID, as [`Store::profiles`] lists them);
/// a profile without a label there gets none, so summaries can be
/// labelled again after a relabel.
pub fn label_summaries(list: &mut [ProfileSummary], records: &[ProfileRecord]) {
    let labels: std::collections::HashMap<&str, &ProfileLabel> = records
        .iter()
        .filter(|r| !r.label.is_empty())
        .map(|r| (r.uuid.as_str(), &r.label))
        .collect();
    for s in list {
        s.label = labels
            .get(s.uuid.as_str())
            .map(|l| (*l).clone())
            .unwrap_or_default();
    }
}

/// One profile in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: ProfileSummary,
    /// Every stored version: (version, SHA-256 of the bytes, uploaded at).
    pub versions: Vec<(i64, String, DateTime<Utc>)>,
    /// The devices that should hold it, by UDID.
    pub device_udids: Vec<String>,
}

fn target(t: &Tenant, target: &Target) -> String {
    match target {
        Target::AllUsers => "all-users".into(),
        Target::AllDevices => "all-devices".into(),
        Target::Group(g) => t.groups[g.index()].name.clone(),
        Target::MissingGroup(n) => n.clone(),
    }
}

fn summaries(t: &Tenant, engine: &Engine, at: DateTime<Utc>) -> Vec<ProfileSummary> {
    let mut holders = vec![0usize; t.profiles.len()];
    for d in 0..t.devices.len() {
        for p in engine.desired(DeviceId(u32::try_from(d).unwrap_or(u32::MAX))) {
            holders[p.index()] += 1;
        }
    }
    let mut apps = vec![Vec::new(); t.profiles.len()];
    for a in &t.apps {
        if let Some(p) = a.profile {
            apps[p.index()].push(format!("{} {}", a.bundle_id, a.version));
        }
    }
    let mut include = vec![Vec::new(); t.profiles.len()];
    let mut exclude = vec![Vec::new(); t.profiles.len()];
    for a in &t.assignments {
        let list = match a.intent {
            Intent::Include => &mut include,
            Intent::Exclude => &mut exclude,
        };
        list[a.profile.index()].push(target(t, &a.target));
    }
    t.profiles
        .iter()
        .enumerate()
        .map(|(i, p)| ProfileSummary {
            uuid: p.uuid.clone(),
            name: p.name.clone(),
            kind: p.kind.as_str().to_owned(),
            team: p.team.clone(),
            app_id: p.app_id.clone(),
            expires: p.expires,
            days_left: provkit_profile::days_left(p.expires, at),
            apps: std::mem::take(&mut apps[i]),
            devices: holders[i],
            include: std::mem::take(&mut include[i]),
            exclude: std::mem::take(&mut exclude[i]),
            successor: p.superseded_by.map(|s| t.profiles[s.index()].uuid.clone()),
            retired: p.retired,
            label: ProfileLabel::default(),
        })
        .collect()
}

/// Every profile (latest versions), soonest expiry first.
///
/// # Errors
/// Store failures.
pub fn profiles(
    store: &mut dyn Store,
    at: DateTime<Utc>,
) -> Result<Vec<ProfileSummary>, ServiceError> {
    let mut list = profiles_with(&Engine::new(store.load_tenant()?, at));
    label_summaries(&mut list, &store.profiles()?);
    Ok(list)
}

/// Every profile summarised over an engine already built, in the tenant's
/// order (the summary of profile `i` at index `i`).
pub fn summaries_of(engine: &Engine) -> Vec<ProfileSummary> {
    summaries(engine.tenant(), engine, engine.at())
}

/// Sets every summary's days left as of `at`: the one part of a summary
/// that moves with the clock (an engine moved to `at` with
/// [`Engine::advance`] keeps every other part).
pub fn retime_summaries(list: &mut [ProfileSummary], at: DateTime<Utc>) {
    for s in list {
        s.days_left = provkit_profile::days_left(s.expires, at);
    }
}

/// [`profiles`] over an engine already built (a server's snapshot).
pub fn profiles_with(engine: &Engine) -> Vec<ProfileSummary> {
    let mut list = summaries(engine.tenant(), engine, engine.at());
    list.sort_by(|a, b| a.expires.cmp(&b.expires).then(a.uuid.cmp(&b.uuid)));
    list
}

/// One profile, by UUID or unique prefix, with its versions and devices.
///
/// # Errors
/// As [`crate::names::profile`]; store failures.
pub fn profile(
    store: &mut dyn Store,
    given: &str,
    at: DateTime<Utc>,
) -> Result<ProfileDetail, ServiceError> {
    profile_with(&Engine::new(store.load_tenant()?, at), store, given)
}

/// [`profile`] over an engine already built (a server's snapshot); the
/// versions come from the store.
///
/// # Errors
/// As [`profile`].
pub fn profile_with(
    engine: &Engine,
    store: &mut dyn Store,
    given: &str,
) -> Result<ProfileDetail, ServiceError> {
    let (t, at) = (engine.tenant(), engine.at());
    let id = crate::names::profile(t, given)?;
    // One pass over the devices: the profile's holders.
    let device_udids: Vec<String> = (0..t.devices.len())
        .filter(|d| {
            engine
                .desired(DeviceId(u32::try_from(*d).unwrap_or(u32::MAX)))
                .contains(&id)
        })
        .map(|d| t.devices[d].udid.as_str().to_owned())
        .collect();
    let p = &t.profiles[id.index()];
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    for a in t.assignments.iter().filter(|a| a.profile == id) {
        match a.intent {
            Intent::Include => include.push(target(t, &a.target)),
            Intent::Exclude => exclude.push(target(t, &a.target)),
        }
    }
    let summary = ProfileSummary {
        uuid: p.uuid.clone(),
        name: p.name.clone(),
        kind: p.kind.as_str().to_owned(),
        team: p.team.clone(),
        app_id: p.app_id.clone(),
        expires: p.expires,
        days_left: provkit_profile::days_left(p.expires, at),
        apps: t
            .apps
            .iter()
            .filter(|a| a.profile == Some(id))
            .map(|a| format!("{} {}", a.bundle_id, a.version))
            .collect(),
        devices: device_udids.len(),
        include,
        exclude,
        successor: p.superseded_by.map(|s| t.profiles[s.index()].uuid.clone()),
        retired: p.retired,
        label: ProfileLabel::default(),
    };
    let stored = store.profile_versions(&summary.uuid)?;
    let mut summary = summary;
    if let Some(newest) = stored.iter().max_by_key(|v| v.version) {
        summary.label = newest.label.clone();
    }
    let versions = stored
        .into_iter()
        .map(|v| (v.version, v.sha256, v.uploaded_at))
        .collect();
    Ok(ProfileDetail {
        summary,
        versions,
        device_udids,
    })
}

/// One group and its nested groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupNode {
    /// Name.
    pub name: String,
    /// `user` or `device`.
    pub kind: GroupKind,
    /// Direct members: user names or UDIDs.
    pub members: Vec<String>,
    /// Nested groups.
    pub subgroups: Vec<GroupNode>,
    /// Already shown elsewhere in the forest (nested twice, or in a cycle):
    /// named here, not expanded again.
    pub repeated: bool,
}

/// The groups as a forest: every group no other group contains is a root
/// (a group only inside a cycle becomes a root too).
///
/// # Errors
/// Store failures.
pub fn group_tree(store: &mut dyn Store) -> Result<Vec<GroupNode>, ServiceError> {
    Ok(group_tree_of(&store.load_tenant()?))
}

/// [`group_tree`] over a tenant already loaded (a server's snapshot).
pub fn group_tree_of(t: &Tenant) -> Vec<GroupNode> {
    let contained = contained_groups(t);
    let mut seen = vec![false; t.groups.len()];
    let mut roots = Vec::new();
    let ids = (0..t.groups.len()).map(|i| GroupId(u32::try_from(i).unwrap_or(u32::MAX)));
    // Roots first (in no other group), then whatever only a cycle reaches.
    for g in ids.clone().filter(|g| !contained[g.index()]) {
        roots.push(node(t, g, &mut seen));
    }
    for g in ids {
        if !seen[g.index()] {
            roots.push(node(t, g, &mut seen));
        }
    }
    roots
}

/// Which groups some other group contains.
fn contained_groups(t: &Tenant) -> Vec<bool> {
    let mut contained = vec![false; t.groups.len()];
    for g in &t.groups {
        for s in &g.subgroups {
            contained[s.index()] = true;
        }
    }
    contained
}

/// One line of [`group_outline`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupLine {
    /// Nesting depth (0 for a root).
    pub depth: usize,
    /// The group's name.
    pub name: String,
    /// Users or devices.
    pub kind: GroupKind,
    /// How many direct members it has.
    pub members: usize,
    /// Already shown above (nested twice, or in a cycle): not expanded again.
    pub repeated: bool,
}

/// The forest of [`group_tree_of`] as lines in display order, with member
/// counts instead of member names: what a page of a million-device tenant
/// can afford. Built without recursion.
pub fn group_outline(t: &Tenant) -> Vec<GroupLine> {
    let contained = contained_groups(t);
    let mut seen = vec![false; t.groups.len()];
    let mut lines = Vec::new();
    let ids = (0..t.groups.len()).map(|i| GroupId(u32::try_from(i).unwrap_or(u32::MAX)));
    let roots: Vec<GroupId> = ids
        .clone()
        .filter(|g| !contained[g.index()])
        .chain(ids)
        .collect();
    for root in roots {
        if seen[root.index()] {
            continue;
        }
        seen[root.index()] = true;
        let mut stack = vec![(root, 0usize, false)];
        while let Some((g, depth, repeated)) = stack.pop() {
            let grp = &t.groups[g.index()];
            lines.push(GroupLine {
                depth,
                name: grp.name.clone(),
                kind: grp.kind,
                members: grp.users.len() + grp.devices.len(),
                repeated,
            });
            if repeated {
                continue;
            }
            // Pushed in reverse, so the first subgroup is shown first.
            for s in grp.subgroups.iter().rev() {
                let again = seen[s.index()];
                seen[s.index()] = true;
                stack.push((*s, depth + 1, again));
            }
        }
    }
    lines
}

/// Builds the tree below `g` without recursion depth beyond the group
/// count: each group is expanded once, later meetings are marked.
fn node(t: &Tenant, g: GroupId, seen: &mut [bool]) -> GroupNode {
    let leaf = |g: GroupId, repeated: bool| {
        let grp = &t.groups[g.index()];
        GroupNode {
            name: grp.name.clone(),
            kind: grp.kind,
            members: grp
                .users
                .iter()
                .map(|u| t.users[u.index()].name.as_str().to_owned())
                .chain(
                    grp.devices
                        .iter()
                        .map(|d| t.devices[d.index()].udid.as_str().to_owned()),
                )
                .collect(),
            subgroups: Vec::new(),
            repeated,
        }
    };
    // Iterative depth-first build: (group, index of its node's parent path).
    let mut root = leaf(g, false);
    seen[g.index()] = true;
    let mut stack: Vec<(GroupId, Vec<usize>)> = vec![(g, Vec::new())];
    while let Some((cur, path)) = stack.pop() {
        let subs = t.groups[cur.index()].subgroups.clone();
        let mut at = &mut root;
        for &k in &path {
            at = &mut at.subgroups[k];
        }
        for s in subs {
            let again = seen[s.index()];
            at.subgroups.push(leaf(s, again));
            if !again {
                seen[s.index()] = true;
                let mut p = path.clone();
                p.push(at.subgroups.len() - 1);
                stack.push((s, p));
            }
        }
    }
    root
}

/// The inventory in the import form, as stored (users, devices with every
/// installed app and report, groups with members and subgroups): importing
/// it into an empty tenant gives the same inventory.
///
/// # Errors
/// Store failures.
pub fn export_inventory(store: &mut dyn Store) -> Result<Inventory, ServiceError> {
    Ok(store.inventory()?)
}

/// Where one device stands with one profile, as Workspace ONE names the
/// states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeviceState {
    /// Desired, no command queued yet.
    PendingInstall,
    /// The install command is queued or was sent, no answer yet (or the
    /// device said NotNow and it will be sent again).
    Sent,
    /// The device reports holding it.
    Installed,
    /// The device answered the install with an error.
    Failed,
    /// Held but no longer desired: a remove command is due or on its way.
    PendingRemoval,
    /// The device acknowledged its removal.
    Removed,
}

/// One device's state for a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeviceStatus {
    /// The device.
    pub udid: String,
    /// Its state.
    pub state: DeviceState,
    /// Whether the plan wants the device to hold the profile.
    pub desired: bool,
    /// The device's error chain, when it failed.
    pub error_chain: Option<String>,
    /// When the last command for it changed.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Every device that should hold the profile, holds it, or has a command
/// about it, with its state at `at`, by UDID.
///
/// # Errors
/// As [`crate::names::profile`]; store failures.
pub fn device_status(
    store: &mut dyn Store,
    given: &str,
    at: DateTime<Utc>,
) -> Result<Vec<DeviceStatus>, ServiceError> {
    device_status_with(&Engine::new(store.load_tenant()?, at), store, given)
}

/// [`device_status`] over an engine already built (a server's snapshot);
/// the commands come from the store.
///
/// # Errors
/// As [`device_status`].
pub fn device_status_with(
    engine: &Engine,
    store: &mut dyn Store,
    given: &str,
) -> Result<Vec<DeviceStatus>, ServiceError> {
    let t = engine.tenant();
    let id = crate::names::profile(t, given)?;
    let uuid = &t.profiles[id.index()].uuid;
    let keys = std::borrow::Cow::Owned(TenantKeys::new(engine));
    let index = CommandIndex::read_where(keys, store, |row| {
        row.profile_uuid.eq_ignore_ascii_case(uuid)
    })?;
    device_status_indexed(engine, &index, &Holders::build(engine), given)
}

/// [`device_status`] over an engine, its [`CommandIndex`] and its
/// [`Holders`], all built already (a server's snapshot): no store read,
/// and only the devices that want or hold the profile are visited; every
/// device in the tenant's order (by UDID), as one whole
/// [`device_status_page`].
///
/// # Errors
/// As [`crate::names::profile`].
pub fn device_status_indexed(
    engine: &Engine,
    index: &CommandIndex,
    holders: &Holders,
    given: &str,
) -> Result<Vec<DeviceStatus>, ServiceError> {
    Ok(device_status_page(engine, index, holders, given, 0, usize::MAX)?.items)
}

/// One page of a profile's device statuses, and the counts over all of
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StatusPage {
    /// The statuses of devices `offset..offset + limit`, in the tenant's
    /// device order.
    pub items: Vec<DeviceStatus>,
    /// How many devices want it, hold it, or have a command about it.
    pub total: usize,
    /// How many of them failed to install it.
    pub failed: usize,
}

/// The same devices and states as [`device_status_indexed`], one page at a
/// time in the tenant's device order: the profile's holders and commands
/// (both in device order) are merged and counted, and only the page's
/// devices get a status built, so a profile on a million devices costs
/// one pass over both lists, not a million statuses.
///
/// # Errors
/// As [`crate::names::profile`].
pub fn device_status_page(
    engine: &Engine,
    index: &CommandIndex,
    holders: &Holders,
    given: &str,
    offset: usize,
    limit: usize,
) -> Result<StatusPage, ServiceError> {
    let t = engine.tenant();
    let id = crate::names::profile(t, given)?;
    let uuid = &t.profiles[id.index()].uuid;
    let held = |d: DeviceId| {
        t.devices[d.index()]
            .reported
            .iter()
            .any(|r| r.uuid.to_string().eq_ignore_ascii_case(uuid))
    };
    // Both lists are in device order and each names a device once: merge
    // them, counting the union and keeping only the page's devices with
    // their command (no list of every device is made).
    let (a, b) = (holders.of(id), index.of_profile(id));
    let (mut i, mut j, mut total) = (0, 0, 0);
    let mut page: Vec<(DeviceId, Option<&CommandFact>)> =
        Vec::with_capacity(limit.min(a.len() + b.len()));
    loop {
        let (d, cmd) = match (a.get(i), b.get(j)) {
            (Some(&x), Some(f)) if x < f.device => {
                i += 1;
                (x, None)
            }
            (Some(&x), Some(f)) if x == f.device => {
                i += 1;
                j += 1;
                (x, Some(f))
            }
            (_, Some(f)) => {
                j += 1;
                (f.device, Some(f))
            }
            (Some(&x), None) => {
                i += 1;
                (x, None)
            }
            (None, None) => break,
        };
        if total >= offset && page.len() < limit {
            page.push((d, cmd));
        }
        total += 1;
    }
    let failed = b
        .iter()
        .filter(|f| f.install && f.status == provkit_store::CommandStatus::Error)
        .filter(|f| engine.desired(f.device).contains(&id) && !held(f.device))
        .count();
    let items = page
        .into_iter()
        .map(|(d, cmd)| {
            status_of(
                &t.devices[d.index()].udid,
                engine.desired(d).contains(&id),
                held(d),
                cmd,
            )
        })
        .collect();
    Ok(StatusPage {
        items,
        total,
        failed,
    })
}

/// A device's state for a profile from whether the plan wants it there,
/// whether the device reports it, and the newest command about it.
fn status_of(udid: &str, desired: bool, held: bool, cmd: Option<&CommandFact>) -> DeviceStatus {
    use provkit_store::CommandStatus as S;
    let install = cmd.is_some_and(|c| c.install);
    let state = match (desired, held, install, cmd.map(|c| c.status)) {
        (true, true, _, _) => DeviceState::Installed,
        (true, false, true, Some(S::Error)) => DeviceState::Failed,
        (true, false, true, Some(S::Planned | S::Sent | S::NotNow)) => DeviceState::Sent,
        (true, false, _, _) => DeviceState::PendingInstall,
        (false, true, _, _) => DeviceState::PendingRemoval,
        (false, false, false, Some(S::Acknowledged)) => DeviceState::Removed,
        (false, false, false, _) => DeviceState::PendingRemoval,
        (false, false, true, _) => DeviceState::Removed,
    };
    DeviceStatus {
        error_chain: cmd
            .filter(|c| c.status == S::Error)
            .and_then(|c| c.error_chain.as_deref().map(str::to_owned)),
        updated_at: cmd.map(|c| c.updated_at),
        udid: udid.to_owned(),
        state,
        desired,
    }
}

/// Per profile, the devices that should hold it or report holding it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holders(Vec<Vec<DeviceId>>);

impl Holders {
    /// Reads every device's desired and reported profiles once.
    pub fn build(engine: &Engine) -> Self {
        let t = engine.tenant();
        let by_uuid: std::collections::HashMap<u128, ProfileId> = t
            .profiles
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let id = ProfileId(u32::try_from(i).ok()?);
                Some((provkit_policy::Uuid::parse(&p.uuid)?.value(), id))
            })
            .collect();
        let mut by: Vec<Vec<DeviceId>> = vec![Vec::new(); t.profiles.len()];
        for (i, d) in t.devices.iter().enumerate() {
            let id = DeviceId(u32::try_from(i).unwrap_or(u32::MAX));
            let desired = engine.desired(id);
            for p in desired {
                by[p.index()].push(id);
            }
            for r in &d.reported {
                // Once per device, though it report the profile twice.
                if let Some(&p) = by_uuid.get(&r.uuid.value())
                    && !desired.contains(&p)
                    && by[p.index()].last() != Some(&id)
                {
                    by[p.index()].push(id);
                }
            }
        }
        Holders(by)
    }

    /// The devices that want or hold `profile`.
    pub fn of(&self, profile: ProfileId) -> &[DeviceId] {
        self.0.get(profile.index()).map_or(&[], Vec::as_slice)
    }
}

/// Devices by upper-cased UDID.
fn device_ids(t: &Tenant) -> std::collections::HashMap<String, DeviceId> {
    t.devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let id = DeviceId(u32::try_from(i).unwrap_or(u32::MAX));
            (d.udid.to_ascii_uppercase(), id)
        })
        .collect()
}

/// Profiles by upper-cased UUID.
fn profile_ids(t: &Tenant) -> std::collections::HashMap<String, ProfileId> {
    t.profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let id = ProfileId(u32::try_from(i).unwrap_or(u32::MAX));
            (p.uuid.to_ascii_uppercase(), id)
        })
        .collect()
}

/// The newest command for one device and one profile, compact.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandFact {
    /// The device.
    pub device: DeviceId,
    /// The profile.
    pub profile: ProfileId,
    /// `InstallProvisioningProfile` (else a removal or a list).
    pub install: bool,
    /// Where it is.
    pub status: provkit_store::CommandStatus,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The device's error chain, when it failed.
    pub error_chain: Option<Box<str>>,
}

/// The newest command per device and profile, as rows come.
struct Newest<'k> {
    keys: std::borrow::Cow<'k, TenantKeys>,
    facts: std::collections::HashMap<(DeviceId, ProfileId), CommandFact, IdHash>,
    /// Room for a key that must be upper-cased first.
    upper: String,
}

impl<'k> Newest<'k> {
    fn new(keys: std::borrow::Cow<'k, TenantKeys>) -> Self {
        Newest {
            keys,
            facts: std::collections::HashMap::default(),
            upper: String::new(),
        }
    }

    /// The index over what was kept.
    fn into_index(self) -> CommandIndex {
        CommandIndex::of_facts(self.facts.into_values())
    }

    /// Keeps `row` when it is the newest for its device and profile, both
    /// of the tenant (others are another organization group's).
    fn add(&mut self, row: provkit_store::CommandRow<'_>) {
        let device = lookup(&self.keys.devices, &row.udid, &mut self.upper);
        let profile = lookup(&self.keys.profiles, &row.profile_uuid, &mut self.upper);
        let (Some(device), Some(profile)) = (device, profile) else {
            return;
        };
        let install = row.request_type == "InstallProvisioningProfile";
        // The newest wins; two commands changed at the same instant are
        // ordered by what they are, so the answer does not depend on the
        // order the store hands rows in.
        let rank =
            |updated_at, install, status, chain| (updated_at, install, status_rank(status), chain);
        if self.facts.get(&(device, profile)).is_some_and(|f| {
            rank(f.updated_at, f.install, f.status, f.error_chain.as_deref())
                >= rank(
                    row.updated_at,
                    install,
                    row.status,
                    row.error_chain.as_deref(),
                )
        }) {
            return;
        }
        self.facts.insert(
            (device, profile),
            CommandFact {
                device,
                profile,
                install,
                status: row.status,
                updated_at: row.updated_at,
                error_chain: row.error_chain.map(|c| c.into()),
            },
        );
    }
}

/// Hashing for maps keyed by the engine's dense ids (never by outside
/// input, so the default hasher's defence against chosen keys is not
/// needed): one multiply per id (reading a 9.8M-command index took 16.9 s
/// with it, 18.3 s with the default).
type IdHash = std::hash::BuildHasherDefault<IdHasher>;

/// See [`IdHash`].
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(32) ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        // The high bits are the well-mixed ones; the table uses the low.
        self.0 ^ (self.0 >> 32)
    }
}

/// A command status's place among commands changed at the same instant
/// (only to make the choice independent of the rows' order).
fn status_rank(status: provkit_store::CommandStatus) -> u8 {
    use provkit_store::CommandStatus as S;
    match status {
        S::Planned => 0,
        S::Sent => 1,
        S::NotNow => 2,
        S::Error => 3,
        S::Acknowledged => 4,
    }
}

/// A tenant's devices by upper-cased UDID and profiles by upper-cased
/// UUID. Reading the outbox over a large tenant needs them; made once per
/// engine and shared by every reading ([`CommandIndex::read_keyed`]), a
/// small outbox is read in time proportional to its commands, not to the
/// tenant's devices.
#[derive(Debug, Clone, Default)]
pub struct TenantKeys {
    devices: std::collections::HashMap<String, DeviceId>,
    profiles: std::collections::HashMap<String, ProfileId>,
}

impl TenantKeys {
    /// The keys of `engine`'s tenant.
    pub fn new(engine: &Engine) -> Self {
        let t = engine.tenant();
        TenantKeys {
            devices: device_ids(t),
            profiles: profile_ids(t),
        }
    }

    /// The device with this UDID, in any case.
    pub fn device(&self, udid: &str) -> Option<DeviceId> {
        lookup(&self.devices, udid, &mut String::new())
    }

    /// The profile with this UUID, in any case.
    pub fn profile(&self, uuid: &str) -> Option<ProfileId> {
        lookup(&self.profiles, uuid, &mut String::new())
    }
}

/// `key` looked up upper-cased, copied only when it has lower-case letters.
fn lookup<T: Copy>(
    map: &std::collections::HashMap<String, T>,
    key: &str,
    upper: &mut String,
) -> Option<T> {
    if key.bytes().any(|b| b.is_ascii_lowercase()) {
        upper.clear();
        upper.push_str(key);
        upper.make_ascii_uppercase();
        map.get(upper.as_str()).copied()
    } else {
        map.get(key).copied()
    }
}

/// The outbox as pages read it: the newest command per device and profile
/// of an engine's tenant, found by device or by profile. Commands for
/// devices or profiles the tenant does not hold (another organization
/// group's) are left out.
#[derive(Debug, Clone, Default)]
pub struct CommandIndex {
    /// Ordered by profile, then device: a profile's facts are one run,
    /// found by binary search and read in order (a page over a profile
    /// held by a million devices walks them without a jump).
    facts: Vec<CommandFact>,
    /// Devices whose newest install of some profile failed.
    failed: usize,
    by_device: std::collections::HashMap<DeviceId, Vec<u32>, IdHash>,
}

impl CommandIndex {
    /// Indexes `entries` over `engine`'s tenant, keeping the newest command
    /// per device and profile.
    pub fn build(engine: &Engine, entries: impl IntoIterator<Item = OutboxEntry>) -> Self {
        let mut newest = Newest::new(std::borrow::Cow::Owned(TenantKeys::new(engine)));
        for e in entries {
            newest.add(provkit_store::CommandRow {
                udid: e.udid.into(),
                request_type: e.request_type.into(),
                profile_uuid: e.profile_uuid.into(),
                status: e.status,
                error_chain: e.error_chain.map(Into::into),
                updated_at: e.updated_at,
            });
        }
        newest.into_index()
    }

    /// [`CommandIndex::build`] over the store's outbox, read one row at a
    /// time ([`Store::each_command`]): the outbox is never held whole, and
    /// nothing of a row is copied but its error chain.
    ///
    /// # Errors
    /// Store failures.
    pub fn read(engine: &Engine, store: &mut dyn Store) -> Result<Self, ServiceError> {
        Self::read_keyed(&TenantKeys::new(engine), store)
    }

    /// [`CommandIndex::read`] with the tenant's keys made already (a
    /// server's snapshot keeps them): no work per device of the tenant.
    ///
    /// # Errors
    /// Store failures.
    pub fn read_keyed(keys: &TenantKeys, store: &mut dyn Store) -> Result<Self, ServiceError> {
        Self::read_where(std::borrow::Cow::Borrowed(keys), store, |_| true)
    }

    /// [`CommandIndex::read`] of the rows `keep` accepts.
    fn read_where(
        keys: std::borrow::Cow<'_, TenantKeys>,
        store: &mut dyn Store,
        keep: impl Fn(&provkit_store::CommandRow<'_>) -> bool,
    ) -> Result<Self, ServiceError> {
        let mut newest = Newest::new(keys);
        store.each_command(&mut |row| {
            if keep(&row) {
                newest.add(row);
            }
        })?;
        Ok(newest.into_index())
    }

    /// The same commands over another engine's tenant (the next snapshot
    /// after a change): each fact moved to the device and profile of the
    /// same UDID and UUID there, dropped when `new` lacks either. Cheaper
    /// than reading the outbox again; exactly as fresh as `self`.
    pub fn remap(&self, old: &Engine, new: &Engine) -> Self {
        self.remap_keyed(old, &TenantKeys::new(new))
    }

    /// [`CommandIndex::remap`] with the new tenant's keys made already.
    pub fn remap_keyed(&self, old: &Engine, new: &TenantKeys) -> Self {
        let o = old.tenant();
        let device_map: Vec<Option<DeviceId>> =
            o.devices.iter().map(|d| new.device(&d.udid)).collect();
        let profile_map: Vec<Option<ProfileId>> =
            o.profiles.iter().map(|p| new.profile(&p.uuid)).collect();
        let facts = self.facts.iter().filter_map(|f| {
            let device = (*device_map.get(f.device.index())?)?;
            let profile = (*profile_map.get(f.profile.index())?)?;
            Some(CommandFact {
                device,
                profile,
                ..f.clone()
            })
        });
        Self::of_facts(facts)
    }

    /// The index over facts that are each the newest for their device and
    /// profile.
    fn of_facts(facts: impl Iterator<Item = CommandFact>) -> Self {
        let mut index = CommandIndex {
            facts: facts.collect(),
            ..CommandIndex::default()
        };
        // By profile, then device: a page merges a profile's run with its
        // holders (in device order too) without sorting.
        index.facts.sort_unstable_by_key(|f| (f.profile, f.device));
        for (at, f) in index.facts.iter().enumerate() {
            let n = u32::try_from(at).unwrap_or(u32::MAX);
            index.by_device.entry(f.device).or_default().push(n);
        }
        index.failed = index
            .by_device
            .values()
            .filter(|ns| {
                ns.iter().any(|&n| {
                    let f = &index.facts[n as usize];
                    f.install && f.status == provkit_store::CommandStatus::Error
                })
            })
            .count();
        index
    }

    /// The newest command per profile for `device`.
    pub fn of_device(&self, device: DeviceId) -> impl Iterator<Item = &CommandFact> {
        self.by_device
            .get(&device)
            .into_iter()
            .flatten()
            .map(|&n| &self.facts[n as usize])
    }

    /// The newest command per device for `profile`, in device order.
    pub fn of_profile(&self, profile: ProfileId) -> &[CommandFact] {
        let start = self.facts.partition_point(|f| f.profile < profile);
        let end = start + self.facts[start..].partition_point(|f| f.profile == profile);
        &self.facts[start..end]
    }

    /// How many devices' newest install of some profile failed.
    pub fn failed_devices(&self) -> usize {
        self.failed
    }

    /// How many (device, profile) pairs it holds.
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }
}

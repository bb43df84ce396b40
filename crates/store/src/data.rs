//! The store's contents as plain Rust collections: what the in-memory backend
//! keeps, what the SQL backends load, and where the engine's snapshot is built.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use provkit_policy::{
    App, AppId, Assignment, Config, Device, DeviceId, Group, GroupId, GroupKind, Intent, ProfileId,
    Reported, Target, Tenant, User, UserId, Uuid,
};

use crate::error::StoreError;
use crate::records::{
    AppRecord, AssignmentRecord, DeviceRecord, GroupRecord, Inventory, ProfileRecord, TargetName,
};

/// Everything the store holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Data {
    /// Versions by upper-cased UUID, oldest first (without their bytes).
    pub(crate) profiles: BTreeMap<String, Vec<ProfileRecord>>,
    pub(crate) apps: BTreeMap<(String, String), AppRecord>,
    pub(crate) users: BTreeSet<String>,
    pub(crate) devices: BTreeMap<String, DeviceRecord>,
    pub(crate) groups: BTreeMap<String, GroupRecord>,
    pub(crate) assignments: BTreeSet<AssignmentRecord>,
    /// The tenant's notice stages, when set (else the defaults).
    pub(crate) config: Option<Config>,
}

fn id<T>(i: usize, f: fn(u32) -> T) -> T {
    f(u32::try_from(i).unwrap_or(u32::MAX))
}

/// Platforms a device may have.
const PLATFORMS: &[&str] = &[
    "iOS", "iPadOS", "tvOS", "visionOS", "xrOS", "watchOS", "macOS",
];

/// Names an assignment target reserves.
const RESERVED: &[&str] = &["all-users", "all-devices"];

/// Each user, device and group once, none empty, no group under a reserved
/// name, every platform known.
fn check_names(inv: &Inventory) -> Result<(), StoreError> {
    let invalid = |m: String| Err(StoreError::Invalid(m));
    let mut seen = BTreeSet::new();
    for (i, u) in inv.users.iter().enumerate() {
        if u.trim().is_empty() {
            return invalid(format!("users[{i}]: empty user name"));
        }
        if !seen.insert(u.as_str()) {
            return invalid(format!("users[{i}]: user {u:?} is listed twice"));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, d) in inv.devices.iter().enumerate() {
        if d.udid.trim().is_empty() {
            return invalid(format!("devices[{i}]: empty UDID"));
        }
        if !seen.insert(d.udid.as_str()) {
            return invalid(format!("devices[{i}]: device {:?} is listed twice", d.udid));
        }
        if !PLATFORMS.contains(&d.platform.as_str()) {
            return invalid(format!(
                "devices[{i}]: device {:?} has unknown platform {:?} (known: {})",
                d.udid,
                d.platform,
                PLATFORMS.join(", ")
            ));
        }
    }
    let mut seen: BTreeMap<&str, GroupKind> = BTreeMap::new();
    for (i, g) in inv.groups.iter().enumerate() {
        if g.name.trim().is_empty() {
            return invalid(format!("groups[{i}]: empty group name"));
        }
        if RESERVED.contains(&g.name.as_str()) {
            return invalid(format!(
                "groups[{i}]: {:?} is reserved for assignments to everyone",
                g.name
            ));
        }
        if let Some(k) = seen.insert(g.name.as_str(), g.kind) {
            return invalid(if k == g.kind {
                format!("groups[{i}]: group {:?} is defined twice", g.name)
            } else {
                format!(
                    "groups[{i}]: group {:?} is defined twice with different kinds ({}, {})",
                    g.name,
                    crate::records::kind_word(k),
                    crate::records::kind_word(g.kind)
                )
            });
        }
    }
    Ok(())
}

/// Checks that an inventory refers only to names it or the store defines.
/// An enrollment id travels in MDM servers' URL paths and comma-separated
/// id lists: 1 to 255 printable ASCII characters, none of them a space,
/// `,`, `/`, `?`, `#` or `%`.
fn check_enrollment_id(udid: &str, id: &str) -> Result<(), StoreError> {
    let bad = id
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, ',' | '/' | '?' | '#' | '%'));
    if id.is_empty() || id.len() > 255 || bad.is_some() {
        return Err(StoreError::Invalid(format!(
            "device {udid}: enrollment id {id:?} must be 1 to 255 printable ASCII characters without spaces, ',', '/', '?', '#' or '%'"
        )));
    }
    Ok(())
}

/// A user's email address: `local@domain`, at most 254 characters, one
/// `@`, a dotted domain, and nothing a mail header or an address list
/// would read as a separator (spaces, control characters, `<>()[],;:"\\`).
pub(crate) fn check_email(user: &str, address: &str) -> Result<(), StoreError> {
    let bad = |why: &str| {
        Err(StoreError::Invalid(format!(
            "emails[{user:?}]: {address:?} is not an email address ({why})"
        )))
    };
    if address.len() > 254 {
        return bad("longer than 254 characters");
    }
    if let Some(c) = address
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(*c))
    {
        return bad(&format!("it holds {c:?}"));
    }
    let Some((local, domain)) = address.split_once('@') else {
        return bad("no @");
    };
    if local.is_empty() || domain.contains('@') {
        return bad("give one name before a single @");
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return bad("the domain needs dotted, non-empty labels");
    }
    Ok(())
}

pub(crate) fn validate_inventory(
    inv: &Inventory,
    known_users: &dyn Fn(&str) -> bool,
    known_devices: &dyn Fn(&str) -> bool,
    known_groups: &dyn Fn(&str) -> Option<GroupKind>,
) -> Result<(), StoreError> {
    check_names(inv)?;
    let users: BTreeSet<&str> = inv.users.iter().map(String::as_str).collect();
    let devices: BTreeSet<&str> = inv.devices.iter().map(|d| d.udid.as_str()).collect();
    let groups: BTreeMap<&str, GroupKind> = inv
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.kind))
        .collect();
    for (u, address) in &inv.emails {
        if !users.contains(u.as_str()) && !known_users(u) {
            return Err(StoreError::UnknownReference {
                kind: "user",
                name: u.clone(),
                context: "emails".into(),
            });
        }
        if !address.is_empty() {
            check_email(u, address)?;
        }
    }
    let mut enrollments: BTreeMap<&str, &str> = BTreeMap::new();
    for d in &inv.devices {
        if let Some(e) = &d.enrollment_id {
            check_enrollment_id(&d.udid, e)?;
            if let Some(other) = enrollments.insert(e.as_str(), d.udid.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "devices {other} and {} have the same enrollment id {e:?}",
                    d.udid
                )));
            }
        }
        if let Some(u) = &d.user
            && !users.contains(u.as_str())
            && !known_users(u)
        {
            return Err(StoreError::UnknownReference {
                kind: "user",
                name: u.clone(),
                context: format!("device {}", d.udid),
            });
        }
        for r in &d.reported {
            if Uuid::parse(&r.uuid).is_none() {
                return Err(StoreError::Invalid(format!(
                    "device {}: reported UUID {:?} is not a UUID",
                    d.udid, r.uuid
                )));
            }
        }
    }
    for g in &inv.groups {
        for m in &g.members {
            let ok = match g.kind {
                GroupKind::User => users.contains(m.as_str()) || known_users(m),
                GroupKind::Device => devices.contains(m.as_str()) || known_devices(m),
            };
            if !ok {
                let kind = if g.kind == GroupKind::User {
                    "user"
                } else {
                    "device"
                };
                return Err(StoreError::UnknownReference {
                    kind,
                    name: m.clone(),
                    context: format!("group {}", g.name),
                });
            }
        }
        for s in &g.subgroups {
            let kind = groups.get(s.as_str()).copied().or_else(|| known_groups(s));
            match kind {
                None => {
                    return Err(StoreError::UnknownReference {
                        kind: "group",
                        name: s.clone(),
                        context: format!("group {}", g.name),
                    });
                }
                Some(k) if k != g.kind => {
                    return Err(StoreError::Invalid(format!(
                        "group {} ({} group) cannot contain group {s} ({} group)",
                        g.name,
                        crate::records::kind_word(g.kind),
                        crate::records::kind_word(k)
                    )));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

impl Data {
    /// The latest version of each profile.
    pub(crate) fn latest(&self) -> impl Iterator<Item = &ProfileRecord> {
        self.profiles.values().filter_map(|v| v.last())
    }

    /// The engine's snapshot: ids follow the sorted order of UUIDs, bundle
    /// ids, names and UDIDs, so the same contents give the same tenant.
    pub(crate) fn to_tenant(&self) -> Tenant {
        let mut t = Tenant {
            config: self.config.clone().unwrap_or_default(),
            ..Tenant::default()
        };
        let mut profile_ids: BTreeMap<String, ProfileId> = BTreeMap::new();
        for rec in self.latest() {
            profile_ids.insert(
                rec.uuid.to_ascii_uppercase(),
                id(t.profiles.len(), ProfileId),
            );
            let mut f = rec.facts.clone();
            f.retired = rec.retired;
            t.profiles.push(f);
        }
        for (i, rec) in self.latest().enumerate() {
            t.profiles[i].superseded_by = rec
                .successor
                .as_ref()
                .and_then(|s| profile_ids.get(&s.to_ascii_uppercase()).copied());
        }
        let mut app_ids: HashMap<(&str, &str), AppId> = HashMap::with_capacity(self.apps.len());
        for ((bundle, version), a) in &self.apps {
            app_ids.insert((bundle.as_str(), version.as_str()), id(t.apps.len(), AppId));
            let mut cert = [0u8; 32];
            for (i, chunk) in a
                .certificate_sha256
                .as_bytes()
                .chunks(2)
                .take(32)
                .enumerate()
            {
                cert[i] = std::str::from_utf8(chunk)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .unwrap_or(0);
            }
            t.apps.push(App {
                bundle_id: a.bundle_id.clone(),
                version: a.version.clone(),
                team: a.team.clone(),
                profile: a
                    .profile_uuid
                    .as_ref()
                    .and_then(|u| profile_ids.get(&u.to_ascii_uppercase()).copied()),
                certificate: cert,
                certificate_not_after: a.certificate_not_after,
            });
        }
        let mut user_ids: HashMap<&str, UserId> = HashMap::with_capacity(self.users.len());
        for u in &self.users {
            user_ids.insert(u.as_str(), id(t.users.len(), UserId));
            t.users.push(User { name: u.into() });
        }
        let device_ids: HashMap<&str, DeviceId> = self
            .devices
            .keys()
            .enumerate()
            .map(|(i, udid)| (udid.as_str(), id(i, DeviceId)))
            .collect();
        // Devices are the bulk of a tenant: convert them on both cores.
        let devices: Vec<(&String, &DeviceRecord)> = self.devices.iter().collect();
        // One shared string per platform (a handful), not one per device;
        // looked up by hash, so a file with many distinct platforms costs
        // no more than one string each.
        let mut platforms: HashMap<&str, std::sync::Arc<str>> = HashMap::new();
        for (_, d) in &devices {
            platforms
                .entry(d.platform.as_str())
                .or_insert_with(|| d.platform.as_str().into());
        }
        let platform = |name: &str| {
            platforms
                .get(name)
                .map_or_else(|| name.into(), std::sync::Arc::clone)
        };
        t.devices = devices
            .par_iter()
            .with_min_len(4096)
            .map(|(udid, d)| Device {
                udid: provkit_policy::Udid::new(udid),
                platform: platform(&d.platform),
                user: d.user.as_deref().and_then(|u| user_ids.get(u).copied()),
                apps: d
                    .apps
                    .iter()
                    .filter_map(|a| {
                        app_ids
                            .get(&(a.bundle_id.as_str(), a.version.as_str()))
                            .copied()
                    })
                    .collect(),
                reported: d
                    .reported
                    .iter()
                    .filter_map(|r| {
                        Some(Reported {
                            uuid: Uuid::parse(&r.uuid)?,
                            expires: r.expires,
                            managed: r.managed,
                        })
                    })
                    .collect(),
            })
            .collect();
        let group_ids: BTreeMap<&str, GroupId> = self
            .groups
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), id(i, GroupId)))
            .collect();
        for g in self.groups.values() {
            t.groups.push(Group {
                name: g.name.clone(),
                kind: g.kind,
                users: if g.kind == GroupKind::User {
                    g.members
                        .iter()
                        .filter_map(|m| user_ids.get(m.as_str()).copied())
                        .collect()
                } else {
                    Vec::new()
                },
                devices: if g.kind == GroupKind::Device {
                    g.members
                        .iter()
                        .filter_map(|m| device_ids.get(m.as_str()).copied())
                        .collect()
                } else {
                    Vec::new()
                },
                subgroups: g
                    .subgroups
                    .iter()
                    .filter_map(|s| group_ids.get(s.as_str()).copied())
                    .collect(),
            });
        }
        t.assignments = resolve_assignments(&t, &self.assignments);
        t
    }
}

/// The stored assignments `records` (as [`crate::Store::assignments`]
/// reads them) resolved against `tenant` (as [`crate::Store::load_tenant`]
/// loaded it, in the same scope): the list a tenant loaded now would hold,
/// in the same order. After edits that changed only assignments, an engine
/// given this list ([`provkit_policy::Engine::set_assignments`]) plans as
/// one built from a new load.
pub fn resolve_assignments<'a>(
    tenant: &Tenant,
    records: impl IntoIterator<Item = &'a AssignmentRecord>,
) -> Vec<Assignment> {
    let profiles: std::collections::HashMap<String, ProfileId> = tenant
        .profiles
        .iter()
        .enumerate()
        .map(|(i, p)| (p.uuid.to_ascii_uppercase(), id(i, ProfileId)))
        .collect();
    let groups: std::collections::HashMap<&str, GroupId> = tenant
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.as_str(), id(i, GroupId)))
        .collect();
    records
        .into_iter()
        .filter_map(|a| {
            let target = match &a.target {
                TargetName::AllUsers => Target::AllUsers,
                TargetName::AllDevices => Target::AllDevices,
                TargetName::Group(g) => match groups.get(g.as_str()) {
                    Some(&gid) => Target::Group(gid),
                    None => Target::MissingGroup(g.clone()),
                },
            };
            Some(Assignment {
                profile: *profiles.get(&a.profile_uuid.to_ascii_uppercase())?,
                target,
                intent: if a.include {
                    Intent::Include
                } else {
                    Intent::Exclude
                },
            })
        })
        .collect()
}

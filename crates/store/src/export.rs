//! A tenant snapshot turned back into the records the store imports: how a
//! generated tenant (or another system's export) is loaded into a store.

use provkit_policy::{GroupKind, Intent, Target, Tenant};
use provkit_profile::hex;

use crate::records::{
    AppRecord, DeviceRecord, GroupRecord, InstalledApp, Inventory, ReportedProfile, TargetName,
};

/// What [`records_of`] produces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantRecords {
    /// Users, devices, groups.
    pub inventory: Inventory,
    /// Apps (their profile by UUID, certificate by fingerprint).
    pub apps: Vec<AppRecord>,
    /// Per profile UUID: include and exclude targets.
    pub assignments: Vec<(String, Vec<TargetName>, Vec<TargetName>)>,
}

/// The records that, imported with the profiles' signed bytes, give back
/// `t` (profiles themselves are stored from their bytes).
pub fn records_of(t: &Tenant) -> TenantRecords {
    let apps: Vec<AppRecord> = t
        .apps
        .iter()
        .map(|a| AppRecord {
            bundle_id: a.bundle_id.clone(),
            version: a.version.clone(),
            team: a.team.clone(),
            profile_uuid: a.profile.map(|p| t.profiles[p.index()].uuid.clone()),
            certificate_sha256: hex(&a.certificate),
            certificate_not_after: a.certificate_not_after,
            report: None,
            org_group: None,
        })
        .collect();
    let devices = t
        .devices
        .iter()
        .map(|d| DeviceRecord {
            udid: d.udid.as_str().to_owned(),
            platform: d.platform.to_string(),
            user: d.user.map(|u| t.users[u.index()].name.as_str().to_owned()),
            apps: d
                .apps
                .iter()
                .map(|a| InstalledApp {
                    bundle_id: t.apps[a.index()].bundle_id.clone(),
                    version: t.apps[a.index()].version.clone(),
                })
                .collect(),
            reported: d
                .reported
                .iter()
                .map(|r| ReportedProfile {
                    uuid: r.uuid.to_string(),
                    expires: r.expires,
                    managed: r.managed,
                })
                .collect(),
            org_group: None,
            enrollment_id: None,
        })
        .collect();
    let groups = t
        .groups
        .iter()
        .map(|g| GroupRecord {
            name: g.name.clone(),
            kind: g.kind,
            members: match g.kind {
                GroupKind::User => g
                    .users
                    .iter()
                    .map(|u| t.users[u.index()].name.as_str().to_owned())
                    .collect(),
                GroupKind::Device => g
                    .devices
                    .iter()
                    .map(|d| t.devices[d.index()].udid.as_str().to_owned())
                    .collect(),
            },
            subgroups: g
                .subgroups
                .iter()
                .map(|s| t.groups[s.index()].name.clone())
                .collect(),
            org_group: None,
        })
        .collect();
    let mut by_profile: std::collections::BTreeMap<usize, (Vec<TargetName>, Vec<TargetName>)> =
        std::collections::BTreeMap::new();
    for a in &t.assignments {
        let target = match &a.target {
            Target::AllUsers => TargetName::AllUsers,
            Target::AllDevices => TargetName::AllDevices,
            Target::Group(g) => TargetName::Group(t.groups[g.index()].name.clone()),
            // The store refuses unknown groups: a missing group cannot be imported.
            Target::MissingGroup(_) => continue,
        };
        let e = by_profile.entry(a.profile.index()).or_default();
        match a.intent {
            Intent::Include => e.0.push(target),
            Intent::Exclude => e.1.push(target),
        }
    }
    TenantRecords {
        inventory: Inventory {
            users: t.users.iter().map(|u| u.name.as_str().to_owned()).collect(),
            devices,
            groups,
            // The engine's tenant holds no addresses.
            emails: std::collections::BTreeMap::new(),
        },
        apps,
        assignments: by_profile
            .into_iter()
            .map(|(p, (i, e))| (t.profiles[p].uuid.clone(), i, e))
            .collect(),
    }
}

/// Signs every profile of a tenant (typically from
/// `provkit_policy::generate`) with the test CA, from its facts.
#[cfg(feature = "fixtures")]
pub fn sign_profiles(t: &Tenant, ca: &provkit_profile::fixtures::TestCa) -> Vec<Vec<u8>> {
    use provkit_policy::DeviceScope;
    use provkit_profile::fixtures::{CmsOptions, ProfileSpec, signed_profile};
    t.profiles
        .iter()
        .map(|f| {
            let listed = match &f.devices {
                DeviceScope::Listed(l) => Some(l.clone()),
                DeviceScope::All => None,
            };
            let spec = ProfileSpec {
                name: f.name.clone(),
                uuid: f.uuid.clone(),
                team: f.team.clone(),
                bundle_id: f
                    .app_id
                    .split_once('.')
                    .map(|(_, b)| b.to_owned())
                    .unwrap_or_default(),
                creation: f.created,
                expiration: f.expires,
                devices: listed.as_ref().map(Vec::len),
                udids: listed,
                all_devices: matches!(f.kind, provkit_profile::ProfileKind::Enterprise),
                get_task_allow: matches!(f.kind, provkit_profile::ProfileKind::Development),
                cms: CmsOptions {
                    signing_time: f.created,
                    ..CmsOptions::default()
                },
                ..ProfileSpec::default()
            };
            signed_profile(ca, &spec)
        })
        .collect()
}

/// Imports a tenant into a store in one batch: the profiles' signed bytes,
/// the inventory, the apps (signed with `developer`) and the assignments.
///
/// # Errors
/// The store's errors; nothing is written then.
pub fn import_tenant(
    store: &mut dyn crate::Store,
    t: &Tenant,
    profiles: &[Vec<u8>],
    developer: &provkit_profile::Certificate,
    actor: &crate::Actor,
) -> Result<(), crate::StoreError> {
    let mut r = records_of(t);
    for app in &mut r.apps {
        app.certificate_sha256 = hex(&developer.sha256_fingerprint());
        app.certificate_not_after = developer.not_after();
    }
    let batch = crate::ImportBatch {
        profiles: profiles.to_vec(),
        inventory: r.inventory,
        apps: r.apps,
        assignments: r.assignments,
    };
    store.import_batch(&batch, actor)
}

//! The plan: MDM commands per device, notifications, blockers and warnings.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::index::Index;
use crate::model::{
    AppId, AssignmentId, DeviceId, GroupKind, Intent, ProfileId, Target, Tenant, UserId, Uuid,
};

/// One MDM command for a device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "request_type")]
pub enum Command {
    /// InstallProvisioningProfile with the profile's signed bytes.
    InstallProvisioningProfile {
        /// The profile to send (its UUID and signed bytes come from the tenant and store).
        profile: ProfileId,
    },
    /// RemoveProvisioningProfile by UUID.
    RemoveProvisioningProfile {
        /// The UUID the device reported.
        uuid: Uuid,
    },
}

/// The commands for one device, installs before removes (make before break).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevicePlan {
    /// The device.
    pub device: DeviceId,
    /// Its UDID.
    pub udid: String,
    /// Commands in order.
    pub commands: Vec<Command>,
}

/// An admin warning stage reached by a profile in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminNotification {
    /// The profile.
    pub profile: ProfileId,
    /// Its UUID.
    pub uuid: String,
    /// The stage: the threshold in days (60, 30, 7, 0 by default).
    pub stage_days: i64,
    /// When apps under it stop launching.
    pub death: DateTime<Utc>,
    /// Whole days left at the plan's instant (negative once dead).
    pub days_left: i64,
    /// Apps linked to it.
    pub apps: Vec<AppId>,
    /// Devices that hold or should hold it.
    pub devices: usize,
}

/// A notice for a device's user: an app on the device dies soon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserNotice {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// The app.
    pub app: AppId,
    /// When it stops launching.
    pub death: DateTime<Utc>,
}

/// Why an app must be signed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResignReason {
    /// The signing certificate has expired.
    CertificateExpired,
    /// The app's (current) profile does not list the signing certificate.
    CertificateNotInProfile,
}

/// Something a plan cannot fix by sending profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Blocker {
    /// The certificate is the cause: only re-signing helps.
    ResignRequired {
        /// The app.
        app: AppId,
        /// Its profile.
        profile: Option<ProfileId>,
        /// Why.
        reason: ResignReason,
        /// Devices with the app.
        devices: usize,
    },
    /// A development or ad-hoc profile targeted at a device it does not list.
    NotProvisioned {
        /// The device.
        device: DeviceId,
        /// The profile.
        profile: ProfileId,
    },
    /// An app that no profile covers (none linked, or its pattern does not match).
    UncoveredApp {
        /// The app.
        app: AppId,
        /// Devices with the app.
        devices: usize,
    },
    /// A profile in its warning window with no successor: devices lose the app.
    ExpiringWithoutSuccessor {
        /// The profile.
        profile: ProfileId,
        /// The app that dies, if the profile has linked apps.
        app: Option<AppId>,
        /// Devices that lose it.
        devices: usize,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Something odd in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Warning {
    /// An exclusion whose kind matches no include of the profile: it has no effect.
    MixedKindExclusion {
        /// The assignment.
        assignment: AssignmentId,
    },
    /// An assignment to a group that does not exist.
    MissingGroup {
        /// The assignment.
        assignment: AssignmentId,
        /// The group name.
        name: String,
    },
}

/// The engine's output for a tenant at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The instant.
    pub at: DateTime<Utc>,
    /// Devices with commands, by device id.
    pub devices: Vec<DevicePlan>,
    /// Admin notifications, by profile.
    pub notifications: Vec<AdminNotification>,
    /// Device-user notices.
    pub user_notices: Vec<UserNotice>,
    /// Blockers.
    pub blockers: Vec<Blocker>,
    /// Warnings.
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// Total number of commands.
    pub fn command_count(&self) -> usize {
        self.devices.iter().map(|d| d.commands.len()).sum()
    }
}

/// Commands for one device, and the desired profiles it cannot take.
pub(crate) fn reconcile(
    t: &Tenant,
    idx: &Index,
    device: DeviceId,
    desired: &[ProfileId],
    at: DateTime<Utc>,
) -> (Vec<Command>, Vec<ProfileId>) {
    let d = &t.devices[device.index()];
    // What the device holds, resolved once: each known report's profile
    // with the report's place, sorted by profile.
    let mut held: smallvec::SmallVec<[(ProfileId, usize); 24]> = d
        .reported
        .iter()
        .enumerate()
        .filter_map(|(i, r)| idx.by_uuid.get(&r.uuid).map(|p| (*p, i)))
        .collect();
    held.sort_unstable();
    let reported = |p: ProfileId| held.binary_search_by(|(q, _)| q.cmp(&p)).is_ok();
    // Both lists are sorted: one walk finds, for each desired profile,
    // whether the device reports it, and marks the reports it wants.
    let mut wanted: smallvec::SmallVec<[bool; 24]> = smallvec::smallvec![false; d.reported.len()];
    // Each report's known profile, by the report's place (a report is
    // looked up once, not searched for again per report).
    let mut known_at: smallvec::SmallVec<[Option<ProfileId>; 24]> =
        smallvec::smallvec![None; d.reported.len()];
    for &(p, i) in &held {
        known_at[i] = Some(p);
    }
    let mut next = 0;
    let mut commands = Vec::new();
    let mut not_provisioned = Vec::new();
    for &p in desired {
        while held.get(next).is_some_and(|(q, _)| *q < p) {
            next += 1;
        }
        let mut is_reported = false;
        while let Some((_, i)) = held.get(next).filter(|(q, _)| *q == p) {
            wanted[*i] = true;
            is_reported = true;
            next += 1;
        }
        let check = &idx.checks[p.index()];
        if check.listed && !t.profile(p).allows_device(&d.udid) {
            not_provisioned.push(p);
            continue;
        }
        if check.expires < at || is_reported {
            continue;
        }
        commands.push(Command::InstallProvisioningProfile { profile: p });
    }
    for (i, r) in d.reported.iter().enumerate().filter(|(_, r)| r.managed) {
        if wanted[i] {
            continue;
        }
        let known = known_at[i];
        // Make before break: wait while a replacement is desired but not yet reported.
        let waiting = known.is_some_and(|k| {
            let old = t.profile(k);
            desired.iter().any(|&q| {
                let new = t.profile(q);
                new.app_id == old.app_id
                    && new.expires > r.expires
                    && new.allows_device(&d.udid)
                    && !reported(q)
            })
        });
        if !waiting {
            commands.push(Command::RemoveProvisioningProfile { uuid: r.uuid });
        }
    }
    // Installs (in desired order: by profile id) come before removes (by UUID).
    commands.sort();
    commands.dedup();
    (commands, not_provisioned)
}

/// Whole days from `at` to `t`, rounded down.
pub(crate) fn days_until(t: DateTime<Utc>, at: DateTime<Utc>) -> i64 {
    provkit_profile::days_left(t, at)
}

/// The stage for `days_left`: the smallest threshold it is within.
pub(crate) fn stage(thresholds: &[i64], days_left: i64) -> Option<i64> {
    thresholds.iter().copied().filter(|t| days_left <= *t).min()
}

/// Everything that is not per device: notifications, blockers, warnings.
pub(crate) fn globals(
    t: &Tenant,
    profile_apps: &[Vec<AppId>],
    app_devices: &[usize],
    desired_count: &[usize],
    at: DateTime<Utc>,
) -> (Vec<AdminNotification>, Vec<Blocker>, Vec<Warning>) {
    let mut notifications = Vec::new();
    let mut blockers = Vec::new();
    for (pi, f) in t.profiles.iter().enumerate() {
        let p = ProfileId(u32::try_from(pi).unwrap_or(u32::MAX));
        let apps = &profile_apps[pi];
        let devices = desired_count[pi];
        if f.retired || f.superseded_by.is_some() || (apps.is_empty() && devices == 0) {
            continue;
        }
        let death = apps
            .iter()
            .map(|a| t.app_death(*a))
            .fold(f.expires, DateTime::min);
        let days_left = days_until(death, at);
        let Some(stage_days) = stage(&t.config.admin_thresholds_days, days_left) else {
            continue;
        };
        notifications.push(AdminNotification {
            profile: p,
            uuid: f.uuid.clone(),
            stage_days,
            death,
            days_left,
            apps: apps.clone(),
            devices,
        });
        if apps.is_empty() {
            blockers.push(Blocker::ExpiringWithoutSuccessor {
                profile: p,
                app: None,
                devices,
                at: death,
            });
        }
        for &a in apps {
            blockers.push(Blocker::ExpiringWithoutSuccessor {
                profile: p,
                app: Some(a),
                devices: app_devices[a.index()],
                at: t.app_death(a),
            });
        }
    }
    for (ai, app) in t.apps.iter().enumerate() {
        let a = AppId(u32::try_from(ai).unwrap_or(u32::MAX));
        let devices = app_devices[ai];
        let linked = app.profile.map(|p| t.profile(p));
        if !linked.is_some_and(|f| f.covers(&app.team, &app.bundle_id)) {
            blockers.push(Blocker::UncoveredApp { app: a, devices });
        }
        let reason = if app.certificate_not_after < at {
            Some(ResignReason::CertificateExpired)
        } else if linked.is_some_and(|f| f.certificate(&app.certificate).is_none()) {
            Some(ResignReason::CertificateNotInProfile)
        } else {
            None
        };
        if let Some(reason) = reason {
            blockers.push(Blocker::ResignRequired {
                app: a,
                profile: app.profile,
                reason,
                devices,
            });
        }
    }
    (notifications, blockers, warnings(t))
}

/// Mixed-kind exclusions and missing groups.
pub(crate) fn warnings(t: &Tenant) -> Vec<Warning> {
    let mut include_kinds: HashMap<ProfileId, (bool, bool)> = HashMap::new();
    for a in &t.assignments {
        if a.intent == Intent::Include {
            let e = include_kinds.entry(a.profile).or_default();
            match t.target_kind(&a.target) {
                Some(GroupKind::User) => e.0 = true,
                Some(GroupKind::Device) => e.1 = true,
                None => {}
            }
        }
    }
    let mut out = Vec::new();
    for (i, a) in t.assignments.iter().enumerate() {
        let id = AssignmentId(u32::try_from(i).unwrap_or(u32::MAX));
        if let Target::MissingGroup(name) = &a.target {
            out.push(Warning::MissingGroup {
                assignment: id,
                name: name.clone(),
            });
            continue;
        }
        if a.intent == Intent::Exclude {
            let (users, devices) = include_kinds.get(&a.profile).copied().unwrap_or_default();
            let effective = match t.target_kind(&a.target) {
                Some(GroupKind::User) => users,
                Some(GroupKind::Device) => devices,
                None => true,
            };
            if !effective {
                out.push(Warning::MixedKindExclusion { assignment: id });
            }
        }
    }
    out
}

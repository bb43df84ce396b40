//! Small tenants built by hand, and a reference model written for clarity.
#![allow(
    dead_code,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use provkit_policy::*;
use provkit_profile::ProfileKind;

pub(crate) fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0)
        .single()
        .expect("date")
}

pub(crate) fn days(n: i64) -> DateTime<Utc> {
    at() + TimeDelta::days(n)
}

pub(crate) fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012X}")
}

pub(crate) fn profile(n: u32, app_id: &str, expires_in: i64) -> ProfileFacts {
    ProfileFacts {
        uuid: uuid(n),
        name: format!("P{n}"),
        team: "TEAM".into(),
        app_id: format!("TEAM.{app_id}"),
        kind: ProfileKind::Enterprise,
        platforms: vec!["iOS".into()],
        created: days(expires_in - 365),
        expires: days(expires_in),
        certificates: vec![CertFacts {
            sha256: [n as u8; 32],
            not_after: days(1000),
        }],
        devices: DeviceScope::All,
        superseded_by: None,
        retired: false,
    }
}

pub(crate) fn device(n: usize, user: Option<u32>) -> Device {
    Device {
        udid: format!("UDID-{n:04}").into(),
        platform: "iOS".into(),
        user: user.map(UserId),
        apps: Default::default(),
        reported: vec![],
    }
}

pub(crate) fn group(name: &str, kind: GroupKind) -> Group {
    Group {
        name: name.into(),
        kind,
        users: vec![],
        devices: vec![],
        subgroups: vec![],
    }
}

pub(crate) fn reported(p: &ProfileFacts, managed: bool) -> Reported {
    Reported {
        uuid: Uuid::parse(&p.uuid).expect("uuid"),
        expires: p.expires,
        managed,
    }
}

pub(crate) fn assign(p: u32, target: Target, intent: Intent) -> Assignment {
    Assignment {
        profile: ProfileId(p),
        target,
        intent,
    }
}

/// Applies a plan's commands as a device would acknowledge them.
pub(crate) fn acknowledge(t: &mut Tenant, plan: &Plan) {
    for dp in &plan.devices {
        let d = &mut t.devices[dp.device.index()];
        for c in &dp.commands {
            match c {
                Command::InstallProvisioningProfile { profile } => {
                    let f = &t.profiles[profile.index()];
                    d.reported.push(Reported {
                        uuid: Uuid::parse(&f.uuid).expect("uuid"),
                        expires: f.expires,
                        managed: true,
                    });
                }
                Command::RemoveProvisioningProfile { uuid } => {
                    d.reported.retain(|r| r.uuid != *uuid)
                }
            }
        }
    }
}

// ---- The reference model: set semantics, brute force. ----

fn members(
    t: &Tenant,
    g: usize,
    kind: GroupKind,
    seen: &mut BTreeSet<usize>,
    users: &mut BTreeSet<u32>,
    devices: &mut BTreeSet<u32>,
) {
    if !seen.insert(g) {
        return;
    }
    let grp = &t.groups[g];
    users.extend(grp.users.iter().map(|u| u.0));
    devices.extend(grp.devices.iter().map(|d| d.0));
    for s in &grp.subgroups {
        if t.groups[s.index()].kind == kind {
            members(t, s.index(), kind, seen, users, devices);
        }
    }
}

fn matches(t: &Tenant, target: &Target, device: usize) -> Option<(GroupKind, bool)> {
    let d = &t.devices[device];
    match target {
        Target::AllUsers => Some((GroupKind::User, d.user.is_some())),
        Target::AllDevices => Some((GroupKind::Device, true)),
        Target::MissingGroup(_) => None,
        Target::Group(g) => {
            let kind = t.groups[g.index()].kind;
            let (mut users, mut devices) = (BTreeSet::new(), BTreeSet::new());
            members(
                t,
                g.index(),
                kind,
                &mut BTreeSet::new(),
                &mut users,
                &mut devices,
            );
            Some(match kind {
                GroupKind::User => (kind, d.user.is_some_and(|u| users.contains(&u.0))),
                GroupKind::Device => (kind, devices.contains(&(device as u32))),
            })
        }
    }
}

pub(crate) fn ref_desired(t: &Tenant, device: usize) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for p in 0..t.profiles.len() {
        let mut hit = [[false; 2]; 2];
        for a in t.assignments.iter().filter(|a| a.profile.index() == p) {
            if let Some((kind, true)) = matches(t, &a.target, device) {
                hit[usize::from(kind == GroupKind::Device)]
                    [usize::from(a.intent == Intent::Exclude)] = true;
            }
        }
        if (hit[0][0] && !hit[0][1]) || (hit[1][0] && !hit[1][1]) {
            out.insert(p as u32);
        }
    }
    for a in &t.devices[device].apps {
        if let Some(p) = t.apps[a.index()].profile {
            out.insert(p.0);
        }
    }
    out.retain(|p| !t.profiles[*p as usize].retired);
    out
}

pub(crate) fn ref_commands(
    t: &Tenant,
    device: usize,
    at: DateTime<Utc>,
) -> (Vec<Command>, Vec<u32>) {
    let d = &t.devices[device];
    let want = ref_desired(t, device);
    let is_reported = |f: &ProfileFacts| {
        d.reported
            .iter()
            .any(|r| Some(r.uuid) == Uuid::parse(&f.uuid))
    };
    let mut installs = Vec::new();
    let mut blocked = Vec::new();
    for &p in &want {
        let f = &t.profiles[p as usize];
        if !f.allows_device(&d.udid) {
            blocked.push(p);
        } else if f.expires >= at && !is_reported(f) {
            installs.push(Command::InstallProvisioningProfile {
                profile: ProfileId(p),
            });
        }
    }
    let mut removes = Vec::new();
    for r in d.reported.iter().filter(|r| r.managed) {
        let known = t
            .profiles
            .iter()
            .position(|f| Uuid::parse(&f.uuid) == Some(r.uuid));
        if known.is_some_and(|k| want.contains(&(k as u32))) {
            continue;
        }
        let waiting = known.is_some_and(|k| {
            let old = &t.profiles[k];
            want.iter().any(|&q| {
                let new = &t.profiles[q as usize];
                new.app_id == old.app_id
                    && new.expires > r.expires
                    && new.allows_device(&d.udid)
                    && !is_reported(new)
            })
        });
        if !waiting {
            removes.push(Command::RemoveProvisioningProfile { uuid: r.uuid });
        }
    }
    removes.sort();
    removes.dedup();
    installs.extend(removes);
    (installs, blocked)
}

// ---- Random small tenants from a seed. ----

pub(crate) fn random_tenant(seed: u64) -> Tenant {
    let mut rng = provkit_policy::generate::Rng::new(seed);
    let n_profiles = 2 + rng.below(5);
    let n_users = 1 + rng.below(5);
    let n_devices = 1 + rng.below(8);
    let n_groups = 1 + rng.below(6);
    let mut t = Tenant::default();
    for i in 0..n_profiles {
        let mut p = profile(
            i as u32,
            &format!("com.app{}", rng.below(3)),
            rng.below(400) as i64 - 30,
        );
        if rng.chance(0.2) {
            p.kind = ProfileKind::AdHoc;
            p.devices = DeviceScope::Listed(
                (0..n_devices)
                    .filter(|_| rng.chance(0.5))
                    .map(|d| format!("UDID-{d:04}"))
                    .collect(),
            );
        }
        t.profiles.push(p);
    }
    for i in 0..n_users {
        t.users.push(User {
            name: format!("u{i}").into(),
        });
    }
    for i in 0..2 {
        let p = ProfileId(rng.below(n_profiles) as u32);
        let f = &t.profiles[p.index()];
        // Some apps are signed with another certificate, an expired one, or
        // for a bundle id their profile does not cover.
        let bundle = if rng.chance(0.2) {
            "com.other".to_owned()
        } else {
            f.app_id.trim_start_matches("TEAM.").to_owned()
        };
        let certificate = if rng.chance(0.25) {
            [0xee; 32]
        } else {
            f.certificates[0].sha256
        };
        let not_after = if rng.chance(0.25) {
            days(-5)
        } else {
            days(20 + 30 * i)
        };
        t.apps.push(App {
            bundle_id: bundle,
            version: "1".into(),
            team: "TEAM".into(),
            profile: Some(p),
            certificate,
            certificate_not_after: not_after,
        });
    }
    for i in 0..n_groups {
        let kind = if rng.chance(0.5) {
            GroupKind::User
        } else {
            GroupKind::Device
        };
        t.groups.push(group(&format!("g{i}"), kind));
    }
    for g in 0..n_groups {
        for _ in 0..rng.below(3) {
            let s = rng.below(n_groups);
            t.groups[g].subgroups.push(GroupId(s as u32));
        }
        match t.groups[g].kind {
            GroupKind::User => {
                t.groups[g].users = (0..n_users)
                    .filter(|_| rng.chance(0.4))
                    .map(|u| UserId(u as u32))
                    .collect()
            }
            GroupKind::Device => {
                t.groups[g].devices = (0..n_devices)
                    .filter(|_| rng.chance(0.4))
                    .map(|d| DeviceId(d as u32))
                    .collect()
            }
        }
    }
    for d in 0..n_devices {
        let user = rng.chance(0.7).then(|| rng.below(n_users) as u32);
        let mut dev = device(d, user);
        if rng.chance(0.5) {
            dev.apps.push(AppId(rng.below(2) as u32));
        }
        for p in &t.profiles {
            if rng.chance(0.25) {
                dev.reported.push(reported(p, rng.chance(0.8)));
            }
        }
        t.devices.push(dev);
    }
    for _ in 0..rng.below(8) {
        let target = match rng.below(10) {
            0 => Target::AllUsers,
            1 => Target::AllDevices,
            2 => Target::MissingGroup("gone".into()),
            _ => Target::Group(GroupId(rng.below(n_groups) as u32)),
        };
        let intent = if rng.chance(0.3) {
            Intent::Exclude
        } else {
            Intent::Include
        };
        let a = assign(rng.below(n_profiles) as u32, target, intent);
        if !t.assignments.contains(&a) {
            t.assignments.push(a);
        }
    }
    t
}

/// Notifications (profile, stage, devices, apps), user notices (user,
/// device, app) and app-level blockers, as comparable values.
pub(crate) type Globals = (
    Vec<(u32, i64, usize, Vec<u32>)>,
    Vec<(u32, u32, u32)>,
    Vec<String>,
);

/// The reference for everything that is not a device command: admin
/// notifications (profile, stage, devices, apps), user notices (user,
/// device, app) and the app-level blockers, written out plainly.
pub(crate) fn ref_globals(t: &Tenant, at: DateTime<Utc>) -> Globals {
    let days = |x: DateTime<Utc>| (x - at).num_seconds().div_euclid(86_400);
    let app_death = |a: &App| match a.profile {
        Some(p) => t.profiles[p.index()].expires.min(a.certificate_not_after),
        None => a.certificate_not_after,
    };
    let mut notes = Vec::new();
    let mut blockers = Vec::new();
    for (p, f) in t.profiles.iter().enumerate() {
        let apps: Vec<u32> = (0..t.apps.len() as u32)
            .filter(|a| t.apps[*a as usize].profile == Some(ProfileId(p as u32)))
            .collect();
        let holders = (0..t.devices.len())
            .filter(|d| ref_desired(t, *d).contains(&(p as u32)))
            .count();
        if f.retired || f.superseded_by.is_some() || (apps.is_empty() && holders == 0) {
            continue;
        }
        let death = apps
            .iter()
            .map(|a| app_death(&t.apps[*a as usize]))
            .fold(f.expires, DateTime::min);
        let left = days(death);
        let Some(stage) = t
            .config
            .admin_thresholds_days
            .iter()
            .copied()
            .filter(|s| left <= *s)
            .min()
        else {
            continue;
        };
        notes.push((p as u32, stage, holders, apps.clone()));
        if apps.is_empty() {
            blockers.push(format!("expiring {p} none {holders}"));
        }
        for a in apps {
            let n = t
                .devices
                .iter()
                .filter(|d| d.apps.contains(&AppId(a)))
                .count();
            blockers.push(format!("expiring {p} {a} {n}"));
        }
    }
    for (i, a) in t.apps.iter().enumerate() {
        let n = t
            .devices
            .iter()
            .filter(|d| d.apps.contains(&AppId(i as u32)))
            .count();
        let linked = a.profile.map(|p| &t.profiles[p.index()]);
        if !linked.is_some_and(|f| f.covers(&a.team, &a.bundle_id)) {
            blockers.push(format!("uncovered {i} {n}"));
        }
        if a.certificate_not_after < at {
            blockers.push(format!("resign {i} expired {n}"));
        } else if linked.is_some_and(|f| !f.certificates.iter().any(|c| c.sha256 == a.certificate))
        {
            blockers.push(format!("resign {i} not-in-profile {n}"));
        }
    }
    let mut notices = Vec::new();
    for (d, dev) in t.devices.iter().enumerate() {
        if let Some(u) = dev.user {
            for a in &dev.apps {
                if days(app_death(&t.apps[a.index()])) <= t.config.user_notice_days {
                    notices.push((u.0, d as u32, a.0));
                }
            }
        }
    }
    blockers.sort();
    (notes, notices, blockers)
}

/// The engine's plan in the same shape as [`ref_globals`].
pub(crate) fn plan_globals(plan: &Plan) -> Globals {
    let notes = plan
        .notifications
        .iter()
        .map(|n| {
            (
                n.profile.0,
                n.stage_days,
                n.devices,
                n.apps.iter().map(|a| a.0).collect(),
            )
        })
        .collect();
    let notices = plan
        .user_notices
        .iter()
        .map(|n| (n.user.0, n.device.0, n.app.0))
        .collect();
    let mut blockers: Vec<String> = plan
        .blockers
        .iter()
        .filter_map(|b| match b {
            Blocker::ExpiringWithoutSuccessor {
                profile,
                app,
                devices,
                ..
            } => Some(format!(
                "expiring {} {} {devices}",
                profile.0,
                app.map_or("none".to_owned(), |a| a.0.to_string())
            )),
            Blocker::UncoveredApp { app, devices } => {
                Some(format!("uncovered {} {devices}", app.0))
            }
            Blocker::ResignRequired {
                app,
                reason,
                devices,
                ..
            } => Some(format!(
                "resign {} {} {devices}",
                app.0,
                if *reason == ResignReason::CertificateExpired {
                    "expired"
                } else {
                    "not-in-profile"
                }
            )),
            Blocker::NotProvisioned { .. } => None,
        })
        .collect();
    blockers.sort();
    (notes, notices, blockers)
}

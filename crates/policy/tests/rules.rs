//! One test per rule of the domain document, including its documented cases.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::*;
use provkit_policy::*;
use provkit_profile::ProfileKind;

/// A tenant with one profile, users 0 and 1, device 0 (user 0), device 1
/// (user 1), device 2 (no user), a user group "staff" {user 0} and a
/// device group "kiosks" {device 0, device 2}.
fn base() -> Tenant {
    let mut t = Tenant::default();
    t.profiles.push(profile(1, "com.example.app", 200));
    t.users = vec![
        User {
            name: "alice".into(),
        },
        User { name: "bob".into() },
    ];
    t.devices = vec![device(0, Some(0)), device(1, Some(1)), device(2, None)];
    let mut staff = group("staff", GroupKind::User);
    staff.users.push(UserId(0));
    let mut kiosks = group("kiosks", GroupKind::Device);
    kiosks.devices = vec![DeviceId(0), DeviceId(2)];
    t.groups = vec![staff, kiosks];
    t
}

fn desired_devices(t: Tenant) -> Vec<u32> {
    let e = Engine::new(t, at());
    (0..e.tenant().devices.len() as u32)
        .filter(|d| e.desired(DeviceId(*d)).contains(&ProfileId(0)))
        .collect()
}

#[test]
fn include_all_users_exclude_a_device_group_is_still_delivered() {
    let mut t = base();
    t.assignments = vec![
        assign(0, Target::AllUsers, Intent::Include),
        assign(0, Target::Group(GroupId(1)), Intent::Exclude),
    ];
    // Device 0 is in the excluded device group but its user is included: delivered.
    assert_eq!(desired_devices(t.clone()), vec![0, 1]);
    let plan = Engine::new(t, at()).plan();
    assert_eq!(
        plan.warnings,
        vec![Warning::MixedKindExclusion {
            assignment: AssignmentId(1)
        }]
    );
}

#[test]
fn include_all_devices_exclude_all_users_reaches_every_device() {
    let mut t = base();
    t.assignments = vec![
        assign(0, Target::AllDevices, Intent::Include),
        assign(0, Target::AllUsers, Intent::Exclude),
    ];
    assert_eq!(desired_devices(t), vec![0, 1, 2]);
}

#[test]
fn include_all_users_exclude_all_devices_reaches_devices_with_a_user_only() {
    let mut t = base();
    t.assignments = vec![
        assign(0, Target::AllUsers, Intent::Include),
        assign(0, Target::AllDevices, Intent::Exclude),
    ];
    assert_eq!(desired_devices(t), vec![0, 1]);
}

#[test]
fn an_exclusion_cancels_includes_of_its_own_kind() {
    let mut t = base();
    t.assignments = vec![
        assign(0, Target::AllUsers, Intent::Include),
        assign(0, Target::Group(GroupId(0)), Intent::Exclude),
    ];
    assert_eq!(desired_devices(t.clone()), vec![1]);
    t.assignments = vec![
        assign(0, Target::AllDevices, Intent::Include),
        assign(0, Target::Group(GroupId(1)), Intent::Exclude),
    ];
    assert_eq!(desired_devices(t), vec![1]);
}

#[test]
fn devices_without_a_user_match_only_device_targets() {
    let mut t = base();
    t.assignments = vec![assign(0, Target::AllUsers, Intent::Include)];
    assert_eq!(desired_devices(t.clone()), vec![0, 1]);
    t.assignments = vec![assign(0, Target::Group(GroupId(1)), Intent::Include)];
    assert_eq!(desired_devices(t), vec![0, 2]);
}

#[test]
fn membership_is_transitive_through_nesting_and_cycles_are_tolerated() {
    let mut t = base();
    // all-staff ⊃ staff, and staff ⊃ all-staff (a cycle); bob is in neither directly.
    let mut all = group("all-staff", GroupKind::User);
    all.subgroups.push(GroupId(0));
    t.groups.push(all);
    t.groups[0].subgroups.push(GroupId(2));
    t.assignments = vec![assign(0, Target::Group(GroupId(2)), Intent::Include)];
    assert_eq!(desired_devices(t.clone()), vec![0]);
    // Nested groups of the other kind are ignored.
    t.groups[2].subgroups.push(GroupId(1));
    assert_eq!(desired_devices(t.clone()), vec![0]);
    let e = Engine::new(t, at());
    let why = e.explain(DeviceId(0), ProfileId(0));
    assert!(why.desired);
    assert!(
        why.steps
            .iter()
            .any(|s| s.contains("\"staff\" ⊂ \"all-staff\"")),
        "{:?}",
        why.steps
    );
}

#[test]
fn apps_installed_on_a_device_pull_their_profile() {
    let mut t = base();
    t.apps.push(App {
        bundle_id: "com.example.app".into(),
        version: "1.0".into(),
        team: "TEAM".into(),
        profile: Some(ProfileId(0)),
        certificate: [1; 32],
        certificate_not_after: days(900),
    });
    t.devices[1].apps.push(AppId(0));
    assert_eq!(desired_devices(t.clone()), vec![1]);
    let plan = Engine::new(t, at()).plan();
    assert_eq!(plan.devices.len(), 1);
    assert_eq!(
        plan.devices[0].commands,
        vec![Command::InstallProvisioningProfile {
            profile: ProfileId(0)
        }]
    );
}

#[test]
fn reconcile_installs_missing_removes_unwanted_managed_keeps_unmanaged() {
    let mut t = base();
    t.profiles.push(profile(2, "com.other", 200));
    t.profiles.push(profile(3, "com.third", 200));
    t.assignments = vec![assign(0, Target::AllDevices, Intent::Include)];
    let p1 = t.profiles[1].clone();
    let p2 = t.profiles[2].clone();
    t.devices[0].reported = vec![reported(&p1, true), reported(&p2, false)];
    let plan = Engine::new(t, at()).plan();
    let d0 = plan
        .devices
        .iter()
        .find(|d| d.device == DeviceId(0))
        .expect("device 0");
    assert_eq!(
        d0.commands,
        vec![
            Command::InstallProvisioningProfile {
                profile: ProfileId(0)
            },
            Command::RemoveProvisioningProfile {
                uuid: Uuid::parse(&p1.uuid).expect("uuid")
            },
        ]
    );
}

#[test]
fn make_before_break_and_idempotence() {
    // Device 1 holds the old profile (managed); the new one, same app id, later expiry, is assigned.
    let mut t = base();
    t.profiles.push(profile(2, "com.example.app", 400));
    t.assignments = vec![assign(1, Target::AllDevices, Intent::Include)];
    let old = t.profiles[0].clone();
    for d in &mut t.devices {
        d.reported = vec![reported(&old, true)];
    }
    let first = Engine::new(t.clone(), at()).plan();
    for dp in &first.devices {
        assert_eq!(
            dp.commands,
            vec![Command::InstallProvisioningProfile {
                profile: ProfileId(1)
            }],
            "install only"
        );
    }
    acknowledge(&mut t, &first);
    let second = Engine::new(t.clone(), at()).plan();
    for dp in &second.devices {
        assert_eq!(
            dp.commands,
            vec![Command::RemoveProvisioningProfile {
                uuid: Uuid::parse(&old.uuid).expect("u")
            }]
        );
    }
    assert_eq!(second.devices.len(), 3);
    acknowledge(&mut t, &second);
    let third = Engine::new(t.clone(), at()).plan();
    assert!(third.devices.is_empty(), "{:?}", third.devices);
    // Deterministic: the same input gives the same plan.
    assert_eq!(Engine::new(t.clone(), at()).plan(), third);
}

#[test]
fn development_profiles_on_unlisted_devices_are_blockers_not_installs() {
    let mut t = base();
    t.profiles[0].kind = ProfileKind::Development;
    t.profiles[0].devices = DeviceScope::Listed(vec!["UDID-0001".into()]);
    t.assignments = vec![assign(0, Target::AllDevices, Intent::Include)];
    let plan = Engine::new(t, at()).plan();
    let installs: Vec<_> = plan.devices.iter().map(|d| d.device).collect();
    assert_eq!(installs, vec![DeviceId(1)]);
    let blocked: Vec<_> = plan
        .blockers
        .iter()
        .filter_map(|b| match b {
            Blocker::NotProvisioned { device, .. } => Some(*device),
            _ => None,
        })
        .collect();
    assert_eq!(blocked, vec![DeviceId(0), DeviceId(2)]);
}

fn app_on(t: &mut Tenant, profile: u32, cert: [u8; 32], cert_days: i64) {
    let f = &t.profiles[profile as usize];
    t.apps.push(App {
        bundle_id: f.app_id.trim_start_matches("TEAM.").into(),
        version: "2.0".into(),
        team: "TEAM".into(),
        profile: Some(ProfileId(profile)),
        certificate: cert,
        certificate_not_after: days(cert_days),
    });
    let app = AppId(t.apps.len() as u32 - 1);
    t.devices[0].apps.push(app);
    t.devices[1].apps.push(app);
}

#[test]
fn resign_required_when_the_certificate_is_the_cause() {
    let mut t = base();
    app_on(&mut t, 0, [1; 32], -3);
    let plan = Engine::new(t.clone(), at()).plan();
    assert!(plan.blockers.contains(&Blocker::ResignRequired {
        app: AppId(0),
        profile: Some(ProfileId(0)),
        reason: ResignReason::CertificateExpired,
        devices: 2
    }));
    // Renewal with a profile that lacks the app's certificate cannot help.
    let mut t = base();
    app_on(&mut t, 0, [1; 32], 900);
    let mut new = profile(9, "com.example.app", 500);
    new.certificates[0].sha256 = [7; 32];
    t.profiles.push(new);
    let mut e = Engine::new(t, at());
    e.renew(ProfileId(0), ProfileId(1)).expect("qualifies");
    let plan = e.plan();
    assert!(plan.blockers.contains(&Blocker::ResignRequired {
        app: AppId(0),
        profile: Some(ProfileId(1)),
        reason: ResignReason::CertificateNotInProfile,
        devices: 2
    }));
}

#[test]
fn uncovered_apps_are_blockers() {
    let mut t = base();
    app_on(&mut t, 0, [1; 32], 900);
    t.apps[0].bundle_id = "com.elsewhere".into();
    let plan = Engine::new(t, at()).plan();
    assert!(plan.blockers.contains(&Blocker::UncoveredApp {
        app: AppId(0),
        devices: 2
    }));
}

#[test]
fn notifications_by_stage_and_user_notices() {
    for (days_left, stage) in [
        (61, None),
        (60, Some(60)),
        (45, Some(60)),
        (30, Some(30)),
        (8, Some(30)),
        (7, Some(7)),
        (0, Some(0)),
        (-5, Some(0)),
    ] {
        let mut t = base();
        t.profiles[0] = profile(1, "com.example.app", days_left);
        app_on(&mut t, 0, [1; 32], 900);
        let plan = Engine::new(t, at()).plan();
        let got = plan.notifications.first().map(|n| n.stage_days);
        assert_eq!(got, stage, "{days_left} days left");
        if let Some(n) = plan.notifications.first() {
            assert_eq!(
                (n.devices, n.apps.clone(), n.days_left),
                (2, vec![AppId(0)], days_left)
            );
            assert!(plan.blockers.contains(&Blocker::ExpiringWithoutSuccessor {
                profile: ProfileId(0),
                app: Some(AppId(0)),
                devices: 2,
                at: days(days_left)
            }));
        }
        // Device users are told at 30 days.
        assert_eq!(
            plan.user_notices.len(),
            if days_left <= 30 { 2 } else { 0 },
            "{days_left}"
        );
    }
}

#[test]
fn renewal_supersedes_for_every_app_and_old_is_removed_after_acknowledgement() {
    let mut t = base();
    app_on(&mut t, 0, [1; 32], 900);
    t.assignments = vec![assign(0, Target::Group(GroupId(0)), Intent::Include)];
    let old = t.profiles[0].clone();
    for d in &mut t.devices[..2] {
        d.reported = vec![reported(&old, true)];
    }
    let mut renewed = profile(5, "com.example.app", 500);
    renewed.certificates = old.certificates.clone();
    t.profiles.push(renewed);
    let mut e = Engine::new(t, at());
    assert!(
        e.plan().notifications.is_empty()
            || e.plan()
                .notifications
                .iter()
                .all(|n| n.profile == ProfileId(0))
    );
    // Not a successor: another team, or an earlier expiry.
    let delta = e.renew(ProfileId(0), ProfileId(1)).expect("renewal");
    assert_eq!(delta.devices.len(), 2);
    for dp in &delta.devices {
        assert_eq!(
            dp.commands,
            vec![Command::InstallProvisioningProfile {
                profile: ProfileId(1)
            }]
        );
    }
    assert_eq!(e.tenant().apps[0].profile, Some(ProfileId(1)));
    assert_eq!(e.tenant().assignments[0].profile, ProfileId(1));
    // Delete: the new one is in use; the old one is not any more.
    let refused = e.delete(ProfileId(1)).expect_err("in use");
    assert_eq!(refused.apps, vec![AppId(0)]);
    assert_eq!(refused.assignments.len(), 1);
    // Acknowledge the installs; the old profile's removal follows.
    let mut t = e.into_tenant();
    let plan = Engine::new(t.clone(), at()).plan();
    acknowledge(&mut t, &plan);
    let plan = Engine::new(t.clone(), at()).plan();
    for dp in &plan.devices {
        assert_eq!(
            dp.commands,
            vec![Command::RemoveProvisioningProfile {
                uuid: Uuid::parse(&old.uuid).expect("u")
            }]
        );
    }
    let mut e = Engine::new(t, at());
    let delta = e.delete(ProfileId(0)).expect("unused now");
    assert!(delta.devices.iter().all(|d| d.commands.len() == 1));
}

#[test]
fn renewal_refuses_non_successors() {
    let mut t = base();
    let mut other_team = profile(2, "com.example.app", 500);
    other_team.team = "OTHER".into();
    t.profiles.push(other_team);
    t.profiles.push(profile(3, "com.example.app", 100));
    t.profiles.push(profile(4, "com.different", 500));
    t.profiles.push(profile(5, "com.*", 500));
    let mut e = Engine::new(t, at());
    assert!(matches!(
        e.renew(ProfileId(0), ProfileId(1)),
        Err(ChangeError::Renew(RenewError::TeamMismatch { .. }))
    ));
    assert!(matches!(
        e.renew(ProfileId(0), ProfileId(2)),
        Err(ChangeError::Renew(RenewError::NotLater { .. }))
    ));
    assert!(matches!(
        e.renew(ProfileId(0), ProfileId(3)),
        Err(ChangeError::Renew(RenewError::AppIdNotCovered { .. }))
    ));
    assert!(
        e.renew(ProfileId(0), ProfileId(4)).is_ok(),
        "a wildcard covering the old id qualifies"
    );
}

#[test]
fn warnings_for_missing_groups() {
    let mut t = base();
    t.assignments = vec![assign(
        0,
        Target::MissingGroup("Executives".into()),
        Intent::Include,
    )];
    let plan = Engine::new(t, at()).plan();
    assert_eq!(
        plan.warnings,
        vec![Warning::MissingGroup {
            assignment: AssignmentId(0),
            name: "Executives".into()
        }]
    );
}

#[test]
fn incremental_membership_change_returns_the_delta() {
    let mut t = base();
    t.assignments = vec![assign(0, Target::Group(GroupId(0)), Intent::Include)];
    let mut e = Engine::new(t, at());
    let delta = e
        .apply(Change::AddMember {
            group: GroupId(0),
            member: Member::User(UserId(1)),
        })
        .expect("ok");
    assert_eq!(delta.devices.len(), 1);
    assert_eq!(delta.devices[0].device, DeviceId(1));
    let delta = e
        .apply(Change::RemoveMember {
            group: GroupId(0),
            member: Member::User(UserId(1)),
        })
        .expect("ok");
    assert_eq!(delta.devices[0].commands, vec![]);
    assert!(matches!(
        e.apply(Change::AddMember {
            group: GroupId(0),
            member: Member::Device(DeviceId(0))
        }),
        Err(ChangeError::WrongKind { .. })
    ));
}

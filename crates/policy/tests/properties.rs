//! proptest on random tenants: the engine equals a brute-force reference
//! model; plans are deterministic and idempotent; incremental updates equal
//! a full recompute after random change sequences.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::*;
use proptest::prelude::*;
use provkit_policy::generate::Rng;
use provkit_policy::*;

fn check_against_reference(t: &Tenant, plan: &Plan) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        plan_globals(plan),
        ref_globals(t, at()),
        "notifications, notices, app blockers"
    );
    for d in 0..t.devices.len() {
        let (want, blocked) = ref_commands(t, d, at());
        let got = plan
            .devices
            .iter()
            .find(|p| p.device.index() == d)
            .map(|p| p.commands.clone())
            .unwrap_or_default();
        prop_assert_eq!(&got, &want, "device {}", d);
        let mut got_blocked: Vec<u32> = plan
            .blockers
            .iter()
            .filter_map(|b| match b {
                Blocker::NotProvisioned { device, profile } if device.index() == d => {
                    Some(profile.0)
                }
                _ => None,
            })
            .collect();
        got_blocked.sort_unstable();
        prop_assert_eq!(got_blocked, blocked, "blocked on device {}", d);
    }
    Ok(())
}

fn random_change(t: &Tenant, rng: &mut Rng) -> Change {
    let g = GroupId(rng.below(t.groups.len()) as u32);
    let kind = t.groups[g.index()].kind;
    let member = match rng.below(3) {
        0 => Member::Group(GroupId(rng.below(t.groups.len()) as u32)),
        _ if kind == GroupKind::User => Member::User(UserId(rng.below(t.users.len()) as u32)),
        _ => Member::Device(DeviceId(rng.below(t.devices.len()) as u32)),
    };
    match rng.below(6) {
        0 => Change::AddMember { group: g, member },
        1 => Change::RemoveMember { group: g, member },
        2 => {
            let d = rng.below(t.devices.len());
            let mut list = Vec::new();
            for p in &t.profiles {
                if rng.chance(0.3) {
                    list.push(reported(p, rng.chance(0.8)));
                }
            }
            let reported = list;
            Change::DeviceReport {
                device: DeviceId(d as u32),
                reported,
            }
        }
        3 | 4 => {
            let target = match rng.below(5) {
                0 => Target::AllUsers,
                1 => Target::AllDevices,
                _ => Target::Group(g),
            };
            let intent = if rng.chance(0.3) {
                Intent::Exclude
            } else {
                Intent::Include
            };
            Change::Assign(assign(rng.below(t.profiles.len()) as u32, target, intent))
        }
        _ => match t.assignments.first() {
            Some(a) => Change::Unassign(a.clone()),
            None => Change::AddMember { group: g, member },
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_reference_model(seed in any::<u64>()) {
        let t = random_tenant(seed);
        let plan = Engine::new(t.clone(), at()).plan();
        check_against_reference(&t, &plan)?;
        // Deterministic.
        prop_assert_eq!(Engine::new(t.clone(), at()).plan(), plan);
    }

    #[test]
    fn plans_are_idempotent_once_acknowledged(seed in any::<u64>()) {
        let mut t = random_tenant(seed);
        // Make before break needs at most two rounds: installs, then removes.
        for _ in 0..2 {
            let plan = Engine::new(t.clone(), at()).plan();
            acknowledge(&mut t, &plan);
        }
        let plan = Engine::new(t.clone(), at()).plan();
        prop_assert_eq!(plan.command_count(), 0, "{:?}", plan.devices);
    }

    #[test]
    fn incremental_equals_full_recompute(seed in any::<u64>(), steps in 1usize..12) {
        let t = random_tenant(seed);
        let mut rng = Rng::new(seed ^ 0xabcdef);
        let mut engine = Engine::new(t, at());
        for _ in 0..steps {
            let batch: Vec<Change> = (0..1 + rng.below(3)).map(|_| random_change(engine.tenant(), &mut rng)).collect();
            let before: Vec<Vec<Command>> =
                (0..engine.tenant().devices.len()).map(|d| engine.commands(DeviceId(d as u32)).to_vec()).collect();
            let delta = engine.apply_all(batch).expect("valid change");
            // The delta names exactly the devices whose commands changed.
            for (d, was) in before.iter().enumerate() {
                let now = engine.commands(DeviceId(d as u32));
                let in_delta = delta.devices.iter().find(|p| p.device.index() == d);
                match in_delta {
                    Some(p) => prop_assert_eq!(&p.commands[..], now),
                    None => prop_assert_eq!(&was[..], now, "device {} changed without a delta", d),
                }
            }
            let full = Engine::new(engine.tenant().clone(), at()).plan();
            prop_assert_eq!(engine.plan(), full.clone());
            check_against_reference(engine.tenant(), &full)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The preview of an assignment edit (`Engine::wanting_if`) equals what
    /// a full plan of the edited tenant says, and `wanting` equals the
    /// plan's own desired sets.
    #[test]
    fn assignment_preview_equals_the_full_plan(seed in any::<u64>()) {
        let t = random_tenant(seed);
        let mut rng = Rng::new(seed ^ 0x5eed);
        let engine = Engine::new(t.clone(), at());
        let p = ProfileId(rng.below(t.profiles.len()) as u32);
        let wanting_now: Vec<DeviceId> = (0..t.devices.len())
            .map(|d| DeviceId(d as u32))
            .filter(|&d| engine.desired(d).contains(&p))
            .collect();
        prop_assert_eq!(engine.wanting(p), wanting_now);
        // A random new set of targets for p.
        let mut targets = Vec::new();
        for _ in 0..rng.below(5) {
            let target = match rng.below(6) {
                0 => Target::AllUsers,
                1 => Target::AllDevices,
                _ => Target::Group(GroupId(rng.below(t.groups.len()) as u32)),
            };
            let intent = if rng.chance(0.35) { Intent::Exclude } else { Intent::Include };
            targets.push((intent, target));
        }
        let mut edited = t.clone();
        edited.assignments.retain(|a| a.profile != p);
        for (intent, target) in &targets {
            edited.assignments.push(assign(p.0, target.clone(), *intent));
        }
        let after = Engine::new(edited, at());
        let want: Vec<DeviceId> = (0..t.devices.len())
            .map(|d| DeviceId(d as u32))
            .filter(|&d| after.desired(d).contains(&p))
            .collect();
        prop_assert_eq!(engine.wanting_if(p, &targets), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A clone moved to another instant plans exactly as an engine built
    /// at that instant, and its delta names exactly the devices whose
    /// commands changed; the original is left as it was.
    #[test]
    fn advancing_equals_building_at_the_new_instant(seed in any::<u64>(), hops in proptest::collection::vec(-500i64..500, 1..5)) {
        let t = random_tenant(seed);
        let original = Engine::new(t.clone(), at());
        let before_all = original.plan();
        let mut engine = original.clone();
        let mut now = at();
        for hop in hops {
            // Hops in hours: some land between two profiles' expiries.
            now += chrono::TimeDelta::hours(hop * 13);
            let before: Vec<Vec<Command>> =
                (0..t.devices.len()).map(|d| engine.commands(DeviceId(d as u32)).to_vec()).collect();
            let delta = engine.advance(now);
            for (d, was) in before.iter().enumerate() {
                let current = engine.commands(DeviceId(d as u32));
                match delta.devices.iter().find(|p| p.device.index() == d) {
                    Some(p) => prop_assert_eq!(&p.commands[..], current),
                    None => prop_assert_eq!(&was[..], current, "device {} changed without a delta", d),
                }
            }
            let built = Engine::new(t.clone(), now);
            prop_assert_eq!(engine.plan(), built.plan());
            for d in 0..t.devices.len() {
                let d = DeviceId(d as u32);
                prop_assert_eq!(engine.desired(d), built.desired(d));
            }
        }
        prop_assert_eq!(original.plan(), before_all);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// An engine given a new list of assignments plans exactly as one built
    /// with it (kept, dropped, reordered and new assignments alike), and
    /// its delta names exactly the devices whose commands changed.
    #[test]
    fn setting_assignments_equals_building_with_them(
        seed in any::<u64>(),
        other in any::<u64>(),
        keep in proptest::collection::vec(any::<bool>(), 8),
        shuffle in any::<u64>(),
    ) {
        let t = random_tenant(seed);
        let mut engine = Engine::new(t.clone(), at());
        // Some of the old assignments, in another order, and some new ones
        // (another tenant's that name profiles and groups this one has).
        let mut list: Vec<Assignment> = t
            .assignments
            .iter()
            .enumerate()
            .filter(|(i, _)| keep[i % keep.len()])
            .map(|(_, a)| a.clone())
            .collect();
        let mut rng = provkit_policy::generate::Rng::new(shuffle);
        for i in (1..list.len()).rev() {
            list.swap(i, rng.below(i + 1));
        }
        list.extend(random_tenant(other).assignments.into_iter().filter(|a| {
            a.profile.index() < t.profiles.len()
                && !matches!(a.target, Target::Group(g) if g.index() >= t.groups.len())
        }));
        let before: Vec<Vec<Command>> =
            (0..t.devices.len()).map(|d| engine.commands(DeviceId(d as u32)).to_vec()).collect();
        let delta = engine.set_assignments(list.clone()).expect("known ids");
        let mut u = t.clone();
        u.assignments = list;
        let built = Engine::new(u.clone(), at());
        prop_assert_eq!(engine.tenant(), built.tenant());
        prop_assert_eq!(engine.plan(), built.plan());
        for (d, was) in before.iter().enumerate() {
            let id = DeviceId(d as u32);
            prop_assert_eq!(engine.desired(id), built.desired(id));
            let current = engine.commands(id);
            match delta.devices.iter().find(|p| p.device.index() == d) {
                Some(p) => prop_assert_eq!(&p.commands[..], current),
                None => prop_assert_eq!(&was[..], current, "device {} changed without a delta", d),
            }
        }
        for p in 0..u.profiles.len() {
            let p = ProfileId(p as u32);
            for d in 0..u.devices.len() {
                let d = DeviceId(d as u32);
                prop_assert_eq!(engine.explain(d, p), built.explain(d, p));
            }
        }
    }
}

#[test]
fn setting_assignments_refuses_unknown_ids_and_changes_nothing() {
    let t = random_tenant(3);
    let mut engine = Engine::new(t.clone(), at());
    let plan = engine.plan();
    let bad = Assignment {
        profile: ProfileId(t.profiles.len() as u32),
        target: Target::AllUsers,
        intent: Intent::Include,
    };
    assert!(matches!(
        engine.set_assignments(vec![bad]),
        Err(ChangeError::Unknown(_))
    ));
    let bad = Assignment {
        profile: ProfileId(0),
        target: Target::Group(GroupId(t.groups.len() as u32)),
        intent: Intent::Include,
    };
    assert!(engine.set_assignments(vec![bad]).is_err());
    assert_eq!(engine.tenant(), &t);
    assert_eq!(engine.plan(), plan);
}

/// The plan's per-device entries are assembled in runs of devices on both
/// cores: across several runs they must come out in device order, each
/// device's commands as the engine holds them.
#[test]
fn a_plan_assembled_in_runs_keeps_device_order() {
    use provkit_policy::generate::{Shape, generate};
    let shape = Shape::scaled(50_000);
    let engine = Engine::new(generate(&shape, 11), shape.around);
    let plan = engine.plan();
    let expected: Vec<(u32, Vec<Command>)> = (0..engine.tenant().devices.len() as u32)
        .map(DeviceId)
        .filter(|d| !engine.commands(*d).is_empty())
        .map(|d| (d.0, engine.commands(d).to_vec()))
        .collect();
    let got: Vec<(u32, Vec<Command>)> = plan
        .devices
        .iter()
        .map(|p| (p.device.0, p.commands.clone()))
        .collect();
    assert!(got.last().is_some_and(|(d, _)| *d > 40_000), "several runs");
    assert_eq!(got, expected);
    let blocked: Vec<u32> = plan
        .blockers
        .iter()
        .filter_map(|b| match b {
            Blocker::NotProvisioned { device, .. } => Some(device.0),
            _ => None,
        })
        .collect();
    assert!(!blocked.is_empty());
    assert!(
        blocked.windows(2).all(|w| w[0] <= w[1]),
        "blockers in device order"
    );
    let noticed: Vec<u32> = plan.user_notices.iter().map(|n| n.device.0).collect();
    assert!(noticed.len() > 1000);
    assert!(
        noticed.windows(2).all(|w| w[0] <= w[1]),
        "notices in device order"
    );
    for n in &plan.user_notices {
        let d = &engine.tenant().devices[n.device.index()];
        assert_eq!(d.user, Some(n.user));
        assert!(d.apps.contains(&n.app));
    }
}

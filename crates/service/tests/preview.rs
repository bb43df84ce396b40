//! The console's assignment preview from an engine in memory equals the
//! store's own preview (two plans of the tenant in a rolled-back
//! transaction), and an edit saved with its devices from the engine equals
//! the store's own edit, on a generated tenant with nested groups, several
//! edits of several profiles.
#![cfg(feature = "generate")]

use provkit_policy::Engine;
use provkit_policy::generate::{Shape, generate};
use provkit_profile::fixtures::TestCa;
use provkit_service::{ServiceError, assign};
use provkit_store::{
    Actor, AssignmentChange, AssignmentEdit, MemoryStore, Store, TargetName, import_tenant,
    sign_profiles,
};

/// A generated tenant in a memory store, and its shape.
fn tenant() -> (MemoryStore, Shape, Actor) {
    let shape = Shape::scaled(3000);
    let tenant = generate(&shape, 7);
    let ca = TestCa::ecdsa();
    let profiles = sign_profiles(&tenant, &ca);
    let actor = Actor {
        name: "t".into(),
        at: shape.around,
    };
    let mut store = MemoryStore::default();
    import_tenant(&mut store, &tenant, &profiles, &ca.developer.cert, &actor).expect("import");
    (store, shape, actor)
}

/// Edits that add, replace and clear targets, naming groups of `t`.
fn edits(t: &provkit_policy::Tenant) -> [AssignmentEdit; 4] {
    let group = |i: usize| TargetName::Group(t.groups[i % t.groups.len()].name.clone());
    [
        AssignmentEdit::Add {
            include: vec![TargetName::AllDevices],
            exclude: vec![],
        },
        AssignmentEdit::Replace {
            include: vec![TargetName::AllUsers, group(3)],
            exclude: vec![group(0), group(1)],
        },
        AssignmentEdit::Replace {
            include: vec![group(2), group(5), group(8)],
            exclude: vec![group(4)],
        },
        AssignmentEdit::Replace {
            include: vec![],
            exclude: vec![],
        },
    ]
}

/// Asserts that both answers are the same change or the same refusal;
/// true when the change moves devices.
fn same(
    slow: Result<AssignmentChange, ServiceError>,
    fast: Result<AssignmentChange, ServiceError>,
    what: &str,
) -> bool {
    match (slow, fast) {
        (Ok(slow), Ok(fast)) => {
            assert_eq!(fast, slow, "{what}");
            !slow.devices_gaining.is_empty() || !slow.devices_losing.is_empty()
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "{what}");
            false
        }
        (a, b) => panic!("{what}: {a:?} against {b:?}"),
    }
}

#[test]
fn preview_on_the_engine_equals_the_stores_preview() {
    let (mut store, shape, _) = tenant();
    let engine = Engine::new(store.load_tenant().expect("load"), shape.around);
    let t = engine.tenant();
    let mut compared = 0;
    for p in t.profiles.iter().take(6) {
        for edit in &edits(t) {
            let slow = assign::preview(&mut store, &p.uuid, edit, shape.around);
            // The console's sample: the same counts, the first UDIDs.
            if let Ok(whole) = &slow {
                let sample =
                    assign::preview_sample_on(&mut store, &engine, &p.uuid, edit, shape.around, 3)
                        .expect("sample");
                assert_eq!(
                    (sample.gaining, sample.losing),
                    (whole.devices_gaining.len(), whole.devices_losing.len())
                );
                let first = |v: &[String]| v.iter().take(3).cloned().collect::<Vec<_>>();
                assert_eq!(sample.change.devices_gaining, first(&whole.devices_gaining));
                assert_eq!(sample.change.devices_losing, first(&whole.devices_losing));
            }
            let fast = assign::preview_on(&mut store, &engine, &p.uuid, edit, shape.around);
            compared += usize::from(same(slow, fast, &format!("{} {edit:?}", p.uuid)));
        }
    }
    assert!(
        compared >= 6,
        "edits that move devices were compared: {compared}"
    );
    // Nothing was written by either.
    assert_eq!(
        Engine::new(store.load_tenant().expect("load"), shape.around).plan(),
        engine.plan()
    );
}

/// Saved edits: the devices of `edit_on` come from an engine built before
/// any of them (a snapshot that has fallen behind the store's targets),
/// yet equal those of the store's own edit, which plans the tenant twice
/// in its transaction; and both stores end the same.
#[test]
fn edit_on_the_engine_equals_the_stores_edit() {
    let (mut slow_store, shape, actor) = tenant();
    let (mut fast_store, _, _) = tenant();
    let engine = Engine::new(fast_store.load_tenant().expect("load"), shape.around);
    let t = engine.tenant();
    let mut moved = 0;
    for p in t.profiles.iter().take(6) {
        for edit in &edits(t) {
            let slow = assign::edit(&mut slow_store, &p.uuid, edit, shape.around, &actor);
            let fast = assign::edit_on(
                &mut fast_store,
                &engine,
                &p.uuid,
                edit,
                shape.around,
                &actor,
            );
            moved += usize::from(same(slow, fast, &format!("{} {edit:?}", p.uuid)));
        }
    }
    assert!(moved >= 6, "edits that move devices were compared: {moved}");
    assert_eq!(
        Engine::new(fast_store.load_tenant().expect("load"), shape.around).plan(),
        Engine::new(slow_store.load_tenant().expect("load"), shape.around).plan()
    );
}

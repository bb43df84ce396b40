//! The console's assignment preview from an engine in memory equals the
//! store's own preview (two plans of the tenant in a rolled-back
//! transaction), on a generated tenant with nested groups, several edits
//! of several profiles.
#![cfg(feature = "generate")]

use provkit_policy::Engine;
use provkit_policy::generate::{Shape, generate};
use provkit_profile::fixtures::TestCa;
use provkit_service::assign;
use provkit_store::{
    Actor, AssignmentEdit, MemoryStore, Store, TargetName, import_tenant, sign_profiles,
};

#[test]
fn preview_on_the_engine_equals_the_stores_preview() {
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
    let engine = Engine::new(store.load_tenant().expect("load"), shape.around);
    let t = engine.tenant();
    let group = |i: usize| TargetName::Group(t.groups[i % t.groups.len()].name.clone());
    let edits = [
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
    ];
    let mut compared = 0;
    for p in t.profiles.iter().take(6) {
        for edit in &edits {
            let slow = assign::preview(&mut store, &p.uuid, edit, shape.around);
            let fast = assign::preview_on(&mut store, &engine, &p.uuid, edit, shape.around);
            match (slow, fast) {
                (Ok(slow), Ok(fast)) => {
                    assert_eq!(fast, slow, "{} {edit:?}", p.uuid);
                    compared += usize::from(
                        !slow.devices_gaining.is_empty() || !slow.devices_losing.is_empty(),
                    );
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{} {edit:?}: {a:?} against {b:?}", p.uuid),
            }
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

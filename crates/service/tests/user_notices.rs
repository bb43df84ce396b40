//! A device user's notice is for the device's organization group, so the
//! channels there (and above) hear of it (regression: every device user's
//! notice was for the root group, so only root channels got them).

use provkit_policy::Engine;
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_store::{Actor, AssignmentEdit, MemoryStore, Replace, Store, TargetName};

const UUID: &str = "5D1AB0E1-7C3B-4F1E-9A55-0123456789AB";

#[test]
fn user_notices_went_to_the_root_group_only() {
    let a = Actor {
        name: "t".into(),
        at: utc(2026, 12, 1),
    };
    let death = utc(2027, 1, 15);
    let mut store = MemoryStore::default();
    let ca = TestCa::rsa();
    provkit_service::trust::add_anchor(&mut store, ca.root.cert.der(), &a).expect("anchor");
    store.add_org_group("Global/EMEA", &a).expect("group");
    let bytes = signed_profile(
        &ca,
        &ProfileSpec {
            uuid: UUID.into(),
            all_devices: true,
            devices: None,
            expiration: death,
            ..ProfileSpec::default()
        },
    );
    store.add_profile(&bytes, &a).expect("profile");
    let app = serde_json::json!([{"bundle_id": "com.example.field", "version": "2.0"}]);
    let inv = serde_json::from_value(serde_json::json!({
        "users": ["ann", "bob"],
        "devices": [
            {"udid": "D1", "user": "ann", "apps": app, "org_group": "Global/EMEA"},
            {"udid": "D2", "user": "bob", "apps": app}
        ]
    }))
    .expect("inventory");
    store
        .apply_inventory(&inv, &Replace::Nothing, false, a.at, &a)
        .expect("inventory");
    store
        .edit_assignments(
            UUID,
            &AssignmentEdit::Add {
                include: vec![TargetName::AllUsers],
                exclude: vec![],
            },
            a.at,
            &a,
        )
        .expect("assign");
    let field: provkit_store::AppRecord = serde_json::from_value(serde_json::json!({
        "bundle_id": "com.example.field", "version": "2.0", "team": "TEAMID1234",
        "profile_uuid": UUID, "certificate_sha256": "00".repeat(32),
        "certificate_not_after": "2029-01-01T00:00:00Z"
    }))
    .expect("app record");
    store.add_app(&field, &a).expect("app");

    let at = death - chrono::Duration::days(20);
    let engine = Engine::new(store.load_tenant().expect("tenant"), at);
    let view = provkit_service::plan::plan_with(&engine);
    let notices = provkit_service::notify::notices_of(&mut store, &engine, &view).expect("notices");
    let group_of = |udid: &str| {
        notices
            .iter()
            .find(|n| n.facts["item_kind"] == "device-user" && n.facts["device"] == udid)
            .map(|n| (n.org_group.clone(), n.facts["org_group"].clone()))
    };
    assert_eq!(
        group_of("D1"),
        Some(("Global/EMEA".into(), serde_json::json!("Global/EMEA"))),
        "{notices:#?}"
    );
    assert_eq!(
        group_of("D2"),
        Some(("Global".into(), serde_json::json!("Global"))),
        "{notices:#?}"
    );
}

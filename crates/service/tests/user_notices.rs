//! A device user's notice is for the device's organization group, so the
//! channels there (and above) hear of it (regression: every device user's
//! notice was for the root group, so only root channels got them).

mod common;

use provkit_policy::Engine;
use provkit_profile::fixtures::{TestCa, utc};
use provkit_store::{Actor, MemoryStore, Store};

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
    store.add_org_group("Global/EMEA", &a).expect("group");
    let app = serde_json::json!([{"bundle_id": "com.example.field", "version": "2.0"}]);
    common::profile_for_all_users(
        &mut store,
        &ca,
        &a,
        UUID,
        death,
        serde_json::json!({
            "users": ["ann", "bob"],
            "devices": [
                {"udid": "D1", "user": "ann", "apps": app, "org_group": "Global/EMEA"},
                {"udid": "D2", "user": "bob", "apps": app}
            ]
        }),
        &[("com.example.field", "2.0")],
    );

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

//! Setup shared by the service tests.
#![allow(dead_code)] // each test crate uses part of it

use provkit_profile::fixtures::{TestCa, utc};
use provkit_store::{Actor, MemoryStore};

/// The instant the tests plan at, an admin acting then, the RSA test CA and
/// an empty memory store.
pub(crate) fn setup() -> (chrono::DateTime<chrono::Utc>, Actor, TestCa, MemoryStore) {
    let at = utc(2026, 11, 22);
    let admin = Actor {
        name: "admin".into(),
        at,
    };
    (at, admin, TestCa::rsa(), MemoryStore::default())
}

/// A tenant of one profile (`uuid`, dying at `death`, trusted through
/// `ca`) assigned to All users, the inventory `inventory` (JSON), and the
/// apps `apps` (bundle id, version) signed with the profile.
pub(crate) fn profile_for_all_users(
    store: &mut MemoryStore,
    ca: &TestCa,
    a: &Actor,
    uuid: &str,
    death: chrono::DateTime<chrono::Utc>,
    inventory: serde_json::Value,
    apps: &[(&str, &str)],
) {
    use provkit_profile::fixtures::{ProfileSpec, signed_profile};
    use provkit_store::{AssignmentEdit, Replace, Store, TargetName};
    provkit_service::trust::add_anchor(store, ca.root.cert.der(), a).expect("anchor");
    let bytes = signed_profile(
        ca,
        &ProfileSpec {
            expiration: death,
            ..ProfileSpec::for_all_devices(uuid)
        },
    );
    store.add_profile(&bytes, a).expect("profile");
    let inv = serde_json::from_value(inventory).expect("inventory");
    store
        .apply_inventory(&inv, &Replace::Nothing, false, a.at, a)
        .expect("inventory");
    store
        .edit_assignments(
            uuid,
            &AssignmentEdit::Add {
                include: vec![TargetName::AllUsers],
                exclude: vec![],
            },
            a.at,
            a,
        )
        .expect("assign");
    for (bundle, version) in apps {
        let app: provkit_store::AppRecord = serde_json::from_value(serde_json::json!({
            "bundle_id": bundle, "version": version, "team": "TEAMID1234",
            "profile_uuid": uuid, "certificate_sha256": "00".repeat(32),
            "certificate_not_after": "2029-01-01T00:00:00Z"
        }))
        .expect("app record");
        store.add_app(&app, a).expect("app");
    }
}

//! A profile's own notification settings: its own stages make a message
//! at a stage the tenant does not have (90 days); off makes none; `{}`
//! goes back to the tenant's stages. Bad stages are refused.

use chrono::{DateTime, Duration, Utc};
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_service::notify::{ChannelOptions, add_channel};
use provkit_store::*;

const A: &str = "0E0E0E0E-0000-4000-8000-00000000C001";
const B: &str = "0E0E0E0E-0000-4000-8000-00000000C002";

fn at() -> DateTime<Utc> {
    utc(2027, 3, 1)
}

#[test]
fn own_stages_and_the_off_switch() {
    let mut store = MemoryStore::default();
    let a = Actor {
        name: "t".into(),
        at: at(),
    };
    let ca = TestCa::rsa();
    for uuid in [A, B] {
        let bytes = signed_profile(
            &ca,
            &ProfileSpec {
                uuid: uuid.into(),
                all_devices: true,
                devices: None,
                expiration: at() + Duration::days(80),
                ..ProfileSpec::default()
            },
        );
        store.add_profile(&bytes, &a).expect("profile");
    }
    // In use on a device, so the plan warns about them.
    let inv: Inventory =
        serde_json::from_value(serde_json::json!({"devices": [{"udid": "D1"}]})).expect("inv");
    store
        .apply_inventory(&inv, &Replace::Nothing, false, at(), &a)
        .expect("inventory");
    for uuid in [A, B] {
        let edit = AssignmentEdit::Add {
            include: vec![TargetName::AllDevices],
            exclude: vec![],
        };
        store
            .edit_assignments(uuid, &edit, at(), &a)
            .expect("assign");
    }
    add_channel(
        &mut store,
        "hook",
        ChannelKind::Webhook,
        "https://example.invalid/hook",
        &ChannelOptions::default().secret(Some("k")),
        &a,
    )
    .expect("channel");
    let bad = NotifySettings {
        off: false,
        stages: Some(vec![-1]),
        user_stage: None,
    };
    assert!(matches!(
        store.set_notify_settings(A, &bad, &a),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.set_notify_settings(
            "0E0E0E0E-FFFF-4000-8000-000000000000",
            &NotifySettings::default(),
            &a
        ),
        Err(StoreError::UnknownReference { .. })
    ));
    // 80 days out: the tenant's stages (60, 30, 7, 0) make nothing yet.
    provkit_service::plan::plan_and_enqueue(&mut store, at(), at()).expect("plan");
    assert!(store.notices().expect("notices").is_empty());
    // A's own 90-day stage makes one; B off makes none, even at 59 days.
    store
        .set_notify_settings(
            A,
            &NotifySettings {
                off: false,
                stages: Some(vec![90, 14]),
                user_stage: None,
            },
            &a,
        )
        .expect("A's stages");
    store
        .set_notify_settings(
            B,
            &NotifySettings {
                off: true,
                stages: None,
                user_stage: None,
            },
            &a,
        )
        .expect("B off");
    provkit_service::plan::plan_and_enqueue(&mut store, at(), at()).expect("plan");
    let made = store.notices().expect("notices");
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!((made[0].item.as_str(), made[0].stage), (A, 90));
    let later = at() + Duration::days(21);
    provkit_service::plan::plan_and_enqueue(&mut store, later, later).expect("plan");
    let made = store.notices().expect("notices");
    assert!(made.iter().all(|n| n.item == A), "B stays silent: {made:?}");
    // Back to the tenant's stages: B's 60-day message goes.
    store
        .set_notify_settings(B, &NotifySettings::default(), &a)
        .expect("B default");
    provkit_service::plan::plan_and_enqueue(&mut store, later, later).expect("plan");
    let made = store.notices().expect("notices");
    assert!(
        made.iter().any(|n| n.item == B && n.stage == 60),
        "{made:?}"
    );
    assert!(
        store
            .audit_log()
            .expect("audit")
            .iter()
            .filter(|e| e.action == "notify-settings")
            .count()
            >= 3
    );
}

#[test]
fn tenant_notice_stages_are_checked_sorted_audited_and_reach_the_engine() {
    use provkit_store::{Actor, MemoryStore, Store};
    let at = provkit_profile::fixtures::utc(2026, 11, 22);
    let admin = Actor {
        name: "admin".into(),
        at,
    };
    let mut store = MemoryStore::default();
    let mut stages = store.load_tenant().expect("tenant").config;
    assert_eq!(stages.admin_thresholds_days, [60, 30, 7, 0], "the defaults");
    for bad in [vec![], vec![7, 7], vec![30, 5000], vec![-1]] {
        stages.admin_thresholds_days = bad.clone();
        assert!(store.set_notice_stages(&stages, &admin).is_err(), "{bad:?}");
    }
    stages.admin_thresholds_days = vec![30, 90, 0];
    stages.user_notice_days = 14;
    store.set_notice_stages(&stages, &admin).expect("set");
    let got = store.load_tenant().expect("tenant").config;
    assert_eq!(got.admin_thresholds_days, [90, 30, 0]);
    assert_eq!(got.user_notice_days, 14);
    let log = store.audit_log().expect("audit");
    assert_eq!(
        log.iter().filter(|e| e.action == "notice-stages").count(),
        1,
        "only the accepted change"
    );
    store.add_org_group("Global/EMEA", &admin).expect("og");
    store.set_scope("Global/EMEA");
    assert!(
        store.set_notice_stages(&stages, &admin).is_err(),
        "below the root"
    );
}

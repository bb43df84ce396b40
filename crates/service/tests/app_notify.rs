//! An app's own notification settings and device users' email: an app
//! switched off leaves its profile's messages (none when every app of the
//! profile is off) and its users hear nothing; an app's own admin stages
//! reach the profile it uses; its own device-user stage moves its users'
//! notices earlier or later; a user whose address the inventory knows
//! gets the notice by email too, addressed to them alone.

mod common;

use chrono::{DateTime, Duration, Utc};
use provkit_policy::Engine;
use provkit_profile::fixtures::{TestCa, utc};
use provkit_store::Actor;
use provkit_store::{ChannelKind, MemoryStore, Notice, NotifySettings, Store, StoreError};

const UUID: &str = "5D1AB0E1-7C3B-4F1E-9A55-0123456789AC";
const FIELD: &str = "com.example.field";
const DESK: &str = "com.example.desk";

fn actor() -> Actor {
    Actor {
        name: "t".into(),
        at: utc(2026, 12, 1),
    }
}

fn death() -> DateTime<Utc> {
    utc(2027, 3, 1)
}

/// One profile on every user's device, used by two apps; ann's address is
/// known, bob's is not.
fn tenant() -> MemoryStore {
    let mut store = MemoryStore::default();
    let apps = serde_json::json!([
        {"bundle_id": FIELD, "version": "2.0"},
        {"bundle_id": DESK, "version": "1.0"}
    ]);
    common::profile_for_all_users(
        &mut store,
        &TestCa::rsa(),
        &actor(),
        UUID,
        death(),
        serde_json::json!({
            "users": ["ann", "bob"],
            "emails": {"ann": "ann@example.com"},
            "devices": [
                {"udid": "D1", "user": "ann", "apps": apps},
                {"udid": "D2", "user": "bob", "apps": apps}
            ]
        }),
        &[(FIELD, "2.0"), (DESK, "1.0")],
    );
    store
}

fn notices(store: &mut MemoryStore, days_before: i64) -> Vec<Notice> {
    let at = death() - Duration::days(days_before) + Duration::hours(1);
    let engine = Engine::new(store.load_tenant().expect("tenant"), at);
    let view = provkit_service::plan::plan_with(&engine);
    provkit_service::notify::notices_of(store, &engine, &view).expect("notices")
}

fn set(store: &mut MemoryStore, bundle: &str, settings: NotifySettings) {
    store
        .set_app_notify_settings(bundle, &settings, &actor())
        .expect("settings");
}

/// The device users' notices as (device, app bundle, stage, channel kind).
fn user_notices(n: &[Notice]) -> Vec<(String, String, i64, Option<ChannelKind>)> {
    let mut out: Vec<_> = n
        .iter()
        .filter(|n| n.facts["item_kind"] == "device-user")
        .map(|n| {
            let app = n.facts["app"].as_str().unwrap_or_default();
            (
                n.facts["device"].as_str().unwrap_or_default().to_owned(),
                app.split(' ').next().unwrap_or_default().to_owned(),
                n.stage,
                n.only,
            )
        })
        .collect();
    out.sort_by_key(|x| format!("{x:?}"));
    out
}

#[test]
fn app_settings_silence_move_and_add_stages() {
    let mut store = tenant();
    // 20 days out: the tenant's stages (admin 30, users 30).
    let n = notices(&mut store, 20);
    let profile: Vec<&Notice> = n.iter().filter(|n| n.item == UUID).collect();
    assert_eq!(profile.len(), 1, "{n:#?}");
    assert_eq!(profile[0].stage, 30);
    assert_eq!(profile[0].facts["apps"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        user_notices(&n).len(),
        4 + 2,
        "two devices × two apps, ann's by email too"
    );

    // The desk app switched off: its users hear nothing and the profile's
    // message names the field app only.
    set(
        &mut store,
        DESK,
        NotifySettings {
            off: true,
            ..NotifySettings::default()
        },
    );
    let n = notices(&mut store, 20);
    let profile: Vec<&Notice> = n.iter().filter(|n| n.item == UUID).collect();
    assert_eq!(profile.len(), 1);
    assert_eq!(
        profile[0].facts["apps"],
        serde_json::json!(["com.example.field 2.0"])
    );
    assert!(user_notices(&n).iter().all(|u| u.1 == FIELD), "{n:#?}");

    // Both off: no message about the profile at all, no user notices.
    set(
        &mut store,
        FIELD,
        NotifySettings {
            off: true,
            ..NotifySettings::default()
        },
    );
    let n = notices(&mut store, 20);
    assert!(n.is_empty(), "{n:#?}");

    // The field app's own admin stages (90, 10) reach its profile: a
    // message at 90 days, where the tenant's stages say nothing yet.
    set(
        &mut store,
        FIELD,
        NotifySettings {
            stages: Some(vec![10, 90]),
            ..NotifySettings::default()
        },
    );
    let n = notices(&mut store, 80);
    let profile: Vec<&Notice> = n.iter().filter(|n| n.item == UUID).collect();
    assert_eq!(profile.len(), 1, "{n:#?}");
    assert_eq!(
        (profile[0].stage, profile[0].stages.clone()),
        (90, vec![90, 10])
    );
    assert!(
        user_notices(&n).is_empty(),
        "80 days out no user stage is due"
    );

    // Its own device-user stage, 45 days: at 40 days its users hear of it
    // (the tenant's 30 days would not yet), at stage 45.
    set(
        &mut store,
        FIELD,
        NotifySettings {
            user_stage: Some(45),
            ..NotifySettings::default()
        },
    );
    let n = notices(&mut store, 40);
    assert_eq!(
        user_notices(&n),
        [
            (
                "D1".to_owned(),
                FIELD.to_owned(),
                45,
                Some(ChannelKind::Smtp)
            ),
            (
                "D1".to_owned(),
                FIELD.to_owned(),
                45,
                Some(ChannelKind::Webhook)
            ),
            (
                "D2".to_owned(),
                FIELD.to_owned(),
                45,
                Some(ChannelKind::Webhook)
            ),
        ],
        "{n:#?}"
    );
    // And a shorter one, 10 days: nothing at 20 days.
    set(
        &mut store,
        FIELD,
        NotifySettings {
            user_stage: Some(10),
            ..NotifySettings::default()
        },
    );
    let n = notices(&mut store, 20);
    assert!(user_notices(&n).is_empty(), "{n:#?}");
    let n = notices(&mut store, 5);
    assert_eq!(user_notices(&n).len(), 3, "{n:#?}");
}

#[test]
fn device_users_email_goes_to_the_user_alone() {
    let mut store = tenant();
    let n = notices(&mut store, 20);
    let mail: Vec<&Notice> = n
        .iter()
        .filter(|n| n.only == Some(ChannelKind::Smtp))
        .collect();
    assert_eq!(mail.len(), 2, "ann's two apps: {n:#?}");
    for m in &mail {
        assert_eq!(m.facts["user"], "ann");
        assert_eq!(m.facts["email"], "ann@example.com");
    }
    // The channel's own list is not used for a device user's notice.
    let channel = provkit_store::Channel {
        name: "mail".into(),
        kind: ChannelKind::Smtp,
        url: "smtp://127.0.0.1:2525".into(),
        secret: None,
        to: vec!["ops@example.com".into()],
        org_group: "Global".into(),
        template: None,
        created_by: "t".into(),
        created_at: actor().at,
    };
    assert_eq!(
        provkit_service::notify::recipients(&channel, &mail[0].facts),
        ["ann@example.com"]
    );
    let email = provkit_service::notify::email(&channel, &mail[0].facts);
    assert!(
        email.subject.contains("on your device"),
        "{}",
        email.subject
    );
    assert!(email.text.contains("device D1"), "{}", email.text);
    assert!(email.html.contains("ann"), "{}", email.html);
    // bob has no address: his notices are webhooks only.
    assert!(
        n.iter()
            .filter(|n| n.facts["user"] == "bob")
            .all(|n| n.only == Some(ChannelKind::Webhook))
    );
}

#[test]
fn app_settings_are_checked() {
    let mut store = tenant();
    let a = actor();
    assert!(matches!(
        store.set_app_notify_settings("com.example.unknown", &NotifySettings::default(), &a),
        Err(StoreError::UnknownReference { .. })
    ));
    for bad in [
        NotifySettings {
            user_stage: Some(-1),
            ..NotifySettings::default()
        },
        NotifySettings {
            stages: Some(vec![]),
            ..NotifySettings::default()
        },
        NotifySettings {
            stages: Some(vec![4000]),
            ..NotifySettings::default()
        },
    ] {
        assert!(
            matches!(
                store.set_app_notify_settings(FIELD, &bad, &a),
                Err(StoreError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    // A user stage belongs to apps, not profiles.
    assert!(matches!(
        store.set_notify_settings(
            UUID,
            &NotifySettings {
                user_stage: Some(20),
                ..NotifySettings::default()
            },
            &a
        ),
        Err(StoreError::Invalid(_))
    ));
    assert!(store.app_notify_settings().expect("none").is_empty());
    set(
        &mut store,
        FIELD,
        NotifySettings {
            user_stage: Some(20),
            ..NotifySettings::default()
        },
    );
    assert_eq!(store.app_notify_settings().expect("one").len(), 1);
    set(&mut store, FIELD, NotifySettings::default());
    assert!(store.app_notify_settings().expect("cleared").is_empty());
    let audited = store
        .audit_log()
        .expect("audit")
        .iter()
        .filter(|e| e.action == "notify-settings" && e.object == format!("app:{FIELD}"))
        .count();
    assert_eq!(audited, 2);
}

/// When an app's signing certificate dies before its profile, the message
/// is about the certificate: item kind `certificate`, its SHA-256, re-sign.
#[test]
fn a_certificate_dying_first_is_the_item() {
    let mut store = tenant();
    let dies = utc(2027, 2, 10);
    let app: provkit_store::AppRecord = serde_json::from_value(serde_json::json!({
        "bundle_id": FIELD, "version": "2.1", "team": "TEAMID1234",
        "profile_uuid": UUID, "certificate_sha256": "ab".repeat(32),
        "certificate_not_after": dies
    }))
    .expect("app record");
    store.add_app(&app, &actor()).expect("app");
    let at = dies - Duration::days(20);
    let engine = Engine::new(store.load_tenant().expect("tenant"), at);
    let view = provkit_service::plan::plan_with(&engine);
    let n = provkit_service::notify::notices_of(&mut store, &engine, &view).expect("notices");
    let m = n
        .iter()
        .find(|n| n.item == UUID)
        .expect("the profile's message");
    assert_eq!(m.facts["item_kind"], "certificate", "{m:#?}");
    assert_eq!(m.facts["fingerprint"], "ab".repeat(32));
    assert_eq!(m.facts["action"], "re-sign");
    assert_eq!(
        m.facts["uuid"], UUID,
        "the profile it signs for stays named"
    );
}

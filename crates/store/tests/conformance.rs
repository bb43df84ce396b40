//! One conformance suite, run against the in-memory, SQLite and PostgreSQL
//! backends. The PostgreSQL run needs `PROVKIT_DATABASE_URL`; without it
//! the run is skipped with a notice (`.ci/run` sets it).

use chrono::{TimeZone, Utc};
use provkit_policy::{Command, Engine, GroupKind};
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_store::*;
use std::sync::OnceLock;

fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(TestCa::rsa)
}

fn actor() -> Actor {
    Actor {
        name: "admin@example.com".into(),
        at: Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
            .single()
            .expect("date"),
    }
}

fn profile(uuid: &str, bundle: &str, expiration_year: i32) -> Vec<u8> {
    signed_profile(
        ca(),
        &ProfileSpec {
            uuid: uuid.into(),
            bundle_id: bundle.into(),
            devices: None,
            all_devices: true,
            expiration: utc(expiration_year, 1, 15),
            ..ProfileSpec::default()
        },
    )
}

/// An iOS device with nothing else: no user, apps, reports or group.
fn bare_device(udid: String) -> DeviceRecord {
    DeviceRecord {
        udid,
        platform: "iOS".into(),
        user: None,
        apps: vec![],
        reported: vec![],
        org_group: None,
        enrollment_id: None,
    }
}

const OLD: &str = "AAAAAAAA-1111-4111-8111-11111111111F";
const NEW: &str = "BBBBBBBB-2222-4222-8222-22222222222E";
const NEWER: &str = "CCCCCCCC-3333-4333-8333-33333333333F";

fn inventory() -> Inventory {
    serde_json::from_value(serde_json::json!({
        "users": ["alice", "bob"],
        "devices": [
            {"udid": "UDID-A", "user": "alice", "apps": [{"bundle_id": "com.example.app", "version": "1.0"}]},
            {"udid": "UDID-B", "user": "bob"},
            {"udid": "UDID-K"}
        ],
        "groups": [
            {"name": "Sales", "kind": "user", "members": ["alice"], "subgroups": ["Sales EU"]},
            {"name": "Sales EU", "kind": "user", "members": ["bob"]},
            {"name": "Kiosks", "kind": "device", "members": ["UDID-K"]}
        ]
    }))
    .expect("inventory json")
}

/// A planned install of `profile` on `udid`, made at `at`.
fn install(
    command_uuid: &str,
    udid: &str,
    profile: &str,
    at: chrono::DateTime<Utc>,
) -> OutboxEntry {
    OutboxEntry {
        command_uuid: command_uuid.into(),
        udid: udid.into(),
        request_type: "InstallProvisioningProfile".into(),
        profile_uuid: profile.into(),
        status: CommandStatus::Planned,
        error_chain: None,
        retries: 0,
        created_at: at,
        updated_at: at,
    }
}

/// The suite: every backend must behave the same.
fn conformance(store: &mut dyn Store, backend: &str) {
    let a = actor();
    // Bad input writes nothing.
    assert!(
        matches!(
            store.add_profile(b"not a profile", &a),
            Err(StoreError::Profile(_))
        ),
        "{backend}"
    );
    assert!(store.profiles().expect("profiles").is_empty());
    // A batch is all-or-nothing: a bad profile, or an unknown group in an
    // assignment, refuses everything in it.
    let mut batch = ImportBatch {
        profiles: vec![profile(OLD, "com.example.app", 2027), b"junk".to_vec()],
        inventory: inventory(),
        ..ImportBatch::default()
    };
    assert!(
        matches!(store.import_batch(&batch, &a), Err(StoreError::Profile(_))),
        "{backend}"
    );
    batch.profiles.pop();
    batch.assignments = vec![(OLD.into(), vec![TargetName::parse("Ghosts")], vec![])];
    assert!(matches!(
        store.import_batch(&batch, &a),
        Err(StoreError::UnknownReference { kind: "group", .. })
    ));
    assert!(
        store.profiles().expect("profiles").is_empty(),
        "{backend}: refused batches wrote nothing"
    );
    assert!(store.load_tenant().expect("tenant").devices.is_empty());
    assert!(store.audit_log().expect("audit").is_empty());

    // Versions: identical bytes are the same record; other bytes a new version.
    let v1 = store
        .add_profile(&profile(OLD, "com.example.app", 2027), &a)
        .expect("add");
    assert_eq!(v1.version, 1);
    assert_eq!(
        store
            .add_profile(&profile(OLD, "com.example.app", 2027), &a)
            .expect("again"),
        v1
    );
    let v2 = store
        .add_profile(
            &profile(&OLD.to_lowercase(), "com.example.app", 2027).to_vec(),
            &a,
        )
        .expect("v2");
    assert_eq!(
        v2.version, 2,
        "{backend}: same UUID (any case), other bytes"
    );
    assert_eq!(store.profile_versions(OLD).expect("versions").len(), 2);
    assert_eq!(store.profiles().expect("profiles").len(), 1);
    let bytes = profile(NEW, "com.example.app", 2028);
    store.add_profile(&bytes, &a).expect("new");
    assert_eq!(
        store.profile_bytes(NEW).expect("bytes"),
        bytes,
        "{backend}: bytes kept as uploaded"
    );

    // Inventory: unknown references are refused by name and nothing is written.
    let mut bad = inventory();
    bad.devices[1].user = Some("mallory".into());
    match store.import_inventory(&bad, &a) {
        Err(StoreError::UnknownReference {
            kind: "user", name, ..
        }) => assert_eq!(name, "mallory"),
        other => panic!("{backend}: {other:?}"),
    }
    let mut bad = inventory();
    bad.groups[0].subgroups.push("Nowhere".into());
    assert!(matches!(
        store.import_inventory(&bad, &a),
        Err(StoreError::UnknownReference { kind: "group", .. })
    ));
    assert!(
        store.load_tenant().expect("tenant").devices.is_empty(),
        "{backend}: a refused batch writes nothing"
    );
    store.import_inventory(&inventory(), &a).expect("inventory");
    // A later batch may refer to what is stored.
    let later: Inventory = serde_json::from_value(serde_json::json!({
        "devices": [{"udid": "UDID-C", "user": "alice"}],
        "groups": [{"name": "Kiosks 2", "kind": "device", "members": ["UDID-K", "UDID-C"], "subgroups": ["Kiosks"]}]
    }))
    .expect("json");
    store.import_inventory(&later, &a).expect("later batch");
    store.add_member("Sales EU", "alice", &a).expect("member");
    assert!(matches!(
        store.add_member("Sales", "UDID-A", &a),
        Err(StoreError::UnknownReference { .. })
    ));
    assert!(matches!(
        store.add_member("Sales", "Kiosks", &a),
        Err(StoreError::Invalid(_))
    ));

    // Apps link to profiles that exist.
    let app = AppRecord {
        bundle_id: "com.example.app".into(),
        version: "1.0".into(),
        team: "PROVKIT01".into(),
        profile_uuid: Some(OLD.into()),
        certificate_sha256: provkit_profile::hex(&ca().developer.cert.sha256_fingerprint()),
        certificate_not_after: ca().developer.cert.not_after(),
        report: Some(serde_json::json!({"valid": true, "findings": []})),
        org_group: None,
    };
    store.add_app(&app, &a).expect("app");
    let mut orphan = app.clone();
    orphan.profile_uuid = Some("33333333-3333-4333-8333-333333333333".into());
    assert!(matches!(
        store.add_app(&orphan, &a),
        Err(StoreError::UnknownReference {
            kind: "profile",
            ..
        })
    ));

    // Assignments: unknown groups refused; replace is all-or-nothing.
    store
        .set_assignments(
            OLD,
            &[TargetName::parse("Sales")],
            &[TargetName::parse("Kiosks")],
            &a,
        )
        .expect("assign");
    assert!(matches!(
        store.set_assignments(
            OLD,
            &[
                TargetName::parse("all-devices"),
                TargetName::parse("Ghosts")
            ],
            &[],
            &a
        ),
        Err(StoreError::UnknownReference { kind: "group", .. })
    ));
    assert_eq!(
        store.assignments().expect("assignments").len(),
        2,
        "{backend}: the refused edit changed nothing"
    );

    // The engine's snapshot loads, and plans.
    let tenant = store.load_tenant().expect("tenant");
    assert_eq!(
        (
            tenant.users.len(),
            tenant.devices.len(),
            tenant.groups.len()
        ),
        (2, 4, 4)
    );
    assert_eq!(tenant.profiles.len(), 2);
    let sales = tenant
        .groups
        .iter()
        .find(|g| g.name == "Sales")
        .expect("Sales");
    assert_eq!(sales.kind, GroupKind::User);
    let plan = Engine::new(tenant.clone(), utc(2026, 11, 22)).plan();
    // alice (UDID-A, UDID-C) and bob (via Sales EU) get the old profile; UDID-A also through its app.
    let installs: Vec<&str> = plan
        .devices
        .iter()
        .filter(|d| {
            d.commands
                .iter()
                .any(|c| matches!(c, Command::InstallProvisioningProfile { .. }))
        })
        .map(|d| d.udid.as_str())
        .collect();
    assert_eq!(installs, vec!["UDID-A", "UDID-B", "UDID-C"], "{backend}");

    // Renewal moves apps and assignments.
    // A renewal that cannot happen writes nothing, the successor included.
    let newer = profile(NEWER, "com.example.app", 2029);
    assert!(matches!(
        store.renew("99999999-0000-4000-8000-000000000000", &newer, None, &a),
        Err(StoreError::UnknownReference { .. })
    ));
    assert!(matches!(
        store.renew(OLD, b"not a profile", None, &a),
        Err(StoreError::Profile(_))
    ));
    assert!(
        store.profile_versions(NEWER).expect("newer").is_empty(),
        "{backend}"
    );
    let new_bytes = store.profile_bytes(NEW).expect("new bytes");
    let renewed = store.renew(OLD, &new_bytes, None, &a).expect("renew");
    assert_eq!(
        (renewed.uuid.as_str(), renewed.version),
        (NEW, 1),
        "{backend}"
    );
    assert_eq!(
        store.apps().expect("apps")[0].profile_uuid.as_deref(),
        Some(NEW)
    );
    assert!(
        store
            .assignments()
            .expect("a")
            .iter()
            .all(|x| x.profile_uuid == NEW)
    );
    assert_eq!(
        store
            .profiles()
            .expect("p")
            .iter()
            .find(|p| p.uuid.eq_ignore_ascii_case(OLD))
            .and_then(|p| p.successor.clone())
            .as_deref(),
        Some(NEW)
    );
    store.retire_profile(OLD, &a).expect("retire");

    // Outbox: planned, sent, NotNow (a retry), acknowledged.
    let entry = install("CMD-1", "UDID-A", NEW, a.at);
    store
        .enqueue(std::slice::from_ref(&entry))
        .expect("enqueue");
    store.enqueue(&[entry]).expect("enqueue is idempotent");
    store
        .record_result("CMD-1", CommandStatus::Sent, None, a.at)
        .expect("sent");
    store
        .record_result("CMD-1", CommandStatus::NotNow, None, a.at)
        .expect("not now");
    store
        .record_result(
            "CMD-1",
            CommandStatus::Error,
            Some("0xe8008015 no profile"),
            a.at,
        )
        .expect("error");
    let out = store.outbox().expect("outbox");
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].status, out[0].retries, out[0].error_chain.as_deref()),
        (CommandStatus::Error, 1, Some("0xe8008015 no profile"))
    );
    assert!(matches!(
        store.record_result("CMD-X", CommandStatus::Sent, None, a.at),
        Err(StoreError::UnknownReference { .. })
    ));

    // A stage is never notified twice.
    assert!(store.mark_notified(NEW, 30, a.at).expect("first"));
    assert!(
        !store
            .mark_notified(&NEW.to_lowercase(), 30, a.at)
            .expect("second")
    );
    assert!(store.mark_notified(NEW, 7, a.at).expect("next stage"));

    // The audit log has who, what, before and after.
    let log = store.audit_log().expect("audit");
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    for want in [
        "add-profile",
        "import-inventory",
        "add-member",
        "add-app",
        "set-assignments",
        "renew",
        "delete-profile",
    ] {
        assert!(
            actions.contains(&want),
            "{backend}: {want} missing from {actions:?}"
        );
    }
    let edit = log
        .iter()
        .find(|e| e.action == "set-assignments")
        .expect("edit");
    assert_eq!(edit.actor, "admin@example.com");
    assert!(edit.after.is_some() && edit.before.is_some());
}

/// A batch large enough for the bulk path (COPY on PostgreSQL), with names
/// that need escaping, round-trips exactly.
fn large_batch(store: &mut dyn Store, backend: &str) {
    let odd = [
        "tab\there",
        "back\\slash",
        "new\nline",
        "quote\"d",
        "crème brûlée",
        "\r\n",
    ];
    let users: Vec<String> = (0..6000)
        .map(|i| format!("{}-{i}", odd[i % odd.len()]))
        .collect();
    let inv = Inventory {
        users: users.clone(),
        devices: (0..6000)
            .map(|i| DeviceRecord {
                platform: if i % 3 == 0 { "tvOS" } else { "iOS" }.into(),
                user: Some(users[i].clone()),
                ..bare_device(format!("BULK-{i:05}"))
            })
            .collect(),
        groups: vec![],
        emails: Default::default(),
    };
    store.import_inventory(&inv, &actor()).expect("bulk import");
    let t = store.load_tenant().expect("load");
    let bulk: Vec<_> = t
        .devices
        .iter()
        .filter(|d| d.udid.starts_with("BULK-"))
        .collect();
    assert_eq!(bulk.len(), 6000, "{backend}");
    // The engine's tenant holds one string per platform, shared.
    let (tv, ios) = (&bulk[0].platform, &bulk[1].platform);
    for d in &bulk {
        let i: usize = d.udid[5..].parse().expect("index");
        let shared = if i.is_multiple_of(3) { tv } else { ios };
        assert_eq!(&*d.platform, &**shared, "{backend}: platform kept");
        assert!(
            std::sync::Arc::ptr_eq(&d.platform, shared),
            "{backend}: one string per platform"
        );
    }
    assert_eq!((&**tv, &**ios), ("tvOS", "iOS"), "{backend}");
    for d in bulk {
        let i: usize = d.udid[5..].parse().expect("index");
        assert_eq!(
            t.users[d.user.expect("user").index()].name,
            users[i],
            "{backend}: escaped names survive"
        );
    }
    // A primary user is found by the name as stored, escapes and all
    // (the check looks for the name in each device's document first).
    for i in [0usize, 1, 2, 3, 4, 5] {
        match store.remove(&Removal::User(users[i].clone()), &actor()) {
            Err(StoreError::Invalid(m)) => {
                assert!(m.contains(&format!("BULK-{i:05}")), "{backend}: {m}");
                assert_eq!(m.matches("BULK-").count(), 1, "{backend}: {m}");
            }
            other => panic!("{backend}: {:?}: {other:?}", users[i]),
        }
    }
}

/// Regression: a later batch naming an existing group (to nest a new
/// subgroup in it) replaced the group's members with none. Merging is the
/// default, replacing is explicit, a dry run writes nothing, and a batch is
/// validated whole before anything is written.
fn inventory_import_replaced_group_members(store: &mut dyn Store, backend: &str) {
    let a = actor();
    let at = utc(2026, 11, 22);
    let first: Inventory = serde_json::from_value(serde_json::json!({
        "users": ["m-ann", "m-ben", "m-cy"],
        "devices": [{"udid": "M-D1", "user": "m-ann", "apps": [{"bundle_id": "com.m.app", "version": "1"}]}],
        "groups": [{"name": "M-Sales", "kind": "user", "members": ["m-ann", "m-ben", "m-cy"]}]
    }))
    .expect("json");
    let c = store
        .apply_inventory(&first, &Replace::Nothing, false, at, &a)
        .expect("first");
    assert!(c.written);
    assert_eq!(c.users_added.len(), 3, "{backend}");
    let members = |store: &mut dyn Store, name: &str| -> Vec<String> {
        let mut m = store
            .groups()
            .expect("groups")
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| g.members)
            .unwrap_or_default();
        m.sort();
        m
    };
    // The reported case: a batch that nests a new subgroup in M-Sales.
    let later: Inventory = serde_json::from_value(serde_json::json!({
        "users": ["m-dee"],
        "devices": [{"udid": "M-D1"}],
        "groups": [
            {"name": "M-Sales EU", "kind": "user", "members": ["m-dee"]},
            {"name": "M-Sales", "kind": "user", "subgroups": ["M-Sales EU"]}
        ]
    }))
    .expect("json");
    let dry = store
        .apply_inventory(&later, &Replace::Nothing, true, at, &a)
        .expect("dry run");
    assert!(!dry.written);
    assert!(
        !store
            .groups()
            .expect("groups")
            .iter()
            .any(|g| g.name == "M-Sales EU"),
        "{backend}: a dry run writes nothing"
    );
    let c = store
        .apply_inventory(&later, &Replace::Nothing, false, at, &a)
        .expect("merge");
    assert_eq!(
        c,
        InventoryChange {
            written: true,
            ..dry
        },
        "{backend}: the dry run told the truth"
    );
    assert_eq!(
        members(store, "M-Sales"),
        ["m-ann", "m-ben", "m-cy"],
        "{backend}: members kept"
    );
    let sales = c
        .groups
        .iter()
        .find(|g| g.name == "M-Sales")
        .expect("change");
    assert_eq!(sales.subgroups_added, ["M-Sales EU"]);
    assert!(sales.members_removed.is_empty());
    let dev = store
        .load_tenant()
        .expect("tenant")
        .devices
        .into_iter()
        .find(|d| d.udid == "M-D1")
        .expect("device");
    assert!(
        dev.user.is_some(),
        "{backend}: a re-listed device keeps its user"
    );
    assert!(
        c.devices_updated.is_empty(),
        "{backend}: and its apps: {:?}",
        c.devices_updated
    );
    let stored = store.inventory().expect("inventory");
    let d1 = stored
        .devices
        .iter()
        .find(|d| d.udid == "M-D1")
        .expect("stored device");
    assert_eq!(
        d1.apps.len(),
        1,
        "{backend}: a re-listed device keeps its apps"
    );

    // Replacing is explicit, per group or per batch, and says what goes.
    let only_ann: Inventory = serde_json::from_value(serde_json::json!({
        "groups": [{"name": "M-Sales", "kind": "user", "members": ["m-ann"]}]
    }))
    .expect("json");
    let c = store
        .apply_inventory(
            &only_ann,
            &Replace::Groups(vec!["M-Sales".into()]),
            false,
            at,
            &a,
        )
        .expect("replace");
    assert_eq!(c.groups[0].members_removed, ["m-ben", "m-cy"], "{backend}");
    assert_eq!(c.groups[0].subgroups_removed, ["M-Sales EU"], "{backend}");
    assert_eq!(members(store, "M-Sales"), ["m-ann"]);

    // Validated whole: each refusal names the problem and writes nothing.
    let before = store.groups().expect("groups");
    for (bad, needle) in [
        (serde_json::json!({"users": ["m-x", "m-x"]}), "listed twice"),
        (serde_json::json!({"users": [""]}), "empty"),
        (
            serde_json::json!({"devices": [{"udid": "M-D9", "platform": "Symbian"}]}),
            "unknown platform",
        ),
        (
            serde_json::json!({"groups": [{"name": "all-users", "kind": "user"}]}),
            "reserved",
        ),
        (
            serde_json::json!({"groups": [{"name": "M-G", "kind": "user"}, {"name": "M-G", "kind": "device"}]}),
            "different kinds",
        ),
        (
            serde_json::json!({"groups": [{"name": "M-Sales", "kind": "device"}]}),
            "is a user group",
        ),
    ] {
        let inv: Inventory = serde_json::from_value(bad.clone()).expect("json");
        match store.apply_inventory(&inv, &Replace::Nothing, false, at, &a) {
            Err(StoreError::Invalid(m)) => assert!(m.contains(needle), "{backend}: {bad}: {m}"),
            other => panic!("{backend}: {bad}: {other:?}"),
        }
    }
    assert_eq!(
        store.groups().expect("groups"),
        before,
        "{backend}: nothing written"
    );

    // Removals take things out of every group, refuse what is referred to.
    match store.remove(&Removal::User("m-ann".into()), &a) {
        Err(StoreError::Invalid(m)) => assert!(m.contains("M-D1"), "{backend}: {m}"),
        other => panic!("{backend}: {other:?}"),
    }
    assert_eq!(
        store
            .remove(&Removal::Device("M-D1".into()), &a)
            .expect("device"),
        Vec::<String>::new()
    );
    assert_eq!(
        store
            .remove(&Removal::User("m-ann".into()), &a)
            .expect("user"),
        ["M-Sales"],
        "{backend}"
    );
    assert!(members(store, "M-Sales").is_empty(), "{backend}");
    assert!(matches!(
        store.remove(&Removal::Group("M-Nowhere".into()), &a),
        Err(StoreError::UnknownReference { .. })
    ));
    assert!(
        store
            .audit_log()
            .expect("audit")
            .iter()
            .any(|e| e.action == "remove-user")
    );
}

#[test]
fn inventory_json_is_strict_about_keys_and_lenient_about_dates() {
    let e = serde_json::from_str::<Inventory>(r#"{"userz": ["a"]}"#).expect_err("unknown key");
    assert!(e.to_string().contains("unknown field `userz`"), "{e}");
    let e = serde_json::from_str::<Inventory>(r#"{"devices": [{"udid": "X", "usr": "a"}]}"#)
        .expect_err("unknown key");
    assert!(e.to_string().contains("`usr`"), "{e}");
    let inv: Inventory = serde_json::from_str(
        r#"{"devices": [{"udid": "X", "reported": [{"uuid": "AAAAAAAA-1111-4111-8111-11111111111F", "expires": "2027-01-01"}]}]}"#,
    )
    .expect("a date alone is midnight UTC");
    assert_eq!(inv.devices[0].reported[0].expires, utc(2027, 1, 1));
    let e = serde_json::from_str::<Inventory>(
        r#"{"devices": [{"udid": "X", "reported": [{"uuid": "U", "expires": "soon"}]}]}"#,
    )
    .expect_err("not a date");
    assert!(e.to_string().contains("not an RFC 3339 instant"), "{e}");
}

/// Acknowledging every pending command goes through the pending index a
/// chunk at a time in one transaction (before, it read the whole queue,
/// every command's row and every device into memory before writing any:
/// 3 GB for a million commands; the time is the `ack` bench's). Nothing
/// is missed or counted twice across chunks: the queue here is larger than
/// a chunk, one device's commands straddle the chunk boundary (counted
/// once), a failed command stays failed, and everything else lands.
fn acknowledging_every_pending_command_across_chunks(store: &mut dyn Store, backend: &str) {
    let a = actor();
    let uuids = [
        "ACAC0000-0000-4000-8000-00000000000A",
        "ACAC0000-0000-4000-8000-00000000000B",
        "ACAC0000-0000-4000-8000-00000000000C",
    ];
    for (i, uuid) in uuids.iter().enumerate() {
        store
            .add_profile(&profile(uuid, &format!("com.example.ack{i}"), 2030), &a)
            .expect("profile");
    }
    let devices = 3000;
    let inv = Inventory {
        devices: (0..devices)
            .map(|i| bare_device(format!("ACK-{i:05}")))
            .collect(),
        ..Inventory::default()
    };
    store.import_inventory(&inv, &a).expect("inventory");
    let at = actor().at;
    let entries: Vec<OutboxEntry> = (0..devices)
        .flat_map(|i| {
            uuids.iter().enumerate().map(move |(p, uuid)| {
                install(&format!("CMD-{i:05}-{p}"), &format!("ACK-{i:05}"), uuid, at)
            })
        })
        .collect();
    assert!(entries.len() > 8192, "more than one chunk");
    store.enqueue(&entries).expect("enqueue");
    store
        .record_result("CMD-00007-1", CommandStatus::Error, Some("refused"), at)
        .expect("error");

    let done = store.acknowledge_commands(None, at).expect("ack");
    assert_eq!(
        (done.commands, done.devices),
        (entries.len() - 1, devices),
        "{backend}"
    );
    let t = store.load_tenant().expect("tenant");
    for d in t.devices.iter().filter(|d| d.udid.starts_with("ACK-")) {
        let want = if d.udid == "ACK-00007" { 2 } else { 3 };
        assert_eq!(d.reported.len(), want, "{backend}: {}", d.udid);
    }
    let outbox = store.outbox().expect("outbox");
    let mut mine = outbox.iter().filter(|e| e.command_uuid.starts_with("CMD-"));
    assert!(
        mine.all(|e| if e.command_uuid == "CMD-00007-1" {
            e.status == CommandStatus::Error
        } else {
            e.status == CommandStatus::Acknowledged && e.updated_at == at
        }),
        "{backend}"
    );
    let again = store.acknowledge_commands(None, at).expect("ack");
    assert_eq!((again.commands, again.devices), (0, 0), "{backend}");
}

/// Defect: a command UUID names the instant it was planned at, so planning
/// again at another instant queued the same install a second time while the
/// first was still pending. A command whose device, request and profile
/// are pending is now left alone, until it is acknowledged or fails.
fn replanning_queued_pending_commands_again(store: &mut dyn Store, backend: &str) {
    let entry = |uuid: &str, minute: u32| {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap();
        install(uuid, "REPLAN-DEVICE", "replan-profile", at)
    };
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let pending = |store: &mut dyn Store| {
        store
            .outbox()
            .expect("outbox")
            .into_iter()
            .filter(|e| e.udid == "REPLAN-DEVICE")
            .count()
    };
    assert_eq!(
        store
            .enqueue_plan(&[entry("R-1", 0)], &[], at)
            .expect("first"),
        (1, 0),
        "{backend}"
    );
    assert_eq!(
        store
            .enqueue_plan(&[entry("R-2", 15)], &[], at)
            .expect("again"),
        (0, 0),
        "{backend}: pending, not queued twice"
    );
    store
        .record_result("R-1", CommandStatus::NotNow, None, at)
        .expect("not now");
    assert_eq!(
        store
            .enqueue_plan(&[entry("R-3", 30)], &[], at)
            .expect("not now"),
        (0, 0),
        "{backend}: NotNow is still pending"
    );
    store
        .record_result("R-1", CommandStatus::Error, Some("25001"), at)
        .expect("error");
    assert_eq!(
        store
            .enqueue_plan(&[entry("R-4", 45)], &[], at)
            .expect("after error"),
        (1, 0),
        "{backend}: a failed command may be planned again"
    );
    store
        .record_results(
            &[CommandResult {
                command_uuid: "R-4".into(),
                status: CommandStatus::Acknowledged,
                error_chain: None,
            }],
            &[],
            at,
        )
        .expect("ack");
    store.enqueue(&[entry("R-5", 50)]).expect("enqueue");
    assert_eq!(pending(store), 3, "{backend}: R-1, R-4, R-5");
}

/// Organization groups: a connection scoped to Benelux sees and changes
/// Benelux only; DACH objects answer as unknown; EMEA and the root see
/// both; nothing reaches up or sideways.
fn organization_groups_isolate(store: &mut dyn Store, backend: &str) {
    const BNL: &str = "Global/EMEA/Benelux";
    const DACH: &str = "Global/EMEA/DACH";
    const P_BNL: &str = "0B0B0B0B-0000-4000-8000-00000000000B";
    const P_DACH: &str = "0D0D0D0D-0000-4000-8000-00000000000D";
    let at = actor().at;
    store.set_scope("Global");
    assert_eq!(
        store.add_org_group(BNL, &actor()).expect("create"),
        ["Global/EMEA", BNL],
        "{backend}: parents made too"
    );
    assert_eq!(store.add_org_group(DACH, &actor()).expect("create"), [DACH]);
    assert!(
        store.add_org_group("EMEA/x", &actor()).is_err(),
        "{backend}: paths start at Global"
    );
    let inv = |prefix: &str| -> Inventory {
        serde_json::from_value(serde_json::json!({
            "users": [format!("{prefix}-user")],
            "devices": [{"udid": format!("{prefix}-DEVICE"), "user": format!("{prefix}-user")}],
            "groups": [{"name": format!("{prefix} Sales"), "kind": "user", "members": [format!("{prefix}-user")]}]
        }))
        .expect("inventory")
    };
    for (scope, prefix, uuid) in [(BNL, "bnl", P_BNL), (DACH, "dach", P_DACH)] {
        store.set_scope(scope);
        store
            .apply_inventory(&inv(prefix), &Replace::Nothing, false, at, &actor())
            .expect("inventory");
        let rec = store
            .add_profile(&profile(uuid, "com.example.app", 2027), &actor())
            .expect("profile");
        assert_eq!(rec.org_group.as_deref(), Some(scope), "{backend}");
        let edit = AssignmentEdit::Add {
            include: vec![TargetName::parse(&format!("{prefix} Sales"))],
            exclude: vec![],
        };
        store
            .edit_assignments(uuid, &edit, at, &actor())
            .expect("assign");
    }
    // Benelux sees Benelux.
    // At the root: every device, as the inventory lists them.
    store.set_scope("Global");
    let all: Vec<String> = store
        .inventory()
        .expect("inventory")
        .devices
        .into_iter()
        .map(|d| d.udid)
        .collect();
    assert!(all.iter().any(|u| u == "bnl-DEVICE") && all.iter().any(|u| u == "dach-DEVICE"));
    assert_eq!(store.device_udids().expect("udids"), all, "{backend}");
    store.set_scope(BNL);
    let uuids = |store: &mut dyn Store| -> Vec<String> {
        let mut v: Vec<String> = store
            .profiles()
            .expect("profiles")
            .into_iter()
            .filter(|p| [P_BNL, P_DACH].contains(&p.uuid.as_str()))
            .map(|p| p.uuid)
            .collect();
        v.sort();
        v
    };
    assert_eq!(uuids(store), [P_BNL], "{backend}");
    assert!(store.profile_versions(P_DACH).expect("versions").is_empty());
    assert!(matches!(
        store.profile_bytes(P_DACH),
        Err(StoreError::UnknownReference { .. })
    ));
    let t = store.load_tenant().expect("tenant");
    assert!(
        t.devices.iter().all(|d| d.udid == "bnl-DEVICE"),
        "{backend}"
    );
    assert!(t.groups.iter().all(|g| g.name == "bnl Sales"), "{backend}");
    assert_eq!(store.inventory().expect("inventory").users, ["bnl-user"]);
    assert_eq!(
        store.device_udids().expect("udids"),
        ["bnl-DEVICE"],
        "{backend}: the device list is scoped too"
    );
    assert!(
        store
            .audit_log()
            .expect("audit")
            .iter()
            .all(|e| e.org_group.as_deref() == Some(BNL))
    );
    // DACH objects are unknown to Benelux, for edits too.
    let edit = AssignmentEdit::Add {
        include: vec![TargetName::parse("bnl Sales")],
        exclude: vec![],
    };
    assert!(
        matches!(
            store.edit_assignments(P_DACH, &edit, at, &actor()),
            Err(StoreError::UnknownReference { .. })
        ),
        "{backend}: a DACH profile"
    );
    let sideways = AssignmentEdit::Add {
        include: vec![TargetName::parse("dach Sales")],
        exclude: vec![],
    };
    assert!(
        matches!(
            store.edit_assignments(P_BNL, &sideways, at, &actor()),
            Err(StoreError::UnknownReference { .. })
        ),
        "{backend}: a DACH group"
    );
    let everyone = AssignmentEdit::Add {
        include: vec![TargetName::AllUsers],
        exclude: vec![],
    };
    assert!(
        matches!(
            store.edit_assignments(P_BNL, &everyone, at, &actor()),
            Err(StoreError::Invalid(_))
        ),
        "{backend}: all users reaches outside Benelux"
    );
    assert!(
        matches!(
            store.apply_inventory(&inv("dach"), &Replace::Nothing, false, at, &actor()),
            Err(StoreError::Invalid(_))
        ),
        "{backend}: DACH's device is not Benelux's to change"
    );
    assert!(
        matches!(
            store.add_profile(&profile(P_DACH, "com.example.app", 2028), &actor()),
            Err(StoreError::Invalid(_))
        ),
        "{backend}: nor its profile"
    );
    assert!(matches!(
        store.remove(&Removal::Device("dach-DEVICE".into()), &actor()),
        Err(StoreError::UnknownReference { .. })
    ));
    assert!(
        store.add_org_group("Global/EMEA/DACH/x", &actor()).is_err(),
        "{backend}: sideways"
    );
    assert!(
        store.enqueue(&[]).is_err(),
        "{backend}: the outbox is the root's"
    );
    // EMEA and the root see both.
    for scope in ["Global/EMEA", "Global"] {
        store.set_scope(scope);
        assert_eq!(uuids(store), [P_BNL, P_DACH], "{backend}: {scope}");
    }
    // Clean up for the suites after this one.
    store.set_scope("Global");
    for uuid in [P_BNL, P_DACH] {
        let none = AssignmentEdit::Replace {
            include: vec![],
            exclude: vec![],
        };
        store
            .edit_assignments(uuid, &none, at, &actor())
            .expect("unassign");
    }
}

/// The admin's name and description: stored with the upload in one
/// transaction, kept by a new version, relabelled with an audit entry,
/// refused (writing nothing) when too long or holding control characters.
fn profile_labels(store: &mut dyn Store, backend: &str) {
    const LABELLED: &str = "CCCCCCCC-3333-4333-8333-33333333333D";
    let v1 = profile(LABELLED, "com.example.labels", 2027);
    let label = ProfileLabel {
        name: Some("  Sales app profile ".into()),
        description: Some("Renewed every autumn.\nOwner: mobile team".into()),
    };
    let rec = store
        .add_labeled_profile(&v1, &label, None, &actor())
        .expect("labelled upload");
    assert_eq!(
        rec.label.name.as_deref(),
        Some("Sales app profile"),
        "{backend}: trimmed"
    );
    let listed = store.profiles().expect("profiles");
    let stored = listed.iter().find(|p| p.uuid == LABELLED).expect("listed");
    assert_eq!(stored.label, rec.label, "{backend}: the label round-trips");

    // A new version without a label keeps the old one.
    let v2 = profile(LABELLED, "com.example.labels", 2028);
    let rec2 = store.add_profile(&v2, &actor()).expect("v2");
    assert_eq!((rec2.version, &rec2.label), (2, &rec.label), "{backend}");

    // Refused labels write nothing.
    let audit_before = store.audit_log().expect("audit").len();
    for bad in ["x".repeat(201), "tab\there".into()] {
        let l = ProfileLabel {
            name: Some(bad),
            description: None,
        };
        let e = store
            .label_profile(LABELLED, &l, &actor())
            .expect_err("refused");
        assert!(matches!(e, StoreError::Invalid(_)), "{backend}: {e}");
        let v3 = profile(LABELLED, "com.example.labels", 2029);
        assert!(store.add_labeled_profile(&v3, &l, None, &actor()).is_err());
    }
    assert_eq!(
        store.profile_versions(LABELLED).expect("versions").len(),
        2,
        "{backend}"
    );
    assert_eq!(
        store.audit_log().expect("audit").len(),
        audit_before,
        "{backend}"
    );

    // Relabelling is audited with before and after; the same label again
    // changes nothing.
    let renamed = ProfileLabel {
        name: Some("Sales (2028)".into()),
        description: None,
    };
    let rec3 = store
        .label_profile(LABELLED, &renamed, &actor())
        .expect("relabel");
    assert_eq!(
        rec3.label, renamed,
        "{backend}: an absent description clears it"
    );
    store
        .label_profile(LABELLED, &renamed, &actor())
        .expect("same again");
    let audit = store.audit_log().expect("audit");
    let relabels: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "label-profile" && e.object == LABELLED)
        .collect();
    assert_eq!(relabels.len(), 1, "{backend}");
    assert!(
        relabels[0]
            .before
            .as_ref()
            .is_some_and(|b| b["name"] == "Sales app profile")
    );
    assert!(
        matches!(
            store.label_profile("DDDDDDDD-0000-4000-8000-000000000000", &renamed, &actor()),
            Err(StoreError::UnknownReference { .. })
        ),
        "{backend}"
    );
}

/// Users' email addresses: set by a batch (JSON or CSV), kept by a batch
/// that does not name them, cleared by an empty one, gone with the user;
/// a bad address or an unknown user writes nothing.
fn user_email_addresses(store: &mut dyn Store, backend: &str) {
    let a = actor();
    let batch = |v: serde_json::Value| -> Inventory { serde_json::from_value(v).expect("batch") };
    store
        .import_inventory(
            &batch(serde_json::json!({
                "users": ["erin", "finn"],
                "emails": {"erin": "erin@example.com"}
            })),
            &a,
        )
        .expect("import");
    let names = vec!["erin".to_owned(), "finn".to_owned(), "nobody".to_owned()];
    assert_eq!(
        store.user_emails(&names).expect("emails"),
        [("erin".to_owned(), "erin@example.com".to_owned())],
        "{backend}"
    );
    // Exported and read back, as JSON and as CSV.
    let inv = store.inventory().expect("inventory");
    assert_eq!(
        inv.emails.get("erin").map(String::as_str),
        Some("erin@example.com"),
        "{backend}"
    );
    // (Only this suite's users: others' names may not fit a CSV row.)
    let mine = Inventory {
        users: inv
            .users
            .iter()
            .filter(|u| ["erin", "finn"].contains(&u.as_str()))
            .cloned()
            .collect(),
        emails: inv.emails.clone(),
        ..Inventory::default()
    };
    let csv = mine.to_csv().expect("csv");
    assert!(
        csv.contains("user,erin,erin@example.com,"),
        "{backend}: {csv}"
    );
    assert_eq!(
        Inventory::from_csv(&csv).expect("read back").emails,
        inv.emails
    );
    // Refused, and nothing written: a bad address, an unknown user.
    for (bad, why) in [
        (
            serde_json::json!({"emails": {"finn": "finn at example.com"}}),
            "no @",
        ),
        (
            serde_json::json!({"emails": {"finn": "finn@example.com, boss@example.com"}}),
            "a list",
        ),
        (
            serde_json::json!({"emails": {"finn": "finn@localhost"}}),
            "no dot",
        ),
        (
            serde_json::json!({"emails": {"zed": "zed@example.com"}}),
            "unknown user",
        ),
    ] {
        assert!(
            store.import_inventory(&batch(bad), &a).is_err(),
            "{backend}: {why}"
        );
    }
    assert_eq!(
        store.user_emails(&names).expect("emails").len(),
        1,
        "{backend}"
    );
    // A batch without addresses keeps them; a new one sets; "" clears.
    store
        .import_inventory(&batch(serde_json::json!({"users": ["erin"]})), &a)
        .expect("kept");
    store
        .import_inventory(
            &batch(serde_json::json!({"emails": {"finn": "finn@example.com", "erin": ""}})),
            &a,
        )
        .expect("set and clear");
    assert_eq!(
        store.user_emails(&names).expect("emails"),
        [("finn".to_owned(), "finn@example.com".to_owned())],
        "{backend}"
    );
    store
        .remove(&Removal::User("finn".into()), &a)
        .expect("remove finn");
    store
        .import_inventory(&batch(serde_json::json!({"users": ["finn"]})), &a)
        .expect("finn again");
    assert!(
        store.user_emails(&names).expect("emails").is_empty(),
        "{backend}: a removed user's address went with the user"
    );
}

/// Each device's desired profile UUIDs, from planning the stored tenant.
fn planned(
    store: &mut dyn Store,
    at: chrono::DateTime<Utc>,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let engine = Engine::new(store.load_tenant().expect("tenant"), at);
    let t = engine.tenant();
    t.devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let id = provkit_policy::DeviceId(u32::try_from(i).expect("id"));
            let set = engine
                .desired(id)
                .iter()
                .map(|p| t.profiles[p.index()].uuid.clone())
                .collect();
            (d.udid.to_string(), set)
        })
        .collect()
}

/// The devices an inventory import says gain or lose a profile are
/// exactly the difference between planning the tenant before and after it
/// (the import reads back the rows it wrote instead of loading the whole
/// tenant a second time): a subgroup nested, a device changing hands, a
/// group's members replaced, a new device in an assigned device group;
/// the dry run says the same.
fn inventory_desired_changes_are_the_plans_difference(store: &mut dyn Store, backend: &str) {
    const P: &str = "DDDDDDDD-4444-4444-8444-44444444444D";
    let a = actor();
    let at = utc(2026, 11, 22);
    store
        .add_profile(&profile(P, "com.dc.app", 2030), &a)
        .expect("profile");
    let first: Inventory = serde_json::from_value(serde_json::json!({
        "users": ["dc-ann", "dc-ben", "dc-cy"],
        "devices": [
            {"udid": "DC-1", "user": "dc-ann"},
            {"udid": "DC-2", "user": "dc-ben"},
            {"udid": "DC-3", "user": "dc-cy"},
            {"udid": "DC-4"}
        ],
        "groups": [
            {"name": "DC-Sales", "kind": "user", "members": ["dc-ann"]},
            {"name": "DC-EU", "kind": "user", "members": ["dc-ben"]},
            {"name": "DC-Kiosk", "kind": "device", "members": ["DC-4"]}
        ]
    }))
    .expect("json");
    store
        .apply_inventory(&first, &Replace::Nothing, false, at, &a)
        .expect("first");
    store
        .set_assignments(
            P,
            &[TargetName::parse("DC-Sales"), TargetName::parse("DC-Kiosk")],
            &[],
            &a,
        )
        .expect("assign");
    let batches = [
        (
            serde_json::json!({"groups": [{"name": "DC-Sales", "kind": "user", "subgroups": ["DC-EU"]}]}),
            Replace::Nothing,
        ),
        (
            serde_json::json!({"devices": [{"udid": "DC-3", "user": "dc-ann"}]}),
            Replace::Nothing,
        ),
        (
            serde_json::json!({"groups": [{"name": "DC-Sales", "kind": "user", "members": ["dc-cy"]}]}),
            Replace::Groups(vec!["DC-Sales".into()]),
        ),
        (
            serde_json::json!({
                "users": ["dc-dee"],
                "devices": [{"udid": "DC-5", "user": "dc-dee"}],
                "groups": [{"name": "DC-Kiosk", "kind": "device", "members": ["DC-5"]}]
            }),
            Replace::Nothing,
        ),
    ];
    for (i, (json, replace)) in batches.into_iter().enumerate() {
        let inv: Inventory = serde_json::from_value(json).expect("json");
        let before = planned(store, at);
        let dry = store
            .apply_inventory(&inv, &replace, true, at, &a)
            .expect("dry run");
        let c = store
            .apply_inventory(&inv, &replace, false, at, &a)
            .expect("import");
        let after = planned(store, at);
        let none = std::collections::BTreeSet::new();
        let expected: Vec<DesiredChange> = after
            .iter()
            .filter_map(|(udid, now)| {
                let was = before.get(udid).unwrap_or(&none);
                (was != now).then(|| DesiredChange {
                    udid: udid.clone(),
                    gained: now.difference(was).cloned().collect(),
                    lost: was.difference(now).cloned().collect(),
                })
            })
            .collect();
        assert!(!expected.is_empty(), "{backend}: batch {i} changes a plan");
        assert_eq!(c.desired, expected, "{backend}: batch {i}");
        assert_eq!(dry.desired, expected, "{backend}: batch {i}, dry run");
    }
}

/// A console form read before another edit was saved over it, silently
/// undoing that edit. [`AssignmentEdit::ReplaceFrom`] names the targets the
/// form was shown and is refused, writing nothing, once the stored ones
/// moved on; `changes_since` lists what was done after a change, and
/// `profile_assignments` reads one profile's targets.
fn a_stale_assignment_form_undid_an_edit(store: &mut dyn Store, backend: &str) {
    const P: &str = "EEEEEEEE-5555-4555-8555-55555555555E";
    let a = actor();
    store
        .add_profile(&profile(P, "com.example.stale", 2027), &a)
        .expect("add");
    let before = store.last_change().expect("last change");
    let add = AssignmentEdit::Add {
        include: vec![TargetName::AllUsers],
        exclude: vec![],
    };
    store
        .edit_assignments(P, &add, a.at, &a)
        .expect("the first edit");
    // The form as shown before that edit (nothing assigned).
    let stale = AssignmentEdit::ReplaceFrom {
        was_include: vec![],
        was_exclude: vec![],
        include: vec![TargetName::AllDevices],
        exclude: vec![],
    };
    let refused = [
        store.edit_assignments(P, &stale, a.at, &a).err(),
        store.edit_assignment_targets(P, &stale, &a).err(),
        store.check_assignment_edit(P, &stale, a.at).err(),
    ];
    for e in refused {
        let e = e.expect("refused");
        assert!(matches!(e, StoreError::Conflict(_)), "{backend}: {e}");
        assert!(
            e.to_string().contains("now include all-users"),
            "{backend}: {e}"
        );
    }
    let stored = store.profile_assignments(P).expect("assignments");
    assert_eq!(stored.len(), 1, "{backend}: {stored:?}");
    assert!(stored[0].include && stored[0].target == TargetName::AllUsers);
    // The form as shown after it saves, the order of its targets aside.
    let fresh = AssignmentEdit::ReplaceFrom {
        was_include: vec![TargetName::AllUsers],
        was_exclude: vec![],
        include: vec![TargetName::AllDevices, TargetName::AllUsers],
        exclude: vec![],
    };
    let change = store
        .edit_assignment_targets(P, &fresh, &a)
        .expect("a fresh form");
    assert_eq!(
        change.include_after,
        [TargetName::AllDevices, TargetName::AllUsers],
        "{backend}"
    );
    let since = store
        .changes_since(before.as_deref(), 10)
        .expect("changes")
        .expect("under the limit");
    let done: Vec<(&str, &str)> = since
        .iter()
        .map(|e| (e.action.as_str(), e.object.as_str()))
        .collect();
    assert_eq!(
        done,
        [("set-assignments", P), ("set-assignments", P)],
        "{backend}"
    );
    assert!(
        store
            .changes_since(before.as_deref(), 1)
            .expect("changes")
            .is_none(),
        "{backend}: past the limit"
    );
    let last = store.last_change().expect("last change");
    assert!(
        store
            .changes_since(last.as_deref(), 10)
            .expect("changes")
            .is_some_and(|c| c.is_empty()),
        "{backend}"
    );
    assert!(matches!(
        store.profile_assignments("00000000-0000-4000-8000-000000000000"),
        Err(StoreError::UnknownReference { .. })
    ));
}

/// Removals find a name in groups and assignments by the name as stored
/// (each document is searched for it, escapes and all, before it is
/// decoded): a removed user, device or group leaves exactly the groups that
/// listed it, a name that only starts like it is left alone, and an
/// assigned group with an escaped name is still refused.
fn removals_find_escaped_names_in_groups(store: &mut dyn Store, backend: &str) {
    let a = actor();
    let odd = [
        "esc tab\there",
        "esc back\\slash",
        "esc quote\"d",
        "esc crème",
        "esc \r\n",
    ];
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for (i, o) in odd.iter().enumerate() {
        let user = format!("{o} user");
        // A user whose name starts with the other's, in the same groups.
        let longer = format!("{user}s");
        let udid = format!("ESC-{i}");
        groups.push(GroupRecord {
            name: format!("{o} users"),
            kind: GroupKind::User,
            members: vec![user.clone(), longer.clone()],
            subgroups: vec![format!("{o} nested")],
            org_group: None,
        });
        groups.push(GroupRecord {
            name: format!("{o} nested"),
            kind: GroupKind::User,
            members: vec![longer.clone()],
            subgroups: vec![],
            org_group: None,
        });
        groups.push(GroupRecord {
            name: format!("{o} devices"),
            kind: GroupKind::Device,
            members: vec![udid, format!("ESC-{i}0")],
            subgroups: vec![],
            org_group: None,
        });
        users.push(user);
        users.push(longer);
    }
    let devices = (0..odd.len())
        .flat_map(|i| [format!("ESC-{i}"), format!("ESC-{i}0")])
        .map(bare_device)
        .collect();
    let inv = Inventory {
        users,
        devices,
        groups,
        emails: Default::default(),
    };
    store.import_inventory(&inv, &a).expect("import");
    const ESC: &str = "EEEEEEEE-5555-4555-8555-55555555555E";
    store
        .add_profile(&profile(ESC, "com.example.esc", 2027), &a)
        .expect("profile");
    let members = |store: &mut dyn Store, name: &str| -> (Vec<String>, Vec<String>) {
        let g = store
            .groups()
            .expect("groups")
            .into_iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("{backend}: group {name:?}"));
        (g.members, g.subgroups)
    };
    for (i, o) in odd.iter().enumerate() {
        let user = format!("{o} user");
        let out = store
            .remove(&Removal::User(user.clone()), &a)
            .expect("user");
        assert_eq!(out, [format!("{o} users")], "{backend}: {user:?}");
        assert_eq!(
            members(store, &format!("{o} users")),
            (vec![format!("{user}s")], vec![format!("{o} nested")]),
            "{backend}: {user:?}"
        );
        let out = store
            .remove(&Removal::Device(format!("ESC-{i}")), &a)
            .expect("device");
        assert_eq!(out, [format!("{o} devices")], "{backend}: ESC-{i}");
        assert_eq!(
            members(store, &format!("{o} devices")).0,
            [format!("ESC-{i}0")],
            "{backend}"
        );
        let nested = format!("{o} nested");
        store
            .set_assignments(ESC, &[TargetName::Group(nested.clone())], &[], &a)
            .expect("assign");
        match store.remove(&Removal::Group(nested.clone()), &a) {
            Err(StoreError::Invalid(m)) => assert!(m.contains(ESC), "{backend}: {m}"),
            other => panic!("{backend}: {nested:?}: {other:?}"),
        }
        store.set_assignments(ESC, &[], &[], &a).expect("unassign");
        let out = store
            .remove(&Removal::Group(nested.clone()), &a)
            .expect("group");
        assert_eq!(out, [format!("{o} users")], "{backend}: {nested:?}");
        assert_eq!(
            members(store, &format!("{o} users")),
            (vec![format!("{user}s")], vec![]),
            "{backend}: {nested:?}"
        );
    }
}

#[test]
fn memory_backend() {
    conformance(&mut MemoryStore::default(), "memory");
    large_batch(&mut MemoryStore::default(), "memory");
    inventory_import_replaced_group_members(&mut MemoryStore::default(), "memory");
    replanning_queued_pending_commands_again(&mut MemoryStore::default(), "memory");
    organization_groups_isolate(&mut MemoryStore::default(), "memory");
    profile_labels(&mut MemoryStore::default(), "memory");
    user_email_addresses(&mut MemoryStore::default(), "memory");
    inventory_desired_changes_are_the_plans_difference(&mut MemoryStore::default(), "memory");
    a_stale_assignment_form_undid_an_edit(&mut MemoryStore::default(), "memory");
    acknowledging_every_pending_command_across_chunks(&mut MemoryStore::default(), "memory");
    removals_find_escaped_names_in_groups(&mut MemoryStore::default(), "memory");
    a_reported_expiry_before_year_zero_broke_the_tenant(&mut MemoryStore::default(), "memory");
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("provkit-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("provkit.db")
}

#[test]
fn sqlite_backend() {
    let path = temp_db("conformance");
    let mut store = SqliteStore::open(&path).expect("open");
    conformance(&mut store, "sqlite");
    large_batch(&mut store, "sqlite");
    inventory_import_replaced_group_members(&mut store, "sqlite");
    replanning_queued_pending_commands_again(&mut store, "sqlite");
    organization_groups_isolate(&mut store, "sqlite");
    profile_labels(&mut store, "sqlite");
    user_email_addresses(&mut store, "sqlite");
    drop(store);
    // Reopening keeps everything and does not migrate again.
    let mut again = SqliteStore::open(&path).expect("reopen");
    assert_eq!(again.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(
        again.profiles().expect("profiles").len(),
        5,
        "two, the organization groups suite's two and the labels suite's one"
    );
    // A new file's index tables are clustered on their keys; its document
    // tables keep rowids.
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let sql = |table: &str| -> String {
        raw.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .expect("table")
    };
    for index in ["outbox_pending", "outbox_undispatched", "outbox_sent"] {
        assert!(sql(index).ends_with("WITHOUT ROWID"), "{}", sql(index));
    }
    for docs in ["outbox", "devices", "profiles"] {
        assert!(!sql(docs).contains("WITHOUT ROWID"), "{}", sql(docs));
    }
    let mut own = SqliteStore::open(temp_db("desired-changes")).expect("open");
    inventory_desired_changes_are_the_plans_difference(&mut own, "sqlite");
    let mut own = SqliteStore::open(temp_db("stale-form")).expect("open");
    a_stale_assignment_form_undid_an_edit(&mut own, "sqlite");
    let mut own = SqliteStore::open(temp_db("ack-all")).expect("open");
    acknowledging_every_pending_command_across_chunks(&mut own, "sqlite");
    let mut own = SqliteStore::open(temp_db("escaped-removals")).expect("open");
    removals_find_escaped_names_in_groups(&mut own, "sqlite");
    let mut own = SqliteStore::open(temp_db("odd-years")).expect("open");
    a_reported_expiry_before_year_zero_broke_the_tenant(&mut own, "sqlite");
}

#[test]
fn postgres_backend() {
    let Some(url) = std::env::var("PROVKIT_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "NOTICE: PROVKIT_DATABASE_URL is not set: the PostgreSQL conformance run is skipped"
        );
        return;
    };
    PostgresStore::reset(&url).expect("reset");
    let mut store = PostgresStore::connect(&url).expect("connect");
    conformance(&mut store, "postgres");
    large_batch(&mut store, "postgres");
    inventory_import_replaced_group_members(&mut store, "postgres");
    replanning_queued_pending_commands_again(&mut store, "postgres");
    organization_groups_isolate(&mut store, "postgres");
    profile_labels(&mut store, "postgres");
    user_email_addresses(&mut store, "postgres");
    inventory_desired_changes_are_the_plans_difference(&mut store, "postgres");
    a_stale_assignment_form_undid_an_edit(&mut store, "postgres");
    removals_find_escaped_names_in_groups(&mut store, "postgres");
    a_reported_expiry_before_year_zero_broke_the_tenant(&mut store, "postgres");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    drop(store);
    PostgresStore::reset(&url).expect("reset");
    let mut store = PostgresStore::connect(&url).expect("connect");
    acknowledging_every_pending_command_across_chunks(&mut store, "postgres");
}

#[test]
fn a_newer_schema_is_refused() {
    let path = temp_db("newer");
    drop(SqliteStore::open(&path).expect("create"));
    let conn = rusqlite::Connection::open(&path).expect("raw");
    conn.execute("UPDATE meta SET doc = '99' WHERE k = 'schema_version'", [])
        .expect("bump");
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn concurrent_writers_on_one_sqlite_file_lose_no_update() {
    let path = temp_db("threads");
    let mut store = SqliteStore::open(&path).expect("open");
    let users: Vec<String> = (0..200).map(|i| format!("u{i}")).collect();
    let inv = Inventory {
        users: users.clone(),
        groups: vec![GroupRecord {
            name: "All".into(),
            kind: GroupKind::User,
            members: vec![],
            subgroups: vec![],
            org_group: None,
        }],
        ..Inventory::default()
    };
    store.import_inventory(&inv, &actor()).expect("inventory");
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s = SqliteStore::open(&path).expect("open in thread");
                for i in (t..200).step_by(4) {
                    s.add_member("All", &format!("u{i}"), &actor())
                        .expect("add");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let groups = store.groups().expect("groups");
    assert_eq!(
        groups[0].members.len(),
        200,
        "every read-modify-write survived"
    );
}

#[test]
fn open_existing_refuses_missing_and_foreign_files() {
    let path = temp_db("existing");
    assert!(matches!(
        SqliteStore::open_existing(&path, Access::ReadWrite),
        Err(StoreError::Missing(_))
    ));
    assert!(!path.exists(), "nothing created");
    {
        let c = rusqlite::Connection::open(&path).expect("foreign db");
        c.execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('x');")
            .expect("foreign table");
    }
    let before = std::fs::read(&path).expect("read");
    for access in [Access::ReadWrite, Access::ReadOnly] {
        assert!(matches!(
            SqliteStore::open_existing(&path, access),
            Err(StoreError::NotProvkit(_))
        ));
    }
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "left untouched"
    );
    let made = temp_db("existing-made");
    drop(SqliteStore::open(&made).expect("create"));
    let mut ro = SqliteStore::open_existing(&made, Access::ReadOnly).expect("read-only");
    assert!(ro.profiles().expect("read").is_empty());
    assert!(
        ro.add_profile(&profile(OLD, "com.example.app", 2027), &actor())
            .is_err(),
        "a read-only store refuses writes"
    );
}

/// A device may report any ExpiryDate its plist can hold (a binary plist's
/// date reaches years -9999 to 9999), and the store wrote such an instant
/// as chrono does ("-0001-12-31T00:00:00Z") but read reported dates only
/// as RFC 3339 or a date alone: the device's document no longer read, and
/// every read of the tenant failed on it.
fn a_reported_expiry_before_year_zero_broke_the_tenant(store: &mut dyn Store, backend: &str) {
    let mut inv = Inventory::default();
    inv.devices.push(bare_device("YEARS-1".into()));
    store.import_inventory(&inv, &actor()).expect("import");
    let odd = [
        Utc.with_ymd_and_hms(-1, 12, 31, 0, 0, 0)
            .single()
            .expect("year -1"),
        Utc.with_ymd_and_hms(-9999, 1, 1, 0, 0, 0)
            .single()
            .expect("year -9999"),
        Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0)
            .single()
            .expect("year 10000"),
        Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0)
            .single()
            .expect("year 0"),
    ];
    let reported: Vec<ReportedProfile> = odd
        .iter()
        .enumerate()
        .map(|(i, t)| ReportedProfile {
            uuid: format!("00000000-0000-4000-8000-00000000000{i}"),
            expires: *t,
            managed: true,
        })
        .collect();
    store
        .record_device_report("YEARS-1", &reported)
        .expect("report");
    let back = store
        .inventory()
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
    let dev = back
        .devices
        .iter()
        .find(|d| d.udid == "YEARS-1")
        .expect("device");
    assert_eq!(dev.reported, reported, "{backend}");
}

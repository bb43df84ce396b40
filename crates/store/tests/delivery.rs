//! Delivery in the store, on memory, SQLite and PostgreSQL: planned
//! commands grouped into dispatches, claims handed out once among
//! concurrent senders, what a send came to per device, and devices'
//! answers applied once (a final status stays final).

use chrono::{DateTime, Duration, Utc};
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_store::*;

const UUID: &str = "0F1E2D3C-4B5A-4968-8776-6554433221AA";

fn at() -> DateTime<Utc> {
    utc(2026, 12, 5)
}

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        at: at(),
    }
}

fn connection(name: &str, og: &str) -> MdmConnection {
    MdmConnection {
        name: name.into(),
        kind: MdmKind::NanoMdm,
        url: "https://mdm.example.com".into(),
        api_key: "k".into(),
        webhook_hmac_key: None,
        org_group: og.into(),
        created_by: "test".into(),
        created_at: at(),
    }
}

/// `n` devices, a profile, an install queued for each; a root connection.
fn tenant(store: &mut dyn Store, n: usize) {
    let ca = TestCa::rsa();
    store
        .add_profile(
            &signed_profile(
                &ca,
                &ProfileSpec {
                    uuid: UUID.into(),
                    ..ProfileSpec::default()
                },
            ),
            &actor(),
        )
        .expect("profile");
    let devices: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"udid": format!("D{i:05}")}))
        .collect();
    let inv: Inventory =
        serde_json::from_value(serde_json::json!({"devices": devices})).expect("inventory");
    store.import_inventory(&inv, &actor()).expect("inventory");
    let rows: Vec<OutboxEntry> = (0..n)
        .map(|i| OutboxEntry {
            command_uuid: format!("ROW-{i:05}"),
            udid: format!("D{i:05}"),
            request_type: "InstallProvisioningProfile".into(),
            profile_uuid: UUID.into(),
            status: CommandStatus::Planned,
            error_chain: None,
            retries: 0,
            created_at: at(),
            updated_at: at(),
        })
        .collect();
    store.enqueue(&rows).expect("enqueue");
    store
        .add_mdm_connection(&connection("root", "Global"), &actor())
        .expect("connection");
}

fn status_of(store: &mut dyn Store, row: &str) -> (CommandStatus, Option<String>) {
    let e = store
        .outbox()
        .expect("outbox")
        .into_iter()
        .find(|e| e.command_uuid == row)
        .expect("row");
    (e.status, e.error_chain)
}

fn semantics(store: &mut dyn Store, backend: &str) {
    tenant(store, 5);
    // Identical commands go together, up to the batch.
    assert_eq!(store.prepare_dispatches(at(), 2).expect("prepare"), 5);
    assert_eq!(
        store.prepare_dispatches(at(), 2).expect("again"),
        0,
        "{backend}: once"
    );
    let mut all = store.dispatches().expect("dispatches");
    all.sort_by(|a, b| a.targets[0].udid.cmp(&b.targets[0].udid));
    assert_eq!(
        all.iter().map(|d| d.targets.len()).collect::<Vec<_>>(),
        [2, 2, 1],
        "{backend}"
    );
    // Nothing is due before its time; claimed once until the lease lapses.
    assert!(
        store
            .claim_dispatches(at() - Duration::seconds(1), Duration::minutes(1), 10)
            .expect("early")
            .is_empty()
    );
    let claimed = store
        .claim_dispatches(at(), Duration::minutes(1), 10)
        .expect("claim");
    assert_eq!(claimed.len(), 3, "{backend}");
    assert!(
        claimed
            .iter()
            .all(|c| c.profile.as_ref().is_some_and(|p| !p.is_empty())),
        "{backend}: the bytes come along"
    );
    assert!(
        store
            .claim_dispatches(at() + Duration::seconds(30), Duration::minutes(1), 10)
            .expect("held")
            .is_empty()
    );
    let first = &claimed
        .iter()
        .find(|c| c.dispatch.targets[0].udid == "D00000")
        .expect("D0's")
        .dispatch;
    // Part of a call went through: the rest go again under a new UUID.
    store
        .settle_dispatch(
            &first.command_uuid,
            &[
                ("D00000".into(), SendOutcome::Queued(Some("no APNs".into()))),
                ("D00001".into(), SendOutcome::Retry("timeout".into())),
            ],
            at() + Duration::seconds(2),
            at(),
        )
        .expect("settle");
    assert_eq!(
        status_of(store, "ROW-00000").0,
        CommandStatus::Sent,
        "{backend}"
    );
    assert_eq!(
        status_of(store, "ROW-00001").0,
        CommandStatus::Planned,
        "{backend}"
    );
    let again = store
        .claim_dispatches(at() + Duration::seconds(3), Duration::minutes(1), 10)
        .expect("retry");
    assert_eq!(again.len(), 1, "{backend}");
    assert_ne!(
        again[0].dispatch.command_uuid, first.command_uuid,
        "{backend}: a new CommandUUID"
    );
    assert_eq!(again[0].dispatch.targets.len(), 1);
    // Nothing went through: the same UUID again later.
    let second = &claimed
        .iter()
        .find(|c| c.dispatch.targets[0].udid == "D00002")
        .expect("D2's")
        .dispatch;
    store
        .settle_dispatch(
            &second.command_uuid,
            &[
                ("D00002".into(), SendOutcome::Retry("503".into())),
                (
                    "D00003".into(),
                    SendOutcome::Refused("enrollment not found".into()),
                ),
            ],
            at() + Duration::seconds(2),
            at(),
        )
        .expect("settle");
    let (s, e) = status_of(store, "ROW-00003");
    assert_eq!(s, CommandStatus::Error, "{backend}");
    assert!(
        e.is_some_and(|e| e.contains("enrollment not found")),
        "{backend}"
    );

    // Answers: by the dispatch's UUID and the device; final stays final.
    let uuid = first.command_uuid.clone();
    let ack = DeviceAnswer {
        command_uuid: uuid.clone(),
        udid: "D00000".into(),
        status: CommandStatus::Acknowledged,
        error_chain: None,
        profiles: None,
    };
    let late = DeviceAnswer {
        status: CommandStatus::NotNow,
        ..ack.clone()
    };
    let stranger = DeviceAnswer {
        command_uuid: "NOPE".into(),
        ..ack.clone()
    };
    assert!(store.receive_event("e1", "{}", at()).expect("keep"));
    assert!(
        !store.receive_event("e1", "{}", at()).expect("again"),
        "{backend}: the same event once"
    );
    let taken = store
        .take_events(at(), Duration::minutes(1), 10)
        .expect("take");
    assert_eq!(taken.len(), 1);
    assert!(
        store
            .take_events(at(), Duration::minutes(1), 10)
            .expect("held")
            .is_empty()
    );
    let counts = store
        .record_answers(
            &[taken[0].0.clone()],
            &[ack.clone(), ack.clone(), late, stranger],
            at(),
        )
        .expect("answers");
    assert_eq!(
        (counts.applied, counts.unchanged, counts.unknown),
        (1, 2, 1),
        "{backend}"
    );
    assert_eq!(status_of(store, "ROW-00000").0, CommandStatus::Acknowledged);
    assert!(
        store
            .take_events(at() + Duration::hours(1), Duration::minutes(1), 10)
            .expect("done")
            .is_empty(),
        "{backend}: processed once"
    );
    let dev = store
        .inventory()
        .expect("inv")
        .devices
        .into_iter()
        .find(|d| d.udid == "D00000")
        .expect("D0");
    assert_eq!(
        dev.reported.len(),
        1,
        "{backend}: an acknowledged install is held"
    );
}

fn connections_are_scoped(store: &mut dyn Store, backend: &str) {
    store
        .add_org_group("Global/EMEA/Benelux", &actor())
        .expect("og");
    store
        .add_org_group("Global/EMEA/DACH", &actor())
        .expect("og");
    store.set_scope("Global/EMEA/Benelux");
    store
        .add_mdm_connection(&connection("bnl", "Global/EMEA/Benelux"), &actor())
        .expect("own group");
    assert!(
        store
            .add_mdm_connection(&connection("dach", "Global/EMEA/DACH"), &actor())
            .is_err(),
        "{backend}: sideways"
    );
    assert!(
        store
            .add_mdm_connection(&connection("bnl2", "Global/EMEA/Benelux"), &actor())
            .is_err(),
        "{backend}: one per group"
    );
    let names: Vec<String> = store
        .mdm_connections()
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["bnl"], "{backend}");
    assert!(
        store.remove_mdm_connection("root", &actor()).is_err(),
        "{backend}: the root's is unknown here"
    );
    store.set_scope("Global");
    assert!(store.prepare_dispatches(at(), 10).is_ok());
    store.set_scope("Global/EMEA/Benelux");
    assert!(
        store.prepare_dispatches(at(), 10).is_err(),
        "{backend}: delivery is the root's"
    );
    store.set_scope("Global");
}

/// Three senders claim at once; every dispatch is handed out exactly once.
fn concurrent_claims(open: &(dyn Fn() -> Box<dyn Store + Send> + Sync), backend: &str) {
    let mut store = open();
    tenant(store.as_mut(), 600);
    assert_eq!(store.prepare_dispatches(at(), 10).expect("prepare"), 600);
    let got: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    let mut st = open();
                    loop {
                        let c = st
                            .claim_dispatches(at(), Duration::hours(1), 3)
                            .expect("claim");
                        if c.is_empty() {
                            break;
                        }
                        mine.extend(c.into_iter().map(|c| c.dispatch.command_uuid));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sender"))
            .collect()
    });
    let mut all: Vec<String> = got.into_iter().flatten().collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (n, all.len()),
        (60, 60),
        "{backend}: each of 60 dispatches claimed once"
    );
}

/// A device its MDM server knows by an enrollment id (a User Enrollment):
/// commands go to that id, an answer naming it is the device's, a merge
/// keeps it, and ids that cannot travel in a URL path are refused
/// (regression: every device was reached by its UDID).
fn devices_reached_only_by_udid(store: &mut dyn Store, backend: &str) {
    tenant(store, 2);
    let with_id: Inventory = serde_json::from_value(serde_json::json!({
        "devices": [{"udid": "D00001", "enrollment_id": "ENR-0001"}]
    }))
    .expect("inventory");
    store
        .apply_inventory(&with_id, &Replace::Nothing, false, at(), &actor())
        .expect("enrollment id");
    // A later batch without the field keeps it.
    let without: Inventory =
        serde_json::from_value(serde_json::json!({"devices": [{"udid": "D00001"}]}))
            .expect("inventory");
    store
        .apply_inventory(&without, &Replace::Nothing, false, at(), &actor())
        .expect("merge");
    for bad in ["", "a,b", "a/b", "a b", "é"] {
        let inv: Inventory = serde_json::from_value(serde_json::json!({
            "devices": [{"udid": "D00000", "enrollment_id": bad}]
        }))
        .expect("inventory");
        assert!(
            store
                .apply_inventory(&inv, &Replace::Nothing, false, at(), &actor())
                .is_err(),
            "{backend}: {bad:?} is refused"
        );
    }
    store.prepare_dispatches(at(), 10).expect("prepare");
    let claimed = store
        .claim_dispatches(at(), Duration::minutes(1), 10)
        .expect("claim");
    let targets: Vec<(String, String)> = claimed
        .iter()
        .flat_map(|c| c.dispatch.targets.iter())
        .map(|t| (t.udid.clone(), t.enrollment_id.clone()))
        .collect();
    assert!(
        targets.contains(&("D00001".into(), "ENR-0001".into())),
        "{backend}: {targets:?}"
    );
    assert!(
        targets.contains(&("D00000".into(), "D00000".into())),
        "{backend}: {targets:?}"
    );
    let disp = &claimed
        .iter()
        .find(|c| c.dispatch.targets.iter().any(|t| t.udid == "D00001"))
        .expect("D1's")
        .dispatch;
    store
        .settle_dispatch(
            &disp.command_uuid,
            &disp
                .targets
                .iter()
                .map(|t| (t.enrollment_id.clone(), SendOutcome::Queued(None)))
                .collect::<Vec<_>>(),
            at() + Duration::seconds(2),
            at(),
        )
        .expect("settle");
    // The server's answer names the enrollment id only.
    let counts = store
        .record_answers(
            &[],
            &[DeviceAnswer {
                command_uuid: disp.command_uuid.clone(),
                udid: "ENR-0001".into(),
                status: CommandStatus::Acknowledged,
                error_chain: None,
                profiles: None,
            }],
            at(),
        )
        .expect("answers");
    assert_eq!((counts.applied, counts.unknown), (1, 0), "{backend}");
    assert_eq!(
        status_of(store, "ROW-00001").0,
        CommandStatus::Acknowledged,
        "{backend}"
    );
    let dev = store
        .inventory()
        .expect("inv")
        .devices
        .into_iter()
        .find(|d| d.udid == "D00001")
        .expect("D1");
    assert_eq!(dev.enrollment_id.as_deref(), Some("ENR-0001"), "{backend}");
    assert_eq!(dev.reported.len(), 1, "{backend}: the install is held");
    // A row answered under its own UUID (no dispatch): only its device,
    // by UDID or enrollment id, answers it (regression: any device naming
    // the UUID changed the row, and an answer naming the enrollment id
    // found no device).
    let row_answer = |row: &str, udid: &str| DeviceAnswer {
        command_uuid: row.into(),
        udid: udid.into(),
        status: CommandStatus::Error,
        error_chain: Some("MCProfileErrorDomain 1009".into()),
        profiles: None,
    };
    let counts = store
        .record_answers(&[], &[row_answer("ROW-00000", "D00001")], at())
        .expect("answers");
    assert_eq!((counts.applied, counts.unknown), (0, 1), "{backend}");
    assert_ne!(
        status_of(store, "ROW-00000").0,
        CommandStatus::Error,
        "{backend}"
    );
    let counts = store
        .record_answers(&[], &[row_answer("ROW-00001", "ENR-0001")], at())
        .expect("answers");
    assert_eq!(
        (counts.unknown, counts.applied + counts.unchanged),
        (0, 1),
        "{backend}: {counts:?}"
    );
    // The CSV form carries it both ways.
    let inv = store.inventory().expect("inv");
    let csv = inv.to_csv().expect("csv");
    assert!(csv.contains("enrollment,D00001,ENR-0001,"), "{csv}");
    assert_eq!(Inventory::from_csv(&csv).expect("read back"), inv);
}

/// A device's profile list settles the commands sent to it before the list
/// was asked for and never answered (regression: they stayed `sent` for
/// ever, holding back a new install, when their answer was lost or the
/// server never queued them): an install it holds is acknowledged, one it
/// lacks failed with the reason; commands sent after the list was asked
/// are left to their own answers.
fn lost_answers_settled_by_the_profile_list(store: &mut dyn Store, backend: &str) {
    tenant(store, 2);
    let early = store
        .dispatch_command(
            "ProvisioningProfileList",
            &["D00000".into(), "D00001".into()],
            at(),
            10,
        )
        .expect("an early list");
    store.prepare_dispatches(at(), 10).expect("prepare");
    let sent_at = at() + Duration::minutes(1);
    for c in store
        .claim_dispatches(at(), Duration::minutes(1), 10)
        .expect("claim")
    {
        let outcomes: Vec<(String, SendOutcome)> = c
            .dispatch
            .targets
            .iter()
            .map(|t| (t.enrollment_id.clone(), SendOutcome::Queued(None)))
            .collect();
        store
            .settle_dispatch(&c.dispatch.command_uuid, &outcomes, sent_at, sent_at)
            .expect("settle");
    }
    assert_eq!(
        status_of(store, "ROW-00000").0,
        CommandStatus::Sent,
        "{backend}"
    );
    let list = |uuid: &str, udid: &str, held: bool| DeviceAnswer {
        command_uuid: uuid.into(),
        udid: udid.into(),
        status: CommandStatus::Acknowledged,
        error_chain: None,
        profiles: Some(if held {
            vec![ReportedProfile {
                uuid: UUID.into(),
                expires: at() + Duration::days(100),
                managed: true,
            }]
        } else {
            vec![]
        }),
    };
    // A list asked for before the installs went says nothing of them.
    store
        .record_answers(&[], &[list(&early[0], "D00001", false)], sent_at)
        .expect("early answer");
    assert_eq!(
        status_of(store, "ROW-00001").0,
        CommandStatus::Sent,
        "{backend}"
    );
    // A list asked for after them settles them.
    let later = store
        .dispatch_command(
            "ProvisioningProfileList",
            &["D00000".into(), "D00001".into()],
            sent_at + Duration::hours(1),
            10,
        )
        .expect("a later list");
    store
        .record_answers(
            &[],
            &[
                list(&later[0], "D00000", true),
                list(&later[0], "D00001", false),
            ],
            sent_at + Duration::hours(2),
        )
        .expect("later answers");
    assert_eq!(
        status_of(store, "ROW-00000").0,
        CommandStatus::Acknowledged,
        "{backend}: it holds the profile"
    );
    let (st, why) = status_of(store, "ROW-00001");
    assert_eq!(st, CommandStatus::Error, "{backend}: it lacks the profile");
    assert!(
        why.is_some_and(|w| w.contains("not carried out")),
        "{backend}"
    );
}

/// A plan made before device answers were processed, queued after them:
/// what the answers settled is left out (regression: a device that had
/// just acknowledged an install was sent it again, and a removal it had
/// carried out was sent again, by the plan made a moment before).
fn stale_plans_sent_settled_commands_again(store: &mut dyn Store, backend: &str) {
    const OTHER: &str = "0F0F0F0F-0000-4000-8000-0000000000F1";
    tenant(store, 2);
    let seen = store.last_change().expect("change");
    // Meanwhile D00000 came to hold OTHER (its answer processed).
    let inv: Inventory = serde_json::from_value(serde_json::json!({"devices": [
        {"udid": "D00000", "reported": [{"uuid": OTHER, "expires": "2030-01-01T00:00:00Z", "managed": true}]}
    ]}))
    .expect("inventory");
    store
        .apply_inventory(&inv, &Replace::Nothing, false, at(), &actor())
        .expect("report");
    let entry = |id: &str, udid: &str, request: &str| OutboxEntry {
        command_uuid: id.into(),
        udid: udid.into(),
        request_type: request.into(),
        profile_uuid: OTHER.into(),
        status: CommandStatus::Planned,
        error_chain: None,
        retries: 0,
        created_at: at(),
        updated_at: at(),
    };
    let stale_plan = [
        entry("S-1", "D00000", "InstallProvisioningProfile"),
        entry("S-2", "D00001", "InstallProvisioningProfile"),
        entry("S-3", "D00001", "RemoveProvisioningProfile"),
    ];
    let queued = store
        .enqueue_plan_since(&stale_plan, &[], at(), seen.as_deref())
        .expect("enqueue");
    assert_eq!(queued, (1, 0), "{backend}: only D00001's install");
    let ids: Vec<String> = store
        .outbox()
        .expect("outbox")
        .into_iter()
        .map(|e| e.command_uuid)
        .filter(|id| id.starts_with("S-"))
        .collect();
    assert_eq!(ids, ["S-2"], "{backend}");
    // A plan made at the current change is queued as it is.
    let now = store.last_change().expect("change");
    let queued = store
        .enqueue_plan_since(
            &[entry("S-4", "D00000", "RemoveProvisioningProfile")],
            &[],
            at(),
            now.as_deref(),
        )
        .expect("enqueue");
    assert_eq!(queued, (1, 0), "{backend}");
}

#[test]
fn memory_delivery() {
    let mut s = MemoryStore::default();
    semantics(&mut s, "memory");
    connections_are_scoped(&mut s, "memory");
    devices_reached_only_by_udid(&mut MemoryStore::default(), "memory");
    lost_answers_settled_by_the_profile_list(&mut MemoryStore::default(), "memory");
    stale_plans_sent_settled_commands_again(&mut MemoryStore::default(), "memory");
}

#[test]
fn sqlite_delivery() {
    let dir = std::env::temp_dir().join(format!("provkit-store-delivery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut s = SqliteStore::open(dir.join("a.db")).expect("open");
    semantics(&mut s, "sqlite");
    connections_are_scoped(&mut s, "sqlite");
    devices_reached_only_by_udid(
        &mut SqliteStore::open(dir.join("c.db")).expect("open"),
        "sqlite",
    );
    lost_answers_settled_by_the_profile_list(
        &mut SqliteStore::open(dir.join("d.db")).expect("open"),
        "sqlite",
    );
    stale_plans_sent_settled_commands_again(
        &mut SqliteStore::open(dir.join("e.db")).expect("open"),
        "sqlite",
    );
    let path = dir.join("b.db");
    drop(SqliteStore::open(&path).expect("create"));
    concurrent_claims(
        &|| Box::new(SqliteStore::open_existing(&path, Access::ReadWrite).expect("open")),
        "sqlite",
    );
}

#[test]
fn postgres_delivery() {
    let Some(url) = std::env::var("PROVKIT_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "NOTICE: PROVKIT_DATABASE_URL is not set: the PostgreSQL delivery run is skipped"
        );
        return;
    };
    PostgresStore::reset(&url).expect("reset");
    let mut s = PostgresStore::connect(&url).expect("connect");
    semantics(&mut s, "postgres");
    connections_are_scoped(&mut s, "postgres");
    drop(s);
    PostgresStore::reset(&url).expect("reset");
    devices_reached_only_by_udid(
        &mut PostgresStore::connect(&url).expect("connect"),
        "postgres",
    );
    PostgresStore::reset(&url).expect("reset");
    lost_answers_settled_by_the_profile_list(
        &mut PostgresStore::connect(&url).expect("connect"),
        "postgres",
    );
    PostgresStore::reset(&url).expect("reset");
    stale_plans_sent_settled_commands_again(
        &mut PostgresStore::connect(&url).expect("connect"),
        "postgres",
    );
    PostgresStore::reset(&url).expect("reset");
    drop(PostgresStore::connect(&url).expect("create"));
    concurrent_claims(
        &|| Box::new(PostgresStore::connect_existing(&url).expect("connect")),
        "postgres",
    );
}

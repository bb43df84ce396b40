//! Delivery in the store, on memory, SQLite and PostgreSQL: planned
//! commands grouped into dispatches, claims handed out once among
//! concurrent senders, what a send came to per device, and devices'
//! answers applied once (a final status stays final).

use chrono::{DateTime, Duration, Utc};
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_store::*;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// A planned install of the profile on `udid`.
fn install(command_uuid: String, udid: String) -> OutboxEntry {
    OutboxEntry {
        command_uuid,
        udid,
        request_type: "InstallProvisioningProfile".into(),
        profile_uuid: UUID.into(),
        status: CommandStatus::Planned,
        error_chain: None,
        retries: 0,
        created_at: at(),
        updated_at: at(),
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
        .map(|i| install(format!("ROW-{i:05}"), format!("D{i:05}")))
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

/// Regression: every re-plan queued a failed command again (each device
/// answer is a change, and a change re-plans), so a device that kept
/// refusing an install got one per change without end. Now the first
/// retry goes with the next plan, then the command waits one minute,
/// doubling; failures counted through a device's answer and through the
/// MDM server's refusal alike.
fn a_failing_install_was_queued_again_at_every_plan(store: &mut dyn Store, backend: &str) {
    tenant(store, 2);
    let plan = |store: &mut dyn Store, id: &str, udid: &str, when: DateTime<Utc>| {
        let mut e = install(id.into(), udid.into());
        e.created_at = when;
        e.updated_at = when;
        store.enqueue_plan(&[e], &[], when).expect("enqueue").0
    };
    let s = |n: i64| at() + Duration::seconds(n);
    // D00000 answers Error: the next plan sends it again.
    store
        .record_result("ROW-00000", CommandStatus::Error, Some("no"), s(1))
        .expect("error");
    assert_eq!(
        plan(store, "R-1", "D00000", s(2)),
        1,
        "{backend}: first retry at once"
    );
    store
        .record_result("R-1", CommandStatus::Error, Some("no"), s(3))
        .expect("error");
    // Twice in a row: held back for a minute after the last failure.
    assert_eq!(
        plan(store, "R-2", "D00000", s(4)),
        0,
        "{backend}: held back"
    );
    assert_eq!(plan(store, "R-3", "D00000", s(62)), 0, "{backend}: still");
    assert_eq!(
        plan(store, "R-4", "D00000", s(63)),
        1,
        "{backend}: a minute on"
    );
    store
        .record_result("R-4", CommandStatus::Error, Some("no"), s(64))
        .expect("error");
    assert_eq!(
        plan(store, "R-5", "D00000", s(123)),
        0,
        "{backend}: now two minutes"
    );
    assert_eq!(plan(store, "R-6", "D00000", s(184)), 1, "{backend}");
    // A failure a day after the last starts the count again.
    store
        .record_result("R-6", CommandStatus::Error, Some("no"), s(184 + 86_400))
        .expect("error");
    assert_eq!(
        plan(store, "R-7", "D00000", s(185 + 86_400)),
        1,
        "{backend}: the first of a new run"
    );
    // D00001's install refused by the MDM server, twice: held back too.
    for round in 0..2 {
        store.prepare_dispatches(s(10), 10).expect("prepare");
        let claimed = store
            .claim_dispatches(s(10 + round), Duration::minutes(1), 10)
            .expect("claim");
        let mine: Vec<_> = claimed
            .iter()
            .filter(|c| c.dispatch.targets.iter().any(|t| t.udid == "D00001"))
            .collect();
        assert_eq!(mine.len(), 1, "{backend}: round {round}");
        store
            .settle_dispatch(
                &mine[0].dispatch.command_uuid,
                &[(
                    "D00001".into(),
                    SendOutcome::Refused("enrollment not found".into()),
                )],
                s(600),
                s(10 + round),
            )
            .expect("settle");
        if round == 0 {
            assert_eq!(plan(store, "Q-1", "D00001", s(11)), 1, "{backend}: retried");
        }
    }
    assert_eq!(
        plan(store, "Q-2", "D00001", s(12)),
        0,
        "{backend}: refused twice"
    );
    assert_eq!(plan(store, "Q-3", "D00001", s(72)), 1, "{backend}");
}

/// Failures recorded at the last instant chrono can hold: the backoff's
/// end lies past it, and queueing holds the command back instead of
/// panicking on the addition.
fn a_backoff_past_the_end_of_time(store: &mut dyn Store, backend: &str) {
    tenant(store, 1);
    let end = DateTime::<Utc>::MAX_UTC;
    store
        .record_result("ROW-00000", CommandStatus::Error, Some("no"), end)
        .expect("error");
    let mut again = install("E-1".into(), "D00000".into());
    (again.created_at, again.updated_at) = (end, end);
    assert_eq!(
        store.enqueue_plan(&[again], &[], end).expect("enqueue").0,
        1
    );
    store
        .record_result("E-1", CommandStatus::Error, Some("no"), end)
        .expect("error");
    let mut third = install("E-2".into(), "D00000".into());
    (third.created_at, third.updated_at) = (end, end);
    assert_eq!(
        store.enqueue_plan(&[third], &[], end).expect("enqueue").0,
        0,
        "{backend}: held back"
    );
}

/// Regression: the reconciler read every outbox row (millions on a large
/// tenant, every five minutes) to find the commands sent and unanswered.
/// `Store::unanswered` finds them through an index by the instant sent:
/// sent by the worker (a dispatch's queued devices) or recorded as sent,
/// and not answered since; windows move on.
fn the_reconciler_read_the_whole_outbox(store: &mut dyn Store, backend: &str) {
    tenant(store, 3);
    let s = |n: i64| at() + Duration::seconds(n);
    store.prepare_dispatches(s(0), 10).expect("prepare");
    for c in store
        .claim_dispatches(s(30), Duration::minutes(1), 10)
        .expect("claim")
    {
        let outcomes: Vec<(String, SendOutcome)> = c
            .dispatch
            .targets
            .iter()
            .map(|t| (t.enrollment_id.clone(), SendOutcome::Queued(None)))
            .collect();
        store
            .settle_dispatch(&c.dispatch.command_uuid, &outcomes, s(600), s(30))
            .expect("settle");
    }
    store
        .record_result("ROW-00001", CommandStatus::Acknowledged, None, s(35))
        .expect("answered");
    let mut removal = install("X-1".into(), "D00000".into());
    removal.request_type = "RemoveProvisioningProfile".into();
    store.enqueue(&[removal]).expect("enqueue");
    store
        .record_result("X-1", CommandStatus::Sent, None, s(50))
        .expect("sent");
    assert_eq!(
        store.unanswered(s(0), s(40)).expect("window"),
        ["D00000", "D00002"],
        "{backend}: D00001 answered"
    );
    assert_eq!(
        store.unanswered(s(0), s(40)).expect("again"),
        ["D00000", "D00002"],
        "{backend}: the same window twice"
    );
    assert_eq!(
        store.unanswered(s(40), s(60)).expect("next"),
        ["D00000"],
        "{backend}"
    );
    assert!(
        store.unanswered(s(0), s(40)).expect("old").is_empty(),
        "{backend}: windows move on"
    );
}

/// A plan larger than the store's queueing chunk: a command repeated (by
/// its UUID, or as a second command for the same device, request and
/// profile) tens of thousands of entries later is still queued once.
fn duplicates_far_apart_are_queued_once(store: &mut dyn Store, backend: &str) {
    const N: usize = 70_000;
    let entry = install;
    let mut rows: Vec<OutboxEntry> = (0..N)
        .map(|i| entry(format!("BIG-{i:06}"), format!("B{i:06}")))
        .collect();
    // The first row again, and another command for the second row's device.
    rows.push(rows[0].clone());
    rows.push(entry("BIG-EXTRA".into(), "B000001".into()));
    let (queued, _) = store.enqueue_plan(&rows, &[], at()).expect("enqueue");
    assert_eq!(queued, N, "{backend}");
    let mut count = 0;
    store.each_command(&mut |_| count += 1).expect("each");
    assert_eq!(count, N, "{backend}");
}

/// `each_command` hands over what `outbox` returns, row for row, an error
/// chain with quotes and a line break included (decoded, not borrowed);
/// a scope that holds none of the devices sees none of their commands.
fn rows_as_the_outbox_holds_them(store: &mut dyn Store, backend: &str) {
    tenant(store, 3);
    let chain = "MCProfileErrorDomain 1009: \"bad\"\nsecond line";
    store
        .record_result("ROW-00001", CommandStatus::Error, Some(chain), at())
        .expect("error");
    let view = |store: &mut dyn Store| {
        let mut rows = Vec::new();
        store
            .each_command(&mut |r| {
                rows.push((
                    r.udid.into_owned(),
                    r.request_type.into_owned(),
                    r.profile_uuid.into_owned(),
                    r.status,
                    r.error_chain.map(|c| c.into_owned()),
                    r.updated_at,
                ));
            })
            .expect("each");
        rows
    };
    let whole = |store: &mut dyn Store| {
        let mut rows: Vec<_> = store
            .outbox()
            .expect("outbox")
            .into_iter()
            .map(|e| {
                (
                    e.udid,
                    e.request_type,
                    e.profile_uuid,
                    e.status,
                    e.error_chain,
                    e.updated_at,
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    };
    let mut rows = view(store);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rows.len(), 3, "{backend}");
    assert_eq!(rows[1].4.as_deref(), Some(chain), "{backend}");
    assert_eq!(rows, whole(store), "{backend}");
    store.add_org_group("Global/APAC", &actor()).expect("og");
    store.set_scope("Global/APAC");
    assert!(view(store).is_empty(), "{backend}: another group's devices");
    assert!(whole(store).is_empty(), "{backend}");
    store.set_scope("Global");
}

/// Regression for the make-before-break break seen in the 10k-device
/// renewal: a plan read the profiles before a renewal committed and the
/// assignments after it, found them pointing at a profile it had not seen,
/// and so every device wanted nothing and was sent the old profile's
/// removal. One thread renews a profile again and again while another
/// loads the tenant: every load sees exactly one assignment, on the newest
/// profile it sees.
fn a_plan_saw_half_a_renewal(open: &(dyn Fn() -> Box<dyn Store + Send> + Sync), backend: &str) {
    const RENEWALS: usize = 40;
    let ca = TestCa::rsa();
    let uuid = |i: usize| format!("0F1E2D3C-4B5A-4968-8776-{i:012}");
    let bytes: Vec<Vec<u8>> = (0..=RENEWALS)
        .map(|i| {
            signed_profile(
                &ca,
                &ProfileSpec {
                    uuid: uuid(i),
                    expiration: utc(2027, 1, 1) + Duration::days(i as i64),
                    ..ProfileSpec::default()
                },
            )
        })
        .collect();
    let mut store = open();
    store.add_profile(&bytes[0], &actor()).expect("first");
    store
        .set_assignments(&uuid(0), &[TargetName::AllDevices], &[], &actor())
        .expect("assign");
    let done = AtomicBool::new(false);
    let started = AtomicBool::new(false);
    let loads = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut st = open();
            let mut loads = 0;
            while !done.load(Ordering::Acquire) {
                started.store(true, Ordering::Release);
                let t = st.load_tenant().expect("load");
                assert_eq!(
                    t.assignments.len(),
                    1,
                    "{backend}: load {loads} saw the assignment on a profile it did not see"
                );
                let p = &t.profiles[t.assignments[0].profile.index()];
                assert!(
                    p.superseded_by.is_none(),
                    "{backend}: assigned {} though it was renewed",
                    p.uuid
                );
                loads += 1;
            }
            loads
        });
        while !started.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        for (i, successor) in bytes.iter().enumerate().skip(1) {
            store
                .renew(&uuid(i - 1), successor, None, &actor())
                .expect("renew");
        }
        done.store(true, Ordering::Release);
        reader.join().expect("reader")
    });
    assert!(loads > 0, "{backend}: the reader ran");
    let assigned = store.assignments().expect("assignments");
    assert_eq!(assigned.len(), 1, "{backend}");
    assert!(
        assigned[0]
            .profile_uuid
            .eq_ignore_ascii_case(&uuid(RENEWALS)),
        "{backend}"
    );
}

/// The suites that each take a fresh store of their own.
type Suite = fn(&mut dyn Store, &str);
const FRESH: [Suite; 9] = [
    a_change_stamped_before_the_last_sorts_after_it,
    devices_reached_only_by_udid,
    a_backoff_past_the_end_of_time,
    the_reconciler_read_the_whole_outbox,
    a_failing_install_was_queued_again_at_every_plan,
    lost_answers_settled_by_the_profile_list,
    stale_plans_sent_settled_commands_again,
    rows_as_the_outbox_holds_them,
    duplicates_far_apart_are_queued_once,
];

/// Adds device `udid` to the inventory as an admin at `at() + secs`: an
/// audited change stamped with that instant.
fn add_device_at(store: &mut dyn Store, udid: &str, secs: i64) {
    let who = Actor {
        name: "admin".into(),
        at: at() + Duration::seconds(secs),
    };
    let inv: Inventory = serde_json::from_value(serde_json::json!({"devices": [{"udid": udid}]}))
        .expect("inventory");
    store
        .apply_inventory(&inv, &Replace::Nothing, false, who.at, &who)
        .expect("edit");
}

/// The audit log's actions, in its order.
fn audit_actions(store: &mut dyn Store) -> Vec<String> {
    store
        .audit_log()
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// A plan's install on D00000 (CommandUUID `S-AGAIN`) made at `at() + secs`.
fn stale_install(secs: i64) -> OutboxEntry {
    let mut stale = install("S-AGAIN".into(), "D00000".into());
    stale.created_at = at() + Duration::seconds(secs);
    stale.updated_at = stale.created_at;
    stale
}

/// Regression: audit keys began with the instant the caller gave, so a
/// change stamped before the last stored one sorted before it: a reader
/// that had seen the last change (a plan, the scheduler) saw nothing new.
/// It now sorts after, and the log lists changes as they were made.
fn a_change_stamped_before_the_last_sorts_after_it(store: &mut dyn Store, backend: &str) {
    tenant(store, 1);
    add_device_at(store, "D00001", 10);
    let seen = store.last_change().expect("change");
    add_device_at(store, "D00002", 1);
    assert_ne!(store.last_change().expect("change"), seen, "{backend}");
    let log = store.audit_log().expect("audit");
    let last = log.last().expect("entries");
    assert_eq!(
        last.at,
        at() + Duration::seconds(1),
        "{backend}: listed last, with its own instant"
    );
}

/// The suites that open connections of their own to one store.
type SharedSuite = fn(&(dyn Fn() -> Box<dyn Store + Send> + Sync), &str);
const SHARED: [SharedSuite; 2] = [concurrent_claims, a_plan_saw_half_a_renewal];

/// A store written before the sent index existed: its commands sent and
/// unanswered are indexed when the reconciler first asks.
#[test]
fn sent_before_the_index_existed() {
    let dir = std::env::temp_dir().join(format!("provkit-store-sent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("provkit.db");
    {
        let mut store = SqliteStore::open(&path).expect("open");
        tenant(&mut store, 2);
        store
            .record_result("ROW-00001", CommandStatus::Sent, None, at())
            .expect("sent");
    }
    let raw = rusqlite::Connection::open(&path).expect("raw");
    raw.execute_batch("DELETE FROM outbox_sent; DELETE FROM meta WHERE k LIKE 'index%';")
        .expect("as an older version left it");
    drop(raw);
    let mut store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        store
            .unanswered(at() - Duration::seconds(1), at())
            .expect("unanswered"),
        ["D00001"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Acknowledging every pending command deletes a chunk's index keys as
/// runs, a stretch of the index in one statement when it holds only keys
/// settled. A key not settled must stay and the keys around it still go:
/// one whose command is no longer pending, or one naming a command that is
/// pending under another key (both left behind by hand; the one-by-one
/// deletion before kept them).
#[test]
fn acknowledging_all_takes_no_pending_key_it_did_not_settle() {
    let dir = std::env::temp_dir().join(format!("provkit-store-range-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let key = |udid: &str| format!("{udid}\u{1}InstallProvisioningProfile\u{1}{UUID}");
    // (file, SQL leaving a key behind, the key, commands then acknowledged)
    let cases = [
        (
            "acknowledged.db",
            "INSERT INTO outbox_pending (k, doc) VALUES (?1, 'ROW-00002')",
            key("D00002"),
            4,
        ),
        (
            "elsewhere.db",
            "UPDATE outbox_pending SET k = ?1 WHERE doc = 'ROW-00003'",
            key("D00002"),
            4,
        ),
    ];
    for (file, sql, left, acked) in cases {
        let path = dir.join(file);
        {
            let mut store = SqliteStore::open(&path).expect("open");
            tenant(&mut store, 5);
            store
                .acknowledge_commands(Some(&["ROW-00002".to_owned()]), at())
                .expect("one");
        }
        let raw = rusqlite::Connection::open(&path).expect("raw");
        assert_eq!(raw.execute(sql, [&left]).expect("left behind"), 1, "{file}");
        let mut store = SqliteStore::open(&path).expect("reopen");
        let done = store.acknowledge_commands(None, at()).expect("all");
        assert_eq!(done.commands, acked, "{file}");
        let keys: Vec<String> = raw
            .prepare("SELECT k FROM outbox_pending ORDER BY k")
            .expect("keys")
            .query_map([], |r| r.get(0))
            .expect("keys")
            .collect::<Result<_, _>>()
            .expect("keys");
        assert_eq!(keys, std::slice::from_ref(&left), "{file}");
        // The keys that went were settled: the same install queues again.
        let again = install("ROW-AGAIN".into(), "D00001".into());
        assert_eq!(
            store.enqueue_plan(&[again], &[], at()).expect("queue"),
            (1, 0),
            "{file}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn memory_delivery() {
    let mut s = MemoryStore::default();
    semantics(&mut s, "memory");
    connections_are_scoped(&mut s, "memory");
    for suite in FRESH {
        suite(&mut MemoryStore::default(), "memory");
    }
}

#[test]
fn sqlite_delivery() {
    let dir = std::env::temp_dir().join(format!("provkit-store-delivery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut s = SqliteStore::open(dir.join("a.db")).expect("open");
    semantics(&mut s, "sqlite");
    connections_are_scoped(&mut s, "sqlite");
    for (i, suite) in FRESH.iter().enumerate() {
        suite(
            &mut SqliteStore::open(dir.join(format!("fresh-{i}.db"))).expect("open"),
            "sqlite",
        );
    }
    for (i, suite) in SHARED.iter().enumerate() {
        let path = dir.join(format!("shared-{i}.db"));
        drop(SqliteStore::open(&path).expect("create"));
        suite(
            &|| Box::new(SqliteStore::open_existing(&path, Access::ReadWrite).expect("open")),
            "sqlite",
        );
    }
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
    for suite in FRESH {
        PostgresStore::reset(&url).expect("reset");
        suite(
            &mut PostgresStore::connect(&url).expect("connect"),
            "postgres",
        );
    }
    for suite in SHARED {
        PostgresStore::reset(&url).expect("reset");
        drop(PostgresStore::connect(&url).expect("create"));
        suite(
            &|| Box::new(PostgresStore::connect_existing(&url).expect("connect")),
            "postgres",
        );
    }
    PostgresStore::reset(&url).expect("reset");
    a_stale_plan_raced_an_answer_committing(&url);
    PostgresStore::reset(&url).expect("reset");
    a_change_stamped_earlier_committed_later(&url);
    PostgresStore::reset(&url).expect("reset");
    audit_keys_follow_commit_order(&url);
}

/// Audit keys sort in the order their changes commit, even when each
/// change had written its key before the other committed: an edit stamped
/// t+10s and an answer stamped t+1s both wait to commit (the store's
/// change lock, `CHANGE_LOCK` in `conn/postgres.rs`, held from a third
/// connection), the edit first; the answer, committed last, sorts last.
fn audit_keys_follow_commit_order(url: &str) {
    const CHANGE_LOCK: i64 = 0x0070_726f_766b_6974;
    let mut store = PostgresStore::connect(url).expect("connect");
    tenant(&mut store, 1);
    let mut blocker = postgres::Client::connect(url, postgres::NoTls).expect("client");
    let mut watcher = postgres::Client::connect(url, postgres::NoTls).expect("client");
    store.receive_event("ev-1", "{}", at()).expect("event kept");
    let handle = store
        .take_events(at(), Duration::minutes(1), 10)
        .expect("take")[0]
        .0
        .clone();
    blocker
        .execute("SELECT pg_advisory_lock($1)", &[&CHANGE_LOCK])
        .expect("lock");
    let editing = {
        let url = url.to_owned();
        std::thread::spawn(move || {
            let mut s = PostgresStore::connect_existing(&url).expect("connect");
            add_device_at(&mut s, "D00001", 10);
        })
    };
    until_waiting(&mut watcher, 1, "the edit");
    let answering = acknowledge_in_thread(url, handle, at() + Duration::seconds(1));
    until_waiting(&mut watcher, 2, "the answer");
    blocker
        .execute("SELECT pg_advisory_unlock($1)", &[&CHANGE_LOCK])
        .expect("unlock");
    editing.join().expect("edit thread");
    assert_eq!(answering.join().expect("answer thread").applied, 1);
    let actions = audit_actions(&mut store);
    let n = actions.len();
    assert_eq!(
        actions[n - 2..],
        ["import-inventory".to_owned(), "device-results".to_owned()],
        "{actions:?}"
    );
}

/// Holds the inbox-due row of the only event taken so far from `store`'s
/// inbox, so that recording its answer waits just before it commits
/// (its other writes made); the lock's transaction and the event's handle.
fn hold_answer_commit<'a>(
    store: &mut PostgresStore,
    blocker: &'a mut postgres::Client,
) -> (postgres::Transaction<'a>, String) {
    store.receive_event("ev-1", "{}", at()).expect("event kept");
    let handles = store
        .take_events(at(), Duration::minutes(1), 10)
        .expect("take");
    let handle = handles[0].0.clone();
    let mut hold = blocker.transaction().expect("begin");
    hold.query(
        "SELECT k FROM inbox_due WHERE k = $1 FOR UPDATE",
        &[&handle],
    )
    .expect("lock");
    (hold, handle)
}

/// D00000 acknowledging ROW-00000 at `when`, recorded on a connection of
/// its own.
fn acknowledge_in_thread(
    url: &str,
    handle: String,
    when: DateTime<Utc>,
) -> std::thread::JoinHandle<AnswerCounts> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut s = PostgresStore::connect_existing(&url).expect("connect");
        s.record_answers(
            &[handle],
            &[DeviceAnswer {
                command_uuid: "ROW-00000".into(),
                udid: "D00000".into(),
                status: CommandStatus::Acknowledged,
                error_chain: None,
                profiles: None,
            }],
            when,
        )
        .expect("answer")
    })
}

/// Regression: audit keys begin with the instant the caller gives, and
/// changes made side by side need not commit in that order. An answer
/// stamped at t+1s committed after an edit stamped t+10s; a plan that had
/// seen the edit's key as the last change then saw no change since (the
/// answer's key sorted before it), was not checked against the reports,
/// and sent the acknowledged install again. Keys now follow commit order.
fn a_change_stamped_earlier_committed_later(url: &str) {
    let mut store = PostgresStore::connect(url).expect("connect");
    tenant(&mut store, 1);
    let mut blocker = postgres::Client::connect(url, postgres::NoTls).expect("client");
    let mut watcher = postgres::Client::connect(url, postgres::NoTls).expect("client");
    let (hold, handle) = hold_answer_commit(&mut store, &mut blocker);
    let answering = acknowledge_in_thread(url, handle, at() + Duration::seconds(1));
    until_waiting(&mut watcher, 1, "the answer");
    // Meanwhile an edit stamped later commits first.
    add_device_at(&mut store, "D00001", 10);
    // A plan is made now: the edit is the last change it saw.
    let seen = store.last_change().expect("change");
    let stale = stale_install(20);
    hold.rollback().expect("release");
    assert_eq!(answering.join().expect("answer thread").applied, 1);
    assert_ne!(
        store.last_change().expect("change"),
        seen,
        "the answer is a change after the one the plan saw"
    );
    let queued = store
        .enqueue_plan_since(&[stale], &[], at() + Duration::seconds(20), seen.as_deref())
        .expect("enqueue");
    assert_eq!(queued, (0, 0), "the acknowledged install is not sent again");
    // The audit log lists changes in the order they committed.
    let actions = audit_actions(&mut store);
    assert_eq!(actions.last().map(String::as_str), Some("device-results"));
}

/// How many PostgreSQL sessions wait for a lock.
fn waiting_for_locks(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
            &[],
        )
        .expect("pg_stat_activity")
        .get(0)
}

fn until_waiting(client: &mut postgres::Client, n: i64, what: &str) {
    let start = std::time::Instant::now();
    while waiting_for_locks(client) < n {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{what} never came to wait"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Regression (PostgreSQL, where one transaction's statements each see
/// what committed before them): a plan made before a device acknowledged
/// an install was queued while that answer committed. The queuing read
/// the last change before the answer committed (so did not check the
/// plan against the devices' reports), then the pending commands after it
/// (the acknowledged one gone), and sent the install again; the device's
/// newest command for the profile read "sent" for good. The interleaving
/// is forced with a row lock held from a third connection: the answer
/// stops just before it commits, the queuing waits on it, then both go on.
fn a_stale_plan_raced_an_answer_committing(url: &str) {
    let mut store = PostgresStore::connect(url).expect("connect");
    tenant(&mut store, 1);
    // The plan is made now, before D00000's answer: it still wants the
    // install there.
    let seen = store.last_change().expect("change");
    let stale = stale_install(2);

    // A third connection holds the event's due row: the answer's last
    // write (marking the event processed) waits for it, its other writes
    // made and not committed.
    let mut blocker = postgres::Client::connect(url, postgres::NoTls).expect("client");
    let mut watcher = postgres::Client::connect(url, postgres::NoTls).expect("client");
    let (hold, handle) = hold_answer_commit(&mut store, &mut blocker);
    let answering = acknowledge_in_thread(url, handle, at() + Duration::seconds(1));
    until_waiting(&mut watcher, 1, "the answer");
    let queuing = {
        let url = url.to_owned();
        std::thread::spawn(move || {
            let mut s = PostgresStore::connect_existing(&url).expect("connect");
            s.enqueue_plan_since(&[stale], &[], at() + Duration::seconds(2), seen.as_deref())
                .expect("enqueue")
        })
    };
    until_waiting(&mut watcher, 2, "the queuing");
    hold.rollback().expect("release");
    let counts = answering.join().expect("answer thread");
    assert_eq!(counts.applied, 1, "the acknowledgement applied");
    let queued = queuing.join().expect("queue thread");
    assert_eq!(
        queued,
        (0, 0),
        "the install D00000 acknowledged is not sent again"
    );
    let rows: Vec<String> = store
        .outbox()
        .expect("outbox")
        .into_iter()
        .map(|e| e.command_uuid)
        .collect();
    assert_eq!(rows, ["ROW-00000"]);
}

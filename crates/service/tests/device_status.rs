//! Per-device status of a profile, through the states a device goes
//! through: pending install, sent, installed or failed with its error
//! chain, pending removal.

use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_service::catalog::{
    CommandIndex, DeviceState, Holders, TenantKeys, device_status, device_status_indexed,
    device_status_page,
};
use provkit_service::plan::plan_and_enqueue;
use provkit_store::{
    Actor, AssignmentEdit, CommandResult, CommandStatus, MemoryStore, Replace, ReportedProfile,
    Store, TargetName,
};

#[test]
fn device_states_follow_the_commands_and_reports() {
    let at = utc(2026, 11, 22);
    let admin = Actor {
        name: "admin".into(),
        at,
    };
    let mut store = MemoryStore::default();
    let bytes = signed_profile(
        &TestCa::rsa(),
        &ProfileSpec {
            all_devices: true,
            devices: None,
            ..ProfileSpec::default()
        },
    );
    let rec = store.add_profile(&bytes, &admin).expect("profile");
    let inv = serde_json::from_str(
        r#"{"users": ["a", "b", "c"], "devices": [{"udid": "DA", "user": "a"}, {"udid": "DB", "user": "b"}, {"udid": "DC", "user": "c"}]}"#,
    )
    .expect("inventory");
    store
        .apply_inventory(&inv, &Replace::Nothing, false, at, &admin)
        .expect("inventory");
    let add = AssignmentEdit::Add {
        include: vec![TargetName::AllUsers],
        exclude: vec![],
    };
    store
        .edit_assignments(&rec.uuid, &add, at, &admin)
        .expect("assign");
    let states = |store: &mut MemoryStore| -> Vec<(String, DeviceState)> {
        device_status(store, &rec.uuid, at)
            .expect("status")
            .into_iter()
            .map(|d| (d.udid, d.state))
            .collect()
    };
    assert!(
        states(&mut store)
            .iter()
            .all(|(_, s)| *s == DeviceState::PendingInstall)
    );
    let planned = plan_and_enqueue(&mut store, at, at).expect("plan");
    assert!(
        states(&mut store)
            .iter()
            .all(|(_, s)| *s == DeviceState::Sent)
    );
    let uuid_of = |udid: &str| {
        planned
            .commands
            .iter()
            .find(|c| c.udid == udid)
            .expect("command")
            .command_uuid
            .clone()
    };
    store
        .record_results(
            &[
                CommandResult {
                    command_uuid: uuid_of("DA"),
                    status: CommandStatus::Acknowledged,
                    error_chain: None,
                },
                CommandResult {
                    command_uuid: uuid_of("DB"),
                    status: CommandStatus::Error,
                    error_chain: Some(
                        "MCProvisioningProfileErrorDomain 25001: cannot install".into(),
                    ),
                },
            ],
            &[(
                "DA".into(),
                vec![ReportedProfile {
                    uuid: rec.uuid.clone(),
                    expires: rec.facts.expires,
                    managed: true,
                }],
            )],
            at,
        )
        .expect("results");
    let all = device_status(&mut store, &rec.uuid, at).expect("status");
    let got: Vec<(&str, DeviceState)> = all.iter().map(|d| (d.udid.as_str(), d.state)).collect();
    assert_eq!(
        got,
        [
            ("DA", DeviceState::Installed),
            ("DB", DeviceState::Failed),
            ("DC", DeviceState::Sent)
        ]
    );
    assert!(
        all[1]
            .error_chain
            .as_deref()
            .is_some_and(|e| e.contains("25001"))
    );
    // The server's path (an outbox index and the holders, built once per
    // snapshot) gives the same statuses, and counts the one failed device.
    let engine = provkit_policy::Engine::new(store.load_tenant().expect("tenant"), at);
    let index = CommandIndex::build(&engine, store.outbox().expect("outbox"));
    assert_eq!(index.failed_devices(), 1);
    assert_eq!(index.len(), 3);
    let indexed = device_status_indexed(&engine, &index, &Holders::build(&engine), &rec.uuid)
        .expect("status");
    assert_eq!(indexed, all);
    let holders = Holders::build(&engine);
    let page = device_status_page(&engine, &index, &holders, &rec.uuid, 1, 5).expect("page");
    assert_eq!((page.total, page.failed), (3, 1));
    assert_eq!(page.items, all[1..]);
    // Read row by row from the store, the index is the same.
    let read = CommandIndex::read(&engine, &mut store).expect("read");
    assert_eq!((read.len(), read.failed_devices()), (3, 1));
    assert_eq!(
        device_status_page(&engine, &read, &holders, &rec.uuid, 0, 5).expect("page"),
        device_status_page(&engine, &index, &holders, &rec.uuid, 0, 5).expect("page")
    );
    // regression guard for a small outbox read at the cost of every device
    // of the tenant (the keys made again for each reading): read over keys
    // made once, the index is the same, and the keys find any case.
    let keys = TenantKeys::new(&engine);
    let keyed = CommandIndex::read_keyed(&keys, &mut store).expect("read");
    assert_eq!((keyed.len(), keyed.failed_devices()), (3, 1));
    assert_eq!(
        device_status_page(&engine, &keyed, &holders, &rec.uuid, 0, 5).expect("page"),
        device_status_page(&engine, &index, &holders, &rec.uuid, 0, 5).expect("page")
    );
    assert_eq!(keys.device("da"), keys.device("DA"));
    assert!(keys.device("DA").is_some() && keys.device("D-NONE").is_none());
    assert_eq!(
        keys.profile(&rec.uuid.to_ascii_lowercase()),
        keys.profile(&rec.uuid)
    );
    assert!(keys.profile(&rec.uuid).is_some());
    // regression guard for the outbox read in key order (a sorted walk of
    // a 9.8M-row SQLite outbox took 63 s, the stored order 5.5 s): the
    // index does not depend on the order rows come in, not even for two
    // commands about one device and profile changed at the same instant.
    let mut rows = store.outbox().expect("outbox");
    let mut twin = rows
        .iter()
        .find(|e| e.udid == "DC")
        .expect("DC's command")
        .clone();
    twin.command_uuid = "TWIN".into();
    twin.request_type = "RemoveProvisioningProfile".into();
    let by_order = |rows: Vec<provkit_store::OutboxEntry>| {
        let index = CommandIndex::build(&engine, rows);
        device_status_page(&engine, &index, &holders, &rec.uuid, 0, 10).expect("page")
    };
    rows.push(twin);
    let forward = by_order(rows.clone());
    rows.reverse();
    assert_eq!(by_order(rows), forward);
    // regression guard for the carried index: after a change that shifts
    // every device id (a device sorting first), the old index moved to the
    // new tenant's ids answers as one read afresh.
    let inv2 =
        serde_json::from_str(r#"{"users": ["a0"], "devices": [{"udid": "D0", "user": "a0"}]}"#)
            .expect("inventory");
    store
        .apply_inventory(&inv2, &Replace::Nothing, false, at, &admin)
        .expect("inventory");
    let engine2 = provkit_policy::Engine::new(store.load_tenant().expect("tenant"), at);
    assert_eq!(engine2.tenant().devices[0].udid, "D0", "ids shifted");
    let moved = index.remap(&engine, &engine2);
    let fresh = CommandIndex::build(&engine2, store.outbox().expect("outbox"));
    let holders2 = Holders::build(&engine2);
    let page_of = |i: &CommandIndex| {
        device_status_page(&engine2, i, &holders2, &rec.uuid, 0, 10).expect("page")
    };
    assert_eq!(page_of(&moved), page_of(&fresh));
    assert_eq!((moved.len(), moved.failed_devices()), (3, 1));
    // A page is made by merging the holders with the profile's commands,
    // counting, without a list of every device (a million ids at 1M
    // devices): every page, at every offset and length, is the same slice
    // of the store's own answer, with the same counts; with devices that
    // hold it, want it, have a command about it, or some of these.
    let pages_agree = |store: &mut MemoryStore| {
        let engine = provkit_policy::Engine::new(store.load_tenant().expect("tenant"), at);
        let index = CommandIndex::build(&engine, store.outbox().expect("outbox"));
        let holders = Holders::build(&engine);
        let all = device_status(store, &rec.uuid, at).expect("status");
        let failed = all
            .iter()
            .filter(|d| d.state == DeviceState::Failed)
            .count();
        let n = all.len();
        for offset in 0..=n + 1 {
            for limit in 0..=n + 1 {
                let page = device_status_page(&engine, &index, &holders, &rec.uuid, offset, limit)
                    .expect("page");
                assert_eq!((page.total, page.failed), (n, failed), "{offset} {limit}");
                assert_eq!(page.items, all[offset.min(n)..(offset + limit).min(n)]);
            }
        }
        n
    };
    assert_eq!(pages_agree(&mut store), 4, "D0 wants it, with no command");
    // Unassigned: the device holding it has it pending removal.
    let none = AssignmentEdit::Replace {
        include: vec![],
        exclude: vec![],
    };
    store
        .edit_assignments(&rec.uuid, &none, at, &admin)
        .expect("unassign");
    let got = states(&mut store);
    assert_eq!(got[0], ("DA".to_owned(), DeviceState::PendingRemoval));
    assert_eq!(pages_agree(&mut store), 3, "D0 no longer wants it");
}

#[test]
fn group_outline_shows_every_group_once_and_stops_at_a_cycle() {
    use provkit_service::catalog::group_outline;
    let at = utc(2026, 11, 22);
    let admin = Actor {
        name: "admin".into(),
        at,
    };
    let mut store = MemoryStore::default();
    let inv = serde_json::from_str(
        r#"{"users": ["carol", "dave"], "devices": [{"udid": "K1"}],
            "groups": [
              {"name": "Sales", "kind": "user", "members": ["carol"], "subgroups": ["Sales EU"]},
              {"name": "Sales EU", "kind": "user", "members": ["dave"], "subgroups": ["Sales"]},
              {"name": "Kiosks", "kind": "device", "members": ["K1"]}
            ]}"#,
    )
    .expect("inventory");
    store
        .apply_inventory(&inv, &Replace::Nothing, false, at, &admin)
        .expect("inventory");
    let lines = group_outline(&store.load_tenant().expect("tenant"));
    let shown: Vec<(&str, usize, usize, bool)> = lines
        .iter()
        .map(|l| (l.name.as_str(), l.depth, l.members, l.repeated))
        .collect();
    for name in ["Sales", "Sales EU", "Kiosks"] {
        assert_eq!(
            shown.iter().filter(|l| l.0 == name && !l.3).count(),
            1,
            "{name} expanded once: {shown:?}"
        );
    }
    // The cycle closes with one line marked repeated, two levels down.
    let repeated: Vec<_> = shown.iter().filter(|l| l.3).collect();
    assert_eq!(repeated.len(), 1, "{shown:?}");
    assert_eq!(repeated[0].1, 2, "{shown:?}");
    assert!(shown.contains(&("Kiosks", 0, 1, false)), "{shown:?}");
}

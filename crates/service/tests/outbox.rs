//! Acknowledging commands: installs land in the device's report, removals
//! leave it, an unknown command UUID refuses the whole call (regression:
//! `ack NOT-A-UUID` exited 0 having done nothing).

use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_service::ServiceError;
use provkit_service::outbox::{Acknowledge, acknowledge};
use provkit_store::{Actor, CommandStatus, MemoryStore, OutboxEntry, Store};

const P: &str = "ACAC0000-0000-4000-8000-000000000001";

fn entry(id: &str, udid: &str, request: &str) -> OutboxEntry {
    OutboxEntry {
        command_uuid: id.into(),
        udid: udid.into(),
        request_type: request.into(),
        profile_uuid: P.into(),
        status: CommandStatus::Planned,
        error_chain: None,
        retries: 0,
        created_at: utc(2026, 11, 22),
        updated_at: utc(2026, 11, 22),
    }
}

#[test]
fn ack_of_an_unknown_command_exited_zero() {
    let at = utc(2026, 11, 22);
    let admin = Actor {
        name: "admin".into(),
        at,
    };
    let mut store = MemoryStore::default();
    let bytes = signed_profile(
        &TestCa::rsa(),
        &ProfileSpec {
            uuid: P.into(),
            ..ProfileSpec::default()
        },
    );
    store.add_profile(&bytes, &admin).expect("profile");
    store
        .import_inventory(
            &serde_json::from_value(
                serde_json::json!({"devices": [{"udid": "D1"}, {"udid": "D2"}]}),
            )
            .expect("json"),
            &admin,
        )
        .expect("inventory");
    store
        .enqueue(&[
            entry("C1", "D1", "InstallProvisioningProfile"),
            entry("C2", "D2", "InstallProvisioningProfile"),
        ])
        .expect("enqueue");

    match acknowledge(
        &mut store,
        &Acknowledge::Only(vec!["C1".into(), "NOT-A-UUID".into()]),
        at,
    ) {
        Err(ServiceError::Unknown {
            kind: "command",
            names,
        }) => assert_eq!(names, ["NOT-A-UUID"]),
        other => panic!("{other:?}"),
    }
    assert!(
        store
            .outbox()
            .expect("outbox")
            .iter()
            .all(|e| e.status == CommandStatus::Planned),
        "nothing acknowledged"
    );

    let done = acknowledge(&mut store, &Acknowledge::Only(vec!["c1".into()]), at).expect("ack");
    assert_eq!((done.commands, done.devices), (1, 1));
    let reported = |store: &mut MemoryStore, udid: &str| -> usize {
        store
            .load_tenant()
            .expect("tenant")
            .devices
            .iter()
            .find(|d| d.udid == udid)
            .map_or(0, |d| d.reported.len())
    };
    assert_eq!(reported(&mut store, "D1"), 1, "the install is reported");
    assert_eq!(reported(&mut store, "D2"), 0);
    // The rest, then a removal.
    let done = acknowledge(&mut store, &Acknowledge::AllPending, at).expect("ack");
    assert_eq!(done.commands, 1);
    store
        .enqueue(&[entry("C3", "D1", "RemoveProvisioningProfile")])
        .expect("enqueue");
    acknowledge(&mut store, &Acknowledge::AllPending, at).expect("ack");
    assert_eq!(reported(&mut store, "D1"), 0, "the removal is reported");
    // Already acknowledged commands are not acknowledged again.
    let done = acknowledge(&mut store, &Acknowledge::AllPending, at).expect("ack");
    assert_eq!(done.commands, 0);
}

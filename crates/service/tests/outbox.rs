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

/// A store holding the profiles `uuids` and the devices `udids`.
fn tenant(uuids: &[&str], udids: &[&str]) -> MemoryStore {
    let admin = Actor {
        name: "admin".into(),
        at: utc(2026, 11, 22),
    };
    let mut store = MemoryStore::default();
    let ca = TestCa::rsa();
    for uuid in uuids {
        let bytes = signed_profile(
            &ca,
            &ProfileSpec {
                uuid: (*uuid).into(),
                ..ProfileSpec::default()
            },
        );
        store.add_profile(&bytes, &admin).expect("profile");
    }
    let devices: Vec<serde_json::Value> = udids
        .iter()
        .map(|u| serde_json::json!({ "udid": u }))
        .collect();
    store
        .import_inventory(
            &serde_json::from_value(serde_json::json!({ "devices": devices })).expect("json"),
            &admin,
        )
        .expect("inventory");
    store
}

#[test]
fn ack_of_an_unknown_command_exited_zero() {
    let at = utc(2026, 11, 22);
    let mut store = tenant(&[P], &["D1", "D2"]);
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

/// Acknowledging every pending command reads the pending index, not the
/// whole outbox (regression: `acknowledge` loaded the whole outbox and the
/// whole tenant for every call, 1.7 s for one command beside a 100k queue):
/// commands that answered with an error stay as they are, a NotNow is
/// still pending, and a device's two installs both land.
#[test]
fn ack_read_the_whole_outbox_for_every_call() {
    let at = utc(2026, 11, 22);
    let mut store = tenant(
        &[P, "ACAC0000-0000-4000-8000-000000000002"],
        &["D1", "D2", "D3"],
    );
    let mut second = entry("C4", "D1", "InstallProvisioningProfile");
    second.profile_uuid = "acac0000-0000-4000-8000-000000000002".into();
    store
        .enqueue(&[
            entry("C1", "D1", "InstallProvisioningProfile"),
            entry("C2", "D2", "InstallProvisioningProfile"),
            entry("C3", "D3", "InstallProvisioningProfile"),
            second,
        ])
        .expect("enqueue");
    store
        .record_result(
            "C2",
            CommandStatus::Error,
            Some("MCInstallationErrorDomain 4001"),
            at,
        )
        .expect("error");
    store
        .record_result("C3", CommandStatus::NotNow, None, at)
        .expect("not now");

    let done = acknowledge(&mut store, &Acknowledge::AllPending, at).expect("ack");
    assert_eq!((done.commands, done.devices), (3, 2));
    let outbox = store.outbox().expect("outbox");
    let status = |id: &str| {
        outbox
            .iter()
            .find(|e| e.command_uuid == id)
            .map(|e| e.status)
    };
    assert_eq!(status("C1"), Some(CommandStatus::Acknowledged));
    assert_eq!(status("C2"), Some(CommandStatus::Error), "an error stays");
    assert_eq!(status("C3"), Some(CommandStatus::Acknowledged));
    assert_eq!(status("C4"), Some(CommandStatus::Acknowledged));
    let tenant = store.load_tenant().expect("tenant");
    let d1 = tenant.devices.iter().find(|d| d.udid == "D1").expect("D1");
    assert_eq!(d1.reported.len(), 2, "both installs are reported");
    let d2 = tenant.devices.iter().find(|d| d.udid == "D2").expect("D2");
    assert!(d2.reported.is_empty());
    // Acknowledging an answered command by its UUID changes nothing.
    let done = acknowledge(&mut store, &Acknowledge::Only(vec!["C2".into()]), at).expect("ack");
    assert_eq!(done.commands, 0);
}

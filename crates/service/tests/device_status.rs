//! Per-device status of a profile, through the states a device goes
//! through: pending install, sent, installed or failed with its error
//! chain, pending removal.

use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_service::catalog::{DeviceState, device_status};
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
}

//! Reconciliation: a command sent and never answered is followed by a
//! `ProvisioningProfileList` for its device, once; devices without a
//! connection are not asked.

use chrono::{DateTime, Duration, Utc};
use provkit_profile::fixtures::utc;
use provkit_service::delivery::{Reconcile, reconcile};
use provkit_store::*;

fn at() -> DateTime<Utc> {
    utc(2026, 12, 5)
}

#[test]
fn an_unanswered_command_is_followed_by_a_profile_list_once() {
    let mut store = MemoryStore::default();
    let a = Actor {
        name: "t".into(),
        at: at(),
    };
    let inv: Inventory = serde_json::from_value(serde_json::json!({
        "devices": [{"udid": "QUIET"}, {"udid": "ANSWERED"}]
    }))
    .expect("inventory");
    store.import_inventory(&inv, &a).expect("inventory");
    let row = |uuid: &str, udid: &str, status| OutboxEntry {
        command_uuid: uuid.into(),
        udid: udid.into(),
        request_type: "RemoveProvisioningProfile".into(),
        profile_uuid: "0E0E0E0E-0000-4000-8000-000000000001".into(),
        status,
        error_chain: None,
        retries: 0,
        created_at: at(),
        updated_at: at(),
    };
    store
        .enqueue(&[
            row("R1", "QUIET", CommandStatus::Planned),
            row("R2", "ANSWERED", CommandStatus::Planned),
        ])
        .expect("enqueue");
    store
        .record_result("R1", CommandStatus::Sent, None, at())
        .expect("sent");
    store
        .record_result("R2", CommandStatus::Acknowledged, None, at())
        .expect("acked");
    let cfg = {
        let mut c = Reconcile::default();
        c.relist_every = Duration::days(3650);
        c
    };
    // No connection yet: nobody to ask through.
    let later = at() + Duration::hours(2);
    assert_eq!(
        reconcile(&mut store, at(), later, &cfg).expect("reconcile"),
        1
    );
    assert!(
        store.dispatches().expect("d").is_empty(),
        "no connection, no dispatch"
    );
    store
        .add_mdm_connection(
            &MdmConnection {
                name: "m".into(),
                kind: MdmKind::NanoMdm,
                url: "https://m".into(),
                api_key: "k".into(),
                webhook_hmac_key: None,
                org_group: "Global".into(),
                created_by: "t".into(),
                created_at: at(),
            },
            &a,
        )
        .expect("connection");
    assert_eq!(
        reconcile(&mut store, at(), later, &cfg).expect("reconcile"),
        1
    );
    let d = store.dispatches().expect("dispatches");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].request_type, "ProvisioningProfileList");
    assert_eq!(d[0].targets[0].udid, "QUIET");
    // The next window asks nothing again.
    assert_eq!(
        reconcile(&mut store, later, later + Duration::hours(1), &cfg).expect("again"),
        0
    );
}

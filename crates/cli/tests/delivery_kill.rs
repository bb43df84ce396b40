//! `provkit serve` killed with SIGKILL while its MDM calls wait for their
//! answers, then started again: every device's install reaches the NanoMDM
//! double (the server tests' double, which follows `domain-mdm.md`) once
//! per (CommandUUID, device), and none is lost. The process is the real
//! binary; the answers it never read are the ones SIGKILL loses.

#[path = "../../server/tests/nanomdm/mod.rs"]
mod nanomdm;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile};
use provkit_store::{
    Access, Actor, AssignmentEdit, CommandStatus, Inventory, MdmConnection, MdmKind, SqliteStore,
    Store, TargetName,
};

const UUID: &str = "5A1E0000-0000-4000-8000-00000000C111";
const DEVICES: usize = 600;
const KEY: &str = "double-api-key";

fn serve(db: &std::path::Path, config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_provkit"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .arg("--config")
        .arg(config)
        .env_remove("PROVKIT_DATABASE_URL")
        .env_remove("PROVKIT_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve")
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < end, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The outbox rows' statuses, read without disturbing the server.
fn statuses(db: &std::path::Path) -> Vec<(String, CommandStatus)> {
    SqliteStore::open_existing(db, Access::ReadOnly)
        .and_then(|mut s| s.outbox())
        .map(|rows| rows.into_iter().map(|e| (e.udid, e.status)).collect())
        .unwrap_or_default()
}

#[test]
fn a_sigkilled_serve_loses_nothing_and_enqueues_nothing_twice() {
    let dir = std::env::temp_dir().join(format!("provkit-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("t.db");
    let udids: Vec<String> = (0..DEVICES).map(|i| format!("K{i:05}")).collect();
    let enrolled: Vec<&str> = udids.iter().map(String::as_str).collect();
    let double = nanomdm::NanoMdm::start(KEY, &enrolled);
    // Every answer waits: the calls are in flight when the process dies.
    double.with(|s| s.delay = Duration::from_secs(3));
    {
        let now = chrono::Utc::now();
        let a = Actor {
            name: "test".into(),
            at: now,
        };
        let mut store = SqliteStore::open(&db).expect("create");
        let bytes = signed_profile(
            &TestCa::rsa(),
            &ProfileSpec {
                uuid: UUID.into(),
                all_devices: true,
                devices: None,
                creation: now - chrono::Duration::days(10),
                expiration: now + chrono::Duration::days(300),
                ..ProfileSpec::default()
            },
        );
        store.add_profile(&bytes, &a).expect("profile");
        let devices: Vec<serde_json::Value> = udids
            .iter()
            .map(|u| serde_json::json!({"udid": u}))
            .collect();
        let inv: Inventory =
            serde_json::from_value(serde_json::json!({ "devices": devices })).expect("inventory");
        store.import_inventory(&inv, &a).expect("inventory");
        store
            .edit_assignments(
                UUID,
                &AssignmentEdit::Add {
                    include: vec![TargetName::AllDevices],
                    exclude: vec![],
                },
                now,
                &a,
            )
            .expect("assign");
        store
            .add_mdm_connection(
                &MdmConnection {
                    name: "nano".into(),
                    kind: MdmKind::NanoMdm,
                    url: double.url(),
                    api_key: KEY.into(),
                    webhook_hmac_key: None,
                    org_group: "Global".into(),
                    created_by: "test".into(),
                    created_at: now,
                },
                &a,
            )
            .expect("connection");
    }
    let config = dir.join("serve.toml");
    std::fs::write(&config, "lease_ttl = 2\ndelivery_lease = 3\n").expect("config");

    let mut first = serve(&db, &config);
    wait_for("the first calls reach the double", 60, || {
        double.with(|s| !s.enqueued.is_empty())
    });
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    // The double queued commands whose answers the process never read.
    let queued: std::collections::HashSet<String> =
        double.with(|s| s.enqueued.iter().map(|(_, d)| d.clone()).collect());
    let unsettled = statuses(&db)
        .into_iter()
        .filter(|(u, st)| queued.contains(u) && *st == CommandStatus::Planned)
        .count();
    assert!(unsettled > 0, "killed mid-batch: answers were lost");

    let mut second = serve(&db, &config);
    wait_for("every install sent", 120, || {
        let st = statuses(&db);
        st.len() == DEVICES && st.iter().all(|(_, s)| *s == CommandStatus::Sent)
    });
    second.kill().expect("stop");
    second.wait().expect("reaped");

    // The calls whose answers were lost went again under their own
    // CommandUUIDs, and the double recognised them.
    assert!(
        double.with(|s| s.duplicates) > 0,
        "the lost calls were sent again"
    );
    let counts = double.enqueue_counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "enqueued twice: {twice:?}");
    let reached: std::collections::HashSet<&str> = counts.keys().map(|(_, d)| d.as_str()).collect();
    assert_eq!(reached.len(), DEVICES, "every device, none lost");
    assert_eq!(counts.len(), DEVICES, "one command per device");
    let _ = std::fs::remove_dir_all(&dir);
}

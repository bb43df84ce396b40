//! Two processes writing one SQLite file lose no update, and a process
//! killed with SIGKILL in the middle of a large import leaves the last
//! committed state intact and readable. The test binary spawns itself as
//! the child (selected by `PROVKIT_STORE_CHILD`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::DateTime;
use provkit_policy::GroupKind;
use provkit_store::*;

fn actor() -> Actor {
    Actor {
        name: "child".into(),
        at: DateTime::UNIX_EPOCH,
    }
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("provkit-proc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("provkit.db")
}

fn batch(start: usize, n: usize) -> Inventory {
    Inventory {
        users: (start..start + n).map(|i| format!("user{i:07}")).collect(),
        devices: (start..start + n)
            .map(|i| DeviceRecord {
                udid: format!("UDID-{i:07}"),
                platform: "iOS".into(),
                user: Some(format!("user{i:07}")),
                apps: vec![],
                reported: vec![],
                org_group: None,
                enrollment_id: None,
            })
            .collect(),
        groups: vec![],
        emails: Default::default(),
    }
}

/// Child roles, run when the test binary is spawned with PROVKIT_STORE_CHILD.
fn child() -> bool {
    let Ok(role) = std::env::var("PROVKIT_STORE_CHILD") else {
        return false;
    };
    let path = std::env::var("PROVKIT_STORE_PATH").expect("path");
    let mut store = SqliteStore::open(&path).expect("child open");
    match role.as_str() {
        "members" => {
            let offset: usize = std::env::var("PROVKIT_STORE_OFFSET")
                .expect("offset")
                .parse()
                .expect("n");
            for i in (offset..200).step_by(2) {
                store
                    .add_member("All", &format!("u{i}"), &actor())
                    .expect("add member");
            }
        }
        "import" => {
            // Batches of 2000 devices forever, until killed.
            for b in 0.. {
                store
                    .import_inventory(&batch(b * 2000, 2000), &actor())
                    .expect("import");
            }
        }
        _ => {}
    }
    true
}

fn spawn(role: &str, path: &std::path::Path, offset: usize) -> std::process::Child {
    Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_entry", "--nocapture"])
        .env("PROVKIT_STORE_CHILD", role)
        .env("PROVKIT_STORE_PATH", path)
        .env("PROVKIT_STORE_OFFSET", offset.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child")
}

#[test]
fn child_entry() {
    // The body of spawned children; a no-op in a normal run.
    let _ = child();
}

#[test]
fn two_processes_on_one_file_lose_no_update() {
    let path = temp_db("two");
    let mut store = SqliteStore::open(&path).expect("open");
    let inv = Inventory {
        users: (0..200).map(|i| format!("u{i}")).collect(),
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
    let mut a = spawn("members", &path, 0);
    let mut b = spawn("members", &path, 1);
    assert!(a.wait().expect("a").success());
    assert!(b.wait().expect("b").success());
    assert_eq!(store.groups().expect("groups")[0].members.len(), 200);
}

#[test]
fn sigkill_during_a_large_import_keeps_the_last_commit() {
    let path = temp_db("kill");
    drop(SqliteStore::open(&path).expect("create"));
    let mut child = spawn("import", &path, 0);
    // Let it commit a few batches, then kill it mid-write.
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let n = SqliteStore::open(&path)
            .and_then(|mut s| s.load_tenant())
            .map(|t| t.devices.len())
            .unwrap_or(0);
        if n >= 6000 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let mut store = SqliteStore::open(&path).expect("reopen after kill");
    let integrity: String = rusqlite::Connection::open(&path)
        .expect("raw")
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(integrity, "ok");
    let t = store.load_tenant().expect("readable");
    assert!(
        t.devices.len() >= 6000,
        "committed batches survive: {}",
        t.devices.len()
    );
    assert_eq!(
        t.devices.len() % 2000,
        0,
        "only whole batches: {}",
        t.devices.len()
    );
    assert_eq!(t.users.len(), t.devices.len());
    assert!(
        t.devices.iter().all(|d| d.user.is_some()),
        "no half-written batch"
    );
}

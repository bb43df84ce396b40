//! The scheduler among several processes sharing one database (here
//! several schedulers in one test process, each with its own connections):
//! one holds the lease and plans; a change made anywhere is planned and
//! queued within a tick; re-planning queues nothing twice; a holder that
//! dies without giving the lease up is replaced once the lease lapses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile};
use provkit_server::state::{AppState, Opener, StorePool};
use provkit_server::{Limits, Schedule, run_scheduler};
use provkit_service::schedule;
use provkit_store::{
    Actor, AssignmentEdit, PostgresStore, Replace, SqliteStore, Store, TargetName,
};

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        at: Utc::now(),
    }
}

/// Who holds the lease now, asked without keeping it (a lapsed lease the
/// probe takes lapses at once).
fn holder(open: &Opener) -> String {
    let mut store = open().expect("open");
    let probe = schedule::step(
        store.as_mut(),
        "probe",
        Utc::now(),
        chrono::Duration::zero(),
        false,
        None,
    )
    .expect("step");
    probe.holder
}

fn queued(open: &Opener) -> Vec<(String, String, String)> {
    let mut store = open().expect("open");
    let mut v: Vec<_> = store
        .outbox()
        .expect("outbox")
        .into_iter()
        .map(|e| (e.udid, e.request_type, e.profile_uuid))
        .collect();
    v.sort();
    v
}

/// Waits up to `limit` for `f` to hold.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn scenario(open: Arc<Opener>, backend: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ttl = Duration::from_millis(900);
    let start = |name: &str| {
        let pool = StorePool::open(&*open, 1).expect("pool");
        let state = AppState::new(pool, Limits::default());
        let mut s = Schedule::new(name);
        s.lease_ttl = ttl;
        s.period = Duration::from_secs(3600);
        rt.spawn(run_scheduler(state, s, std::future::pending::<()>()))
    };
    let a = start("a");
    let b = start("b");
    let c = start("c");
    assert!(
        eventually(Duration::from_secs(5), || ["a", "b", "c"]
            .contains(&holder(&*open).as_str())),
        "{backend}: someone leads"
    );
    let first = holder(&*open);

    // A change made by anyone (here straight into the store) is planned
    // and queued by the leader within a tick or two.
    {
        let mut store = open().expect("open");
        let ca = TestCa::rsa();
        let bytes = signed_profile(
            &ca,
            &ProfileSpec {
                all_devices: true,
                devices: None,
                expiration: Utc::now() + chrono::Duration::days(200),
                ..ProfileSpec::default()
            },
        );
        let rec = store.add_profile(&bytes, &actor()).expect("profile");
        let inv = serde_json::from_str(
            r#"{"users": ["ann", "bob"], "devices": [{"udid": "D1", "user": "ann"}, {"udid": "D2", "user": "bob"}]}"#,
        )
        .expect("inventory");
        store
            .apply_inventory(&inv, &Replace::Nothing, false, Utc::now(), &actor())
            .expect("inventory");
        let edit = AssignmentEdit::Add {
            include: vec![TargetName::AllUsers],
            exclude: vec![],
        };
        store
            .edit_assignments(&rec.uuid, &edit, Utc::now(), &actor())
            .expect("assign");
    }
    assert!(
        eventually(Duration::from_secs(5), || queued(&*open).len() == 2),
        "{backend}: both installs queued, got {:?}",
        queued(&*open)
    );

    // The leader dies without giving the lease up; another takes over once
    // it lapses, and re-planning queues nothing twice.
    let (dead, alive) = match first.as_str() {
        "a" => (a, vec![b, c]),
        "b" => (b, vec![a, c]),
        _ => (c, vec![a, b]),
    };
    dead.abort();
    let died = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || {
            let h = holder(&*open);
            h != first && h != "probe"
        }),
        "{backend}: another process took over"
    );
    let took = died.elapsed();
    assert!(took < ttl * 3, "{backend}: replaced in {took:?}");
    std::thread::sleep(ttl);
    let q = queued(&*open);
    assert_eq!(q.len(), 2, "{backend}: nothing queued twice: {q:?}");
    for h in alive {
        h.abort();
    }
    drop(rt);
}

#[test]
fn scheduler_over_sqlite() {
    let dir = std::env::temp_dir().join(format!("provkit-sched-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("t.db");
    drop(SqliteStore::open(&path).expect("create"));
    let open: Arc<Opener> = Arc::new(move || {
        Ok(Box::new(SqliteStore::open_existing(
            &path,
            provkit_store::Access::ReadWrite,
        )?) as Box<dyn Store + Send>)
    });
    scenario(open, "sqlite");
}

#[test]
fn scheduler_over_postgres() {
    let Some(url) = std::env::var("PROVKIT_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "NOTICE: PROVKIT_DATABASE_URL is not set: the PostgreSQL scheduler run is skipped"
        );
        return;
    };
    PostgresStore::reset(&url).expect("reset");
    drop(PostgresStore::connect(&url).expect("create"));
    let open: Arc<Opener> = Arc::new(move || {
        Ok(Box::new(PostgresStore::connect_existing(&url)?) as Box<dyn Store + Send>)
    });
    scenario(open, "postgres");
}

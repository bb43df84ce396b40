//! Delivery end to end against a NanoMDM double (`tests/nanomdm`), on
//! SQLite and PostgreSQL: `provkit serve`'s scheduler plans, its delivery
//! worker sends, simulated devices poll and answer through the signed
//! webhook, and a renewal runs from `renew` to every device holding the
//! successor and the old profile removed, make before break, with no
//! command typed by hand. Faults on the way: a device the server does not
//! know (refused), the server down for a while (commands wait, then go),
//! no APNs certificate (queued, the push error kept), NotNow, an error
//! with its chain, duplicated and reordered events, a forged signature and
//! a malformed payload. Every (CommandUUID, device) reaches the server at
//! most once. The same renewal across 10k devices: each device gets each
//! command once.

mod common;
mod nanomdm;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use nanomdm::{NanoMdm, get, post_webhook};
use provkit_mdm::result::{ChainLink, ListedProfile, answer_plist};
use provkit_mdm::webhook::{answer_event, sign};
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_server::state::{AppState, Opener, StorePool};
use provkit_server::{Limits, Schedule};
use provkit_service::tokens::{self, Role};
use provkit_store::{
    Actor, AssignmentEdit, CommandStatus, MdmKind, PostgresStore, Replace, SqliteStore, Store,
    TargetName,
};

const OLD: &str = "0E0E0E0E-0000-4000-8000-00000000D001";
const NEW: &str = "0E0E0E0E-0000-4000-8000-00000000D002";
const KEY: &str = "api-key-123";
const HMAC: &str = "webhook-secret";

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        at: Utc::now(),
    }
}

fn profile(ca: &TestCa, uuid: &str, year: i32) -> Vec<u8> {
    signed_profile(
        ca,
        &ProfileSpec {
            uuid: uuid.into(),
            all_devices: true,
            devices: None,
            expiration: utc(year, 1, 15),
            ..ProfileSpec::default()
        },
    )
}

/// The longest wait for something the server does on its own: long, since
/// a busy CI machine (this file's 10k-device test beside the others) may
/// take seconds for one round; a wait ends as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(30);

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// provkit serve (API, scheduler, delivery) on loopback with the real clock.
struct Provkit {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Provkit {
    fn start(open: &Opener) -> Provkit {
        let pool = StorePool::open(open, 3).expect("pool");
        let state = AppState::new(pool, Limits::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let mut schedule = Schedule::new("delivery-test");
        schedule.lease_ttl = Duration::from_millis(900);
        if let Some(d) = schedule.delivery.as_mut() {
            d.tick = Duration::from_millis(100);
            d.lease = Duration::from_secs(5);
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                provkit_server::run(l, state, Some(schedule), async {
                    let _ = stopped.await;
                })
                .await
                .expect("run");
            });
        });
        Provkit {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Provkit {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The tenant: the test CA trusted, OLD assigned to all devices, devices
/// D1 and D2 enrolled at the MDM and D3 unknown to it, a connection.
fn prepare(store: &mut dyn Store, ca: &TestCa, mdm_url: &str) -> String {
    let a = actor();
    provkit_service::trust::add_anchor(store, ca.root.cert.der(), &a).expect("anchor");
    store.add_profile(&profile(ca, OLD, 2027), &a).expect("old");
    let inv = serde_json::from_value(serde_json::json!({
        "users": ["ann", "bob", "cy"],
        "devices": [
            {"udid": "D1", "user": "ann"},
            {"udid": "D2", "user": "bob"},
            {"udid": "D3", "user": "cy"}
        ]
    }))
    .expect("inventory");
    old_on_every_device(store, &inv, mdm_url, &a);
    tokens::create(store, "viewer", Role::Viewer, None, &[7; 32], &a)
        .expect("token")
        .token
}

/// The inventory, OLD assigned to All devices, the app signed with OLD,
/// and the connection to the double.
fn old_on_every_device(
    store: &mut dyn Store,
    inv: &provkit_store::Inventory,
    mdm_url: &str,
    a: &Actor,
) {
    store
        .apply_inventory(inv, &Replace::Nothing, false, a.at, a)
        .expect("inventory");
    let edit = AssignmentEdit::Add {
        include: vec![TargetName::AllDevices],
        exclude: vec![],
    };
    store.edit_assignments(OLD, &edit, a.at, a).expect("assign");
    app_and_connection(store, mdm_url, a);
}

/// The app signed with OLD, and the connection to the double.
fn app_and_connection(store: &mut dyn Store, mdm_url: &str, a: &Actor) {
    let app = provkit_store::AppRecord {
        bundle_id: "com.example.sales".into(),
        version: "1.0".into(),
        team: "TEAMID1234".into(),
        profile_uuid: Some(OLD.into()),
        certificate_sha256: "00".repeat(32),
        certificate_not_after: utc(2029, 1, 1),
        report: None,
        org_group: None,
    };
    store.add_app(&app, a).expect("app");
    provkit_service::delivery::add_connection(
        store,
        None,
        MdmKind::NanoMdm,
        mdm_url,
        KEY,
        Some(HMAC),
        None,
        a,
    )
    .expect("connection");
}

/// Renews OLD with NEW, as an admin's `renew` does: the only call a test
/// makes; the rest is the scheduler's and the worker's.
fn renew_old(open: &Opener, ca: &TestCa) {
    let mut s = open().expect("open");
    let verifier = provkit_service::trust::tenant_verifier(s.as_mut()).expect("verifier");
    provkit_service::lifecycle::renew(
        s.as_mut(),
        OLD,
        &profile(ca, NEW, 2028),
        &verifier,
        Utc::now(),
        &actor(),
        false,
    )
    .expect("renew");
}

/// The newest outbox row of each (device, request, profile) → its status.
/// A failed install is planned again on a later change under a new
/// CommandUUID, so a key may have several rows; the newest is what the
/// device faces now (CommandUUIDs sort by the plan's instant).
fn outbox(open: &Opener) -> HashMap<(String, String, String), (CommandStatus, Option<String>)> {
    let mut s = open().expect("open");
    let mut rows = s.outbox().expect("outbox");
    rows.sort_by(|a, b| (a.created_at, &a.command_uuid).cmp(&(b.created_at, &b.command_uuid)));
    rows.into_iter()
        .map(|e| {
            (
                (e.udid, e.request_type, e.profile_uuid),
                (e.status, e.error_chain),
            )
        })
        .collect()
}

/// A simulated device: what it holds, and the order of what it did.
#[derive(Default)]
struct Device {
    held: BTreeSet<String>,
    log: Vec<String>,
}

fn answer(
    pk: &Provkit,
    n: &mut usize,
    udid: &str,
    uuid: &str,
    status: &str,
    chain: &[ChainLink],
    list: Option<&[ListedProfile]>,
) -> Vec<u8> {
    *n += 1;
    let plist = answer_plist(uuid, udid, status, chain, list);
    let body = answer_event(&format!("ev-{udid}-{n}"), udid, uuid, status, &plist);
    let code = post_webhook(
        pk.addr,
        "/webhooks/nanomdm",
        &body,
        Some(&sign(HMAC.as_bytes(), &body)),
    );
    assert_eq!(code, 200, "webhook accepted");
    body
}

fn scenario(open: &Opener, backend: &str) {
    let ca = TestCa::rsa();
    let mdm = NanoMdm::start(KEY, &["D1", "D2"]);
    let token = {
        let mut s = open().expect("open");
        prepare(s.as_mut(), &ca, &mdm.url())
    };
    // The server has no APNs certificate at first: queued, push failed.
    mdm.with(|s| s.no_apns = true);
    let pk = Provkit::start(open);
    let mut n = 0;

    // The scheduler plans three installs; the worker sends them: D1 and
    // D2 queued, D3 refused by the server (not enrolled there).
    assert!(
        eventually(Duration::from_secs(15), || {
            mdm.with(|s| {
                s.queues
                    .values()
                    .map(std::collections::VecDeque::len)
                    .sum::<usize>()
            }) == 2
        }),
        "{backend}: installs queued at the server"
    );
    assert!(
        eventually(WAIT, || {
            outbox(open)
                .get(&("D3".into(), "InstallProvisioningProfile".into(), OLD.into()))
                .is_some_and(|(s, e)| {
                    *s == CommandStatus::Error
                        && e.as_deref()
                            .is_some_and(|e| e.contains("enrollment not found"))
                })
        }),
        "{backend}: D3 refused with the server's reason"
    );
    let (_, conns) = get(pk.addr, "/api/v1/mdm-connections", &token);
    assert_eq!(conns[0]["push_errors"], 2, "{backend}: {conns}");
    assert!(conns[0].get("api_key").is_none(), "never the key: {conns}");
    mdm.with(|s| s.no_apns = false);

    // D1 acknowledges (the event arrives twice, then a stale NotNow);
    // D2 says NotNow first, then acknowledges.
    let mut devices: HashMap<&str, Device> = HashMap::new();
    let c1 = mdm.poll("D1").expect("D1's command");
    assert_eq!(
        (c1.request_type.as_str(), c1.profile.as_str()),
        ("InstallProvisioningProfile", OLD)
    );
    let body = answer(&pk, &mut n, "D1", &c1.uuid, "Acknowledged", &[], None);
    assert_eq!(
        post_webhook(
            pk.addr,
            "/webhooks/nanomdm",
            &body,
            Some(&sign(HMAC.as_bytes(), &body))
        ),
        200,
        "the same event again is fine"
    );
    answer(&pk, &mut n, "D1", &c1.uuid, "NotNow", &[], None);
    devices.entry("D1").or_default().held.insert(OLD.into());
    let c2 = mdm.poll("D2").expect("D2's command");
    answer(&pk, &mut n, "D2", &c2.uuid, "NotNow", &[], None);
    mdm.not_now("D2", &c2.uuid);
    assert!(
        eventually(WAIT, || outbox(open)
            .get(&("D2".into(), "InstallProvisioningProfile".into(), OLD.into()))
            .is_some_and(|(s, _)| *s == CommandStatus::NotNow)),
        "{backend}: NotNow is pending, not failed"
    );
    let c2 = mdm.poll("D2").expect("D2's command again");
    answer(&pk, &mut n, "D2", &c2.uuid, "Acknowledged", &[], None);
    devices.entry("D2").or_default().held.insert(OLD.into());
    assert!(
        eventually(WAIT, || {
            let o = outbox(open);
            ["D1", "D2"].iter().all(|d| {
                o.get(&((*d).into(), "InstallProvisioningProfile".into(), OLD.into()))
                    .is_some_and(|(s, _)| *s == CommandStatus::Acknowledged)
            })
        }),
        "{backend}: both acknowledged; the late NotNow changed nothing: {:?}",
        outbox(open)
    );

    // Forged and malformed events change nothing.
    let forged = answer_event(
        "ev-forged",
        "D1",
        &c1.uuid,
        "Error",
        &answer_plist(&c1.uuid, "D1", "Error", &[], None),
    );
    assert_eq!(
        post_webhook(pk.addr, "/webhooks/nanomdm", &forged, Some("AAAA")),
        401
    );
    assert_eq!(
        post_webhook(pk.addr, "/webhooks/nanomdm", &forged, None),
        401
    );
    let junk = br#"{"topic": "mdm.Connect", "acknowledge_event": {"udid": "D1", "command_uuid": "X", "raw_payload": "%%"}}"#;
    assert_eq!(
        post_webhook(
            pk.addr,
            "/webhooks/nanomdm",
            junk,
            Some(&sign(HMAC.as_bytes(), junk))
        ),
        400
    );
    // D3's failed install is planned again on later changes (a new
    // CommandUUID, refused again), so its state may read "sent" for a
    // moment: the API must come to show it failed and D1 installed.
    let states = || -> Vec<(String, String)> {
        let (_, status) = get(pk.addr, &format!("/api/v1/profiles/{OLD}/devices"), &token);
        common::device_states(&status)
    };
    assert!(
        eventually(WAIT, || {
            let s = states();
            s.contains(&("D1".into(), "installed".into()))
                && s.contains(&("D3".into(), "failed".into()))
        }),
        "{backend}: {:?}; outbox {:?}",
        states(),
        outbox(open)
    );

    // The server goes down; the renewal's commands wait, then go.
    mdm.with(|s| s.down = true);
    renew_old(open, &ca);
    assert!(
        eventually(WAIT, || mdm.with(|s| s.refused_down) >= 1),
        "{backend}: tried while down"
    );
    std::thread::sleep(Duration::from_millis(500));
    mdm.with(|s| s.down = false);

    // The devices poll until each holds the successor alone. D1's first
    // install of the successor fails with an error chain; the plan sends
    // it again. A removal of the old profile must never come before the
    // device acknowledged the successor.
    let mut failed_once = false;
    let done = eventually(Duration::from_secs(40), || {
        for udid in ["D1", "D2"] {
            while let Some(c) = mdm.poll(udid) {
                let dev = devices.entry(udid).or_default();
                match c.request_type.as_str() {
                    "InstallProvisioningProfile" if udid == "D1" && !failed_once => {
                        failed_once = true;
                        let chain = [ChainLink {
                            domain: "MCProvisioningProfileErrorDomain".into(),
                            code: 25001,
                            description: "The profile cannot be installed.".into(),
                        }];
                        answer(&pk, &mut n, udid, &c.uuid, "Error", &chain, None);
                        dev.log.push(format!("error {}", c.profile));
                    }
                    "InstallProvisioningProfile" => {
                        answer(&pk, &mut n, udid, &c.uuid, "Acknowledged", &[], None);
                        dev.held.insert(c.profile.clone());
                        dev.log.push(format!("install {}", c.profile));
                    }
                    "RemoveProvisioningProfile" => {
                        assert!(
                            dev.held.contains(NEW) || c.profile == NEW,
                            "{backend}: {udid} told to remove {} before it held the successor: {:?}",
                            c.profile,
                            dev.log
                        );
                        answer(&pk, &mut n, udid, &c.uuid, "Acknowledged", &[], None);
                        dev.held.remove(&c.profile);
                        dev.log.push(format!("remove {}", c.profile));
                    }
                    "ValidateApplications" => {
                        assert!(
                            dev.held.contains(NEW),
                            "{backend}: validate after the successor"
                        );
                        answer(&pk, &mut n, udid, &c.uuid, "Acknowledged", &[], None);
                        dev.log.push("validate".into());
                    }
                    other => panic!("unexpected {other}"),
                }
            }
        }
        ["D1", "D2"].iter().all(|d| {
            devices
                .get(d)
                .is_some_and(|x| x.held == BTreeSet::from([NEW.to_owned()]))
        })
    });
    assert!(
        done,
        "{backend}: every device holds the successor alone: {:?}",
        devices.iter().map(|(k, v)| (k, &v.log)).collect::<Vec<_>>()
    );
    assert!(failed_once);
    // Each device re-validated the app that shares the renewed profile.
    assert!(
        eventually(WAIT, || {
            for udid in ["D1", "D2"] {
                if let Some(c) = mdm.poll(udid) {
                    assert_eq!(c.request_type, "ValidateApplications", "{backend}");
                    answer(&pk, &mut n, udid, &c.uuid, "Acknowledged", &[], None);
                    devices.entry(udid).or_default().log.push("validate".into());
                }
            }
            ["D1", "D2"]
                .iter()
                .all(|d| devices[d].log.iter().any(|l| l == "validate"))
        }),
        "{backend}: ValidateApplications after the renewal"
    );
    eprintln!(
        "{backend}: device logs {:?}",
        devices.iter().map(|(k, v)| (k, &v.log)).collect::<Vec<_>>()
    );

    // The failure was shown with its chain before the retry went through.
    {
        let mut s = open().expect("open");
        let audit = s.audit_log().expect("audit");
        assert!(
            audit.iter().any(|e| e.action == "device-results"),
            "{backend}: results audited"
        );
        let errors: Vec<_> = s
            .outbox()
            .expect("outbox")
            .into_iter()
            .filter(|e| e.udid == "D1" && e.status == CommandStatus::Error)
            .collect();
        assert!(
            errors.iter().any(|e| e
                .error_chain
                .as_deref()
                .is_some_and(|c| c.contains("25001"))),
            "{backend}: {errors:?}"
        );
    }

    // Reconcile: ask D1 for its list; what it reports is what it holds.
    {
        let mut s = open().expect("open");
        let made = s
            .dispatch_command("ProvisioningProfileList", &["D1".into()], Utc::now(), 200)
            .expect("list");
        assert_eq!(made.len(), 1);
    }
    let mut listed = None;
    assert!(
        eventually(WAIT, || {
            if let Some(c) = mdm.poll("D1") {
                assert_eq!(c.request_type, "ProvisioningProfileList");
                let list = [ListedProfile {
                    name: "Renewed".into(),
                    uuid: NEW.into(),
                    expires: None,
                }];
                answer(&pk, &mut n, "D1", &c.uuid, "Acknowledged", &[], Some(&list));
                listed = Some(c.uuid);
            }
            listed.is_some()
        }),
        "{backend}: the list command arrived"
    );
    assert!(
        eventually(WAIT, || {
            let mut s = open().expect("open");
            let inv = s.inventory().expect("inventory");
            inv.devices
                .iter()
                .find(|d| d.udid == "D1")
                .is_some_and(|d| {
                    d.reported.len() == 1
                        && d.reported[0].uuid == NEW
                        && d.reported[0].expires == utc(2028, 1, 15)
                })
        }),
        "{backend}: the list replaced what D1 reports, with the stored expiry"
    );

    // Nothing reached the server twice.
    let twice: Vec<_> = mdm
        .enqueue_counts()
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .collect();
    assert!(twice.is_empty(), "{backend}: enqueued twice: {twice:?}");
    drop(pk);
}

#[test]
fn delivery_over_sqlite() {
    scenario(&sqlite("delivery"), "sqlite");
}

/// A new SQLite file under the temporary folder, and how to open it.
fn sqlite(name: &str) -> Box<Opener> {
    let dir = std::env::temp_dir().join(format!("provkit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("t.db");
    drop(SqliteStore::open(&path).expect("create"));
    Box::new(move || {
        Ok(Box::new(SqliteStore::open_existing(
            &path,
            provkit_store::Access::ReadWrite,
        )?))
    })
}

#[test]
fn delivery_over_postgres() {
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
    drop(PostgresStore::connect(&url).expect("create"));
    let open: Box<Opener> = Box::new(move || Ok(Box::new(PostgresStore::connect_existing(&url)?)));
    scenario(&open, "postgres");
}

/// A sender dies mid-batch (its task aborted while NanoMDM holds the
/// answers, as SIGKILL would leave it: claims made, commands queued at the
/// server, nothing recorded); a new process takes the claims over once
/// their lease lapses and sends again under the same CommandUUIDs: every
/// command ends sent, and none reached the server twice.
fn dies_mid_batch(open: &Opener, backend: &str) {
    let ca = TestCa::rsa();
    let udids: Vec<String> = (0..450).map(|i| format!("K{i:04}")).collect();
    let ids: Vec<&str> = udids.iter().map(String::as_str).collect();
    let mdm = NanoMdm::start(KEY, &ids);
    {
        let mut s = open().expect("open");
        let a = actor();
        prepare(s.as_mut(), &ca, &mdm.url());
        let devices: Vec<serde_json::Value> = udids
            .iter()
            .map(|u| serde_json::json!({"udid": u}))
            .collect();
        let inv = serde_json::from_value(serde_json::json!({"devices": devices})).expect("inv");
        s.apply_inventory(&inv, &Replace::Nothing, false, a.at, &a)
            .expect("inventory");
        let plan = provkit_service::plan::plan_and_enqueue(s.as_mut(), a.at, a.at).expect("plan");
        assert!(plan.commands.len() >= 450, "{backend}");
    }
    let mut cfg = provkit_server::delivery::Delivery::default();
    cfg.lease = Duration::from_secs(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    // The first process: its answers held back, killed once the server
    // has queued the first call.
    mdm.with(|s| s.delay = Duration::from_secs(30));
    rt.block_on(async {
        let pool = StorePool::open(open, 2).expect("pool");
        let state = AppState::new(pool, Limits::default());
        let client = reqwest::Client::new();
        let cfg2 = cfg.clone();
        let task = tokio::spawn(async move {
            let _ = provkit_server::delivery::round(&state, &client, &cfg2).await;
        });
        let start = Instant::now();
        while mdm.with(|s| s.enqueued.len()) < 200 && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        let _ = task.await;
    });
    let before = mdm.with(|s| s.enqueued.len());
    assert!(
        before >= 200,
        "{backend}: the dead process got calls through: {before}"
    );
    {
        let mut s = open().expect("open");
        let sent = s
            .outbox()
            .expect("outbox")
            .iter()
            .filter(|e| e.status == CommandStatus::Sent)
            .count();
        assert_eq!(sent, 0, "{backend}: the dead process recorded nothing");
    }
    // The next process, after the lease.
    mdm.with(|s| s.delay = Duration::ZERO);
    std::thread::sleep(Duration::from_millis(1100));
    rt.block_on(async {
        let pool = StorePool::open(open, 2).expect("pool");
        let state = AppState::new(pool, Limits::default());
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            provkit_server::delivery::round(&state, &client, &cfg)
                .await
                .expect("round");
            let o = open().expect("open").outbox().expect("outbox");
            if o.iter().all(|e| e.status != CommandStatus::Planned)
                || start.elapsed() > Duration::from_secs(20)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let o = open().expect("open").outbox().expect("outbox");
    let planned: Vec<_> = o
        .iter()
        .filter(|e| e.status == CommandStatus::Planned)
        .collect();
    assert!(planned.is_empty(), "{backend}: lost {}", planned.len());
    let twice: Vec<_> = mdm
        .enqueue_counts()
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .collect();
    assert!(twice.is_empty(), "{backend}: enqueued twice: {twice:?}");
    let queued = mdm.with(|s| s.enqueued.len());
    // (D1 to D3 are not enrolled there: their refusal was in the answer
    // the dead process lost, and "command already exists" covers the whole
    // call, so they count as sent until reconciliation asks them.)
    let sent = o
        .iter()
        .filter(|e| e.udid.starts_with('K') && e.status == CommandStatus::Sent)
        .count();
    assert_eq!(
        (queued, sent),
        (450, 450),
        "{backend}: each enrolled device's install queued once and recorded sent"
    );
}

#[test]
fn a_sender_that_dies_mid_batch_loses_nothing_over_sqlite() {
    dies_mid_batch(&sqlite("delivery-kill"), "sqlite");
}

/// MicroMDM: one JSON command per device under our CommandUUID (the
/// profile as base64), HTTP Basic `micromdm:<key>`, 201 when queued; its
/// command webhook feeds the same answers back.
#[test]
fn micromdm_commands_and_webhook() {
    use axum::extract::State;
    type Seen = Arc<Mutex<Vec<serde_json::Value>>>;
    let seen: Seen = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route(
            "/v1/commands",
            axum::routing::post(
                |State(seen): State<Seen>, headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    if auth != provkit_mdm::micromdm::basic_auth(KEY) {
                        return (axum::http::StatusCode::UNAUTHORIZED, String::new());
                    }
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    if v["udid"] == "D3" {
                        return (axum::http::StatusCode::BAD_REQUEST, "unknown device".into());
                    }
                    let answer = serde_json::json!({"payload": {"command_uuid": v["command_uuid"], "command": {"request_type": v["request_type"]}}});
                    seen.lock().expect("seen").push(v);
                    (axum::http::StatusCode::CREATED, answer.to_string())
                },
            ),
        )
        .with_state(Arc::clone(&seen));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(l, app).await.expect("serve");
        });
    });
    let open = sqlite("delivery-micromdm");
    let ca = TestCa::rsa();
    {
        let mut s = open().expect("open");
        prepare(s.as_mut(), &ca, "http://unused.invalid");
        let a = actor();
        s.remove_mdm_connection("Global", &a)
            .expect("remove the NanoMDM one");
        provkit_service::delivery::add_connection(
            s.as_mut(),
            Some("micro"),
            MdmKind::MicroMdm,
            &format!("http://{addr}"),
            KEY,
            Some(HMAC),
            None,
            &a,
        )
        .expect("connection");
    }
    let pk = Provkit::start(&open);
    assert!(
        eventually(Duration::from_secs(15), || seen.lock().expect("seen").len()
            == 2),
        "one call per device"
    );
    let calls = seen.lock().expect("seen").clone();
    let uuids: BTreeSet<&str> = calls
        .iter()
        .filter_map(|c| c["command_uuid"].as_str())
        .collect();
    assert_eq!(uuids.len(), 2, "a CommandUUID each: {calls:?}");
    assert!(calls.iter().all(|c| {
        c["request_type"] == "InstallProvisioningProfile"
            && c["provisioning_profile"]
                .as_str()
                .is_some_and(|p| p.len() > 100)
    }));
    assert!(
        eventually(WAIT, || outbox(open.as_ref())
            .get(&("D3".into(), "InstallProvisioningProfile".into(), OLD.into()))
            .is_some_and(|(s, _)| *s == CommandStatus::Error)),
        "a 400 is a refusal"
    );
    // The answers come back through MicroMDM's webhook.
    for (n, c) in calls.iter().enumerate() {
        let (udid, uuid) = (
            c["udid"].as_str().expect("udid"),
            c["command_uuid"].as_str().expect("uuid"),
        );
        let plist = answer_plist(uuid, udid, "Acknowledged", &[], None);
        let body = answer_event(&format!("m-{n}"), udid, uuid, "Acknowledged", &plist);
        assert_eq!(
            post_webhook(
                pk.addr,
                "/webhooks/micromdm",
                &body,
                Some(&sign(HMAC.as_bytes(), &body))
            ),
            200
        );
    }
    assert!(
        eventually(WAIT, || {
            let o = outbox(open.as_ref());
            ["D1", "D2"].iter().all(|d| {
                o.get(&((*d).into(), "InstallProvisioningProfile".into(), OLD.into()))
                    .is_some_and(|(s, _)| *s == CommandStatus::Acknowledged)
            })
        }),
        "acknowledged through MicroMDM's webhook"
    );
}

/// A renewal in a 10k-device tenant, end to end with nothing typed by
/// hand: every device holds the old profile; `renew` is the only call;
/// the scheduler plans, the worker sends through the double in batches,
/// the devices poll and answer through the signed webhook, until every one
/// holds the successor alone (the old one removed only after the successor
/// was acknowledged) and has re-validated the app. Each (CommandUUID,
/// device) reaches the server once.
#[test]
fn a_renewal_reaches_ten_thousand_devices_over_sqlite() {
    const DEVICES: usize = 10_000;
    let udids: Vec<String> = (0..DEVICES).map(|i| format!("R{i:05}")).collect();
    let enrolled: Vec<&str> = udids.iter().map(String::as_str).collect();
    let mdm = NanoMdm::start(KEY, &enrolled);
    let ca = TestCa::rsa();
    let open = sqlite("renewal-10k");
    {
        let a = actor();
        let mut s = open().expect("open");
        let store = s.as_mut();
        provkit_service::trust::add_anchor(store, ca.root.cert.der(), &a).expect("anchor");
        store
            .add_profile(&profile(&ca, OLD, 2027), &a)
            .expect("old");
        let devices: Vec<serde_json::Value> = udids
            .iter()
            .map(|u| {
                serde_json::json!({"udid": u, "reported": [
                    {"uuid": OLD, "expires": "2027-01-15T00:00:00Z", "managed": true}
                ]})
            })
            .collect();
        let inv =
            serde_json::from_value(serde_json::json!({ "devices": devices })).expect("inventory");
        old_on_every_device(store, &inv, &mdm.url(), &a);
        // Every device holds what it should: nothing to send yet.
        let view = provkit_service::plan::plan_and_enqueue(store, a.at, a.at).expect("plan");
        assert!(view.commands.is_empty(), "{:?}", view.commands.first());
    }
    let pk = Provkit::start(&open);
    let started = Instant::now();
    renew_old(&open, &ca);
    let mut devices: HashMap<&str, Device> = HashMap::new();
    let mut n = 0;
    let mut by_type: HashMap<String, usize> = HashMap::new();
    let only_new = BTreeSet::from([NEW.to_owned()]);
    let done = eventually(Duration::from_secs(600), || {
        // Each sweep: every device takes its queue, then the answers go
        // from 16 clients at once (as many devices answer at a time).
        let mut outgoing: Vec<(&str, String)> = Vec::new();
        for udid in &udids {
            while let Some(c) = mdm.poll(udid) {
                *by_type.entry(c.request_type.clone()).or_default() += 1;
                let dev = devices.entry(udid).or_insert_with(|| Device {
                    held: BTreeSet::from([OLD.to_owned()]),
                    log: Vec::new(),
                });
                match c.request_type.as_str() {
                    "InstallProvisioningProfile" => {
                        dev.held.insert(c.profile.clone());
                        dev.log.push(format!("install {}", c.profile));
                    }
                    "RemoveProvisioningProfile" => {
                        assert!(
                            dev.held.contains(NEW),
                            "{udid} told to remove {} before it held the successor: {:?}",
                            c.profile,
                            dev.log
                        );
                        dev.held.remove(&c.profile);
                        dev.log.push(format!("remove {}", c.profile));
                    }
                    "ValidateApplications" => {
                        assert!(dev.held.contains(NEW), "validate after the successor");
                        dev.log.push("validate".into());
                    }
                    other => panic!("unexpected {other}"),
                }
                outgoing.push((udid, c.uuid));
            }
        }
        n += outgoing.len();
        let per = outgoing.len().div_ceil(16).max(1);
        std::thread::scope(|scope| {
            for chunk in outgoing.chunks(per) {
                let addr = pk.addr;
                scope.spawn(move || {
                    for (udid, uuid) in chunk {
                        let plist = answer_plist(uuid, udid, "Acknowledged", &[], None);
                        let body = answer_event(
                            &format!("ev-{udid}-{uuid}"),
                            udid,
                            uuid,
                            "Acknowledged",
                            &plist,
                        );
                        let code = post_webhook(
                            addr,
                            "/webhooks/nanomdm",
                            &body,
                            Some(&sign(HMAC.as_bytes(), &body)),
                        );
                        assert_eq!(code, 200, "webhook accepted");
                    }
                });
            }
        });
        devices.len() == DEVICES
            && devices
                .values()
                .all(|d| d.held == only_new && d.log.iter().any(|l| l == "validate"))
    });
    let took = started.elapsed();
    let behind: Vec<_> = devices
        .iter()
        .filter(|(_, d)| d.held != only_new || !d.log.iter().any(|l| l == "validate"))
        .take(3)
        .map(|(u, d)| (u.to_owned(), d.log.clone()))
        .collect();
    assert!(
        done,
        "every device holds the successor alone ({} of {DEVICES} seen): {behind:?}",
        devices.len()
    );
    let twice = mdm
        .enqueue_counts()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .count();
    assert_eq!(
        twice, 0,
        "no (CommandUUID, device) reached the server twice"
    );
    // And each device got each command once: no plan made before answers
    // arrived sent again what they settled.
    for kind in [
        "InstallProvisioningProfile",
        "RemoveProvisioningProfile",
        "ValidateApplications",
    ] {
        assert_eq!(by_type.get(kind), Some(&DEVICES), "{kind}: {by_type:?}");
    }
    eprintln!("renewal of {DEVICES} devices, end to end: {took:?}, {n} answers: {by_type:?}");
}

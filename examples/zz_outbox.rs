//! scratch: not committed
use provkit::profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit::service::outbox::{Acknowledge, acknowledge};
use provkit::service::plan::command_uuid;
use provkit::store::{Actor, CommandStatus, DeviceRecord, Inventory, OutboxEntry, SqliteStore, Store};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROFILE: &str = "ACAC0000-0000-4000-8000-000000000001";
const SECOND: &str = "ACAC0000-0000-4000-8000-000000000002";
const INSTALL: &str = "InstallProvisioningProfile";

fn entry(udid: String, profile: &str, at: chrono::DateTime<chrono::Utc>, created: chrono::DateTime<chrono::Utc>) -> OutboxEntry {
    OutboxEntry {
        command_uuid: command_uuid(&udid, INSTALL, profile, at),
        udid,
        request_type: INSTALL.into(),
        profile_uuid: profile.into(),
        status: CommandStatus::Planned,
        error_chain: None,
        retries: 0,
        created_at: created,
        updated_at: created,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap();
    let n: usize = args.next().unwrap().parse().unwrap();
    let rounds: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(20);
    let path = std::path::PathBuf::from(format!("/dev/shm/zz-outbox-{n}.db"));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let mut store = SqliteStore::open(&path).unwrap();
    let at = utc(2026, 11, 22);
    let admin = Actor { name: "bench".into(), at };
    let ca = TestCa::rsa();
    for uuid in [PROFILE, SECOND] {
        let bytes = signed_profile(&ca, &ProfileSpec { uuid: uuid.into(), all_devices: true, devices: None, ..ProfileSpec::default() });
        store.add_profile(&bytes, &admin).unwrap();
    }
    let inv = Inventory {
        devices: (0..n).map(|i| DeviceRecord { udid: format!("DEV-{i:07}"), platform: "iOS".into(), user: None, apps: Vec::new(), reported: Vec::new(), org_group: None, enrollment_id: None }).collect(),
        ..Inventory::default()
    };
    store.import_inventory(&inv, &admin).unwrap();
    let entries: Vec<OutboxEntry> = (0..n).map(|i| entry(format!("DEV-{i:07}"), PROFILE, at, at)).collect();
    store.enqueue(&entries).unwrap();
    if mode == "all" {
        let t = Instant::now();
        let done = acknowledge(&mut store, &Acknowledge::AllPending, utc(2026, 11, 23)).unwrap();
        let e = t.elapsed();
        println!("all {} commands: {:.2} us/command", done.commands, e.as_secs_f64() * 1e6 / done.commands as f64);
    } else {
        let (mut te, mut ta) = (0.0, 0.0);
        for round in 1..=rounds {
            let batch: Vec<OutboxEntry> = (0..1000).map(|i| {
                let device = (round * 1000 + i) % n;
                entry(format!("DEV-{device:07}"), SECOND, at + chrono::Duration::seconds(round as i64), at)
            }).collect();
            let t = Instant::now();
            step_enqueue(&mut store, &batch);
            te += t.elapsed().as_secs_f64();
            let ids: Vec<String> = batch.into_iter().map(|e| e.command_uuid).collect();
            let t = Instant::now();
            let done = step_ack(&mut store, ids);
            ta += t.elapsed().as_secs_f64();
            assert_eq!(done, 1000);
        }
        println!("enqueue {:.2} us/command, ack by id {:.2} us/command", te * 1e6 / (rounds * 1000) as f64, ta * 1e6 / (rounds * 1000) as f64);
    }
}

#[inline(never)]
fn step_enqueue(store: &mut SqliteStore, batch: &[OutboxEntry]) {
    store.enqueue(batch).unwrap();
}
#[inline(never)]
fn step_ack(store: &mut SqliteStore, ids: Vec<String>) -> usize {
    acknowledge(store, &Acknowledge::Only(ids), utc(2026, 11, 23)).unwrap().commands
}

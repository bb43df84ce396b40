//! Acknowledging queued commands on SQLite at two queue sizes in the same
//! run: the cost per command must not grow with the queue.
//!
//! ```text
//! cargo bench --features fixtures --bench ack
//! ```
//! Each size has as many devices as commands (one install each); every
//! iteration starts from a copy of the same prepared database file.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use provkit::profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit::service::outbox::{Acknowledge, acknowledge};
use provkit::store::{
    Actor, CommandStatus, DeviceRecord, Inventory, OutboxEntry, SqliteStore, Store,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROFILE: &str = "ACAC0000-0000-4000-8000-000000000001";

/// A database with `n` devices and `n` queued installs.
fn prepared(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("ack-{n}.db"));
    let _ = std::fs::remove_file(&path);
    let mut store = SqliteStore::open(&path).expect("open");
    let at = utc(2026, 11, 22);
    let admin = Actor {
        name: "bench".into(),
        at,
    };
    let ca = TestCa::rsa();
    let bytes = signed_profile(
        &ca,
        &ProfileSpec {
            uuid: PROFILE.into(),
            all_devices: true,
            devices: None,
            ..ProfileSpec::default()
        },
    );
    store.add_profile(&bytes, &admin).expect("profile");
    let inv = Inventory {
        devices: (0..n)
            .map(|i| DeviceRecord {
                udid: format!("DEV-{i:07}"),
                platform: "iOS".into(),
                user: None,
                apps: Vec::new(),
                reported: Vec::new(),
                org_group: None,
            })
            .collect(),
        ..Inventory::default()
    };
    store.import_inventory(&inv, &admin).expect("inventory");
    let entries: Vec<OutboxEntry> = (0..n)
        .map(|i| OutboxEntry {
            command_uuid: format!("C0000000-0000-4000-8000-{i:012}"),
            udid: format!("DEV-{i:07}"),
            request_type: "InstallProvisioningProfile".into(),
            profile_uuid: PROFILE.into(),
            status: CommandStatus::Planned,
            error_chain: None,
            retries: 0,
            created_at: at,
            updated_at: at,
        })
        .collect();
    store.enqueue(&entries).expect("enqueue");
    path
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("provkit-bench-ack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut g = c.benchmark_group("ack");
    g.sample_size(10);
    for n in [10_000usize, 100_000] {
        let template = prepared(&dir, n);
        let copy = dir.join(format!("run-{n}.db"));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("sqlite/{n}"), |b| {
            b.iter_batched(
                || {
                    std::fs::copy(&template, &copy).expect("copy");
                    SqliteStore::open(&copy).expect("open")
                },
                |mut store| {
                    let done = acknowledge(&mut store, &Acknowledge::AllPending, utc(2026, 11, 23))
                        .expect("ack");
                    assert_eq!(done.commands, n);
                    black_box(done)
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Enqueueing and acknowledging commands on SQLite at several queue sizes
//! in the same run: the cost per command must not grow with the queue.
//!
//! ```text
//! cargo bench --features fixtures --bench ack
//! ```
//! Each size has as many devices as queued commands (one install each).
//! `ack/sqlite/N`: every pending command acknowledged, every iteration from a
//! copy of the same prepared file. `outbox-1000/.../N`: 1,000 new commands
//! (a second profile for a window of devices that moves each iteration)
//! enqueued, then acknowledged by their UUIDs, beside a queue of N pending
//! commands that stays; only the named step is timed. Command UUIDs are
//! made as the planner makes them (hashes), so rows are reached in random
//! key order, as a device's answers reach them.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use provkit::profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit::service::outbox::{Acknowledge, acknowledge};
use provkit::service::plan::command_uuid;
use provkit::store::{
    Actor, CommandStatus, DeviceRecord, Inventory, OutboxEntry, SqliteStore, Store,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROFILE: &str = "ACAC0000-0000-4000-8000-000000000001";
const SECOND: &str = "ACAC0000-0000-4000-8000-000000000002";
const INSTALL: &str = "InstallProvisioningProfile";
/// Commands per step in the `outbox-1000` group.
const STEP: usize = 1000;

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
    for uuid in [PROFILE, SECOND] {
        let bytes = signed_profile(
            &ca,
            &ProfileSpec {
                uuid: uuid.into(),
                all_devices: true,
                devices: None,
                ..ProfileSpec::default()
            },
        );
        store.add_profile(&bytes, &admin).expect("profile");
    }
    let inv = Inventory {
        devices: (0..n)
            .map(|i| DeviceRecord {
                udid: format!("DEV-{i:07}"),
                platform: "iOS".into(),
                user: None,
                apps: Vec::new(),
                reported: Vec::new(),
                org_group: None,
                enrollment_id: None,
            })
            .collect(),
        ..Inventory::default()
    };
    store.import_inventory(&inv, &admin).expect("inventory");
    let entries: Vec<OutboxEntry> = (0..n)
        .map(|i| OutboxEntry {
            command_uuid: command_uuid(&format!("DEV-{i:07}"), INSTALL, PROFILE, at),
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
    // One transaction per iteration: at 1M commands (33 s, 33 µs a command
    // on 2026-12-05) its write-ahead log outgrows the page cache.
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

    // 1,000 commands at a time beside queues of growing size.
    let mut g = c.benchmark_group("outbox-1000");
    g.sample_size(10);
    g.throughput(Throughput::Elements(STEP as u64));
    for n in [10_000usize, 100_000, 1_000_000] {
        let path = prepared(&dir, n);
        let mut store = SqliteStore::open(&path).expect("open");
        let mut round = 0usize;
        let mut next_batch = || {
            round += 1;
            batch(round, n)
        };
        g.bench_function(format!("enqueue/{n}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let entries = next_batch();
                    let t = Instant::now();
                    store.enqueue(black_box(&entries)).expect("enqueue");
                    spent += t.elapsed();
                    let ids: Vec<String> = entries.into_iter().map(|e| e.command_uuid).collect();
                    acknowledge(&mut store, &Acknowledge::Only(ids), utc(2026, 11, 23))
                        .expect("ack");
                }
                spent
            });
        });
        g.bench_function(format!("ack-by-id/{n}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let entries = next_batch();
                    store.enqueue(&entries).expect("enqueue");
                    let ids: Vec<String> = entries.into_iter().map(|e| e.command_uuid).collect();
                    let t = Instant::now();
                    let done = acknowledge(&mut store, &Acknowledge::Only(ids), utc(2026, 11, 23))
                        .expect("ack");
                    spent += t.elapsed();
                    assert_eq!(done.commands, STEP);
                }
                spent
            });
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `round`th batch of [`STEP`] installs of the second profile, for a
/// window of devices that moves each round (within `n` devices).
fn batch(round: usize, n: usize) -> Vec<OutboxEntry> {
    let at = utc(2026, 11, 22);
    (0..STEP)
        .map(|i| {
            let device = (round * STEP + i) % n;
            let udid = format!("DEV-{device:07}");
            OutboxEntry {
                command_uuid: command_uuid(
                    &udid,
                    INSTALL,
                    SECOND,
                    utc(2026, 11, 22)
                        + chrono::Duration::seconds(i64::try_from(round).unwrap_or(0)),
                ),
                udid,
                request_type: INSTALL.into(),
                profile_uuid: SECOND.into(),
                status: CommandStatus::Planned,
                error_chain: None,
                retries: 0,
                created_at: at,
                updated_at: at,
            }
        })
        .collect()
}

criterion_group!(benches, bench);
criterion_main!(benches);

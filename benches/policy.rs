//! The assignment engine at 10k, 100k and 1M devices: the full plan, one
//! membership change, and a burst of 100k changes.
//!
//! ```text
//! cargo bench --bench policy
//! ```
//! Tenants come from the seeded generator (the large tenant's proportions)
//! in steady state but for every 20th device.
#![allow(clippy::cast_possible_truncation)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use provkit::policy::generate::{Rng, Shape, generate, settle};
use provkit::policy::{Change, Engine, GroupId, GroupKind, Member, Tenant, UserId};

/// Millions of small allocations: mimalloc handles them better than the
/// system allocator (figures for both are in the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tenant(devices: usize) -> (Tenant, Shape) {
    let shape = Shape::scaled(devices);
    (settle(generate(&shape, 42), shape.around, 20), shape)
}

fn changes(t: &Tenant, users: usize, n: usize, seed: u64) -> Vec<Change> {
    let groups: Vec<GroupId> = (0..t.groups.len() as u32)
        .map(GroupId)
        .filter(|g| t.groups[g.index()].kind == GroupKind::User)
        .collect();
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let group = groups[rng.below(groups.len())];
            let member = Member::User(UserId(rng.below(users) as u32));
            if rng.chance(0.5) {
                Change::AddMember { group, member }
            } else {
                Change::RemoveMember { group, member }
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for devices in [10_000, 100_000, 1_000_000] {
        let (t, shape) = tenant(devices);
        let mut g = c.benchmark_group(format!("policy/{devices}"));
        g.sample_size(10);
        g.bench_function("full-plan", |b| {
            b.iter_batched(
                || t.clone(),
                |t| Engine::new(t, shape.around).plan(),
                BatchSize::PerIteration,
            )
        });
        let mut engine = Engine::new(t.clone(), shape.around);
        let mut stream = changes(&t, shape.users, 100_000, 1).into_iter().cycle();
        g.bench_function("one-change", |b| {
            b.iter(|| {
                engine
                    .apply(black_box(stream.next().expect("cycle")))
                    .expect("valid")
            })
        });
        let mut seed = 2;
        g.bench_function("burst-100k", |b| {
            b.iter_batched(
                || {
                    seed += 1;
                    changes(&t, shape.users, 100_000, seed)
                },
                |batch| engine.apply_all(batch).expect("valid"),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

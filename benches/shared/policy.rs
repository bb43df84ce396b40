//! The assignment engine's benchmark, shared by the `policy` (mimalloc)
//! and `policy_system_alloc` (the system allocator) bench targets: a
//! library does not choose the allocator of the program that links it.
//!
//! Tenants come from the seeded generator (the large tenant's proportions)
//! in steady state but for every 20th device. `full-plan` times building
//! the engine from a copy of the tenant, planning, and dropping the engine
//! with the tenant it holds (as `provkit_policy::plan` does);
//! `full-plan-engine-kept` stops the clock before that drop.
#![allow(clippy::cast_possible_truncation)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion};
use provkit::policy::generate::{Rng, Shape, generate, settle};
use provkit::policy::{Change, Engine, GroupId, GroupKind, Member, Tenant, UserId};

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

/// Every measurement.
pub(crate) fn bench(c: &mut Criterion) {
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
        // The same, the engine (and so the tenant) dropped after the clock
        // stops: what a server that keeps its engine pays for a plan.
        g.bench_function("full-plan-engine-kept", |b| {
            b.iter_batched(
                || t.clone(),
                |t| {
                    let engine = Engine::new(t, shape.around);
                    let plan = engine.plan();
                    (engine, plan)
                },
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

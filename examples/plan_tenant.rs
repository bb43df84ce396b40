//! Generate a tenant of N devices, plan it, and apply membership changes,
//! printing what the engine decided and how long each step took.
//!
//! ```text
//! cargo run --release --example plan_tenant -- 100000
//! ```
#![allow(clippy::cast_possible_truncation)]

use std::time::Instant;

use chrono::TimeDelta;

/// Millions of small allocations: mimalloc handles them better than the
/// system allocator (figures for both are in the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use provkit::policy::generate::{Rng, Shape, generate, settle};
use provkit::policy::{Change, Engine, GroupId, GroupKind, Member, UserId};

fn main() {
    let devices: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let shape = Shape::scaled(devices);
    let at = shape.around;

    // A reproducible tenant in steady state, but for every 20th device.
    let tenant = settle(generate(&shape, 42), at, 20);
    println!("tenant: {}", tenant.summary());

    // The full plan: targeting, reconciliation, notifications, blockers.
    let started = Instant::now();
    let mut engine = Engine::new(tenant, at);
    let built = started.elapsed();
    let plan = engine.plan();
    println!(
        "full plan in {:?} (the engine built in {built:?})",
        started.elapsed()
    );
    println!(
        "  {} devices with {} commands, {} notifications, {} user notices, {} blockers, {} warnings",
        plan.devices.len(),
        plan.command_count(),
        plan.notifications.len(),
        plan.user_notices.len(),
        plan.blockers.len(),
        plan.warnings.len()
    );

    // The same engine at a later instant: a clone moved on, against the
    // build above (what the console did every minute before).
    // A profile of the generated tenant expires in the first minute; none
    // in the second.
    let mut a_minute_on = engine.clone();
    a_minute_on.advance(at + TimeDelta::minutes(1));
    for (label, from, by) in [
        ("a minute", &engine, TimeDelta::minutes(1)),
        ("a day", &engine, TimeDelta::days(1)),
        ("the next minute", &a_minute_on, TimeDelta::minutes(2)),
    ] {
        let started = Instant::now();
        let mut moved = from.clone();
        let delta = moved.advance(at + by);
        println!(
            "a clone moved on by {label} in {:?}: {} devices recomputed, {} with new commands",
            started.elapsed(),
            delta.recomputed,
            delta.devices.len()
        );
    }

    // One membership change, then a burst of 100k, applied incrementally.
    let user_groups: Vec<GroupId> = (0..engine.tenant().groups.len() as u32)
        .map(GroupId)
        .filter(|g| engine.tenant().groups[g.index()].kind == GroupKind::User)
        .collect();
    let mut rng = Rng::new(7);
    let mut change = || Change::AddMember {
        group: user_groups[rng.below(user_groups.len())],
        member: Member::User(UserId(rng.below(shape.users) as u32)),
    };
    let started = Instant::now();
    let delta = engine.apply(change()).expect("valid change");
    println!(
        "one membership change in {:?}: {} devices recomputed",
        started.elapsed(),
        delta.recomputed
    );
    let burst: Vec<Change> = (0..100_000).map(|_| change()).collect();
    let started = Instant::now();
    let delta = engine.apply_all(burst).expect("valid changes");
    println!(
        "burst of 100000 changes in {:?}: {} devices recomputed, {} with new commands",
        started.elapsed(),
        delta.recomputed,
        delta.devices.len()
    );
}

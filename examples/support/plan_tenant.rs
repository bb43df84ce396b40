//! The body of `plan_tenant` and `plan_tenant_system_alloc` (the same
//! program with mimalloc and with the system allocator).
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

use std::time::Instant;

use chrono::TimeDelta;

use provkit::policy::generate::{Rng, Shape, generate, settle};
use provkit::policy::{Change, DeviceId, Engine, GroupId, GroupKind, Member, UserId};

/// Prints the process's peak resident memory (Linux; elsewhere nothing).
fn print_peak() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kb) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    {
        println!("peak resident memory: {kb} KB");
    }
}

/// Runs the example with the arguments of the command line.
pub(crate) fn run() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let devices: usize = args.iter().find_map(|s| s.parse().ok()).unwrap_or(10_000);
    let shape = if flag("--same-density") {
        Shape::same_density(devices)
    } else {
        Shape::scaled(devices)
    };
    let at = shape.around;

    // A reproducible tenant in steady state, but for every 20th device.
    let seed = args
        .iter()
        .find_map(|a| a.strip_prefix("--seed=")?.parse().ok())
        .unwrap_or(42);
    let tenant = settle(generate(&shape, seed), at, 20);
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
    let pairs: usize = (0..engine.tenant().devices.len())
        .map(|i| engine.desired(DeviceId(i as u32)).len())
        .sum();
    println!(
        "  {pairs} desired (device, profile) pairs, {:.2} a device",
        pairs as f64 / devices.max(1) as f64
    );
    if flag("--plan-only") {
        // Dropped inside the timing, as a one-shot program pays it.
        let started = Instant::now();
        drop(plan);
        drop(engine);
        println!("plan and engine dropped in {:?}", started.elapsed());
        print_peak();
        return;
    }

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
    print_peak();
}

//! Generate a tenant of N devices, plan it, and apply membership changes,
//! printing what the engine decided, how long each step took and the
//! process's peak memory.
//!
//! ```text
//! cargo run --release --example plan_tenant -- 100000 [--same-density] [--plan-only] [--seed=42]
//! ```
//! `--same-density` generates `Shape::same_density` (as many All users /
//! All devices assignments as at 1M, so per-device work stays comparable
//! across sizes); `--plan-only` stops after the full plan, so the peak is
//! that of generating, settling and planning once; `--seed` picks another
//! tenant of the same shape.
//! `plan_tenant_system_alloc` is the same with the system allocator.

/// Millions of small allocations: mimalloc handles them better than the
/// system allocator (figures for both are in the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/plan_tenant.rs"]
mod body;

fn main() {
    body::run();
}

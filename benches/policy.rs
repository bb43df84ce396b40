//! The assignment engine at 10k, 100k and 1M devices: the full plan, one
//! membership change, and a burst of 100k changes, with mimalloc as the
//! program's allocator (`policy_system_alloc`: the same with the system's).
//!
//! ```text
//! cargo bench --bench policy --bench policy_system_alloc
//! ```

use criterion::{criterion_group, criterion_main};

#[path = "shared/policy.rs"]
mod shared;

/// Millions of small allocations: mimalloc handles them better than the
/// system allocator (figures for both are in the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

criterion_group!(benches, shared::bench);
criterion_main!(benches);

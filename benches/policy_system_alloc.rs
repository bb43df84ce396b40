//! The assignment engine at 10k, 100k and 1M devices with the system
//! allocator (`policy`: the same with mimalloc).
//!
//! ```text
//! cargo bench --bench policy --bench policy_system_alloc
//! ```

use criterion::{criterion_group, criterion_main};

#[path = "shared/policy.rs"]
mod shared;

criterion_group!(benches, shared::bench);
criterion_main!(benches);

//! Profile parsing and verification, against OpenSSL's in-process CMS_verify
//! (with chain) on the same bytes in the same run, with mimalloc as the
//! program's allocator (`profile_system_alloc`: the same with the system's).
//!
//! ```text
//! PROVKIT_CORPUS=../shared/corpus cargo bench --features fixtures --bench profile --bench profile_system_alloc
//! ```

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "shared/profile.rs"]
mod shared;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    shared::bench(c, "mimalloc");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);

//! Profile parsing and verification, against OpenSSL's in-process CMS_verify
//! (with chain) on the same bytes in the same run, with the system allocator
//! (`profile`: the same with mimalloc).
//!
//! ```text
//! PROVKIT_CORPUS=../shared/corpus cargo bench --features fixtures --bench profile --bench profile_system_alloc
//! ```

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "shared/profile.rs"]
mod shared;

fn bench(c: &mut Criterion) {
    shared::bench(c, "system");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);

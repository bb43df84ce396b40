//! `plan_tenant` with the system allocator (a library does not choose the
//! allocator of the program that links it).
//!
//! ```text
//! cargo run --release --example plan_tenant_system_alloc -- 1000000 --plan-only
//! ```

#[path = "support/plan_tenant.rs"]
mod body;

fn main() {
    body::run();
}

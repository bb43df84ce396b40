//! Setup shared by the service tests.
#![allow(dead_code)] // each test crate uses part of it

use provkit_profile::fixtures::{TestCa, utc};
use provkit_store::{Actor, MemoryStore};

/// The instant the tests plan at, an admin acting then, the RSA test CA and
/// an empty memory store.
pub(crate) fn setup() -> (chrono::DateTime<chrono::Utc>, Actor, TestCa, MemoryStore) {
    let at = utc(2026, 11, 22);
    let admin = Actor {
        name: "admin".into(),
        at,
    };
    (at, admin, TestCa::rsa(), MemoryStore::default())
}

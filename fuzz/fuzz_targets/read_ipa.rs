//! The whole verifier on hostile archive bytes: the zip reader's refusals
//! and limits, the bundle walk, every parser behind it; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkit_codesign::{Options, archive::Archive, archive::Limits, At, verify_archive};
use provkit_profile::Verifier;

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run bounded whatever the archive declares.
    let mut limits = Limits::default();
    limits.max_entries = 4096;
    limits.max_entry_size = 16 << 20;
    limits.max_total_size = 64 << 20;
    limits.max_ratio = 500;
    limits.max_read = 16 << 20;
    let Ok(archive) = Archive::from_bytes(data.to_vec(), limits) else {
        return;
    };
    let verifier = Verifier::default();
    let mut options = Options::new(&verifier, At::SigningTime);
    options.limits = limits;
    let _ = verify_archive(&archive, &options);
});

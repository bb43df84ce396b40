//! The whole verifier on hostile archive bytes: the zip reader's refusals
//! and limits, the bundle walk, every parser behind it; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkit_codesign::{Options, archive::Archive, archive::Limits, At, verify_archive};
use provkit_profile::Verifier;

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run bounded whatever the archive declares.
    let limits = Limits {
        max_entries: 4096,
        max_entry_size: 16 << 20,
        max_total_size: 64 << 20,
        max_ratio: 500,
        max_read: 16 << 20,
    };
    let Ok(archive) = Archive::from_bytes(data.to_vec(), limits) else {
        return;
    };
    let verifier = Verifier::default();
    let _ = verify_archive(
        &archive,
        &Options {
            limits,
            ..Options::new(&verifier, At::SigningTime)
        },
    );
});

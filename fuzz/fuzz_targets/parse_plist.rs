//! XML and binary property lists.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = provkit_profile::plist::parse(data);
});

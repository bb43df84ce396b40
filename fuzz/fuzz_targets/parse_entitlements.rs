//! Entitlements blobs (XML plist `0xfade7171`, DER `0xfade7172`) as code
//! signatures carry them; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = provkit_codesign::entitlements::parse_blob(data) {
        let _ = provkit_codesign::entitlements::not_allowed(&d, &d);
    }
});

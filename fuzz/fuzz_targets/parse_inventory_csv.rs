//! The CSV inventory form users import; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = provkit_store::Inventory::from_csv(text);
    }
});

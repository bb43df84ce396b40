//! Outbox rows and device documents as stored: the store's own readers
//! read every text as serde_json does (the same value, or both refuse);
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        provkit_store::fuzzing::check_document_readers(text);
    }
});

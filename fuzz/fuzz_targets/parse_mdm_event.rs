//! MDM webhook events and the device answers inside them: a hostile body
//! gets a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = provkit_mdm::webhook::Event::parse(data) {
        if let Some(a) = e.answer {
            let _ = a.result.error_text();
        }
    }
    // The same bytes as a device's answer plist.
    if let Ok(r) = provkit_mdm::result::DeviceResult::parse(data) {
        let _ = r.error_text();
    }
    let _ = provkit_mdm::webhook::signature_ok(b"key", data, std::str::from_utf8(data).ok());
    let ids: Vec<&str> = std::str::from_utf8(data).unwrap_or("").split(',').collect();
    let _ = provkit_mdm::nanomdm::read_answer(207, data, &ids);
});

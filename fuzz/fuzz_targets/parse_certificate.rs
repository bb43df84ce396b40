//! X.509 certificates, DER or PEM.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = provkit_profile::Certificate::from_pem_or_der(data) {
        let _ = (c.subject_cn(), c.serial_hex(), c.sha256_fingerprint());
    }
});

//! Signing identities as users hand them to `ipa resign`: a private key in
//! PEM or DER (PKCS#8, PKCS#1), a certificate with its key, a PKCS#12 file;
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkit_codesign::{Identity, SigningKey};

fuzz_target!(|data: &[u8]| {
    let _ = SigningKey::from_pem_or_der(data);
    let (cert, key) = data.split_at(data.len() / 2);
    let _ = Identity::new(cert, key, Vec::new());
    let _ = Identity::from_pkcs12(data, "");
});

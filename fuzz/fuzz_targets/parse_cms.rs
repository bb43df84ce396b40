//! CMS SignedData in DER and in BER (as in code signatures), and the DER plist form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = provkit_profile::SignedData::from_der(data);
    if let Ok(sd) = provkit_profile::SignedData::from_ber(data) {
        for s in &sd.signers {
            let _ = (s.signing_time(), s.message_digest(), s.protected_digest_algorithm());
        }
    }
    let _ = provkit_profile::plist::parse_der(data);
});

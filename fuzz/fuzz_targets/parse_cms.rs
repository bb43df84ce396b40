//! CMS SignedData in DER and in BER (as in code signatures), and the DER plist form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = provkit_profile::SignedData::from_der(data) {
        let _ = sd.certificates();
    }
    if let Ok(sd) = provkit_profile::SignedData::from_ber(data) {
        let _ = sd.certificates();
        for s in &sd.signers {
            let _ = (s.signing_time(), s.message_digest(), s.protected_digest_algorithm());
        }
    }
    let _ = provkit_profile::plist::parse_der(data);
});

//! Whole-profile parsing, then verification and the nested DER profile:
//! any bytes must give a typed error or a report, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkit_profile::{ProvisioningProfile, Verifier};

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = ProvisioningProfile::from_der(data) {
        let at = file.profile().creation_date;
        let _ = Verifier::default().verify(&file, at);
        let _ = file.profile().to_dictionary();
    }
});

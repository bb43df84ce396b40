//! Re-signs an `.ipa` once with the test CA's developer identity and a
//! wildcard profile, and prints the time: run it under `/usr/bin/time -v`
//! for the peak resident memory of an IPA-to-IPA re-sign.
//!
//! ```text
//! cargo bench --features fixtures --bench codesign   # writes target/tmp/provkit-large.ipa
//! /usr/bin/time -v cargo run --release --features fixtures --example resign_large -- \
//!     target/tmp/provkit-large.ipa /tmp/resigned.ipa [DIR]
//! ```
//!
//! With `DIR`, the identity and the profile are also written there
//! (`cert.pem`, `key.pem`, `chain.pem` with the test CA's intermediate and
//! root, `profile.mobileprovision`), so another signer can re-sign the same
//! app with the same inputs for a comparison.

use std::time::Instant;

use provkit::codesign::fixtures::developer_identity;
use provkit::codesign::resign::{ResignOptions, resign_path};
use provkit::profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: resign_large IN.ipa OUT.ipa".into());
    };
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let profiles = vec![signed_profile(
        &ca,
        &ProfileSpec {
            bundle_id: "*".into(),
            ..ProfileSpec::default()
        },
    )];
    if let Some(dir) = args.next() {
        use provkit::codesign::fixtures::pkcs8_of_rsa;
        use provkit::profile::fixtures::{KeySource, key_der};
        use provkit::profile::pem::encode as pem;
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir)?;
        let key = key_der(KeySource::RsaDeveloper).ok_or("no developer key")?;
        std::fs::write(
            dir.join("cert.pem"),
            pem("CERTIFICATE", ca.developer.cert.der()),
        )?;
        std::fs::write(dir.join("key.pem"), pem("PRIVATE KEY", &pkcs8_of_rsa(key)))?;
        let chain = pem("CERTIFICATE", ca.intermediate.cert.der())
            + &pem("CERTIFICATE", ca.root.cert.der());
        std::fs::write(dir.join("chain.pem"), chain)?;
        std::fs::write(dir.join("profile.mobileprovision"), &profiles[0])?;
    }
    let mut opts = ResignOptions::new(&id, &profiles, utc(2026, 6, 1));
    opts.overwrite = true;
    let t = Instant::now();
    let done = resign_path(input.as_ref(), output.as_ref(), &opts)?;
    println!(
        "re-signed {} bundle(s) in {:.3} s",
        done.signed.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

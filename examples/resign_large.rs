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
//! `resign_large --many N OUT.ipa` writes an app to re-sign instead: an
//! 80 MB fat executable and `N` frameworks of 16 MB each (to show that the
//! peak follows the largest executable, not their sum).
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
        return Err("usage: resign_large IN.ipa OUT.ipa [DIR] | --many N OUT.ipa".into());
    };
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    if input == "--many" {
        let n: usize = output.parse()?;
        let out = args.next().ok_or("--many N OUT.ipa")?;
        return many_frameworks(&ca, n, out.as_ref());
    }
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

/// An app with an 80 MB fat executable (arm64 and armv7, 40 MB each) and
/// `n` frameworks of 16 MB, every entry stored.
fn many_frameworks(
    ca: &TestCa,
    n: usize,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    use provkit::codesign::fixtures::{Arch, BundleSpec, build_ipa};
    const MB: usize = 1 << 20;
    let mut app = BundleSpec::new("Many.app", "com.example.many");
    app.archs = vec![Arch::Armv7, Arch::Arm64];
    app.code_len = 40 * MB;
    app.nested = (0..n)
        .map(|i| {
            let mut f =
                BundleSpec::new(&format!("Lib{i}.framework"), &format!("com.example.lib{i}"));
            f.code_len = 16 * MB;
            f
        })
        .collect();
    let id = developer_identity(ca);
    std::fs::write(
        out,
        build_ipa(&app, provkit::profile::fixtures::TEST_TEAM, &id, |_| false),
    )?;
    println!("wrote {}: {n} frameworks", out.display());
    Ok(())
}

//! Re-signs an `.ipa` once with the test CA's developer identity and a
//! wildcard profile, and prints the time: run it under `/usr/bin/time -v`
//! for the peak resident memory of an IPA-to-IPA re-sign.
//!
//! ```text
//! cargo bench --features fixtures --bench codesign   # writes target/tmp/provkit-large.ipa
//! /usr/bin/time -v cargo run --release --features fixtures --example resign_large -- \
//!     target/tmp/provkit-large.ipa /tmp/resigned.ipa
//! ```

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

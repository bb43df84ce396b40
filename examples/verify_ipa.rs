//! Verify an `.ipa` (or an unpacked `.app`) the way a device would, and print
//! the verdict with every finding.
//!
//! ```text
//! cargo run --release --example verify_ipa -- App.ipa [RFC3339 | signing-time]
//! ```

use provkit::codesign::{At, Options, verify_path};
use provkit::profile::Verifier;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: verify_ipa APP.ipa [RFC3339|signing-time]")?;
    // Time is explicit: an instant, or each signature's own signingTime.
    let at = match args.next().as_deref() {
        None | Some("signing-time") => At::SigningTime,
        Some(t) => At::Instant(chrono::DateTime::parse_from_rfc3339(t)?.to_utc()),
    };
    // One verifier (Apple's roots, cached issuer links) serves any number of apps.
    let verifier = Verifier::default();
    let options = Options::new(&verifier, at);
    let report = verify_path(path.as_ref(), &options)?;
    for b in &report.bundles {
        let archs: Vec<&str> = b.slices.iter().map(|s| s.arch.as_str()).collect();
        println!(
            "{} ({}) {} [{}]",
            b.path,
            b.kind,
            b.bundle_id.as_deref().unwrap_or("-"),
            archs.join(",")
        );
    }
    for f in &report.findings {
        println!(
            "{} {} {}: {}",
            f.severity,
            f.code,
            f.path.as_deref().unwrap_or(&f.bundle),
            f.message
        );
    }
    println!("{}", if report.valid { "valid" } else { "invalid" });
    Ok(())
}

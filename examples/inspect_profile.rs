//! Inspect and verify a provisioning profile with the library API.
//!
//! ```text
//! cargo run --example inspect_profile -- path/to/app.mobileprovision [RFC3339]
//! cargo run --example inspect_profile        # uses a sample signed by a test CA
//! ```

use chrono::{DateTime, Utc};
use provkit::profile::fixtures::{ProfileSpec, TestCa, signed_profile};
use provkit::profile::{ProvisioningProfile, TrustAnchors, Verifier, hex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    // Read the file, or make a sample with the project's test CA.
    let (bytes, anchors) = match args.next() {
        Some(path) => (std::fs::read(path)?, TrustAnchors::apple()),
        None => {
            let ca = TestCa::rsa();
            (signed_profile(&ca, &ProfileSpec::default()), ca.anchors())
        }
    };

    // Bytes → envelope and typed profile. Hostile input is a typed error.
    let file = ProvisioningProfile::from_der(&bytes)?;
    let p = file.profile();
    println!("{} ({})", p.name.as_deref().unwrap_or("unnamed"), p.uuid);
    println!(
        "  kind {}, team {:?}, app id {:?}",
        p.kind(),
        p.team_id(),
        p.application_identifier()
    );
    println!(
        "  expires {}, apps die {}",
        p.expiration_date,
        p.death_date()
    );
    for cert in &p.developer_certificates {
        let fp = hex(&cert.sha256_fingerprint());
        println!(
            "  certificate {:?} until {} sha256 {fp}",
            cert.subject_cn(),
            cert.not_after()
        );
    }

    // Verify at an explicit instant: the library never reads the clock.
    let at: DateTime<Utc> = match args.next() {
        Some(s) => DateTime::parse_from_rfc3339(&s)?.to_utc(),
        None => p.creation_date,
    };
    let report = Verifier::new(anchors).verify(&file, at);
    println!(
        "at {at}: {}",
        if report.valid { "valid" } else { "INVALID" }
    );
    for f in &report.findings {
        println!("  {} {}: {}", f.severity, f.code, f.message);
    }
    println!("  {} days left", p.days_left(at));
    Ok(())
}

//! `provkit profile sample`: profiles signed by the test CA, its root and a
//! developer identity, to try every command on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{SubsecRound as _, Utc};
use provkit_profile::fixtures::{self, ProfileSpec, TestCa, utc};

use crate::output::outln;

/// Writes sample profiles and the test CA root; returns the written paths.
pub(crate) fn write_samples(out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let ca = TestCa::rsa();
    let now = Utc::now().trunc_subsecs(0);
    let samples = [
        (
            "adhoc-100-devices.mobileprovision",
            ProfileSpec {
                name: "Sample Ad Hoc: com.example.field".into(),
                uuid: "7A0C5B1E-2D44-4E0A-9B61-5A3F00000001".into(),
                bundle_id: "com.example.field".into(),
                devices: Some(100),
                der_profile: true,
                creation: fixtures::days_after(now, -30),
                expiration: fixtures::days_after(now, 45),
                ..ProfileSpec::default()
            },
        ),
        (
            "enterprise.mobileprovision",
            ProfileSpec {
                name: "Sample In House: com.example.*".into(),
                uuid: "7A0C5B1E-2D44-4E0A-9B61-5A3F00000002".into(),
                bundle_id: "*".into(),
                devices: None,
                all_devices: true,
                creation: fixtures::days_after(now, -100),
                expiration: fixtures::days_after(now, 265),
                ..ProfileSpec::default()
            },
        ),
        (
            "development-binary-plist.mobileprovision",
            ProfileSpec {
                name: "Sample Development: com.example.field".into(),
                uuid: "7A0C5B1E-2D44-4E0A-9B61-5A3F00000003".into(),
                bundle_id: "com.example.field".into(),
                devices: Some(5),
                get_task_allow: true,
                binary: true,
                creation: fixtures::days_after(now, -300),
                expiration: fixtures::days_after(now, 20),
                ..ProfileSpec::default()
            },
        ),
        (
            "expired-appstore.mobileprovision",
            ProfileSpec {
                name: "Sample App Store: com.example.old".into(),
                uuid: "7A0C5B1E-2D44-4E0A-9B61-5A3F00000004".into(),
                bundle_id: "com.example.old".into(),
                devices: None,
                creation: utc(2024, 1, 1),
                expiration: utc(2025, 1, 1),
                ..ProfileSpec::default()
            },
        ),
    ];
    let mut written = Vec::new();
    for (name, spec) in samples {
        let path = out.join(name);
        std::fs::write(&path, fixtures::signed_profile(&ca, &spec))
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    // The test CA's root, and the developer identity the profiles list, in
    // the forms `ipa resign` takes (PEM certificate and key, or PKCS#12 with
    // the password "provkit").
    use provkit_codesign::fixtures::developer_p12;
    use provkit_profile::pem::encode as pem;
    let key = fixtures::key_der(fixtures::KeySource::RsaDeveloper).unwrap_or_default();
    let files: [(&str, Vec<u8>); 5] = [
        ("test-root-ca.cer", ca.root.cert.der().to_vec()),
        (
            "test-intermediate.pem",
            pem("CERTIFICATE", ca.intermediate.cert.der()).into_bytes(),
        ),
        (
            "test-developer.pem",
            pem("CERTIFICATE", ca.developer.cert.der()).into_bytes(),
        ),
        (
            "test-developer.key",
            pem("RSA PRIVATE KEY", key).into_bytes(),
        ),
        ("test-developer.p12", developer_p12(&ca, "provkit")),
    ];
    for (name, bytes) in files {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

pub(crate) fn sample(out: &Path) -> Result<()> {
    for p in write_samples(out)? {
        outln!("{}", p.display())?;
    }
    Ok(())
}

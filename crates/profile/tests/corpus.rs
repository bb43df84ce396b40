//! Conformance against the shared corpus of real profiles: every field the
//! parser exposes must equal what an independent decoder (openssl and
//! Python's plistlib) read, and verification must agree with openssl on
//! signatures and certificate expiry.
//!
//! Runs when `PROVKIT_CORPUS` names the corpus folder; otherwise each test
//! prints a notice and returns.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use provkit_profile::{
    FindingCode, ParseError, ProvisioningProfile, Scope, Severity, Value, Verifier,
};

fn corpus() -> Option<PathBuf> {
    provkit_profile::fixtures::corpus_dir()
}

fn rows(dir: &std::path::Path, name: &str) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(dir.join(name)).expect("read tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn py_bool(b: Option<bool>) -> String {
    match b {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => String::new(),
    }
}

fn z(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn today() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")
        .expect("date")
        .to_utc()
}

#[test]
fn every_field_matches_the_independent_decoder() {
    let Some(dir) = corpus() else { return };
    let rows = rows(&dir, "profiles.tsv");
    assert_eq!(rows.len(), 114, "profiles.tsv rows");
    let mut mismatches = Vec::new();
    for r in &rows {
        let file = &r["file"];
        let bytes = std::fs::read(dir.join(file)).expect("read profile");
        let parsed = match ProvisioningProfile::from_der(&bytes) {
            Ok(p) => p,
            Err(e) => {
                mismatches.push(format!("{file}: parse error {e}"));
                continue;
            }
        };
        let p = parsed.profile();
        let sd = parsed.signed_data();
        let signer = &sd.signers[0];
        let signer_cert = sd.signer_certificate(signer).expect("signer certificate");
        let ent = p.entitlements();
        let der = parsed.der_profile();
        let ours: Vec<(&str, String)> = vec![
            ("Name", p.name.clone().unwrap_or_default()),
            ("UUID", p.uuid.clone()),
            ("TeamIdentifier", p.team_identifier.join(",")),
            ("AppIDName", p.app_id_name.clone().unwrap_or_default()),
            (
                "application-identifier",
                p.application_identifier().unwrap_or_default().to_owned(),
            ),
            ("CreationDate", z(p.creation_date)),
            ("ExpirationDate", z(p.expiration_date)),
            ("kind", p.kind().as_str().to_owned()),
            ("n_devices", p.devices().len().to_string()),
            ("n_dev_certs", p.developer_certificates.len().to_string()),
            (
                "has_DER_Encoded_Profile",
                if p.der_encoded_profile.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ),
            (
                "plist_format",
                format!("{:?}", parsed.plist_format()).to_lowercase(),
            ),
            ("get_task_allow", py_bool(p.get_task_allow())),
            ("platform", p.platforms.join(",")),
            ("IsXcodeManaged", py_bool(p.is_xcode_managed)),
            (
                "aps_environment",
                p.aps_environment().unwrap_or_default().to_owned(),
            ),
            (
                "beta_reports_active",
                py_bool(ent.get("beta-reports-active").and_then(Value::as_bool)),
            ),
            (
                "TimeToLive",
                p.time_to_live.map(|v| v.to_string()).unwrap_or_default(),
            ),
            (
                "Version",
                p.version.map(|v| v.to_string()).unwrap_or_default(),
            ),
            (
                "cms_digest",
                signer
                    .digest_algorithm
                    .map(|d| d.name())
                    .unwrap_or("?")
                    .to_owned(),
            ),
            (
                "cms_sig_alg",
                match signer.signature_algorithm {
                    provkit_profile::SignatureAlgorithm::RsaEncryption => "rsaEncryption".into(),
                    ref other => format!("{other:?}"),
                },
            ),
            ("cms_signed_attrs", signer.attribute_names().join(",")),
            ("n_signers", sd.signers.len().to_string()),
            (
                "n_cms_certs",
                sd.certificates().expect("certificates").len().to_string(),
            ),
            (
                "signer_cn",
                signer_cert.subject_cn().unwrap_or_default().to_owned(),
            ),
            (
                "signer_notBefore",
                signer_cert.not_before().format("%Y-%m-%d").to_string(),
            ),
            (
                "signer_notAfter",
                signer_cert.not_after().format("%Y-%m-%d").to_string(),
            ),
        ];
        for (col, value) in ours {
            if r[col] != value {
                mismatches.push(format!(
                    "{file}: {col}: corpus {:?}, ours {:?}",
                    r[col], value
                ));
            }
        }
        // The nested profile: size and digest as the decoder saw it.
        match (r["der_profile"].as_str(), der) {
            ("", None) => {}
            (want, Some(Ok(d))) => {
                let size = p.der_encoded_profile.as_ref().map_or(0, Vec::len);
                let digest = d.signed_data.signers[0]
                    .digest_algorithm
                    .map(|a| a.name())
                    .unwrap_or("?");
                let expect = format!("{size}B cms_parse=ok sig_ok=True md_ok=True digest={digest}");
                if want != expect {
                    mismatches.push(format!(
                        "{file}: der_profile: corpus {want:?}, ours {expect:?}"
                    ));
                }
            }
            (want, other) => mismatches.push(format!(
                "{file}: der_profile: corpus {want:?}, ours {other:?}"
            )),
        }
        // Developer certificates: the team in OU matches the profile's team.
        for c in &p.developer_certificates {
            assert_eq!(c.sha256_fingerprint().len(), 32);
            assert!(
                c.not_before() < c.not_after(),
                "{file}: certificate validity"
            );
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_profile_verifies_at_its_signing_time() {
    let Some(dir) = corpus() else { return };
    let verifier = Verifier::default();
    let mut failures = Vec::new();
    for r in rows(&dir, "profiles.tsv") {
        let bytes = std::fs::read(dir.join(&r["file"])).expect("read");
        let parsed = ProvisioningProfile::from_der(&bytes).expect("parse");
        let report = verifier.verify_at_signing_time(&parsed);
        if !report.valid
            || !report
                .findings
                .iter()
                .all(|f| f.code == FindingCode::DeveloperCertificateExpired)
        {
            failures.push(format!("{}: {:?}", r["file"], report.findings));
        }
        assert!(
            report.path.len() == 3,
            "{}: path {:?}",
            r["file"],
            report.path
        );
        assert!(report.path[2].anchor);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn expiry_findings_match_openssl_at_2026_11_22() {
    let Some(dir) = corpus() else { return };
    let verifier = Verifier::default();
    let (mut expired_profiles, mut expired_chains, mut differ) = (0, 0, 0);
    for r in rows(&dir, "profiles.tsv") {
        let file = &r["file"];
        let bytes = std::fs::read(dir.join(file)).expect("read");
        let parsed = ProvisioningProfile::from_der(&bytes).expect("parse");
        let report = verifier.verify(&parsed, today());
        let profile_expired = parsed.profile().expiration_date < today();
        assert_eq!(
            report.has(FindingCode::ProfileExpired),
            profile_expired,
            "{file}: profile expiry"
        );
        let openssl_expired = r["openssl_chain_verifies"].contains("certificate has expired");
        let chain_expired = report
            .findings
            .iter()
            .any(|f| f.code == FindingCode::CertificateExpired && f.scope == Scope::Profile);
        assert_eq!(
            chain_expired, openssl_expired,
            "{file}: chain expiry vs openssl: {:?}",
            report.findings
        );
        // Expired dates never turn into signature or trust errors.
        let errors: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error && f.code != FindingCode::ProfileExpired)
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
        assert_eq!(report.valid, !profile_expired, "{file}");
        expired_profiles += usize::from(profile_expired);
        expired_chains += usize::from(chain_expired);
        differ += usize::from(profile_expired != chain_expired);
    }
    eprintln!(
        "expired profiles {expired_profiles}, expired chains {expired_chains}, rows where they differ {differ}"
    );
    assert!(
        differ > 0,
        "the corpus has rows where profile and chain expiry differ"
    );
}

#[test]
fn odd_files_get_the_right_typed_error() {
    let Some(dir) = corpus() else { return };
    let read = |name: &str| std::fs::read(dir.join("odd").join(name)).expect("read odd file");
    assert!(matches!(
        ProvisioningProfile::from_der(&read("0ff0fb52b09cbbf1.not-a-profile.mobileprovision")),
        Err(ParseError::Text { .. })
    ));
    assert!(matches!(
        ProvisioningProfile::from_der(&read(
            "92f09044bfa02d52.fastlane-match-encrypted.mobileprovision"
        )),
        Err(ParseError::Encrypted { .. })
    ));
    assert!(matches!(
        ProvisioningProfile::from_der(&read("MrLeeSr_test.git-lfs-pointer.ipa")),
        Err(ParseError::Text { .. })
    ));
    assert!(matches!(
        ProvisioningProfile::from_der(&read("bungabear_app.fake-text.ipa")),
        Err(ParseError::Text { .. })
    ));
    // The self-signed fake parses, its signature is intact, and it fails on trust.
    let fake =
        ProvisioningProfile::from_der(&read("483fe1806cbc216e.self-signed-fake.mobileprovision"))
            .expect("the fake is well-formed");
    assert_eq!(fake.profile().team_id(), Some("ISIGNTESTS"));
    let report = Verifier::default().verify_at_signing_time(&fake);
    assert!(!report.valid);
    assert!(
        report.has(FindingCode::ChainUntrusted),
        "{:?}",
        report.findings
    );
    assert!(!report.has(FindingCode::SignatureInvalid));
    assert!(!report.has(FindingCode::MessageDigestMismatch));
}

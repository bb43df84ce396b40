//! Profiles the project signs itself with a test CA: every variant verifies,
//! and every tamper is caught with its own finding code.

use chrono::{DateTime, Utc};
use provkit_profile::fixtures::{
    self, CertSpec, CmsOptions, KeySource, ProfileSpec, TEST_TEAM, TestCa, TestKey, issue,
    sign_cms, sign_plist, utc,
};
use provkit_profile::{
    CmsError, DigestAlgorithm, FindingCode, ParseError, PlistFormat, ProfileKind,
    ProvisioningProfile, Scope, Value, Verifier,
};
use std::sync::OnceLock;

fn rsa_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(TestCa::rsa)
}

fn at() -> DateTime<Utc> {
    utc(2026, 6, 1)
}

fn parse(bytes: &[u8]) -> ProvisioningProfile {
    ProvisioningProfile::from_der(bytes).expect("fixture parses")
}

fn codes(ca: &TestCa, bytes: &[u8], at: DateTime<Utc>) -> Vec<(FindingCode, Scope)> {
    let report = Verifier::new(ca.anchors()).verify(&parse(bytes), at);
    report.findings.iter().map(|f| (f.code, f.scope)).collect()
}

#[test]
fn every_variant_parses_and_verifies() {
    let ecdsa = TestCa::ecdsa();
    for (ca, label) in [(rsa_ca(), "rsa"), (&ecdsa, "ecdsa")] {
        for binary in [false, true] {
            for digest in [
                DigestAlgorithm::Sha1,
                DigestAlgorithm::Sha256,
                DigestAlgorithm::Sha384,
            ] {
                for der_profile in [false, true] {
                    let spec = ProfileSpec {
                        binary,
                        der_profile,
                        cms: CmsOptions {
                            digest,
                            ..CmsOptions::default()
                        },
                        ..ProfileSpec::default()
                    };
                    let bytes = fixtures::signed_profile(ca, &spec);
                    let file = parse(&bytes);
                    let what = format!("{label} binary={binary} {digest:?} der={der_profile}");
                    assert_eq!(
                        file.plist_format(),
                        if binary {
                            PlistFormat::Binary
                        } else {
                            PlistFormat::Xml
                        },
                        "{what}"
                    );
                    let p = file.profile();
                    assert_eq!(p.uuid, spec.uuid, "{what}");
                    assert_eq!(p.team_id(), Some(TEST_TEAM));
                    assert_eq!(p.kind(), ProfileKind::AdHoc);
                    assert_eq!(p.devices().len(), 3);
                    assert_eq!(p.developer_certificates[0].subject_ou(), Some(TEST_TEAM));
                    assert_eq!(file.der_profile().is_some(), der_profile);
                    let report = Verifier::new(ca.anchors()).verify(&file, at());
                    assert!(
                        report.valid && report.findings.is_empty(),
                        "{what}: {:?}",
                        report.findings
                    );
                    assert_eq!(report.path.len(), 3);
                    // The same file is untrusted against Apple's roots.
                    let apple = Verifier::default().verify(&file, at());
                    assert!(apple.has(FindingCode::ChainUntrusted), "{what}");
                }
            }
        }
    }
}

#[test]
fn kinds_follow_the_documented_rule() {
    let ca = rsa_ca();
    let kind = |devices: Option<usize>, all: bool, gta: bool| {
        let spec = ProfileSpec {
            devices,
            all_devices: all,
            get_task_allow: gta,
            ..ProfileSpec::default()
        };
        parse(&fixtures::signed_profile(ca, &spec)).profile().kind()
    };
    assert_eq!(kind(Some(2), false, true), ProfileKind::Development);
    assert_eq!(kind(Some(2), false, false), ProfileKind::AdHoc);
    assert_eq!(kind(None, true, false), ProfileKind::Enterprise);
    assert_eq!(kind(None, false, false), ProfileKind::AppStore);
}

#[test]
fn multi_platform_profile_is_classified_macos() {
    // Regression: a profile whose Platform is [OSX, iOS] was classified
    // macos-development. A profile that provisions iOS has its iOS kind.
    let ca = rsa_ca();
    let with_platforms = |platforms: &[&str], devices: Option<usize>, all: bool| {
        let spec = ProfileSpec {
            devices,
            all_devices: all,
            get_task_allow: true,
            ..ProfileSpec::default()
        };
        let mut d = fixtures::profile_dictionary(&spec, &[&ca.developer.cert]);
        d.insert(
            "Platform",
            Value::Array(
                platforms
                    .iter()
                    .map(|p| Value::String((*p).to_owned()))
                    .collect(),
            ),
        );
        let file = parse(&sign_plist(ca, d, false, &CmsOptions::default()));
        let p = file.profile();
        (p.kind(), p.provisions_ios(), p.platforms.clone())
    };
    let (kind, ios, platforms) = with_platforms(&["OSX", "iOS"], Some(2), false);
    assert_eq!(kind, ProfileKind::Development);
    assert!(ios);
    assert_eq!(platforms, ["OSX", "iOS"]);
    assert_eq!(
        with_platforms(&["OSX", "iOS"], None, true).0,
        ProfileKind::Enterprise
    );
    assert_eq!(
        with_platforms(&["OSX", "iOS"], None, false).0,
        ProfileKind::AppStore
    );
    // macOS alone stays macOS and does not provision iOS apps.
    let (kind, ios, _) = with_platforms(&["OSX"], Some(2), false);
    assert_eq!(kind, ProfileKind::MacosDevelopment);
    assert!(!ios);
    // visionOS alone is not macOS, but not an iOS profile either.
    let (kind, ios, _) = with_platforms(&["xrOS"], Some(2), false);
    assert_eq!(kind, ProfileKind::Development);
    assert!(!ios);
}

/// Finds `needle` in `hay` (once) and flips a bit in the byte at `offset` from its start.
fn flip(bytes: &[u8], needle: &[u8], offset: usize) -> Vec<u8> {
    let pos = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present");
    let mut out = bytes.to_vec();
    out[pos + offset] ^= 0x01;
    out
}

#[test]
fn a_changed_content_byte_breaks_the_message_digest() {
    let ca = rsa_ca();
    let bytes = fixtures::signed_profile(ca, &ProfileSpec::default());
    let tampered = flip(&bytes, b"provkit Test Ad Hoc", 0);
    let found = codes(ca, &tampered, at());
    assert_eq!(
        found,
        vec![(FindingCode::MessageDigestMismatch, Scope::Profile)]
    );
}

#[test]
fn a_changed_signed_attribute_breaks_the_signature() {
    let ca = rsa_ca();
    let bytes = fixtures::signed_profile(ca, &ProfileSpec::default());
    // The signingTime value "260115000000Z": change the day.
    let tampered = flip(&bytes, b"260115000000Z", 5);
    let found = codes(ca, &tampered, at());
    assert_eq!(found, vec![(FindingCode::SignatureInvalid, Scope::Profile)]);
}

#[test]
fn a_swapped_intermediate_breaks_the_chain() {
    let ca = rsa_ca();
    // Same names, different keys: the leaf's signature does not verify under the impostor.
    let impostor = TestCa::ecdsa();
    let spec = ProfileSpec::default();
    let d = fixtures::profile_dictionary(&spec, &[&ca.developer.cert]);
    let content = provkit_profile::plist::to_xml(&Value::Dictionary(d)).expect("xml");
    let bytes = sign_cms(
        &content,
        &ca.signer,
        &[&impostor.intermediate.cert],
        &CmsOptions::default(),
    );
    let found = codes(ca, &bytes, at());
    assert_eq!(
        found,
        vec![(FindingCode::ChainSignatureInvalid, Scope::Profile)]
    );
}

#[test]
fn an_expired_intermediate_is_reported_apart_from_the_signature() {
    let ca = TestCa::rsa_with_intermediate_expiring(utc(2026, 3, 1));
    let bytes = fixtures::signed_profile(&ca, &ProfileSpec::default());
    let report = Verifier::new(ca.anchors()).verify(&parse(&bytes), at());
    let found: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.code, f.certificate.clone()))
        .collect();
    assert_eq!(
        found,
        vec![(
            FindingCode::CertificateExpired,
            Some("provkit Test iPhone Certification Authority".to_owned())
        )]
    );
    // Apple's device policy ignores signing-certificate dates: the profile stays valid.
    assert!(report.valid);
    // Before the intermediate expired there is nothing to report.
    assert!(codes(&ca, &bytes, utc(2026, 2, 1)).is_empty());
}

#[test]
fn untrusted_roots_non_cas_and_unknown_critical_extensions() {
    let ca = rsa_ca();
    let bytes = fixtures::signed_profile(ca, &ProfileSpec::default());
    // A root with the right name but another key is an impostor, not an issuer.
    let other = TestCa::ecdsa();
    let report = Verifier::new(other.anchors()).verify(&parse(&bytes), at());
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].code, FindingCode::ChainSignatureInvalid);
    // No anchor of that name at all: untrusted.
    let report = Verifier::new(provkit_profile::TrustAnchors::empty()).verify(&parse(&bytes), at());
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].code, FindingCode::ChainUntrusted);

    // A leaf (not a CA) issuing the profile-signing certificate.
    let fake_spec = CertSpec::new("provkit Test iPhone Certification Authority", false);
    let fake_issuer = issue(
        &fake_spec,
        TestKey::load(KeySource::RsaIntermediate),
        Some((&ca.root, &ca.root_spec)),
        DigestAlgorithm::Sha256,
    );
    let mut signer_spec = CertSpec::new("provkit Test Provisioning Profile Signing", false);
    signer_spec.unknown_critical_extension = true;
    let signer = issue(
        &signer_spec,
        TestKey::load(KeySource::RsaSigner),
        Some((&fake_issuer, &fake_spec)),
        DigestAlgorithm::Sha256,
    );
    let d = fixtures::profile_dictionary(&ProfileSpec::default(), &[&ca.developer.cert]);
    let content = provkit_profile::plist::to_xml(&Value::Dictionary(d)).expect("xml");
    let bytes = sign_cms(
        &content,
        &signer,
        &[&fake_issuer.cert],
        &CmsOptions::default(),
    );
    let found = codes(ca, &bytes, at());
    assert!(
        found.contains(&(FindingCode::IssuerNotCa, Scope::Profile)),
        "{found:?}"
    );
    assert!(
        found.contains(&(FindingCode::UnknownCriticalExtension, Scope::Profile)),
        "{found:?}"
    );
}

#[test]
fn der_profile_tampering_and_disagreement() {
    let ca = rsa_ca();
    let spec = ProfileSpec {
        der_profile: true,
        ..ProfileSpec::default()
    };
    // A nested profile that disagrees with the plist: sign one for another UUID and graft it.
    let other = ProfileSpec {
        uuid: "00000000-0000-0000-0000-000000000000".into(),
        ..spec.clone()
    };
    let donor = parse(&fixtures::signed_profile(ca, &other));
    let mut d = fixtures::profile_dictionary(&spec, &[&ca.developer.cert]);
    d.insert(
        "DER-Encoded-Profile",
        Value::Data(donor.profile().der_encoded_profile.clone().expect("der")),
    );
    let bytes = sign_plist(ca, d.clone(), false, &CmsOptions::default());
    let found = codes(ca, &bytes, at());
    assert_eq!(
        found,
        vec![(FindingCode::DerProfileMismatch, Scope::DerProfile)]
    );

    // A nested profile whose own content was altered: the nested digest breaks.
    let mut nested = donor.profile().der_encoded_profile.clone().expect("der");
    let pos = nested
        .windows(4)
        .position(|w| w == b"0000")
        .expect("uuid in payload");
    nested[pos] = b'1';
    d.insert("DER-Encoded-Profile", Value::Data(nested));
    let bytes = sign_plist(ca, d.clone(), false, &CmsOptions::default());
    let found = codes(ca, &bytes, at());
    assert!(
        found.contains(&(FindingCode::MessageDigestMismatch, Scope::DerProfile)),
        "{found:?}"
    );

    // Garbage in place of the nested profile.
    d.insert(
        "DER-Encoded-Profile",
        Value::Data(vec![0x30, 0x03, 0x02, 0x01]),
    );
    let bytes = sign_plist(ca, d, false, &CmsOptions::default());
    assert_eq!(
        codes(ca, &bytes, at()),
        vec![(FindingCode::DerProfileMalformed, Scope::DerProfile)]
    );
}

#[test]
fn every_problem_is_listed_not_only_the_first() {
    let ca = rsa_ca();
    let bytes = fixtures::signed_profile(ca, &ProfileSpec::default());
    let tampered = flip(&bytes, b"provkit Test Ad Hoc", 0);
    // In 2029 the profile, the developer certificate (2028) and nothing else have expired.
    let found = codes(ca, &tampered, utc(2029, 1, 1));
    assert_eq!(
        found,
        vec![
            (FindingCode::MessageDigestMismatch, Scope::Profile),
            (FindingCode::ProfileExpired, Scope::Profile),
            (FindingCode::DeveloperCertificateExpired, Scope::Profile),
        ]
    );
}

#[test]
fn death_date_and_days_left() {
    let ca = rsa_ca();
    // The developer certificate ends 2028-01-01, the profile 2027-01-15.
    let p = parse(&fixtures::signed_profile(ca, &ProfileSpec::default())).into_profile();
    assert_eq!(p.death_date(), utc(2027, 1, 15));
    assert_eq!(p.days_left(utc(2027, 1, 5)), 10);
    assert_eq!(p.days_left(utc(2027, 1, 16)), -1);
    let spec = ProfileSpec {
        expiration: utc(2029, 1, 1),
        ..ProfileSpec::default()
    };
    let p = parse(&fixtures::signed_profile(ca, &spec)).into_profile();
    assert_eq!(
        p.death_date(),
        utc(2028, 1, 1),
        "the certificate dies first"
    );
}

#[test]
fn hostile_inputs_get_typed_errors() {
    let ca = rsa_ca();
    let good = fixtures::signed_profile(ca, &ProfileSpec::default());
    let err = |b: &[u8]| ProvisioningProfile::from_der(b).expect_err("must fail");

    assert_eq!(err(&[]), ParseError::Empty);
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        err(&trailing),
        ParseError::Cms(CmsError::TrailingBytes { count: 1, .. })
    ));
    for cut in [1, 2, 10, good.len() / 2, good.len() - 1] {
        assert!(
            matches!(err(&good[..cut]), ParseError::Cms(_)),
            "truncated at {cut}"
        );
    }
    let b64 = {
        use std::fmt::Write;
        let mut s = String::new();
        // Standard base64 of the DER, as some tools store profiles.
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for c in good.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..=c.len() {
                let _ = s.write_char(char::from(table[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        s
    };
    assert_eq!(err(b64.as_bytes()), ParseError::Base64Text);
    assert!(matches!(
        err(b"Salted__\x01\x02"),
        ParseError::Encrypted { .. }
    ));
    assert!(matches!(
        err(b"version https://git-lfs.github.com/spec/v1\n"),
        ParseError::Text { .. }
    ));

    let detached = fixtures::sign_cms(
        b"<plist/>",
        &ca.signer,
        &[],
        &CmsOptions {
            detached: true,
            ..CmsOptions::default()
        },
    );
    assert_eq!(err(&detached), ParseError::DetachedContent);

    let mut d = fixtures::profile_dictionary(&ProfileSpec::default(), &[&ca.developer.cert]);
    d.insert("ProvisionedDevices", Value::String("not a list".into()));
    let wrong = sign_plist(ca, d, false, &CmsOptions::default());
    assert_eq!(
        err(&wrong),
        ParseError::WrongType {
            key: "ProvisionedDevices".into(),
            expected: "array",
            found: "string"
        }
    );
    let mut d = fixtures::profile_dictionary(&ProfileSpec::default(), &[&ca.developer.cert]);
    d.insert(
        "DeveloperCertificates",
        Value::Array(vec![Value::Data(vec![0x30, 0x00])]),
    );
    assert!(matches!(
        err(&sign_plist(ca, d, false, &CmsOptions::default())),
        ParseError::DeveloperCertificate { index: 0, .. }
    ));
    let mut d = fixtures::profile_dictionary(&ProfileSpec::default(), &[&ca.developer.cert]);
    d.remove("UUID");
    assert_eq!(
        err(&sign_plist(ca, d, false, &CmsOptions::default())),
        ParseError::MissingKey("UUID")
    );
    let not_plist = sign_cms(b"hello", &ca.signer, &[], &CmsOptions::default());
    assert!(matches!(err(&not_plist), ParseError::Plist(_)));

    let huge = vec![0x30u8; provkit_profile::MAX_PROFILE_SIZE + 1];
    assert!(matches!(err(&huge), ParseError::TooLarge { .. }));
}

#[test]
fn a_malformed_chain_certificate_is_a_finding_not_a_parse_failure() {
    let ca = rsa_ca();
    let mut bytes = fixtures::signed_profile(ca, &ProfileSpec::default());
    // Break a date inside the intermediate certificate, keeping the framing intact.
    let der = ca.intermediate.cert.der();
    let at = bytes
        .windows(der.len())
        .position(|w| w == der)
        .expect("intermediate in the CMS");
    let date = der
        .windows(6)
        .position(|w| w == b"200101")
        .expect("notBefore");
    bytes[at + date + 4] = b'x';
    let file = ProvisioningProfile::from_der(&bytes).expect("the profile still parses");
    assert!(matches!(
        file.signed_data().certificates(),
        Err(CmsError::Certificate { index: 1, .. })
    ));
    let found = codes(ca, &bytes, at_instant());
    assert!(
        found.contains(&(FindingCode::CertificateMalformed, Scope::Profile)),
        "{found:?}"
    );
}

fn at_instant() -> DateTime<Utc> {
    at()
}

#[test]
fn names_with_non_ascii_text_and_character_references() {
    let ca = rsa_ca();
    let spec = ProfileSpec {
        name: "红中 Café & \"Ünïcode\" <test>".into(),
        ..ProfileSpec::default()
    };
    let p = parse(&fixtures::signed_profile(ca, &spec)).into_profile();
    assert_eq!(p.name.as_deref(), Some(spec.name.as_str()));
    // Character references as Apple writes them, parsed by our XML reader.
    let xml = "<plist version=\"1.0\"><dict><key>Name</key><string>&#32418;&#20013; x</string></dict></plist>";
    let (v, _) = provkit_profile::plist::parse(xml.as_bytes()).expect("parse");
    let name = v
        .as_dictionary()
        .and_then(|d| d.get("Name"))
        .and_then(Value::as_str);
    assert_eq!(name, Some("红中 x"));
}

#[test]
fn days_left_was_computed_two_ways() {
    // Regression: plan said -165 days where expiring said -164 (one floored,
    // one truncated). One rule: whole days, rounded down.
    let death = utc(2026, 6, 1);
    let hours = |h: i64| chrono::TimeDelta::hours(h);
    assert_eq!(provkit_profile::days_left(death, death - hours(36)), 1);
    assert_eq!(provkit_profile::days_left(death, death - hours(12)), 0);
    assert_eq!(provkit_profile::days_left(death, death), 0);
    assert_eq!(provkit_profile::days_left(death, death + hours(12)), -1);
    assert_eq!(
        provkit_profile::days_left(death, death + hours(164 * 24 + 12)),
        -165
    );
    // The JSON spelling of finding codes is the text one.
    for code in [
        FindingCode::ChainBudgetExceeded,
        FindingCode::DerProfileMismatch,
    ] {
        assert_eq!(
            serde_json::to_value(code).expect("json"),
            serde_json::Value::String(code.as_str().into())
        );
    }
}

//! Regression tests for verdict defects: each builds the app that showed
//! the defect and checks the verdict iOS gives.

mod common;

use common::{read_entries, verify_both, wildcard_profile, write_entries};
use provkit_codesign::fixtures::{
    BundleSpec, FileContent, build_ipa, developer_identity, sign_bundle,
};
use provkit_codesign::resign::{ResignOptions, resign_path};
use provkit_codesign::{At, BundleKind, Code, Options, Report};
use provkit_profile::Verifier;
use provkit_profile::fixtures::{TEST_TEAM, TestCa, utc};

fn app(ca: &TestCa) -> BundleSpec {
    let mut app = BundleSpec::new("Demo.app", "com.example.app");
    app.profile = Some(wildcard_profile(ca, "com.example.*"));
    app
}

fn verify(ca: &TestCa, ipa: Vec<u8>) -> Report {
    let verifier = Verifier::new(ca.anchors());
    verify_both(ipa, &Options::new(&verifier, At::SigningTime))
}

fn codes(r: &Report) -> Vec<Code> {
    r.findings.iter().map(|f| f.code).collect()
}

#[test]
fn symlink_escaping_through_the_archive_root_was_accepted() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let mut entries = read_entries(&build_ipa(&app(&ca), TEST_TEAM, &id, |_| false));
    entries.push((
        "Payload/Demo.app/x".into(),
        b"../../../Payload/Demo.app/Assets/icon.png".to_vec(),
        true,
    ));
    let r = verify(&ca, write_entries(&entries));
    assert!(!r.valid);
    let hit = r
        .findings
        .iter()
        .find(|f| f.code == Code::SymlinkEscapesBundle)
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(hit.path.as_deref(), Some("x"));
}

#[test]
fn nested_xctest_was_not_verified_as_a_bundle() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    // A test bundle with a framework inside, as WebDriverAgent ships it.
    let mut xctest = BundleSpec::new("Runner.xctest", "com.example.runner");
    xctest.nested = vec![BundleSpec::new("Lib.framework", "com.example.lib")];
    let mut files = sign_bundle(&xctest, TEST_TEAM, &id);
    // The framework is re-signed afterwards (its own signature valid), so
    // the test bundle's seal no longer matches it.
    let mut lib = BundleSpec::new("Lib.framework", "com.example.lib");
    lib.code_len += 4096;
    let relib = sign_bundle(&lib, TEST_TEAM, &id);
    files.retain(|(p, _)| !p.starts_with("Frameworks/Lib.framework/"));
    files.extend(
        relib
            .into_iter()
            .map(|(p, c)| (format!("Frameworks/Lib.framework/{p}"), c)),
    );
    // The app seals the test bundle file by file, as iOS apps do.
    let mut spec = app(&ca);
    spec.resources.extend(
        files
            .iter()
            .map(|(p, c)| (format!("PlugIns/Runner.xctest/{p}"), c.clone())),
    );
    let r = verify(&ca, build_ipa(&spec, TEST_TEAM, &id, |_| false));
    assert!(!r.valid, "{:#?}", r.findings);
    let kinds: Vec<(&str, BundleKind)> = r
        .bundles
        .iter()
        .map(|b| (b.path.as_str(), b.kind))
        .collect();
    assert!(
        kinds.contains(&("Payload/Demo.app/PlugIns/Runner.xctest", BundleKind::Xctest)),
        "{kinds:?}"
    );
    assert!(
        r.findings.iter().any(|f| f.code == Code::ResourceModified
            && f.bundle == "Payload/Demo.app/PlugIns/Runner.xctest"
            && f.path.as_deref() == Some("Frameworks/Lib.framework/Lib")),
        "{:#?}",
        r.findings
    );
    // The test bundle runs inside its host: no profile of its own is asked for.
    assert!(
        !r.findings.iter().any(|f| f.code == Code::ProfileMissing),
        "{:#?}",
        r.findings
    );

    // Untouched, the same app with its test bundle is valid.
    let mut spec = app(&ca);
    spec.resources.extend(
        sign_bundle(&xctest, TEST_TEAM, &id)
            .into_iter()
            .map(|(p, c)| (format!("PlugIns/Runner.xctest/{p}"), c)),
    );
    let r = verify(&ca, build_ipa(&spec, TEST_TEAM, &id, |_| false));
    assert!(r.valid, "{:#?}", r.findings);
}

#[test]
fn version_1_seal_with_the_legacy_root_link_was_rejected() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    for v1 in [true, false] {
        let mut spec = app(&ca);
        spec.v1_seal = v1;
        let mut entries = read_entries(&build_ipa(&spec, TEST_TEAM, &id, |_| false));
        entries.push((
            "Payload/Demo.app/CodeResources".into(),
            b"_CodeSignature/CodeResources".to_vec(),
            true,
        ));
        let r = verify(&ca, write_entries(&entries));
        assert!(r.valid, "v1 {v1}: {:#?}", r.findings);
        // One spelling in text and JSON (regression: resources-version1).
        let json = serde_json::to_value(&r.findings).expect("json");
        for (f, j) in r.findings.iter().zip(json.as_array().expect("array")) {
            assert_eq!(j["code"], f.code.as_str());
        }
        let want: Vec<Code> = if v1 {
            vec![Code::ResourcesVersion1]
        } else {
            Vec::new()
        };
        assert_eq!(codes(&r), want);
    }
    // A link of that name pointing elsewhere is still a resource to seal.
    let mut entries = read_entries(&build_ipa(&app(&ca), TEST_TEAM, &id, |_| false));
    entries.push((
        "Payload/Demo.app/CodeResources".into(),
        b"Assets/icon.png".to_vec(),
        true,
    ));
    let r = verify(&ca, write_entries(&entries));
    assert_eq!(codes(&r), [Code::ResourceAdded]);
}

#[test]
fn deep_info_plist_aborted_the_verifier() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let mut entries = read_entries(&build_ipa(&app(&ca), TEST_TEAM, &id, |_| false));
    // A 2,000-level binary plist: each array holds the next.
    let levels: u16 = 2000;
    let mut plist = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for k in 0..levels {
        offsets.push(u32::try_from(plist.len()).expect("small"));
        if k + 1 == levels {
            plist.push(0xa0);
        } else {
            plist.push(0xa1);
            plist.extend_from_slice(&(k + 1).to_be_bytes());
        }
    }
    let table = plist.len() as u64;
    for o in offsets {
        plist.extend_from_slice(&o.to_be_bytes());
    }
    plist.extend_from_slice(&[0, 0, 0, 0, 0, 0, 4, 2]);
    plist.extend_from_slice(&u64::from(levels).to_be_bytes());
    plist.extend_from_slice(&0u64.to_be_bytes());
    plist.extend_from_slice(&table.to_be_bytes());
    for (name, bytes, _) in &mut entries {
        if name == "Payload/Demo.app/Info.plist" {
            bytes.clone_from(&plist);
        }
    }
    let r = verify(&ca, write_entries(&entries));
    assert!(!r.valid);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == Code::InfoPlistInvalid)
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert!(f.message.contains("deeper"), "{}", f.message);
}

#[test]
fn extension_without_the_main_binary_flag_is_a_warning_and_resign_sets_it() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let mut spec = app(&ca);
    let mut ext = BundleSpec::new("Share.appex", "com.example.app.share");
    ext.profile = Some(wildcard_profile(&ca, "com.example.*"));
    ext.main_binary = Some(false);
    spec.nested = vec![BundleSpec::new("Lib.framework", "com.example.lib"), ext];
    spec.resources.push((
        "Assets/keep.txt".into(),
        FileContent::Bytes(b"kept".to_vec()),
    ));
    let ipa = build_ipa(&spec, TEST_TEAM, &id, |_| false);
    let r = verify(&ca, ipa.clone());
    assert!(r.valid, "a warning only: {:#?}", r.findings);
    let warn: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.code == Code::ExecSegmentNotMainBinary)
        .collect();
    assert_eq!(warn.len(), 1, "{:#?}", r.findings);
    assert_eq!(warn[0].bundle, "Payload/Demo.app/PlugIns/Share.appex");
    assert_eq!(warn[0].severity, provkit_profile::Severity::Warning);
    assert_eq!(warn[0].class, None, "a warning has no installd class");

    // The re-signer marks every main executable as Apple's signer does.
    let dir = std::env::temp_dir().join(format!("provkit-execseg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("in.ipa");
    let output = dir.join("out.ipa");
    std::fs::write(&input, &ipa).expect("write");
    let profiles = vec![wildcard_profile(&ca, "com.example.*")];
    resign_path(
        &input,
        &output,
        &ResignOptions::new(&id, &profiles, utc(2026, 6, 1)),
    )
    .expect("re-signed");
    let r = verify(&ca, std::fs::read(&output).expect("read"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    for b in &r.bundles {
        let main = b
            .slices
            .iter()
            .all(|s| s.exec_segment_flags.is_some_and(|f| f & 1 == 1));
        assert_eq!(main, b.kind.is_main_binary(), "{} {:?}", b.path, b.slices);
    }
}

/// Defect: a malformed CMS in a code signature was reported as "the CMS
/// signature is malformed" with the DER reader's offset thrown away.
#[test]
fn malformed_code_signature_cms_keeps_the_byte_offset() {
    use provkit_codesign::signature::cms::signed_data;
    use provkit_codesign::{CodesignError, Where};
    use provkit_profile::{CmsError, DerErrorKind};
    // ContentInfo (indefinite length) with id-signedData, then a [0] that
    // claims 5 bytes of which 1 is there.
    let mut body = vec![0x30, 0x80, 0x06, 0x09];
    body.extend_from_slice(provkit_profile::oid::SIGNED_DATA);
    body.extend_from_slice(&[0xa0, 0x05, 0x30]);
    let mut blob = 0xfade_0b01_u32.to_be_bytes().to_vec();
    blob.extend_from_slice(&u32::try_from(8 + body.len()).unwrap().to_be_bytes());
    blob.extend_from_slice(&body);
    let at = Where {
        path: Some("Demo".into()),
        ..Where::default()
    };
    let err = signed_data(&blob, &at).expect_err("malformed");
    let CodesignError::Cms { at: got, source } = &err else {
        panic!("expected CodesignError::Cms, got {err:?}");
    };
    assert_eq!(got, &at);
    let der = match source {
        CmsError::NotContentInfo(d) | CmsError::Malformed(d) => d,
        other => panic!("expected a DER error, got {other:?}"),
    };
    assert_eq!(der.kind, DerErrorKind::Truncated, "{err}");
    assert!(der.offset >= 13, "offset {} inside the [0]", der.offset);
    assert!(
        err.to_string().contains("the CMS signature is malformed"),
        "{err}"
    );
    assert!(err.to_string().contains("file Demo"), "{err}");
}

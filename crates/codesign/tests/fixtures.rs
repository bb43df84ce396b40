//! Apps the project signs itself with a test CA: a fat app with a nested
//! framework and extension verifies; each precondition broken on purpose
//! (entitlement not allowed, device not provisioned, signer not in the
//! profile, nested code altered, bundle id not covered) gives its own finding.

mod common;

use common::{read_entries, verify_both, write_entries};
use provkit_codesign::fixtures::{
    Arch, BundleSpec, FileContent, build_ipa, developer_identity, identity,
};
use provkit_codesign::{
    At, Code, Options, Report, archive::Archive, archive::Limits, verify_archive,
};
use provkit_profile::fixtures::{
    KeySource, ProfileSpec, TEST_TEAM, TestCa, signed_profile, udid, utc,
};
use provkit_profile::{Dictionary, Value, Verifier};

fn entitlements(bundle_id: &str) -> Dictionary {
    let mut e = Dictionary::new();
    e.insert(
        "application-identifier",
        Value::String(format!("{TEST_TEAM}.{bundle_id}")),
    );
    e.insert(
        "com.apple.developer.team-identifier",
        Value::String(TEST_TEAM.into()),
    );
    e.insert("get-task-allow", Value::Boolean(false));
    e.insert(
        "keychain-access-groups",
        Value::Array(vec![Value::String(format!("{TEST_TEAM}.shared"))]),
    );
    e
}

fn profile(ca: &TestCa, bundle_id: &str) -> Vec<u8> {
    signed_profile(
        ca,
        &ProfileSpec {
            bundle_id: bundle_id.into(),
            creation: utc(2026, 1, 1),
            expiration: utc(2027, 1, 1),
            ..ProfileSpec::default()
        },
    )
}

fn app(ca: &TestCa) -> BundleSpec {
    let mut app = BundleSpec::new("Demo.app", "com.example.app");
    app.archs = vec![Arch::Armv7, Arch::Arm64];
    app.code_len = 300 << 10;
    app.entitlements = Some(entitlements("com.example.app"));
    app.profile = Some(profile(ca, "com.example.app"));
    app.resources.push((
        "Assets/link.png".into(),
        FileContent::Symlink("icon.png".into()),
    ));
    let mut ext = BundleSpec::new("Share.appex", "com.example.app.share");
    ext.entitlements = Some(entitlements("com.example.app.share"));
    ext.profile = Some(profile(ca, "com.example.app.*"));
    app.nested = vec![BundleSpec::new("Lib.framework", "com.example.lib"), ext];
    app
}

/// Builds the app signed by `id` for `team` (stored entries) and verifies it
/// at its signing time.
fn signed(ca: &TestCa, spec: &BundleSpec, team: &str, id: &provkit_codesign::Identity) -> Report {
    verify(
        ca,
        build_ipa(spec, team, id, |_| false),
        At::SigningTime,
        None,
    )
}

/// The app, claiming one more entitlement.
fn claiming(ca: &TestCa, key: &str, value: Value) -> BundleSpec {
    let mut spec = app(ca);
    let mut e = entitlements("com.example.app");
    e.insert(key, value);
    spec.entitlements = Some(e);
    spec
}

fn verify(ca: &TestCa, ipa: Vec<u8>, at: At, device: Option<&str>) -> Report {
    let verifier = Verifier::new(ca.anchors());
    let mut options = Options::new(&verifier, at);
    options.device = device;
    verify_both(ipa, &options)
}

#[test]
fn a_signed_app_with_nested_code_verifies() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    for deflate in [false, true] {
        let ipa = build_ipa(&app(&ca), TEST_TEAM, &id, |_| deflate);
        for at in [At::SigningTime, At::Instant(utc(2026, 6, 1))] {
            let report = verify(&ca, ipa.clone(), at, Some(&udid(1)));
            assert!(report.valid, "{:#?}", report.findings);
            assert!(report.findings.is_empty(), "{:#?}", report.findings);
        }
        let report = verify(&ca, ipa.clone(), At::SigningTime, None);
        let kinds: Vec<&str> = report.bundles.iter().map(|b| b.kind.as_str()).collect();
        assert_eq!(kinds, ["app", "appex", "framework"]);
        let main = &report.bundles[0];
        assert_eq!(main.slices.len(), 2);
        assert_eq!(main.slices[1].hash_types, ["sha1", "sha256"]);
        assert_eq!(main.slices[1].versions, ["0x20400", "0x20400"]);
        assert_eq!(
            main.profile.as_ref().map(|p| p.team_id.as_deref()),
            Some(Some(TEST_TEAM))
        );
        // After the profile's expiry, and with Apple's roots, it is refused.
        let late = verify(&ca, ipa.clone(), At::Instant(utc(2027, 2, 1)), None);
        assert!(late.has(Code::ProfileExpired));
        let apple = Verifier::default();
        let archive = Archive::from_bytes(ipa, Limits::default()).expect("zip");
        let r = verify_archive(&archive, &Options::new(&apple, At::SigningTime)).expect("app");
        assert!(r.has(Code::ChainUntrusted) && r.has(Code::ProfileSignatureInvalid));
    }
}

#[test]
fn each_broken_precondition_has_its_own_finding() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);

    // An entitlement the profile does not allow.
    let spec = claiming(
        &ca,
        "com.apple.developer.icloud-services",
        Value::Array(vec![Value::String("CloudKit".into())]),
    );
    let r = signed(&ca, &spec, TEST_TEAM, &id);
    let hits: Vec<_> = r.with(Code::EntitlementNotAllowed).collect();
    assert_eq!(hits.len(), 2, "both blobs: {:#?}", r.findings);
    assert!(
        hits.iter()
            .all(|f| f.item.as_deref() == Some("com.apple.developer.icloud-services"))
    );
    assert!(hits[0].class.is_some_and(|c| c.starts_with("0xe8008016")));
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);

    // A keychain group outside the team's wildcard.
    let spec = claiming(
        &ca,
        "keychain-access-groups",
        Value::Array(vec![Value::String("OTHERTEAM.shared".into())]),
    );
    let r = signed(&ca, &spec, TEST_TEAM, &id);
    assert!(
        r.with(Code::EntitlementNotAllowed)
            .all(|f| f.item.as_deref() == Some("keychain-access-groups"))
    );
    assert!(r.has(Code::EntitlementNotAllowed));

    // A device the profile does not list.
    let ipa = build_ipa(&app(&ca), TEST_TEAM, &id, |_| false);
    let r = verify(&ca, ipa.clone(), At::SigningTime, Some("0000DEAD"));
    assert!(r.has(Code::DeviceNotProvisioned), "{:#?}", r.findings);

    // Signed by a certificate the profile does not list.
    let other = ca.issue_developer(
        "iPhone Distribution: Other",
        TEST_TEAM,
        utc(2028, 1, 1),
        KeySource::RsaSigner,
    );
    let other_id = identity(&other, KeySource::RsaSigner, &[&ca.intermediate.cert]);
    let r = signed(&ca, &app(&ca), TEST_TEAM, &other_id);
    assert!(r.has(Code::SignerNotInProfile), "{:#?}", r.findings);

    // A profile for another bundle id.
    let mut spec = app(&ca);
    spec.profile = Some(profile(&ca, "com.example.other"));
    let r = signed(&ca, &spec, TEST_TEAM, &id);
    assert!(r.has(Code::BundleIdNotCovered), "{:#?}", r.findings);

    // The signature's team differs from the certificate's OU.
    let r = signed(&ca, &app(&ca), "ZZZZZZZZZZ", &id);
    assert!(
        r.has(Code::TeamMismatch) && r.has(Code::ProfileTeamMismatch),
        "{:#?}",
        r.findings
    );

    // Expired signing certificate at an instant after its end.
    let r = verify(&ca, ipa, At::Instant(utc(2028, 6, 1)), None);
    assert!(r.has(Code::SigningCertificateExpired), "{:#?}", r.findings);
}

#[test]
fn altered_nested_code_is_reported_in_both_bundles() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let ipa = build_ipa(&app(&ca), TEST_TEAM, &id, |_| true);
    let mut entries = read_entries(&ipa);
    let name = "Payload/Demo.app/Frameworks/Lib.framework/Lib";
    let lib = entries
        .iter_mut()
        .find(|(n, _, _)| n == name)
        .expect("framework");
    lib.1[10_000] ^= 1;
    let r = verify(&ca, write_entries(&entries), At::SigningTime, None);
    assert!(!r.valid);
    // The framework's own page hashes, and the app's seal over its files.
    assert!(
        r.with(Code::CodePageModified)
            .any(|f| f.bundle == "Payload/Demo.app/Frameworks/Lib.framework"
                && f.arch.as_deref() == Some("arm64")),
        "{:#?}",
        r.findings
    );
    assert!(
        r.with(Code::ResourceModified)
            .any(|f| f.bundle == "Payload/Demo.app"
                && f.path.as_deref() == Some("Frameworks/Lib.framework/Lib")),
        "{:#?}",
        r.findings
    );
    // A corrupt stored entry (CRC) is its own finding.
    let plain = build_ipa(&app(&ca), TEST_TEAM, &id, |_| false);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(plain.clone())).expect("zip");
    let start = zip
        .by_name(name)
        .expect("framework")
        .data_start()
        .expect("offset");
    let mut bytes = plain;
    bytes[usize::try_from(start).expect("usize") + 10_000] ^= 1;
    let r = verify(&ca, bytes, At::SigningTime, None);
    assert!(r.has(Code::ArchiveCorruptEntry), "{:#?}", r.findings);
}

#[test]
fn hash_agility_and_symlink_seals_are_enforced() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let ipa = build_ipa(&app(&ca), TEST_TEAM, &id, |_| false);
    let original = read_entries(&ipa);
    let exe_name = "Payload/Demo.app/Demo";

    // One byte of an unused special slot of the SHA-256 CodeDirectory: no page
    // or slot check sees it, and the CMS digest covers only slot 0; the signed
    // cdhash list must.
    let mut entries = original.clone();
    let exe = &mut entries
        .iter_mut()
        .find(|(n, _, _)| n == exe_name)
        .expect("exe")
        .1;
    let (start, len) = {
        let list = provkit_codesign::slices(exe).expect("Mach-O");
        let s = &list[1];
        let sb = provkit_codesign::SuperBlob::parse(
            s.signature.expect("signed"),
            &provkit_codesign::Where::default(),
        )
        .expect("SuperBlob");
        let cd = sb
            .slot(provkit_codesign::SLOT_ALTERNATE)
            .expect("SHA-256 CodeDirectory");
        (cd.as_ptr() as usize - exe.as_ptr() as usize, cd.len())
    };
    let cd = &exe[start..start + len];
    let hash_offset = u32::from_be_bytes(cd[16..20].try_into().expect("4")) as usize;
    exe[start + hash_offset - 6 * 32] ^= 1;
    let r = verify(&ca, write_entries(&entries), At::SigningTime, None);
    assert!(!r.valid);
    let codes: std::collections::BTreeSet<&str> =
        r.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes.into_iter().collect::<Vec<_>>(),
        ["cdhashes-mismatch"],
        "{:#?}",
        r.findings
    );

    // A sealed symlink pointed elsewhere (still inside the bundle).
    let mut entries = original;
    let link = entries
        .iter_mut()
        .find(|(n, _, _)| n == "Payload/Demo.app/Assets/link.png")
        .expect("link");
    assert!(link.2, "stored as a symlink");
    link.1 = b"../Info.plist".to_vec();
    let r = verify(&ca, write_entries(&entries), At::SigningTime, None);
    assert!(
        r.with(Code::ResourceModified)
            .any(|f| f.path.as_deref() == Some("Assets/link.png")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn an_executable_that_leaves_info_plist_and_resources_unsealed_is_refused() {
    use provkit_codesign::fixtures::{CodeSpec, signed_macho};
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let spec = app(&ca);
    let mut entries = read_entries(&build_ipa(&spec, TEST_TEAM, &id, |_| false));
    // The same executable signed without special slots 1 and 3: both files
    // could then be edited freely.
    let mut bare = CodeSpec::new("com.example.app", TEST_TEAM, utc(2026, 3, 1));
    bare.entitlements = spec.entitlements.clone();
    bare.main_binary = true;
    let exe = entries
        .iter_mut()
        .find(|(n, _, _)| n == "Payload/Demo.app/Demo")
        .expect("exe");
    exe.1 = signed_macho(&spec.archs, spec.code_len, 1, &bare, &id);
    let r = verify(&ca, write_entries(&entries), At::SigningTime, None);
    assert!(!r.valid);
    assert!(r.has(Code::InfoPlistUnsealed), "{:#?}", r.findings);
    assert!(r.has(Code::CodeResourcesUnsealed), "{:#?}", r.findings);
}

/// Writes an `.ipa`'s entries under `dir` (symlinks as symlinks); the
/// unpacked `.app` folder.
fn unpack(ipa: &[u8], dir: &std::path::Path) -> std::path::PathBuf {
    let mut app = None;
    for (name, bytes, link) in read_entries(ipa) {
        let path = dir.join(&name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        if link {
            std::os::unix::fs::symlink(String::from_utf8_lossy(&bytes).as_ref(), &path)
                .expect("symlink");
        } else {
            std::fs::write(&path, bytes).expect("write");
        }
        let root = name.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
        app.get_or_insert(dir.join(root));
    }
    app.expect("an app")
}

#[test]
fn an_unpacked_app_folder_is_checked_by_parts_as_when_read_whole() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let ipa = build_ipa(&app(&ca), TEST_TEAM, &id, |_| false);
    let dir = std::env::temp_dir().join(format!("provkit-unpacked-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = unpack(&ipa, &dir);
    let verifier = Verifier::new(ca.anchors());
    let both = |root: &std::path::Path| {
        let options = Options::new(&verifier, At::SigningTime);
        let whole = verify_archive(
            &Archive::open(root, Limits::default()).expect("folder"),
            &options,
        )
        .expect("an app");
        let mut parts = Limits::default();
        parts.stream_min = 0;
        let streamed =
            verify_archive(&Archive::open(root, parts).expect("folder"), &options).expect("an app");
        assert_eq!(whole, streamed, "read whole and by parts disagree");
        whole
    };
    let clean = both(&root);
    assert!(clean.valid, "{:#?}", clean.findings);
    // A code page of the main executable changed in place.
    let exe = root.join("Demo");
    let mut bytes = std::fs::read(&exe).expect("exe");
    let at = bytes.len() / 3;
    bytes[at] ^= 1;
    std::fs::write(&exe, bytes).expect("write");
    let changed = both(&root);
    assert!(
        changed.has(Code::CodePageModified),
        "{:#?}",
        changed.findings
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

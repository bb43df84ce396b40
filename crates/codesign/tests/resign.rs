//! Re-signing: every valid corpus IPA re-signed with a test identity and a
//! test profile verifies against the test CA, for every slice and nested
//! bundle, and keeps every other file byte for byte; each precondition
//! refuses with its reason; random bundle trees round-trip through the
//! signer and the verifier.

mod common;

use std::path::{Path, PathBuf};

use common::{corpus, read_entries, rows, wildcard_profile};
use proptest::prelude::*;
use provkit_codesign::fixtures::{
    BundleSpec, FileContent, build_ipa, developer_identity, filler, identity,
};
use provkit_codesign::resign::{ResignError, ResignOptions, ResignRefusal, resign_path};
use provkit_codesign::{At, Options, Report, verify_path};
use provkit_profile::Verifier;
use provkit_profile::fixtures::{KeySource, ProfileSpec, TestCa, signed_profile, utc};

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("provkit-resign-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn verify(ca: &TestCa, path: &Path) -> Report {
    let verifier = Verifier::new(ca.anchors());
    verify_path(path, &Options::new(&verifier, At::SigningTime)).expect("an app")
}

fn options<'a>(id: &'a provkit_codesign::Identity, profiles: &'a [Vec<u8>]) -> ResignOptions<'a> {
    ResignOptions::new(id, profiles, utc(2026, 6, 1))
}

#[test]
fn every_valid_corpus_ipa_resigns_and_verifies() {
    let Some(dir) = corpus() else { return };
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let profiles = vec![wildcard_profile(&ca, "*")];
    let work = tmp("corpus");
    let expected = std::fs::read_to_string(dir.join("ipas-expected.tsv")).expect("tsv");
    let mut done = 0;
    for row in rows(&expected).iter().filter(|r| r["verdict"] == "valid") {
        let input = dir.join(&row["file"]);
        let output = work.join(format!("{done}.ipa"));
        let changes = resign_path(&input, &output, &options(&id, &profiles))
            .unwrap_or_else(|e| panic!("{}: {e}", row["file"]));
        let report = verify(&ca, &output);
        assert!(report.valid, "{}: {:#?}", row["file"], report.findings);
        // Against Apple's roots it is, rightly, untrusted.
        let apple = verify_path(
            &output,
            &Options::new(&Verifier::default(), At::SigningTime),
        )
        .expect("app");
        assert!(!apple.valid);
        // What must not change did not: bundle ids, versions, every other file.
        let before =
            verify_path(&input, &Options::new(&Verifier::default(), At::SigningTime)).expect("app");
        let ids = |r: &Report| -> Vec<(Option<String>, Option<String>, String)> {
            r.bundles
                .iter()
                .map(|b| (b.bundle_id.clone(), b.version.clone(), b.path.clone()))
                .collect()
        };
        assert_eq!(ids(&before), ids(&report), "{}", row["file"]);
        let old = read_entries(&std::fs::read(&input).expect("in"));
        let new = read_entries(&std::fs::read(&output).expect("out"));
        for (name, bytes, _) in &old {
            if changes.changed(name) {
                continue;
            }
            let kept = new.iter().find(|(n, _, _)| n == name).map(|(_, b, _)| b);
            assert_eq!(kept, Some(bytes), "{}: {name} changed", row["file"]);
        }
        for path in changes.changed_paths() {
            assert!(
                path.ends_with("embedded.mobileprovision")
                    || path.ends_with("_CodeSignature/CodeResources")
                    || report.bundles.iter().any(|b| b
                        .executable
                        .as_ref()
                        .is_some_and(|e| path.ends_with(e.as_str()))),
                "{}: unexpected change {path}",
                row["file"]
            );
        }
        // Every slice carries the new signature.
        for b in &report.bundles {
            for s in &b.slices {
                assert_eq!(s.hash_types, ["sha1", "sha256"], "{} {}", b.path, s.arch);
                assert_eq!(s.team_id.as_deref(), Some("PROVKIT01"));
            }
        }
        done += 1;
    }
    assert_eq!(done, 7);
}

/// Writes `entries` as `in.ipa` in `work` and re-signs it to `out.ipa` with
/// a wildcard profile, which must fail: the error and the output's path.
fn refused(
    ca: &TestCa,
    id: &provkit_codesign::Identity,
    work: &Path,
    entries: &common::Entries,
) -> (ResignError, PathBuf) {
    let input = work.join("in.ipa");
    std::fs::write(&input, common::write_entries(entries)).expect("write");
    let out = work.join("out.ipa");
    let profiles = vec![wildcard_profile(ca, "*")];
    let e = resign_path(&input, &out, &options(id, &profiles)).expect_err("refused");
    (e, out)
}

#[test]
fn preconditions_refuse_with_reasons() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let work = tmp("refuse");
    let input = work.join("in.ipa");
    let mut app = BundleSpec::new("Demo.app", "com.example.app");
    app.profile = Some(wildcard_profile(&ca, "com.example.app"));
    app.nested = vec![BundleSpec::new("Share.appex", "com.example.app.share")];
    std::fs::write(&input, build_ipa(&app, "PROVKIT01", &id, |_| false)).expect("write");
    let out = work.join("out.ipa");

    // A profile that covers only the app, not the extension.
    let only_app = vec![wildcard_profile(&ca, "com.example.app")];
    let e = resign_path(&input, &out, &options(&id, &only_app)).expect_err("refused");
    assert!(
        matches!(&e, ResignError::Refused(r) if r.iter().any(|m| matches!(m,
            ResignRefusal::NoProfileCovers { bundle_id, .. } if bundle_id == "com.example.app.share"))),
        "{e}"
    );
    assert!(!out.exists(), "nothing written");

    // A certificate the profile does not list.
    let other = ca.issue_developer(
        "iPhone Distribution: Other",
        "PROVKIT01",
        utc(2028, 1, 1),
        KeySource::RsaSigner,
    );
    let other_id = identity(&other, KeySource::RsaSigner, &[&ca.intermediate.cert]);
    let all = vec![wildcard_profile(&ca, "*")];
    let e = resign_path(&input, &out, &options(&other_id, &all)).expect_err("refused");
    assert!(e.to_string().contains("DeveloperCertificates"), "{e}");

    // A profile of another team.
    let foreign = signed_profile(
        &ca,
        &ProfileSpec {
            team: "OTHERTEAM1".into(),
            bundle_id: "*".into(),
            ..ProfileSpec::default()
        },
    );
    let e = resign_path(&input, &out, &options(&id, &[foreign])).expect_err("refused");
    assert!(e.to_string().contains("belongs to team OTHERTEAM1"), "{e}");
    assert!(!out.exists());

    // With both profiles and a new bundle id, it signs and verifies.
    let mut opts = options(&id, &all);
    opts.bundle_id = Some("com.example.renamed".into());
    resign_path(&input, &out, &opts).expect("re-signed");
    let report = verify(&ca, &out);
    assert!(report.valid, "{:#?}", report.findings);
    let ids: Vec<_> = report
        .bundles
        .iter()
        .filter_map(|b| b.bundle_id.clone())
        .collect();
    assert_eq!(ids, ["com.example.renamed", "com.example.renamed.share"]);
}

fn arb_tree() -> impl Strategy<Value = BundleSpec> {
    let file = ("[a-z]{1,8}(/[a-z]{1,6}){0,2}\\.(png|js|txt)", 0usize..5000);
    (prop::collection::vec(file, 0..12), 0usize..3, any::<bool>()).prop_map(
        |(files, nested, fat)| {
            let mut app = BundleSpec::new("Prop.app", "com.example.prop");
            app.code_len = 5000;
            if fat {
                app.archs.push(provkit_codesign::fixtures::Arch::Armv7);
            }
            let mut seen = std::collections::BTreeSet::new();
            app.resources = files
                .into_iter()
                .filter(|(p, _)| {
                    seen.insert(p.clone())
                        && !seen.iter().any(|q| {
                            q != p
                                && (q.starts_with(&format!("{p}/"))
                                    || p.starts_with(&format!("{q}/")))
                        })
                })
                .map(|(p, n)| (p, FileContent::Bytes(filler(n, n as u64))))
                .collect();
            app.nested = (0..nested)
                .map(|i| {
                    let mut f = BundleSpec::new(
                        &format!("Lib{i}.framework"),
                        &format!("com.example.lib{i}"),
                    );
                    f.code_len = 3000;
                    f
                })
                .collect();
            app
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_round_trips(tree in arb_tree()) {
        let ca = TestCa::rsa();
        let id = developer_identity(&ca);
        let mut tree = tree;
        tree.profile = Some(wildcard_profile(&ca, "com.example.prop"));
        let work = tmp("prop");
        let first = work.join("signed.ipa");
        std::fs::write(&first, build_ipa(&tree, "PROVKIT01", &id, |p| p.ends_with(".js"))).expect("write");
        let report = verify(&ca, &first);
        prop_assert!(report.valid, "{:#?}", report.findings);
        // And once more through the re-signer.
        let second = work.join("resigned.ipa");
        let profiles = vec![wildcard_profile(&ca, "*")];
        resign_path(&first, &second, &options(&id, &profiles)).expect("re-signed");
        let report = verify(&ca, &second);
        prop_assert!(report.valid, "{:#?}", report.findings);
    }
}

#[test]
fn linkedit_grows_when_the_new_signature_does_not_fit() {
    use provkit_codesign::CodeSpec;
    use provkit_codesign::fixtures::{Arch, signed_macho};
    use provkit_codesign::resign::resign_macho;
    use provkit_profile::{Dictionary, Value};
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let small = CodeSpec::new("com.example.small", "PROVKIT01", utc(2026, 3, 1));
    let before = signed_macho(&[Arch::Armv7, Arch::Arm64], 100_000, 3, &small, &id);
    let mut big = Dictionary::new();
    for i in 0..300 {
        big.insert(
            format!("com.example.entitlement-{i:03}"),
            Value::Boolean(true),
        );
    }
    let mut large = small.clone();
    large.entitlements = Some(big);
    let after = resign_macho(&before, &large, &id, "exe").expect("re-signed");
    let sizes = |b: &[u8]| -> Vec<usize> {
        provkit_codesign::slices(b)
            .expect("Mach-O")
            .iter()
            .map(|s| s.signature.map_or(0, <[u8]>::len))
            .collect()
    };
    let (old, new) = (sizes(&before), sizes(&after));
    assert!(
        new.iter().zip(&old).all(|(n, o)| n > o),
        "grew: {old:?} -> {new:?}"
    );
    let verifier = Verifier::new(ca.anchors());
    let (findings, slices) =
        provkit_codesign::verify_macho(&after, "exe", &verifier, At::SigningTime);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(slices.len(), 2);
}

#[test]
fn an_archive_with_entries_set_aside_is_refused() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let work = tmp("hostile");
    let mut entries = read_entries(&build_ipa(
        &BundleSpec::new("Demo.app", "com.example.app"),
        "PROVKIT01",
        &id,
        |_| false,
    ));
    entries.push((
        "Payload/Demo.app/../../evil.txt".into(),
        b"x".to_vec(),
        false,
    ));
    let (e, out) = refused(&ca, &id, &work, &entries);
    assert!(e.to_string().contains("evil.txt"), "{e}");
    assert!(!out.exists());
}

#[test]
fn hostile_mach_o_headers_give_errors_not_panics() {
    use provkit_codesign::CodeSpec;
    use provkit_codesign::fixtures::{Arch, signed_macho};
    use provkit_codesign::resign::resign_macho;
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let spec = CodeSpec::new("com.example.h", "PROVKIT01", utc(2026, 3, 1));
    let good = signed_macho(&[Arch::Arm64], 2000, 9, &spec, &id);
    // Every byte of the header and load commands, set to a few hostile
    // values: each result is either a Mach-O that still parses or the typed
    // Mach-O error naming the file.
    let mut refused = 0;
    for at in 0..200 {
        for v in [0x00, 0x08, 0x7f, 0xff] {
            let mut bad = good.clone();
            bad[at] = v;
            match resign_macho(&bad, &spec, &id, "exe") {
                Ok(out) => assert!(
                    provkit_codesign::slices(&out).is_ok(),
                    "byte {at} = {v:#x}: the output does not parse"
                ),
                Err(ResignError::Macho { path, reason }) => {
                    assert_eq!(path, "exe");
                    assert!(!reason.is_empty());
                    refused += 1;
                }
                Err(other) => panic!("byte {at} = {v:#x}: {other}"),
            }
        }
    }
    // The header fields matter: many of these rewrites must be refused.
    assert!(refused > 100, "only {refused} refusals");
}

/// Before, every re-signed executable stayed in memory until the archive
/// was written, so an app with many frameworks needed them all at once.
/// Now `resign_path` writes each as soon as it is signed: what it returns
/// holds no Mach-O, and the archive equals the one written from memory.
#[test]
fn resigning_held_every_executable_until_the_archive_was_written() {
    use provkit_codesign::archive::{Archive, Limits};
    use provkit_codesign::resign::{resign, write_ipa};
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let mut app = BundleSpec::new("Many.app", "com.example.many");
    app.code_len = 40_000;
    app.profile = Some(wildcard_profile(&ca, "com.example.many"));
    app.resources = vec![("a.txt".into(), FileContent::Bytes(filler(3000, 1)))];
    app.nested = (0..3)
        .map(|i| {
            let mut f = BundleSpec::new(&format!("F{i}.framework"), &format!("com.example.f{i}"));
            f.code_len = 20_000 + i * 1000;
            f
        })
        .collect();
    let work = tmp("streamed");
    let input = work.join("in.ipa");
    std::fs::write(
        &input,
        build_ipa(&app, "PROVKIT01", &id, |p| p.ends_with(".txt")),
    )
    .expect("write");
    let profiles = vec![wildcard_profile(&ca, "*")];

    let streamed_out = work.join("streamed.ipa");
    let changes = resign_path(&input, &streamed_out, &options(&id, &profiles)).expect("re-signed");
    let macho = |b: &[u8]| {
        b.len() >= 4 && matches!(&b[..4], [0xca, 0xfe, 0xba, 0xbe] | [0xcf, 0xfa, 0xed, 0xfe])
    };
    assert!(
        changes.files.values().all(|b| !macho(b)),
        "a Mach-O file was kept in memory: {:?}",
        changes.files.keys().collect::<Vec<_>>()
    );
    let streamed: Vec<&str> = changes.streamed.keys().map(String::as_str).collect();
    assert_eq!(
        streamed,
        [
            "Payload/Many.app/Frameworks/F0.framework/F0",
            "Payload/Many.app/Frameworks/F1.framework/F1",
            "Payload/Many.app/Frameworks/F2.framework/F2",
            "Payload/Many.app/Many",
        ]
    );
    assert!(changes.changed("Payload/Many.app/Many"));
    assert!(changes.changed("Payload/Many.app/_CodeSignature/CodeResources"));
    assert!(!changes.changed("Payload/Many.app/a.txt"));
    let report = verify(&ca, &streamed_out);
    assert!(report.valid, "{:#?}", report.findings);

    // The same app re-signed in memory and written afterwards.
    let archive = Archive::open(&input, Limits::default()).expect("archive");
    let held = resign(&archive, &options(&id, &profiles)).expect("re-signed");
    let held_out = work.join("held.ipa");
    write_ipa(&input, &held, &held_out).expect("written");
    let sorted = |p: &Path| {
        let mut e = read_entries(&std::fs::read(p).expect("read"));
        e.sort();
        e
    };
    let (a, b) = (sorted(&streamed_out), sorted(&held_out));
    assert_eq!(
        a.iter().map(|e| &e.0).collect::<Vec<_>>(),
        b.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(x == y, "{} differs", x.0);
    }
    for (path, len) in &changes.streamed {
        let entry = a.iter().find(|e| &e.0 == path).expect("written");
        assert_eq!(entry.1.len() as u64, *len, "{path}");
        assert_eq!(held.files.get(path), Some(&entry.1), "{path}");
    }
}

/// Re-signed executables are written as soon as they are signed, and the
/// output is synced by a helper thread while it grows: a re-sign that fails
/// after that (here the app's own executable, signed after its framework's,
/// is cut short) must leave neither the output nor its temporary file.
#[test]
fn a_resign_failing_after_output_began_leaves_nothing_behind() {
    let ca = TestCa::rsa();
    let id = developer_identity(&ca);
    let work = tmp("midway");
    let mut app = BundleSpec::new("Demo.app", "com.example.app");
    app.nested = vec![BundleSpec::new("Engine.framework", "com.example.engine")];
    let mut entries = read_entries(&build_ipa(&app, "PROVKIT01", &id, |_| false));
    let exe = entries
        .iter_mut()
        .find(|(name, _, _)| name == "Payload/Demo.app/Demo")
        .expect("the app's executable");
    // The Mach-O header stays; the load commands it announces are gone.
    exe.1.truncate(40);
    let (e, _) = refused(&ca, &id, &work, &entries);
    assert!(e.to_string().contains("Demo"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&work)
        .expect("list")
        .map(|x| x.expect("entry").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("in.ipa")], "{e}");
    let _ = std::fs::remove_dir_all(&work);
}

//! The mutation suite: every valid corpus IPA is rewritten with one change
//! at a time, and each change must be rejected with its own finding while
//! the untouched rewrite stays valid. Runs when `PROVKIT_CORPUS` is set.

mod common;

use common::{Entries, corpus, read_entries, rows, verify_both, write_entries};
use provkit_codesign::{
    At, Code, Options, Report, SLOT_DER_ENTITLEMENTS, SLOT_ENTITLEMENTS, SLOT_SIGNATURE, SuperBlob,
    Where, slices,
};
use provkit_profile::Verifier;

fn verify(bytes: Vec<u8>, verifier: &Verifier) -> Report {
    verify_both(bytes, &Options::new(verifier, At::SigningTime))
}

fn entry<'a>(entries: &'a mut Entries, name: &str) -> &'a mut Vec<u8> {
    &mut entries
        .iter_mut()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("{name} in the archive"))
        .1
}

/// Offset of `inner` within `outer` (both borrowed from one buffer).
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

struct Case<'a> {
    file: &'a str,
    app: String,
    exe: String,
    original: Entries,
    verifier: &'a Verifier,
}

impl Case<'_> {
    /// Applies `change`, verifies, and requires a finding with `code` (and
    /// `path` / `arch` when given).
    fn expect(
        &self,
        what: &str,
        code: Code,
        path: Option<&str>,
        arch: Option<&str>,
        change: impl FnOnce(&mut Entries),
    ) {
        let mut entries = self.original.clone();
        change(&mut entries);
        let report = verify(write_entries(&entries), self.verifier);
        assert!(!report.valid, "{}: {what}: still valid", self.file);
        let hit = report.with(code).any(|f| {
            path.is_none_or(|p| f.path.as_deref() == Some(p))
                && arch.is_none_or(|a| f.arch.as_deref() == Some(a))
        });
        assert!(
            hit,
            "{}: {what}: no {code} (path {path:?}, arch {arch:?}) in {:#?}",
            self.file, report.findings
        );
    }

    fn exe_name(&self) -> String {
        format!("{}/{}", self.app, self.exe)
    }
}

#[test]
fn every_mutation_of_every_valid_corpus_ipa_is_caught() {
    let Some(dir) = corpus() else { return };
    let expected = std::fs::read_to_string(dir.join("ipas-expected.tsv")).expect("tsv");
    let facts = std::fs::read_to_string(dir.join("ipas.tsv")).expect("tsv");
    let facts = rows(&facts);
    let verifier = Verifier::default();
    let mut cases = 0;
    for row in rows(&expected).iter().filter(|r| r["verdict"] == "valid") {
        let fact = facts
            .iter()
            .find(|f| f["file"] == row["file"])
            .expect("facts");
        let bytes = std::fs::read(dir.join(&row["file"])).expect("ipa");
        let case = Case {
            file: &row["file"],
            app: fact["app"].clone(),
            exe: fact["executable"].clone(),
            original: read_entries(&bytes),
            verifier: &verifier,
        };
        // Another team's profile (another corpus app's), for the swap.
        let other = facts
            .iter()
            .find(|f| !f["cd_team"].is_empty() && f["cd_team"] != fact["cd_team"])
            .expect("another team");
        let foreign = std::fs::read(dir.join(&other["embedded_profile"])).expect("profile");
        mutate(&case, &foreign);
        cases += 1;
    }
    assert_eq!(cases, 7);
}

fn mutate(case: &Case<'_>, foreign: &[u8]) {
    let app = case.app.clone();
    // The untouched rewrite stays valid.
    let report = verify(write_entries(&case.original), case.verifier);
    assert!(
        report.valid,
        "{}: untouched rewrite: {:#?}",
        case.file, report.findings
    );

    // A sealed resource: the first sealed plain file that is present.
    let sealed = case
        .original
        .iter()
        .map(|(n, _, _)| n.clone())
        .find(|n| {
            let rel = n.strip_prefix(&format!("{app}/")).unwrap_or("");
            !rel.is_empty()
                && !rel.contains("_CodeSignature")
                && rel != case.exe
                && rel != "Info.plist"
                && rel != "PkgInfo"
                && !rel.contains(".dylib")
                && !rel.ends_with(".DS_Store")
                && !rel.contains(".lproj/")
                && case
                    .original
                    .iter()
                    .any(|(m, b, _)| m == n && !b.is_empty())
        })
        .expect("a sealed resource");
    let sealed_rel = sealed[app.len() + 1..].to_owned();
    case.expect(
        "resource byte",
        Code::ResourceModified,
        Some(&sealed_rel),
        None,
        |e| {
            entry(e, &sealed)[0] ^= 1;
        },
    );
    case.expect(
        "resource removed",
        Code::ResourceMissing,
        Some(&sealed_rel),
        None,
        |e| {
            e.retain(|(n, _, _)| *n != sealed);
        },
    );
    case.expect(
        "file added at root",
        Code::ResourceAdded,
        Some("provkit-added.txt"),
        None,
        |e| {
            e.push((format!("{app}/provkit-added.txt"), b"x".to_vec(), false));
        },
    );
    case.expect(
        "file added in a folder",
        Code::ResourceAdded,
        Some("sub/added.txt"),
        None,
        |e| {
            e.push((format!("{app}/sub/added.txt"), b"x".to_vec(), false));
        },
    );
    case.expect("Info.plist", Code::InfoPlistModified, None, None, |e| {
        let info = entry(e, &format!("{app}/Info.plist"));
        let (v, _) = provkit_profile::plist::parse(info).expect("plist");
        let provkit_profile::Value::Dictionary(mut d) = v else {
            panic!("dict")
        };
        d.insert(
            "ProvkitMutation",
            provkit_profile::Value::String("1".into()),
        );
        *info =
            provkit_profile::plist::to_xml(&provkit_profile::Value::Dictionary(d)).expect("xml");
    });
    case.expect(
        "CodeResources",
        Code::CodeResourcesModified,
        None,
        None,
        |e| {
            let cr = entry(e, &format!("{app}/_CodeSignature/CodeResources"));
            let at = cr.iter().position(|b| *b == b'>').expect("xml") + 1;
            cr.insert(at, b'\n');
        },
    );
    case.expect(
        "symlink out of the bundle",
        Code::SymlinkEscapesBundle,
        None,
        None,
        |e| {
            e.push((
                format!("{app}/escape"),
                b"../../../etc/passwd".to_vec(),
                true,
            ));
        },
    );
    case.expect("../ entry", Code::ArchivePathTraversal, None, None, |e| {
        e.push((format!("{app}/../../evil.txt"), b"x".to_vec(), false));
    });
    case.expect(
        "profile of another team",
        Code::SignerNotInProfile,
        Some("embedded.mobileprovision"),
        None,
        |e| {
            *entry(e, &format!("{app}/embedded.mobileprovision")) = foreign.to_vec();
        },
    );

    // Inside the executable: a code page of each slice, each entitlements
    // blob, the CMS.
    let exe = case.exe_name();
    let bytes = case
        .original
        .iter()
        .find(|(n, _, _)| *n == exe)
        .expect("exe")
        .1
        .clone();
    let list = slices(&bytes).expect("Mach-O");
    for s in &list {
        let at = offset_in(&bytes, s.data) + s.signature_offset / 2;
        case.expect(
            "code page",
            Code::CodePageModified,
            None,
            Some(s.arch),
            |e| {
                entry(e, &exe)[at] ^= 1;
            },
        );
    }
    let s = &list[0];
    let sb = SuperBlob::parse(s.signature.expect("signed"), &Where::default()).expect("SuperBlob");
    for (slot, code) in [
        (SLOT_ENTITLEMENTS, Code::EntitlementsModified),
        (SLOT_DER_ENTITLEMENTS, Code::DerEntitlementsModified),
    ] {
        if let Some(blob) = sb.slot(slot) {
            let at = offset_in(&bytes, blob) + 8 + (blob.len() - 8) / 2;
            case.expect("entitlements blob", code, None, Some(s.arch), |e| {
                entry(e, &exe)[at] ^= 1;
            });
        }
    }
    let cms = sb.slot(SLOT_SIGNATURE).expect("CMS");
    // The RSA-2048 signature value: OCTET STRING of 256 bytes, last in the SignerInfo.
    let marker = cms
        .windows(4)
        .rposition(|w| w == [0x04, 0x82, 0x01, 0x00])
        .expect("an RSA-2048 signature value");
    let at = offset_in(&bytes, cms) + marker + 4 + 128;
    case.expect("CMS signature", Code::CmsInvalid, None, Some(s.arch), |e| {
        entry(e, &exe)[at] ^= 1;
    });
}

//! Against the corpus IPAs: every main executable's slices, CodeDirectory
//! hash types, team id and page hashes agree with the independent check in
//! `ipas.tsv`. Runs when `PROVKIT_CORPUS` names the corpus.

mod common;
use common::rows;

use std::io::Read;

use provkit_codesign::{
    CodeDirectory, SLOT_CODE_RESOURCES, SLOT_INFO_PLIST, SpecialSlot, SuperBlob, Where, slices,
};

#[test]
fn executables_match_the_independent_check() {
    let Some(dir) = provkit_profile::fixtures::corpus_dir() else {
        return;
    };
    let table = std::fs::read_to_string(dir.join("ipas.tsv")).expect("ipas.tsv");
    let mut checked = 0;
    let verifier = provkit_profile::Verifier::default();
    for r in rows(&table) {
        if r["exe_codesig"].is_empty() {
            continue;
        }
        let file = std::fs::File::open(dir.join(&r["file"])).expect("ipa");
        let mut zip = zip::ZipArchive::new(file).expect("zip");
        let name = format!("{}/{}", r["app"], r["executable"]);
        let mut bytes = Vec::new();
        zip.by_name(&name)
            .expect("executable in the archive")
            .read_to_end(&mut bytes)
            .expect("read");
        let mut read = |path: String| -> Option<Vec<u8>> {
            let mut f = zip.by_name(&path).ok()?;
            let mut b = Vec::new();
            f.read_to_end(&mut b).ok()?;
            Some(b)
        };
        let info = read(format!("{}/Info.plist", r["app"]));
        let resources = read(format!("{}/_CodeSignature/CodeResources", r["app"]));
        let word = |s: SpecialSlot| match s {
            SpecialSlot::Ok => "ok",
            SpecialSlot::Absent => "absent",
            _ => "BAD",
        };
        let (mut info_slots, mut resource_slots) = (Vec::new(), Vec::new());
        let mut archs = Vec::new();
        let mut types = Vec::new();
        let mut pages = Vec::new();
        let mut team = None;
        for slice in slices(&bytes).expect("Mach-O") {
            let at = Where {
                path: Some(name.clone()),
                slice: Some(slice.offset),
                ..Where::default()
            };
            archs.push(slice.arch);
            let sig = SuperBlob::parse(slice.signature.expect("signed"), &at).expect("SuperBlob");
            let mut t = Vec::new();
            let mut p = Vec::new();
            let (mut si, mut sr) = (Vec::new(), Vec::new());
            for (_, blob) in sig.code_directories() {
                let cd = CodeDirectory::parse(blob, &at).expect("CodeDirectory");
                t.push(cd.hash_type.name());
                si.push(word(cd.check_special(SLOT_INFO_PLIST, info.as_deref())));
                sr.push(word(
                    cd.check_special(SLOT_CODE_RESOURCES, resources.as_deref()),
                ));
                p.push(
                    if cd.check_pages(slice.data, &at).expect("pages").is_empty() {
                        "ok"
                    } else {
                        "BAD"
                    },
                );
                assert_eq!(
                    cd.code_limit, slice.signature_offset as u64,
                    "{name}: code limit is the signature offset"
                );
                if team.is_none() {
                    team = Some(cd.team_id.clone().unwrap_or_default());
                }
            }
            // The CMS over the slot-0 CodeDirectory verifies at its own signing
            // time and chains to an Apple root (non-canonical attribute order included).
            let cms = sig
                .slot(provkit_codesign::SLOT_SIGNATURE)
                .expect("CMS slot");
            let sd = provkit_codesign::signature::cms::signed_data(cms, &at).expect("CMS");
            let cd0 = sig
                .slot(provkit_codesign::SLOT_CODE_DIRECTORY)
                .expect("slot 0");
            let (findings, path, when) = provkit_codesign::signature::cms::verify(
                &verifier,
                &sd,
                cd0,
                provkit_codesign::At::SigningTime,
            );
            assert!(when.is_some(), "{name}: signingTime");
            let errors: Vec<_> = findings
                .iter()
                .filter(|f| f.severity == provkit_profile::Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{name} {}: {errors:?}", slice.arch);
            assert!(
                path.last().is_some_and(|p| p.anchor),
                "{name}: path to an Apple root {path:?}"
            );
            // One changed byte of the CodeDirectory breaks the message digest.
            let mut tampered = cd0.to_vec();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            let (findings, _, _) = provkit_codesign::signature::cms::verify(
                &verifier,
                &sd,
                &tampered,
                provkit_codesign::At::SigningTime,
            );
            assert!(
                findings
                    .iter()
                    .any(|f| f.code == provkit_profile::FindingCode::MessageDigestMismatch),
                "{name}"
            );
            types.push(t.join("+"));
            info_slots.push(si.join("+"));
            resource_slots.push(sr.join("+"));
            pages.push(p.join("+"));
        }
        assert_eq!(archs.join(","), r["archs"], "{}", r["file"]);
        assert_eq!(types.join("|"), r["cd_hash_types"], "{}", r["file"]);
        assert_eq!(pages.join("|"), r["code_pages_ok"], "{}", r["file"]);
        assert_eq!(team.unwrap_or_default(), r["cd_team"], "{}", r["file"]);
        assert_eq!(
            info_slots.join("|"),
            r["info_plist_slot"],
            "{}: Info.plist slot",
            r["file"]
        );
        assert_eq!(
            resource_slots.join("|"),
            r["coderesources_slot"],
            "{}: CodeResources slot",
            r["file"]
        );
        checked += 1;
    }
    assert_eq!(checked, 11, "every IPA with a signed executable");
}

#[test]
fn hostile_bytes_are_typed_errors() {
    assert!(slices(b"").is_err());
    assert!(
        slices(b"\xca\xfe\xba\xbe\x00\x00\x00\x40").is_err(),
        "too many fat slices"
    );
    assert!(slices(b"\xca\xfe\xba\xbe\x00\x00\x00\x01\x00\x00\x00\x0c\x00\x00\x00\x09\xff\xff\xff\xf0\x00\x00\x10\x00\x00\x00\x00\x0e").is_err());
    let at = Where::default();
    assert!(
        SuperBlob::parse(b"\xfa\xde\x0c\xc0\x00\x00\x00\x0c\x00\x00\x00\x01", &at).is_err(),
        "index beyond the blob"
    );
    assert!(CodeDirectory::parse(b"\xfa\xde\x0c\x02\x00\x00\x00\x08", &at).is_err());
}

//! Every corpus IPA gets the verdict `ipas-expected.tsv` states, for the
//! stated reason, at each signature's own signing time; the facts in
//! `ipas.tsv` (bundle id, archs, hash types, team, embedded profile, seal
//! size) match. Runs when `PROVKIT_CORPUS` names the corpus.

mod common;
use common::{corpus, rows};

use std::collections::BTreeSet;
use std::path::Path;

use provkit_codesign::{At, Code, Options, Report, VerifyError, verify_path};
use provkit_profile::{ProvisioningProfile, Verifier};

fn verify(path: &Path, verifier: &Verifier) -> Result<Report, VerifyError> {
    verify_path(path, &Options::new(verifier, At::SigningTime))
}

fn paths(report: &Report, code: Code) -> BTreeSet<String> {
    report
        .with(code)
        .map(|f| f.path.clone().unwrap_or_default())
        .collect()
}

/// Checks one stated reason (a clause of the `why` column) against a report.
fn check_reason(file: &str, clause: &str, report: &Report) {
    let clause = clause.trim();
    if let Some(rest) = clause.strip_prefix("sealed resource ") {
        let path = rest.strip_suffix(" is missing").expect("'... is missing'");
        assert!(
            paths(report, Code::ResourceMissing).contains(path),
            "{file}: {clause}"
        );
    } else if clause == "Info.plist does not match its special-slot digest" {
        assert!(report.has(Code::InfoPlistModified), "{file}: {clause}");
    } else if clause == "unsealed .DS_Store files added" {
        let added = paths(report, Code::ResourceAdded);
        assert!(!added.is_empty(), "{file}: {clause}");
        assert!(
            added.iter().all(|p| p.ends_with(".DS_Store")),
            "{file}: {added:?}"
        );
    } else if let Some(list) = clause.strip_prefix("unsealed files added: ") {
        let want: BTreeSet<String> = list.split(", ").map(str::to_owned).collect();
        assert_eq!(paths(report, Code::ResourceAdded), want, "{file}");
    } else if let Some(n) = clause.strip_suffix(" sealed files are missing") {
        let n: usize = n.parse().expect("a count");
        assert_eq!(report.with(Code::ResourceMissing).count(), n, "{file}");
    } else {
        panic!("{file}: no check for the stated reason {clause:?}");
    }
}

#[test]
fn every_corpus_ipa_gets_its_stated_verdict() {
    let Some(dir) = corpus() else { return };
    let expected =
        std::fs::read_to_string(dir.join("ipas-expected.tsv")).expect("ipas-expected.tsv");
    let verifier = Verifier::default();
    let mut checked = 0;
    for row in rows(&expected) {
        let file = &row["file"];
        let outcome = verify(&dir.join(file), &verifier);
        let why = row["why"].as_str();
        if why.starts_with("not an app") {
            assert!(
                matches!(outcome, Err(VerifyError::NotAnApp(_))),
                "{file}: {outcome:?}"
            );
            checked += 1;
            continue;
        }
        let report = outcome.unwrap_or_else(|e| panic!("{file}: {e}"));
        let errors: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == provkit_profile::Severity::Error)
            .collect();
        match row["verdict"].as_str() {
            "valid" => assert!(report.valid && errors.is_empty(), "{file}: {errors:#?}"),
            "invalid" => {
                assert!(!report.valid, "{file}");
                for clause in why.split(';') {
                    check_reason(file, clause, &report);
                }
            }
            v => panic!("{file}: verdict {v}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 12);
}

#[test]
fn corpus_facts_match_the_independent_decoder() {
    let Some(dir) = corpus() else { return };
    let table = std::fs::read_to_string(dir.join("ipas.tsv")).expect("ipas.tsv");
    let verifier = Verifier::default();
    let mut checked = 0;
    for row in rows(&table) {
        if row["app"].is_empty() {
            continue;
        }
        let file = &row["file"];
        let report = verify(&dir.join(file), &verifier).unwrap_or_else(|e| panic!("{file}: {e}"));
        let app = &report.bundles[0];
        assert_eq!(app.path, row["app"], "{file}");
        assert_eq!(app.kind, provkit_codesign::BundleKind::App);
        assert_eq!(
            app.bundle_id.as_deref(),
            Some(row["bundle_id"].as_str()),
            "{file}"
        );
        assert_eq!(
            app.executable.as_deref(),
            Some(row["executable"].as_str()),
            "{file}"
        );
        let archs: Vec<&str> = app.slices.iter().map(|s| s.arch.as_str()).collect();
        assert_eq!(archs.join(","), row["archs"], "{file}");
        let types: Vec<String> = app.slices.iter().map(|s| s.hash_types.join("+")).collect();
        assert_eq!(types.join("|"), row["cd_hash_types"], "{file}");
        assert_eq!(
            app.slices[0].team_id.clone().unwrap_or_default(),
            row["cd_team"],
            "{file}"
        );
        // The seal: "v2 sealed=82 ok=82 ..." gives the version and the count.
        let seal: Vec<&str> = row["seal"].split(' ').collect();
        let version: u8 = seal[0].trim_start_matches('v').parse().expect("version");
        let sealed: usize = seal[1]
            .trim_start_matches("sealed=")
            .parse()
            .expect("count");
        assert_eq!(app.resources, Some((version, sealed)), "{file}");
        // The embedded profile is the corpus profile named in the row.
        let profile_bytes = std::fs::read(dir.join(&row["embedded_profile"])).expect("profile");
        let profile = ProvisioningProfile::from_der(&profile_bytes).expect("corpus profile");
        let embedded = app.profile.as_ref().expect("embedded profile");
        assert_eq!(embedded.uuid, profile.profile().uuid, "{file}");
        // Nested bundles (dylibs are units of their own, not bundles).
        let nested = report
            .bundles
            .iter()
            .filter(|b| {
                !matches!(
                    b.kind,
                    provkit_codesign::BundleKind::App | provkit_codesign::BundleKind::Dylib
                )
            })
            .count();
        assert_eq!(nested.to_string(), row["n_nested_bundles"], "{file}");
        checked += 1;
    }
    assert_eq!(checked, 11);
}

#[test]
fn an_explicit_instant_sees_expired_signatures() {
    let Some(dir) = corpus() else { return };
    let verifier = Verifier::default();
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")
        .unwrap()
        .to_utc();
    let report = verify_path(
        &dir.join("ipas/DeliveryGirl_DeliveryBoy.ipa"),
        &Options::new(&verifier, At::Instant(at)),
    )
    .unwrap();
    assert!(!report.valid);
    assert!(report.has(Code::SigningCertificateExpired));
    assert!(report.has(Code::ProfileExpired));
}

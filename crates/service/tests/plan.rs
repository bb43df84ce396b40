//! Regression: `plan` said "no profile covers" an app whatever the cause.
//! It names the cause: no linked profile, a team mismatch, or an App ID
//! that does not cover the bundle id.

mod common;

use provkit_profile::fixtures::{ProfileSpec, signed_profile};
use provkit_store::{AppRecord, Store};

#[test]
fn uncovered_app_did_not_name_its_cause() {
    let (at, admin, ca, mut store) = common::setup();
    let uuid = "0A0A0A0A-0000-4000-8000-000000000001";
    let bytes = signed_profile(
        &ca,
        &ProfileSpec {
            uuid: uuid.into(),
            bundle_id: "com.example.app".into(),
            ..ProfileSpec::default()
        },
    );
    store.add_profile(&bytes, &admin).expect("profile");
    let cert = &ca.developer.cert;
    let app = |bundle: &str, team: &str, profile: Option<&str>| AppRecord {
        bundle_id: bundle.into(),
        version: "1".into(),
        team: team.into(),
        profile_uuid: profile.map(str::to_owned),
        certificate_sha256: provkit_profile::hex(&cert.sha256_fingerprint()),
        certificate_not_after: cert.not_after(),
        report: None,
        org_group: None,
    };
    for a in [
        app("com.example.app", "OTHERTEAM1", Some(uuid)),
        app("com.example.other", "PROVKIT01", Some(uuid)),
        app("com.example.orphan", "PROVKIT01", None),
        app("com.example.app", "PROVKIT01", Some(uuid)),
    ] {
        let mut a = a;
        // Distinct versions keep the records apart.
        a.version = format!("{}-{}", a.team, a.bundle_id);
        store.add_app(&a, &admin).expect("app");
    }
    let plan = provkit_service::plan::plan(&mut store, at).expect("plan");
    let uncovered: Vec<&str> = plan
        .blockers
        .iter()
        .filter(|b| b.kind == "uncovered-app")
        .map(|b| b.message.as_str())
        .collect();
    assert_eq!(uncovered.len(), 3, "{uncovered:#?}");
    assert!(
        uncovered
            .iter()
            .any(|m| m.contains("team mismatch") && m.contains("OTHERTEAM1"))
    );
    assert!(
        uncovered
            .iter()
            .any(|m| m.contains("does not cover bundle id com.example.other"))
    );
    assert!(uncovered.iter().any(|m| m.contains("no profile is linked")));
}

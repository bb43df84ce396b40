//! The expiry report: "already dead but still in use" apart from "dying
//! within", each certificate once with all its apps, each death date with
//! its cause, filters by kind, team and app.

mod common;

use provkit_profile::fixtures::{ProfileSpec, signed_profile, utc};
use provkit_service::expiry::{ExpiryFilter, ItemKind, report};
use provkit_store::{AppRecord, Store};

#[test]
fn expiring_mixed_dead_and_dying_and_listed_certificates_per_app() {
    let (at, admin, ca, mut store) = common::setup();
    let dead = "0F0F0F0F-0000-4000-8000-000000000001";
    let soon = "0F0F0F0F-0000-4000-8000-000000000002";
    for (uuid, bundle, expiration) in [
        (dead, "com.example.a", utc(2026, 10, 1)),
        (soon, "com.example.b", utc(2026, 12, 20)),
    ] {
        let bytes = signed_profile(
            &ca,
            &ProfileSpec {
                uuid: uuid.into(),
                bundle_id: bundle.into(),
                creation: utc(2026, 1, 1),
                expiration,
                ..ProfileSpec::default()
            },
        );
        store.add_profile(&bytes, &admin).expect("profile");
    }
    let cert = &ca.developer.cert;
    for (bundle, profile) in [("com.example.a", dead), ("com.example.b", soon)] {
        store
            .add_app(
                &AppRecord {
                    bundle_id: bundle.into(),
                    version: "1.0".into(),
                    team: "PROVKIT01".into(),
                    profile_uuid: Some(profile.into()),
                    certificate_sha256: provkit_profile::hex(&cert.sha256_fingerprint()),
                    certificate_not_after: utc(2026, 12, 30),
                    report: None,
                    org_group: None,
                },
                &admin,
            )
            .expect("app");
    }
    let r = report(&mut store, at, 60, &ExpiryFilter::default()).expect("report");
    assert_eq!(r.dead_in_use.len(), 1);
    assert_eq!(r.dead_in_use[0].id, dead);
    assert_eq!(r.dead_in_use[0].cause, "profile expires");
    assert!(r.dead_in_use[0].days_left < 0);
    let ids: Vec<(&str, ItemKind)> = r.dying.iter().map(|i| (i.id.as_str(), i.kind)).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], (soon, ItemKind::Profile));
    let cert_item = &r.dying[1];
    assert_eq!(cert_item.kind, ItemKind::Certificate);
    assert_eq!(cert_item.action, "re-sign");
    assert_eq!(
        cert_item.apps,
        ["com.example.a 1.0", "com.example.b 1.0"],
        "one certificate, listed once with both apps"
    );
    // Filters.
    let mut only = |f: ExpiryFilter| {
        let r = report(&mut store, at, 60, &f).expect("report");
        r.dead_in_use.len() + r.dying.len()
    };
    assert_eq!(
        only(ExpiryFilter::default().with_kind(Some(ItemKind::Certificate))),
        1
    );
    assert_eq!(
        only(ExpiryFilter::default().with_app(Some("com.example.b".into()))),
        2
    );
    assert_eq!(
        only(ExpiryFilter::default().with_team(Some("OTHERTEAM1".into()))),
        0
    );
}

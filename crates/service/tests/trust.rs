//! Regression: `import` stored a self-signed fake profile and `renew`
//! accepted a successor from an unknown CA without a word. A profile is
//! stored only when genuine and chained to Apple's roots or an anchor the
//! admin added; the override is on the audit record.

use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_service::ServiceError;
use provkit_service::trust::{add_anchor, store_profile, tenant_verifier};
use provkit_store::{Actor, MemoryStore, Store};

#[test]
fn import_stored_untrusted_profiles() {
    let at = utc(2026, 11, 22);
    let admin = Actor {
        name: "admin".into(),
        at,
    };
    let ca = TestCa::rsa();
    let bytes = signed_profile(&ca, &ProfileSpec::default());
    let mut store = MemoryStore::default();

    // Apple's roots only: the test CA's profile is refused, nothing stored.
    let verifier = tenant_verifier(&mut store).expect("verifier");
    match store_profile(&mut store, &bytes, &verifier, at, &admin, false) {
        Err(ServiceError::Untrusted { findings, .. }) => {
            assert_eq!(findings, ["chain-untrusted"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(store.profiles().expect("profiles").is_empty());

    // The override stores it and says so in the audit log.
    store_profile(&mut store, &bytes, &verifier, at, &admin, true).expect("override");
    let audit = store.audit_log().expect("audit");
    let entry = audit
        .iter()
        .find(|e| e.action == "allow-untrusted")
        .expect("the override is audited");
    assert!(
        entry
            .after
            .as_ref()
            .expect("detail")
            .to_string()
            .contains("chain-untrusted")
    );

    // With the test root as an anchor (audited), the same bytes are trusted.
    let root_pem = provkit_profile::pem::encode("CERTIFICATE", ca.root.cert.der());
    let anchor = add_anchor(&mut store, root_pem.as_bytes(), &admin).expect("anchor");
    assert_eq!(anchor.subject.as_deref(), Some("provkit Test Root CA"));
    assert!(
        store
            .audit_log()
            .expect("audit")
            .iter()
            .any(|e| e.action == "trust-add")
    );
    let verifier = tenant_verifier(&mut store).expect("verifier");
    let other = signed_profile(
        &ca,
        &ProfileSpec {
            uuid: "0D0D0D0D-0000-4000-8000-000000000002".into(),
            ..ProfileSpec::default()
        },
    );
    store_profile(&mut store, &other, &verifier, at, &admin, false).expect("trusted now");
    // An expired but genuine profile is not a trust failure.
    let expired = signed_profile(
        &ca,
        &ProfileSpec {
            uuid: "0D0D0D0D-0000-4000-8000-000000000003".into(),
            creation: utc(2024, 1, 1),
            expiration: utc(2025, 1, 1),
            ..ProfileSpec::default()
        },
    );
    store_profile(&mut store, &expired, &verifier, at, &admin, false).expect("expired is genuine");

    // A tampered profile is refused even from a trusted CA.
    let mut tampered = other.clone();
    let needle = b"provkit Test App";
    let pos = tampered
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("AppIDName in the content");
    tampered[pos] ^= 0x20;
    let err = store_profile(&mut store, &tampered, &verifier, at, &admin, false);
    assert!(
        matches!(&err, Err(ServiceError::Untrusted { findings, .. }) if findings.iter().any(|f| f == "message-digest-mismatch")),
        "{err:?}"
    );

    // Removing the anchor (by a prefix) makes its profiles untrusted again.
    store
        .remove_trust_anchor(&anchor.sha256[..12], &admin)
        .expect("remove");
    assert!(store.trust_anchors().expect("anchors").is_empty());
    let verifier = tenant_verifier(&mut store).expect("verifier");
    assert!(matches!(
        store_profile(&mut store, &other, &verifier, at, &admin, false),
        Err(ServiceError::Untrusted { .. })
    ));
    assert!(matches!(
        store.remove_trust_anchor("abc", &admin),
        Err(provkit_store::StoreError::UnknownReference { .. })
    ));
}

//! The profile benchmark's inputs and measurements, shared by the
//! `profile` (mimalloc) and `profile_system_alloc` (the system allocator)
//! bench targets: a library does not choose the allocator of the program
//! that links it, so its figures are given under both.
//!
//! Inputs: synthetic 100- and 2000-device profiles signed by the test CA
//! (SHA-1 outer signature like Apple's, with and without a DER-Encoded-Profile),
//! and, when `PROVKIT_CORPUS` is set, a real 18-device corpus profile.
//! Verification time is fixed; the verifier is shared across iterations,
//! as in a server. `verify-new-verifier` builds a new verifier each time
//! (issuer links still come from the process's cache); `verify-cold` also
//! forgets the cached links first, as the first verification in a fresh
//! process.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::Criterion;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::x509::X509;
use openssl::x509::X509PurposeId;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use provkit::profile::fixtures::{ProfileSpec, TestCa, signed_profile};
use provkit::profile::{Certificate, ProvisioningProfile, TrustAnchors, Verifier};

struct Input {
    name: String,
    bytes: Vec<u8>,
    anchors: TrustAnchors,
    at: DateTime<Utc>,
}

fn inputs() -> Vec<Input> {
    let ca = TestCa::rsa();
    let at = provkit::profile::fixtures::utc(2026, 6, 1);
    let mut v = Vec::new();
    for (devices, der) in [(100, false), (100, true), (2000, false)] {
        let spec = ProfileSpec {
            devices: Some(devices),
            der_profile: der,
            ..ProfileSpec::default()
        };
        let suffix = if der { "-der" } else { "" };
        v.push(Input {
            name: format!("synthetic-{devices}{suffix}"),
            bytes: signed_profile(&ca, &spec),
            anchors: ca.anchors(),
            at,
        });
    }
    if let Some(dir) = provkit_profile::fixtures::corpus_dir() {
        let path = dir.join("profiles/40025ebda2d53a55.mobileprovision");
        if let Ok(bytes) = std::fs::read(path) {
            let parsed = ProvisioningProfile::from_der(&bytes).expect("corpus profile");
            let at = parsed.signed_data().signers[0]
                .signing_time()
                .expect("signing time");
            v.push(Input {
                name: "corpus-40025ebd".into(),
                bytes,
                anchors: TrustAnchors::apple(),
                at,
            });
        }
    }
    v
}

fn openssl_verifier(input: &Input) -> impl Fn() -> bool {
    let mut store = X509StoreBuilder::new().expect("store");
    for a in input.anchors.certificates() {
        store
            .add_cert(X509::from_der(a.der()).expect("anchor"))
            .expect("add");
    }
    store.set_purpose(X509PurposeId::ANY).expect("purpose");
    let mut param = X509VerifyParam::new().expect("param");
    param.set_time(input.at.timestamp());
    store.set_param(&param).expect("param");
    let store = store.build();
    let bytes = input.bytes.clone();
    move || {
        let mut cms = CmsContentInfo::from_der(&bytes).expect("cms");
        let mut out = Vec::new();
        cms.verify(
            None,
            Some(&store),
            None,
            Some(&mut out),
            CMSOptions::empty(),
        )
        .is_ok()
    }
}

/// Every measurement, with `alloc` naming the program's allocator in the
/// group names.
pub(crate) fn bench(c: &mut Criterion, alloc: &str) {
    for input in inputs() {
        let mut g = c.benchmark_group(format!("{}/{alloc}", input.name));
        g.bench_function("parse", |b| {
            b.iter(|| ProvisioningProfile::from_der(black_box(&input.bytes)).expect("parse"))
        });
        let verifier = Verifier::new(input.anchors.clone());
        let check = ProvisioningProfile::from_der(&input.bytes).expect("parse");
        assert!(
            verifier.verify(&check, input.at).valid,
            "{} must verify",
            input.name
        );
        g.bench_function("parse+verify", |b| {
            b.iter(|| {
                let p = ProvisioningProfile::from_der(black_box(&input.bytes)).expect("parse");
                verifier.verify(&p, input.at)
            })
        });
        // A new verifier: issuer links come from the process's cache.
        g.bench_function("parse+verify-new-verifier", |b| {
            b.iter(|| {
                let p = ProvisioningProfile::from_der(black_box(&input.bytes)).expect("parse");
                Verifier::new(input.anchors.clone()).verify(&p, input.at)
            })
        });
        // The first verification in a fresh process: every issuer link's
        // signature checked again.
        g.bench_function("parse+verify-cold", |b| {
            b.iter(|| {
                Verifier::forget_cached_links();
                let p = ProvisioningProfile::from_der(black_box(&input.bytes)).expect("parse");
                Verifier::new(input.anchors.clone()).verify(&p, input.at)
            })
        });
        let openssl = openssl_verifier(&input);
        assert!(openssl(), "{}: OpenSSL must verify it too", input.name);
        g.bench_function("openssl-cms-verify", |b| b.iter(&openssl));
        g.finish();
    }
    // Certificate parsing alone, for reference.
    let ca = TestCa::rsa();
    let der = ca.developer.cert.der().to_vec();
    c.bench_function(&format!("certificate/parse/{alloc}"), |b| {
        b.iter(|| Certificate::from_der(black_box(&der)))
    });
}

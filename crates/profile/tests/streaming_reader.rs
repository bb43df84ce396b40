//! `Profile::from_plist` reads XML straight into the profile, without a value
//! tree. It must give exactly what the tree gives (`plist::parse` then
//! `Profile::from_owned_dictionary`): the same profile, or the same error,
//! for the corpus, for fixtures, for hand-made edge cases and for mutated
//! payloads.

use proptest::prelude::*;
use provkit_profile::fixtures::{self, ProfileSpec, TestCa};
use provkit_profile::plist::{self, Value};
use provkit_profile::{ParseError, PlistFormat, Profile, ProvisioningProfile};
use std::sync::OnceLock;

/// The tree's answer.
fn through_the_tree(content: &[u8]) -> Result<(Profile, PlistFormat), ParseError> {
    let (value, format) = plist::parse(content)?;
    match value {
        Value::Dictionary(d) => Ok((Profile::from_owned_dictionary(d)?, format)),
        other => Err(ParseError::RootNotDictionary(other.type_name())),
    }
}

fn agree(content: &[u8]) -> Result<(Profile, PlistFormat), ParseError> {
    let streamed = Profile::from_plist(content);
    assert_eq!(
        streamed,
        through_the_tree(content),
        "the streaming reader and the tree differ on {:?}",
        String::from_utf8_lossy(content)
    );
    streamed
}

/// The signed payloads: fixtures (XML and binary) and, with
/// `PROVKIT_CORPUS`, every corpus profile that parses.
fn payloads() -> &'static Vec<Vec<u8>> {
    static P: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    P.get_or_init(|| {
        let ca = TestCa::rsa();
        let mut files = vec![
            fixtures::signed_profile(&ca, &ProfileSpec::default()),
            fixtures::signed_profile(
                &ca,
                &ProfileSpec {
                    devices: Some(40),
                    der_profile: true,
                    ..ProfileSpec::default()
                },
            ),
            fixtures::signed_profile(
                &ca,
                &ProfileSpec {
                    binary: true,
                    ..ProfileSpec::default()
                },
            ),
        ];
        if let Some(dir) = fixtures::corpus_dir() {
            let mut names: Vec<_> = std::fs::read_dir(dir.join("profiles"))
                .expect("corpus profiles")
                .map(|e| e.expect("entry").path())
                .collect();
            names.sort();
            files.extend(names.iter().map(|p| std::fs::read(p).expect("read")));
        }
        files
            .iter()
            .filter_map(|f| ProvisioningProfile::from_der(f).ok())
            .map(|f| f.content().to_vec())
            .collect()
    })
}

#[test]
fn every_payload_reads_the_same_both_ways() {
    let mut with_devices = 0;
    for content in payloads() {
        let (profile, _) = agree(content).expect("a payload of a parsed file parses");
        if profile.provisioned_devices.is_some() {
            with_devices += 1;
        }
    }
    assert!(with_devices >= 1, "no payload listed devices");
}

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">"#;

fn doc(body: &str) -> Vec<u8> {
    format!(
        "{HEAD}<dict><key>UUID</key><string>u-1</string>\
         <key>CreationDate</key><date>2026-01-01T00:00:00Z</date>\
         <key>ExpirationDate</key><date>2027-01-01T00:00:00Z</date>{body}</dict></plist>"
    )
    .into_bytes()
}

#[test]
fn edge_cases_read_the_same_both_ways() {
    let devices = agree(&doc(
        "<key>ProvisionedDevices</key><array><string>a&amp;b</string><string/>\
         <!-- c --><string><![CDATA[c<d]]></string></array>",
    ))
    .expect("devices")
    .0;
    let listed: Vec<&str> = devices.devices().iter().collect();
    assert_eq!(listed, ["a&b", "", "c<d"]);

    let empty = agree(&doc("<key>ProvisionedDevices</key><array/>")).expect("empty list");
    assert_eq!(empty.0.provisioned_devices.map(|d| d.len()), Some(0));

    let last_wins = agree(&doc(
        "<key>ProvisionedDevices</key><array><string>x</string></array>\
         <key>ProvisionedDevices</key><array><string>y</string></array>",
    ))
    .expect("repeated key")
    .0;
    assert_eq!(last_wins.devices().get(0), Some("y"));

    let unknown = agree(&doc("<key>Some&amp;Key</key><integer>7</integer>"))
        .expect("unknown key")
        .0;
    assert_eq!(unknown.other.get("Some&Key"), Some(&Value::Integer(7)));

    let errors = [
        doc("<key>ProvisionedDevices</key><string>x</string>"),
        doc(
            "<key>ProvisionedDevices</key><array><string>x</string><integer>1</integer><data>AA==</data></array>",
        ),
        doc(
            "<key>ProvisionedDevices</key><array><integer>1</integer></array><key>Name</key><integer>2</integer>",
        ),
        doc(
            "<key>Name</key><integer>2</integer><key>ProvisionedDevices</key><array><true/></array>",
        ),
        doc("<key>Name</key><integer>2</integer><key>X</key><string>unterminated"),
        doc(
            "<key>ProvisionedDevices</key><array><string>x</string><dict><key>k</key></dict></array>",
        ),
        doc("<key>ProvisionedDevices</key><array><string>x</array>"),
        doc("<key>ProvisionedDevices</key><array><string>x</string>"),
        doc("<string>keyless</string>"),
        doc("<key>A</key>"),
        format!("{HEAD}<array><string>x</string></array></plist>").into_bytes(),
        format!("{HEAD}<dict><key>UUID</key><string>u</string></dict></plist>").into_bytes(),
        format!("{HEAD}<dict/></plist>").into_bytes(),
        format!("{HEAD}<dict></dict></plist><dict/>").into_bytes(),
        format!("{HEAD}<dict></dict>").into_bytes(),
        b"<plist/>".to_vec(),
        b"<dict><key>UUID</key><string>u</string></dict>".to_vec(),
        b"\xef\xbb\xbf<dict></dict>".to_vec(),
        b"<dict><key>\xff</key></dict>".to_vec(),
        Vec::new(),
    ];
    for e in &errors {
        assert!(agree(e).is_err(), "{:?} parsed", String::from_utf8_lossy(e));
    }
    // Nesting past the budget inside the device list.
    let deep = doc(&format!(
        "<key>ProvisionedDevices</key><array>{}{}</array>",
        "<array>".repeat(80),
        "</array>".repeat(80)
    ));
    assert!(matches!(
        agree(&deep),
        Err(ParseError::Plist(plist::PlistError::TooDeep { .. }))
    ));
}

const TAGS: &[&str] = &[
    "string", "integer", "array", "dict", "data", "key", "true", "false", "date", "real", "plist",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Renames the element whose `<` is the n-th (an opening or a closing tag).
    Rename(usize, usize),
    Flip(usize, u8),
    Truncate(usize),
    /// Copies a span of the payload to another place.
    Splice(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 0..TAGS.len()).prop_map(|(i, t)| Mutation::Rename(i, t)),
        1 => (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), 1usize..200, any::<usize>()).prop_map(|(a, n, b)| Mutation::Splice(a, n, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match *m {
        Mutation::Rename(i, t) => {
            let opens: Vec<usize> = (0..bytes.len()).filter(|&j| bytes[j] == b'<').collect();
            if opens.is_empty() {
                return;
            }
            let mut at = opens[i % opens.len()] + 1;
            if bytes.get(at) == Some(&b'/') {
                at += 1;
            }
            let end = (at..bytes.len())
                .find(|&j| !bytes[j].is_ascii_alphanumeric())
                .unwrap_or(bytes.len());
            bytes.splice(at..end, TAGS[t].bytes());
        }
        Mutation::Flip(i, b) => {
            let i = i % n;
            if i < bytes.len() {
                bytes[i] ^= b;
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % n),
        Mutation::Splice(a, len, b) => {
            let a = a % n;
            let span: Vec<u8> = bytes.iter().skip(a).take(len).copied().collect();
            let b = b % (bytes.len() + 1);
            bytes.splice(b..b, span);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn mutated_payloads_read_the_same_both_ways(
        seed in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let payloads = payloads();
        let mut bytes = payloads[seed.index(payloads.len())].clone();
        for m in &muts {
            apply(&mut bytes, m);
        }
        let _ = agree(&bytes);
    }
}

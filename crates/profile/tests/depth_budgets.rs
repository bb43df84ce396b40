//! Regression tests for hostile nesting: every reader carries one depth
//! budget and answers with a typed error instead of exhausting the stack, and
//! path building stops after a bounded number of signature checks.

use provkit_profile::fixtures::{
    self, CmsOptions, KeySource, ProfileSpec, TestCa, TestKey, issue, sign_cms, utc,
};
use provkit_profile::{
    CmsError, DerErrorKind, DigestAlgorithm, FindingCode, ParseError, PlistError,
    ProvisioningProfile, SignedData, Value, Verifier, plist,
};

/// A binary plist from raw objects (two-byte references, four-byte offsets),
/// root object 0.
fn bplist(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for o in objects {
        offsets.push(u32::try_from(out.len()).expect("small"));
        out.extend_from_slice(o);
    }
    let table = out.len() as u64;
    for o in offsets {
        out.extend_from_slice(&o.to_be_bytes());
    }
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&[4, 2]);
    out.extend_from_slice(&(objects.len() as u64).to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&table.to_be_bytes());
    out
}

/// `levels` arrays, each holding the next (`fan_out` references to it).
fn nested_arrays(levels: u16, fan_out: u8) -> Vec<u8> {
    let objects: Vec<Vec<u8>> = (0..levels)
        .map(|k| {
            if k + 1 == levels {
                vec![0xa0]
            } else {
                let mut o = vec![0xa0 | fan_out];
                for _ in 0..fan_out {
                    o.extend_from_slice(&(k + 1).to_be_bytes());
                }
                o
            }
        })
        .collect();
    bplist(&objects)
}

#[test]
fn deep_binary_plist_is_an_error_not_a_stack_overflow() {
    // The reported input: a 2,000-level array, 18 KB.
    let bytes = nested_arrays(2000, 1);
    assert!(bytes.len() < 20_000);
    match plist::parse(&bytes) {
        Err(PlistError::TooDeep {
            format: "binary", ..
        }) => {}
        other => panic!("expected TooDeep, got {other:?}"),
    }
    // At the budget it still reads.
    let (v, _) = plist::parse(&nested_arrays(
        u16::try_from(plist::MAX_DEPTH).expect("small"),
        1,
    ))
    .expect("at the limit");
    let mut depth = 0;
    let mut cur = &v;
    while let Some([inner]) = cur.as_array() {
        depth += 1;
        cur = inner;
    }
    assert_eq!(depth, plist::MAX_DEPTH - 1);
}

#[test]
fn deep_binary_plist_inside_a_profile_is_a_parse_error() {
    let ca = TestCa::rsa();
    let cms = sign_cms(
        &nested_arrays(2000, 1),
        &ca.signer,
        &[&ca.intermediate.cert],
        &CmsOptions::default(),
    );
    assert!(matches!(
        ProvisioningProfile::from_der(&cms),
        Err(ParseError::Plist(PlistError::TooDeep { .. }))
    ));
}

#[test]
fn shared_binary_plist_objects_cannot_expand_without_bound() {
    // 40 levels, each array referencing the next twice: 2^40 values from
    // a few hundred bytes.
    let bytes = nested_arrays(40, 2);
    assert!(matches!(
        plist::parse(&bytes),
        Err(PlistError::Expansion { what: "values", .. })
    ));
    // One 64 KiB string referenced from an array 60,000 times.
    let mut string = vec![0x5f, 0x12, 0x00, 0x01, 0x00, 0x00];
    string.extend(std::iter::repeat_n(b'a', 1 << 16));
    let mut array = vec![0xaf, 0x11];
    array.extend_from_slice(&60_000u16.to_be_bytes());
    for _ in 0..60_000 {
        array.extend_from_slice(&1u16.to_be_bytes());
    }
    assert!(matches!(
        plist::parse(&bplist(&[array, string])),
        Err(PlistError::Expansion { .. })
    ));
}

#[test]
fn deep_xml_and_der_plists_share_the_budget() {
    let depth = plist::MAX_DEPTH + 1;
    let xml = format!(
        "<plist>{}{}</plist>",
        "<array>".repeat(depth),
        "</array>".repeat(depth)
    );
    assert!(matches!(
        plist::parse(xml.as_bytes()),
        Err(PlistError::TooDeep { format: "XML", .. })
    ));
    let mut der = vec![0x30, 0x00];
    for _ in 0..depth {
        der = provkit_profile::write::seq(&[der]);
    }
    assert!(matches!(
        plist::parse_der(&der),
        Err(PlistError::TooDeep { format: "DER", .. })
    ));
    // The writers refuse what the readers would refuse, without recursing.
    let mut v = Value::Array(Vec::new());
    for _ in 0..100_000 {
        v = Value::Array(vec![v]);
    }
    assert_eq!(plist::to_xml(&v), Err(PlistError::WriteTooDeep));
    assert_eq!(plist::to_binary(&v), Err(PlistError::WriteTooDeep));
    // Dropping such a value must not overflow either: unnest it first.
    let mut cur = v;
    while let Value::Array(mut items) = cur {
        cur = items.pop().unwrap_or(Value::Boolean(false));
    }
}

/// A BER ContentInfo whose encapsulated content is `octets`.
fn ber_content_info(octets: &[u8]) -> Vec<u8> {
    let oid = |body: &[u8]| [&[0x06, u8::try_from(body.len()).expect("short")][..], body].concat();
    let signed_data = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    let data = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    let indefinite = |tag: u8, body: &[u8]| [&[tag, 0x80][..], body, &[0, 0]].concat();
    let encap = indefinite(0x30, &[oid(&data), indefinite(0xa0, octets)].concat());
    let sd = indefinite(
        0x30,
        &[
            vec![0x02, 0x01, 0x01],
            vec![0x31, 0x00],
            encap,
            vec![0x31, 0x00],
        ]
        .concat(),
    );
    indefinite(0x30, &[oid(&signed_data), indefinite(0xa0, &sd)].concat())
}

/// The reader that first meets the nesting reports it: the whole-input scan
/// of indefinite lengths, or the octet-string reader below it.
fn assert_too_deep(r: Result<SignedData, CmsError>) {
    match r {
        Err(CmsError::Malformed(e) | CmsError::NotContentInfo(e)) => {
            assert_eq!(e.kind, DerErrorKind::TooDeep, "{e}");
        }
        other => panic!("expected a depth error, got {other:?}"),
    }
}

#[test]
fn nested_ber_octet_strings_hit_one_depth_budget() {
    // About 30 KB of constructed OCTET STRINGs with indefinite lengths.
    let levels = 7_500;
    let mut nested = Vec::with_capacity(levels * 4 + 3);
    nested.extend(std::iter::repeat_n([0x24, 0x80], levels).flatten());
    nested.extend_from_slice(&[0x04, 0x01, 0xaa]);
    nested.extend(std::iter::repeat_n([0, 0], levels).flatten());
    assert_too_deep(SignedData::from_ber(&ber_content_info(&nested)));
    // The same nesting with definite lengths goes through the octet-string
    // recursion rather than the indefinite-length scan; same budget.
    let mut definite = vec![0x04, 0x01, 0xaa];
    for _ in 0..2_000 {
        let len = definite.len();
        let mut outer = vec![0x24, 0x82];
        outer.extend_from_slice(&u16::try_from(len).expect("fits").to_be_bytes());
        outer.extend_from_slice(&definite);
        definite = outer;
        if definite.len() > 60_000 {
            break;
        }
    }
    assert_too_deep(SignedData::from_ber(&ber_content_info(&definite)));
    // A few levels, as real code signatures have, still read (then fail for
    // having no signer, which is the next check).
    let shallow = [0x24, 0x80, 0x24, 0x80, 0x04, 0x01, 0xaa, 0, 0, 0, 0];
    assert_eq!(
        SignedData::from_ber(&ber_content_info(&shallow)),
        Err(CmsError::NoSigner)
    );
}

#[test]
fn crowded_certificate_set_exhausts_the_path_budget() {
    let ca = TestCa::rsa();
    // 150 look-alike intermediates: the real intermediate's name, other keys.
    let impostor_root = fixtures::CertSpec::new("Impostor Root", true);
    let root = issue(
        &impostor_root,
        TestKey::load(KeySource::P256),
        None,
        DigestAlgorithm::Sha256,
    );
    let impostors: Vec<_> = (0..150u64)
        .map(|i| {
            let mut spec = ca.intermediate_spec.clone();
            spec.serial = 10_000 + i;
            issue(
                &spec,
                TestKey::load(KeySource::P256),
                Some((&root, &impostor_root)),
                DigestAlgorithm::Sha256,
            )
            .cert
        })
        .collect();
    let chain: Vec<_> = impostors.iter().collect();
    let d = fixtures::profile_dictionary(&ProfileSpec::default(), &[&ca.developer.cert]);
    let content = plist::to_xml(&Value::Dictionary(d)).expect("xml");
    let bytes = sign_cms(&content, &ca.signer, &chain, &CmsOptions::default());
    let file = ProvisioningProfile::from_der(&bytes).expect("parses");
    let report = Verifier::new(ca.anchors()).verify(&file, utc(2026, 6, 1));
    let codes: Vec<_> = report.findings.iter().map(|f| f.code).collect();
    assert!(
        codes.contains(&FindingCode::ChainBudgetExceeded),
        "{codes:?}"
    );
    // A handful of look-alikes are all tried and reported as bad signatures.
    let few: Vec<_> = impostors.iter().take(3).collect();
    let bytes = sign_cms(&content, &ca.signer, &few, &CmsOptions::default());
    let file = ProvisioningProfile::from_der(&bytes).expect("parses");
    let report = Verifier::new(ca.anchors()).verify(&file, utc(2026, 6, 1));
    let codes: Vec<_> = report.findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, vec![FindingCode::ChainSignatureInvalid]);
}

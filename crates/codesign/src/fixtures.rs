//! A signer for synthetic apps, signed by provkit-profile's test CA: the
//! fixture factory of the tests and benchmarks (feature `fixtures`).
//!
//! It writes what a real signer writes: thin or fat arm64/armv7 Mach-O files
//! whose `__LINKEDIT` holds a SuperBlob with a SHA-1 CodeDirectory at slot 0
//! and a SHA-256 one at 0x1000 (version 0x20400, exec segment, team id),
//! requirements, entitlements and DER entitlements blobs, and a detached CMS
//! with the hash-agility attributes; a version-2 CodeResources with Apple's
//! iOS rules; nested frameworks signed first; an `embedded.mobileprovision`.

use std::collections::BTreeMap;

use provkit_profile::Certificate;
use provkit_profile::fixtures::{KeySource, TestCa, TestCert, key_der};
use provkit_profile::plist::{self, Dictionary, Value};

use crate::seal::{Sealable, code_resources as seal};
pub use crate::signature::sign::CodeSpec;
use crate::signature::sign::{Identity, be, signature, signature_len, u32_of};

const PAGE: usize = 4096;
const HEADER_64: usize = 32;
const SEGMENT_64: usize = 72;
const LC_CODE_SIGNATURE_SIZE: usize = 16;

/// A signing identity from a test certificate and its committed RSA key.
///
/// # Panics
/// For an ECDSA key source (fresh keys are not kept) or a mismatched key.
#[allow(clippy::expect_used)]
pub fn identity(cert: &TestCert, key: KeySource, chain: &[&Certificate]) -> Identity {
    let der = key_der(key).expect("a committed RSA test key");
    Identity::new(
        cert.cert.der(),
        der,
        chain.iter().map(|c| (*c).clone()).collect(),
    )
    .expect("the test key matches its certificate")
}

/// The test CA's developer identity (team `PROVKIT01`), carrying the intermediate.
pub fn developer_identity(ca: &TestCa) -> Identity {
    identity(
        &ca.developer,
        KeySource::RsaDeveloper,
        &[&ca.intermediate.cert],
    )
}

/// An architecture of a synthetic Mach-O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit ARM.
    Arm64,
    /// 32-bit ARMv7 (laid out as a 64-bit file; only the CPU type differs).
    Armv7,
}

impl Arch {
    fn cpu(self) -> (u32, u32) {
        match self {
            Arch::Arm64 => (0x0100_000c, 0),
            Arch::Armv7 => (12, 9),
        }
    }
}

/// Deterministic English-like text (compresses like source or JSON does).
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "profile",
        "device",
        "expires",
        "renew",
        "the",
        "of",
        "group",
        "assign",
        "bundle",
        "signature",
        "and",
        "to",
        "certificate",
        "team",
        "install",
        "app",
    ];
    let noise = filler(len / 2 + 8, seed);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        let r = noise[i % noise.len()];
        out.extend_from_slice(WORDS[usize::from(r & 15)].as_bytes());
        out.push(if r & 0xf0 == 0xf0 { b'\n' } else { b' ' });
        if r & 0xf0 == 0xe0 {
            out.extend_from_slice(format!("{} ", i % 9973).as_bytes());
        }
        i += 1;
    }
    out.truncate(len);
    out
}

/// Deterministic filler bytes (xorshift), so files do not compress away.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A signed thin Mach-O with `code_len` bytes of code.
///
/// # Panics
/// If signing fails (a broken test key).
#[allow(clippy::expect_used)]
pub fn signed_thin(
    arch: Arch,
    code_len: usize,
    seed: u64,
    spec: &CodeSpec,
    id: &Identity,
) -> Vec<u8> {
    signed_thin_of_type(arch, code_len, seed, spec, id, default_filetype(spec))
}

/// `MH_EXECUTE` for a main executable, `MH_DYLIB` otherwise.
fn default_filetype(spec: &CodeSpec) -> u32 {
    if spec.main_binary {
        MH_EXECUTE
    } else {
        MH_DYLIB
    }
}

/// Mach-O file types the fixtures write.
const MH_EXECUTE: u32 = 2;
const MH_DYLIB: u32 = 6;
const MH_BUNDLE: u32 = 8;

/// [`signed_thin`] with an explicit Mach-O file type.
#[allow(clippy::expect_used)]
fn signed_thin_of_type(
    arch: Arch,
    code_len: usize,
    seed: u64,
    spec: &CodeSpec,
    id: &Identity,
    filetype: u32,
) -> Vec<u8> {
    let text_end =
        (HEADER_64 + 2 * SEGMENT_64 + LC_CODE_SIGNATURE_SIZE + code_len).div_ceil(PAGE) * PAGE;
    let exec = (0, text_end as u64);
    // Reserve the signature's room before hashing: the header names it.
    let probe = signature_len(&vec![0; text_end], spec, id, exec).expect("sign");
    let reserve = (probe + 1024).div_ceil(16) * 16;
    let mut f = Vec::with_capacity(text_end + reserve);
    let (cpu, sub) = arch.cpu();
    for v in [
        0xfeed_facf_u32,
        cpu,
        sub,
        filetype,
        3,
        u32_of(2 * SEGMENT_64 + LC_CODE_SIGNATURE_SIZE),
        0,
        0,
    ] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    let segment = |f: &mut Vec<u8>, name: &[u8], fileoff: usize, filesize: usize| {
        f.extend_from_slice(&0x19u32.to_le_bytes());
        f.extend_from_slice(&u32_of(SEGMENT_64).to_le_bytes());
        let mut n = [0u8; 16];
        n[..name.len()].copy_from_slice(name);
        f.extend_from_slice(&n);
        for v in [
            fileoff as u64,
            filesize as u64,
            fileoff as u64,
            filesize as u64,
        ] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for v in [5u32, 5, 0, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
    };
    segment(&mut f, b"__TEXT", 0, text_end);
    segment(&mut f, b"__LINKEDIT", text_end, reserve);
    for v in [0x1d_u32, 16, u32_of(text_end), u32_of(reserve)] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    let fill = filler(text_end - f.len(), seed);
    f.extend_from_slice(&fill);
    let sig = signature(&f, spec, id, exec).expect("sign");
    assert!(sig.len() <= reserve, "signature larger than its reserve");
    f.extend_from_slice(&sig);
    f.resize(text_end + reserve, 0);
    f
}

/// A signed Mach-O: thin for one architecture, fat (32-bit form) for more.
pub fn signed_macho(
    archs: &[Arch],
    code_len: usize,
    seed: u64,
    spec: &CodeSpec,
    id: &Identity,
) -> Vec<u8> {
    signed_macho_of_type(archs, code_len, seed, spec, id, default_filetype(spec))
}

fn signed_macho_of_type(
    archs: &[Arch],
    code_len: usize,
    seed: u64,
    spec: &CodeSpec,
    id: &Identity,
    filetype: u32,
) -> Vec<u8> {
    let thins: Vec<Vec<u8>> = archs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            signed_thin_of_type(
                *a,
                code_len,
                seed.wrapping_add(i as u64),
                spec,
                id,
                filetype,
            )
        })
        .collect();
    if thins.len() == 1 {
        return thins.into_iter().next().unwrap_or_default();
    }
    let align = 1usize << 14;
    let mut out = Vec::new();
    out.extend_from_slice(&be(0xcafe_babe));
    out.extend_from_slice(&be(u32_of(thins.len())));
    let mut off = align;
    let mut offsets = Vec::new();
    for (a, t) in archs.iter().zip(&thins) {
        let (cpu, sub) = a.cpu();
        for v in [cpu, sub, u32_of(off), u32_of(t.len()), 14] {
            out.extend_from_slice(&be(v));
        }
        offsets.push(off);
        off = (off + t.len()).div_ceil(align) * align;
    }
    for (o, t) in offsets.into_iter().zip(&thins) {
        out.resize(o, 0);
        out.extend_from_slice(t);
    }
    out
}

/// A version-2 CodeResources sealing `files` (bundle-relative paths).
pub fn code_resources(files: &[(String, FileContent)]) -> Vec<u8> {
    let map: BTreeMap<String, Sealable> = files
        .iter()
        .map(|(p, c)| {
            let s = match c {
                FileContent::Bytes(b) => Sealable::of(b),
                FileContent::Symlink(t) => Sealable::Symlink(t.clone()),
            };
            (p.clone(), s)
        })
        .collect();
    seal(&map)
}

/// A file of a synthetic bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Regular file bytes.
    Bytes(Vec<u8>),
    /// A symbolic link and its target.
    Symlink(String),
}

/// A synthetic bundle to sign.
#[derive(Debug, Clone)]
pub struct BundleSpec {
    /// Folder name (`App.app`, `Lib.framework`, `Ext.appex`).
    pub name: String,
    /// CFBundleIdentifier.
    pub bundle_id: String,
    /// CFBundleExecutable.
    pub executable: String,
    /// Architectures of the executable.
    pub archs: Vec<Arch>,
    /// Bytes of code in each slice.
    pub code_len: usize,
    /// Entitlements the executable claims.
    pub entitlements: Option<Dictionary>,
    /// The embedded profile's bytes.
    pub profile: Option<Vec<u8>>,
    /// Resources (bundle-relative path, content).
    pub resources: Vec<(String, FileContent)>,
    /// Nested bundles, under `PlugIns/` (`.appex`, `.xctest`) or
    /// `Frameworks/` (the rest).
    pub nested: Vec<BundleSpec>,
    /// The CMS signingTime.
    pub signing_time: chrono::DateTime<chrono::Utc>,
    /// Seal the resources with a version-1 CodeResources only (`files` and
    /// `rules`), as apps signed before 2013 are.
    pub v1_seal: bool,
    /// Override the exec-segment main-binary flag (`None`: as Apple's signer
    /// sets it, on apps and extensions).
    pub main_binary: Option<bool>,
}

impl BundleSpec {
    /// An app (or extension/framework by `name`'s extension) with two
    /// resources and one arm64 slice of 64 KiB.
    pub fn new(name: &str, bundle_id: &str) -> Self {
        let executable = name.rsplit_once('.').map_or(name, |(n, _)| n).to_owned();
        BundleSpec {
            name: name.to_owned(),
            bundle_id: bundle_id.to_owned(),
            executable,
            archs: vec![Arch::Arm64],
            code_len: 64 << 10,
            entitlements: None,
            profile: None,
            resources: vec![
                (
                    "Assets/icon.png".into(),
                    FileContent::Bytes(filler(3000, 7)),
                ),
                (
                    "en.lproj/Main.strings".into(),
                    FileContent::Bytes(b"\"a\" = \"b\";".to_vec()),
                ),
            ],
            nested: Vec::new(),
            signing_time: provkit_profile::fixtures::utc(2026, 3, 1),
            v1_seal: false,
            main_binary: None,
        }
    }
}

/// Signs a bundle inside-out; returns its files (bundle-relative path,
/// content), ready to be placed under `Payload/` or a parent bundle.
pub fn sign_bundle(spec: &BundleSpec, team: &str, id: &Identity) -> Vec<(String, FileContent)> {
    let mut files: Vec<(String, FileContent)> = Vec::new();
    for n in &spec.nested {
        let dir = if n.name.ends_with(".appex") || n.name.ends_with(".xctest") {
            "PlugIns"
        } else {
            "Frameworks"
        };
        for (p, c) in sign_bundle(n, team, id) {
            files.push((format!("{dir}/{}/{p}", n.name), c));
        }
    }
    let mut info = Dictionary::new();
    info.insert("CFBundleIdentifier", Value::String(spec.bundle_id.clone()));
    info.insert("CFBundleExecutable", Value::String(spec.executable.clone()));
    info.insert("CFBundleShortVersionString", Value::String("1.0".into()));
    info.insert("CFBundleVersion", Value::String("1".into()));
    info.insert("MinimumOSVersion", Value::String("15.0".into()));
    let info = plist::to_xml(&Value::Dictionary(info)).unwrap_or_default();
    files.extend(spec.resources.iter().cloned());
    if let Some(p) = &spec.profile {
        files.push((
            "embedded.mobileprovision".into(),
            FileContent::Bytes(p.clone()),
        ));
    }
    // Info.plist is sealed too (in the version-1 part; the version-2 rules
    // omit it), and stored after the executable is signed.
    let mut sealed = files.clone();
    sealed.push(("Info.plist".into(), FileContent::Bytes(info.clone())));
    let mut resources = code_resources(&sealed);
    if spec.v1_seal {
        resources = version_1(&resources);
    }
    let code = CodeSpec {
        identifier: spec.bundle_id.clone(),
        team: team.to_owned(),
        entitlements: spec.entitlements.clone(),
        info_plist: Some(info.clone()),
        code_resources: Some(resources.clone()),
        main_binary: spec.main_binary.unwrap_or_else(|| {
            crate::BundleKind::from_extension(&spec.name)
                .is_none_or(crate::BundleKind::is_main_binary)
        }),
        signing_time: spec.signing_time,
    };
    // The file type follows the bundle kind, whatever the flag says.
    let filetype = match crate::BundleKind::from_extension(&spec.name) {
        Some(crate::BundleKind::Framework) => MH_DYLIB,
        Some(crate::BundleKind::Xctest | crate::BundleKind::Bundle) => MH_BUNDLE,
        _ => MH_EXECUTE,
    };
    let exe = signed_macho_of_type(
        &spec.archs,
        spec.code_len,
        spec.bundle_id.len() as u64,
        &code,
        id,
        filetype,
    );
    files.push(("Info.plist".into(), FileContent::Bytes(info)));
    files.push((spec.executable.clone(), FileContent::Bytes(exe)));
    files.push((
        "_CodeSignature/CodeResources".into(),
        FileContent::Bytes(resources),
    ));
    files
}

/// The same seal with only its version-1 parts (`files`, `rules`).
fn version_1(resources: &[u8]) -> Vec<u8> {
    let Ok((Value::Dictionary(mut d), _)) = plist::parse(resources) else {
        return resources.to_vec();
    };
    d.remove("files2");
    d.remove("rules2");
    plist::to_xml(&Value::Dictionary(d)).unwrap_or_default()
}

/// Signs an app and zips it as an `.ipa`; `deflate` says which entries
/// (by bundle-relative path) are deflated, the rest are stored.
pub fn build_ipa(
    spec: &BundleSpec,
    team: &str,
    id: &Identity,
    deflate: impl Fn(&str) -> bool,
) -> Vec<u8> {
    use std::io::Write as _;
    let files = sign_bundle(spec, team, id);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, content) in files {
        let method = if deflate(&path) {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(false);
        let name = format!("Payload/{}/{path}", spec.name);
        let ok = match content {
            FileContent::Bytes(b) => w.start_file(name, opts).and_then(|()| Ok(w.write_all(&b)?)),
            FileContent::Symlink(t) => w.add_symlink(name, t, opts),
        };
        assert!(ok.is_ok(), "zip write");
    }
    w.finish()
        .map(std::io::Cursor::into_inner)
        .unwrap_or_default()
}

/// A PKCS#8 `PrivateKeyInfo` wrapping an RSA PKCS#1 key.
pub fn pkcs8_of_rsa(pkcs1: &[u8]) -> Vec<u8> {
    use provkit_profile::write::{integer, octets, oid, seq};
    seq(&[
        integer(&[0]),
        seq(&[oid(provkit_profile::oid::RSA_ENCRYPTION), vec![0x05, 0x00]]),
        octets(pkcs1),
    ])
}

/// The test developer identity as a PKCS#12 file (leaf, intermediate and
/// root, AES-256 with `password`), the form `provkit ipa resign --identity`
/// takes.
///
/// # Panics
/// If the PKCS#12 writer fails, which would be a bug.
#[allow(clippy::expect_used)]
pub fn developer_p12(ca: &TestCa, password: &str) -> Vec<u8> {
    use p12_keystore::{
        Certificate as P12Cert, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain,
    };
    let key_pkcs1 = key_der(KeySource::RsaDeveloper).expect("committed key");
    let key = PrivateKey::from_der(&pkcs8_of_rsa(key_pkcs1)).expect("PKCS#8");
    let certs = [&ca.developer.cert, &ca.intermediate.cert, &ca.root.cert]
        .into_iter()
        .map(|c| P12Cert::from_der(c.der()).expect("certificate"))
        .collect::<Vec<_>>();
    let mut store = KeyStore::new();
    store.add_entry(
        "provkit test developer",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(b"provkit-1".to_vec(), key, certs)),
    );
    store.writer(password).write().expect("PKCS#12")
}

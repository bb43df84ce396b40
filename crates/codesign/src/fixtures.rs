//! A signer for synthetic apps, signed by provkit-profile's test CA: the
//! fixture factory of the tests and benchmarks (feature `fixtures`).
//!
//! It writes what a real signer writes: thin or fat arm64/armv7 Mach-O files
//! whose `__LINKEDIT` holds a SuperBlob with a SHA-1 CodeDirectory at slot 0
//! and a SHA-256 one at 0x1000 (version 0x20400, exec segment, team id),
//! requirements, entitlements and DER entitlements blobs, and a detached CMS
//! with the hash-agility attributes; a version-2 CodeResources with Apple's
//! iOS rules; nested frameworks signed first; an `embedded.mobileprovision`.

use chrono::{DateTime, Utc};
use provkit_profile::fixtures::{CmsOptions, TestCert, der_plist, sign_cms};
use provkit_profile::plist::{self, Dictionary, Value};
use provkit_profile::{Certificate, DigestAlgorithm};
use sha1::Digest as _;

use crate::blob::HashType;
use crate::entitlements::{DER_ENTITLEMENTS, ENTITLEMENTS};

const PAGE: usize = 4096;
const HEADER_64: usize = 32;
const SEGMENT_64: usize = 72;
const LC_CODE_SIGNATURE_SIZE: usize = 16;
/// `1.2.840.113635.100.9.1` and `.2`, encoded.
const OID_CDHASHES_PLIST: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x09, 0x01];
const OID_CDHASHES_SET: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x09, 0x02];
const OID_SHA1: [u8; 5] = [0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// Who signs: a certificate with its key, and the chain to carry in the CMS.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The signing certificate and key (its OU is the team id).
    pub signer: &'a TestCert,
    /// Intermediates to carry.
    pub chain: &'a [&'a Certificate],
    /// The CMS signingTime.
    pub signing_time: DateTime<Utc>,
}

/// What one executable's signature seals.
#[derive(Debug, Clone, Default)]
pub struct CodeSpec {
    /// The CodeDirectory identifier (the bundle id).
    pub identifier: String,
    /// The team id.
    pub team: String,
    /// The entitlements (both blobs), if any.
    pub entitlements: Option<Dictionary>,
    /// The raw Info.plist sealed in special slot 1.
    pub info_plist: Option<Vec<u8>>,
    /// The raw CodeResources sealed in special slot 3.
    pub code_resources: Option<Vec<u8>>,
    /// The main executable of a bundle (exec segment flag).
    pub main_binary: bool,
}

/// An architecture of a synthetic Mach-O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit ARM.
    Arm64,
    /// 32-bit ARMv7 (still written as a 64-bit-layout file for simplicity of
    /// the synthetic code; only the CPU type differs).
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

fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn blob(magic: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 8);
    b.extend_from_slice(&be(magic));
    b.extend_from_slice(&be(u32_of(body.len() + 8)));
    b.extend_from_slice(body);
    b
}

fn digest(t: HashType, data: &[u8]) -> Vec<u8> {
    let mut d = t.digest(data);
    d.truncate(match t {
        HashType::Sha1 | HashType::Sha256Truncated => 20,
        HashType::Sha256 => 32,
        HashType::Sha384 => 48,
    });
    d
}

/// Special-slot components, slot 1..=7.
struct Components {
    info_plist: Option<Vec<u8>>,
    requirements: Vec<u8>,
    code_resources: Option<Vec<u8>>,
    entitlements: Option<Vec<u8>>,
    der_entitlements: Option<Vec<u8>>,
}

fn code_directory(
    t: HashType,
    code: &[u8],
    spec: &CodeSpec,
    parts: &Components,
    exec_limit: usize,
) -> Vec<u8> {
    let hash_size = digest(t, b"").len();
    let n_special = 7usize;
    let n_code = code.len().div_ceil(PAGE);
    let ident_off = 88;
    let team_off = ident_off + spec.identifier.len() + 1;
    let hash_off = team_off + spec.team.len() + 1 + n_special * hash_size;
    let length = hash_off + n_code * hash_size;
    let mut cd = Vec::with_capacity(length);
    cd.extend_from_slice(&be(crate::blob::CODE_DIRECTORY));
    cd.extend_from_slice(&be(u32_of(length)));
    cd.extend_from_slice(&be(0x20400));
    cd.extend_from_slice(&be(0)); // flags
    cd.extend_from_slice(&be(u32_of(hash_off)));
    cd.extend_from_slice(&be(u32_of(ident_off)));
    cd.extend_from_slice(&be(u32_of(n_special)));
    cd.extend_from_slice(&be(u32_of(n_code)));
    cd.extend_from_slice(&be(u32_of(code.len())));
    cd.push(u8::try_from(hash_size).unwrap_or(0));
    cd.push(match t {
        HashType::Sha1 => 1,
        HashType::Sha256 => 2,
        HashType::Sha256Truncated => 3,
        HashType::Sha384 => 4,
    });
    cd.push(0); // platform
    cd.push(12); // 4096-byte pages
    cd.extend_from_slice(&be(0)); // spare2
    cd.extend_from_slice(&be(0)); // scatter
    cd.extend_from_slice(&be(u32_of(team_off)));
    cd.extend_from_slice(&be(0)); // spare3
    cd.extend_from_slice(&0u64.to_be_bytes()); // codeLimit64 (unused)
    cd.extend_from_slice(&0u64.to_be_bytes()); // exec segment base
    cd.extend_from_slice(&(exec_limit as u64).to_be_bytes());
    cd.extend_from_slice(&u64::from(spec.main_binary).to_be_bytes());
    cd.extend_from_slice(spec.identifier.as_bytes());
    cd.push(0);
    cd.extend_from_slice(spec.team.as_bytes());
    cd.push(0);
    let zero = vec![0u8; hash_size];
    let slot = |c: &Option<Vec<u8>>| c.as_deref().map_or_else(|| zero.clone(), |b| digest(t, b));
    // Special slots are stored from -n_special up to -1.
    let specials = [
        slot(&parts.der_entitlements),  // 7
        zero.clone(),                   // 6
        slot(&parts.entitlements),      // 5
        zero.clone(),                   // 4
        slot(&parts.code_resources),    // 3
        digest(t, &parts.requirements), // 2
        slot(&parts.info_plist),        // 1
    ];
    for s in specials {
        cd.extend_from_slice(&s);
    }
    for page in code.chunks(PAGE) {
        cd.extend_from_slice(&digest(t, page));
    }
    cd
}

fn super_blob(blobs: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let head = 12 + 8 * blobs.len();
    let total = head + blobs.iter().map(|(_, b)| b.len()).sum::<usize>();
    let mut sb = Vec::with_capacity(total);
    sb.extend_from_slice(&be(crate::blob::SUPERBLOB));
    sb.extend_from_slice(&be(u32_of(total)));
    sb.extend_from_slice(&be(u32_of(blobs.len())));
    let mut off = head;
    for (slot, b) in blobs {
        sb.extend_from_slice(&be(*slot));
        sb.extend_from_slice(&be(u32_of(off)));
        off += b.len();
    }
    for (_, b) in blobs {
        sb.extend_from_slice(b);
    }
    sb
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![u8::try_from(n).unwrap_or(0)]
    } else {
        let bytes: Vec<u8> = (n as u64)
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        let mut v = vec![0x80 | u8::try_from(bytes.len()).unwrap_or(0)];
        v.extend(bytes);
        v
    }
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(body.len()));
    v.extend_from_slice(body);
    v
}

/// The embedded signature for `code` (the bytes up to the signature).
fn signature(code: &[u8], spec: &CodeSpec, id: &Identity<'_>, exec_limit: usize) -> Vec<u8> {
    let parts = Components {
        info_plist: spec.info_plist.clone(),
        requirements: blob(0xfade_0c01, &be(0)),
        code_resources: spec.code_resources.clone(),
        entitlements: spec.entitlements.as_ref().map(|d| {
            blob(
                ENTITLEMENTS,
                &plist::to_xml(&Value::Dictionary(d.clone())).unwrap_or_default(),
            )
        }),
        der_entitlements: spec
            .entitlements
            .as_ref()
            .map(|d| blob(DER_ENTITLEMENTS, &der_plist(&Value::Dictionary(d.clone())))),
    };
    let cd1 = code_directory(HashType::Sha1, code, spec, &parts, exec_limit);
    let cd2 = code_directory(HashType::Sha256, code, spec, &parts, exec_limit);
    let cdhash = |t: HashType, cd: &[u8]| {
        let mut d = t.digest(cd);
        d.truncate(20);
        d
    };
    let mut list = Dictionary::new();
    list.insert(
        "cdhashes",
        Value::Array(vec![
            Value::Data(cdhash(HashType::Sha1, &cd1)),
            Value::Data(cdhash(HashType::Sha256, &cd2)),
        ]),
    );
    let list = plist::to_xml(&Value::Dictionary(list)).unwrap_or_default();
    let pair = |oid: &[u8], d: Vec<u8>| der(0x30, &[der(0x06, oid), der(0x04, &d)].concat());
    let opts = CmsOptions {
        digest: DigestAlgorithm::Sha256,
        signing_time: id.signing_time,
        algorithm_protection: false,
        plain_rsa_encryption_oid: true,
        detached: true,
        extra_attributes: vec![
            (OID_CDHASHES_PLIST.to_vec(), vec![der(0x04, &list)]),
            (
                OID_CDHASHES_SET.to_vec(),
                vec![
                    pair(&OID_SHA1, HashType::Sha1.digest(&cd1)),
                    pair(&OID_SHA256, HashType::Sha256.digest(&cd2)),
                ],
            ),
        ],
    };
    let cms = sign_cms(&cd1, id.signer, id.chain, &opts);
    let mut blobs = vec![(0, cd1), (2, parts.requirements)];
    if let Some(e) = parts.entitlements {
        blobs.push((5, e));
    }
    if let Some(e) = parts.der_entitlements {
        blobs.push((7, e));
    }
    blobs.push((0x1000, cd2));
    blobs.push((0x10000, blob(crate::cms::CMS_WRAPPER, &cms)));
    super_blob(&blobs)
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
pub fn signed_thin(
    arch: Arch,
    code_len: usize,
    seed: u64,
    spec: &CodeSpec,
    id: &Identity<'_>,
) -> Vec<u8> {
    let text_end =
        (HEADER_64 + 2 * SEGMENT_64 + LC_CODE_SIGNATURE_SIZE + code_len).div_ceil(PAGE) * PAGE;
    // Reserve the signature's room before hashing: the header names it.
    let probe = signature(&vec![0; text_end], spec, id, text_end);
    let reserve = (probe.len() + 1024).div_ceil(16) * 16;
    let mut f = Vec::with_capacity(text_end + reserve);
    let (cpu, sub) = arch.cpu();
    for v in [
        0xfeed_facf_u32,
        cpu,
        sub,
        2,
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
    let sig = signature(&f, spec, id, text_end);
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
    id: &Identity<'_>,
) -> Vec<u8> {
    let thins: Vec<Vec<u8>> = archs
        .iter()
        .enumerate()
        .map(|(i, a)| signed_thin(*a, code_len, seed.wrapping_add(i as u64), spec, id))
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

/// Apple's iOS resource rules (version 1 `rules` and version 2 `rules2`).
fn rules() -> (Dictionary, Dictionary) {
    let rule = |weight: f64, flags: &[&str]| {
        let mut d = Dictionary::new();
        for f in flags {
            d.insert(*f, Value::Boolean(true));
        }
        d.insert("weight", Value::Real(weight));
        Value::Dictionary(d)
    };
    let mut v1 = Dictionary::new();
    v1.insert("^.*", Value::Boolean(true));
    v1.insert("^.*\\.lproj/", rule(1000.0, &["optional"]));
    v1.insert("^.*\\.lproj/locversion.plist$", rule(1100.0, &["omit"]));
    v1.insert("^Base\\.lproj/", rule(1010.0, &[]));
    v1.insert("^version.plist$", Value::Boolean(true));
    let mut v2 = Dictionary::new();
    v2.insert(".*\\.dSYM($|/)", rule(11.0, &[]));
    v2.insert("^", rule(20.0, &[]));
    v2.insert("^(.*/)?\\.DS_Store$", rule(2000.0, &["omit"]));
    v2.insert(
        "^(Frameworks|SharedFrameworks|PlugIns|Plug-ins|XPCServices|Helpers|MacOS|Library/(Automator|Spotlight|LoginItems))/",
        rule(10.0, &["nested"]),
    );
    v2.insert("^.*", Value::Boolean(true));
    v2.insert("^.*\\.lproj/", rule(1000.0, &["optional"]));
    v2.insert("^.*\\.lproj/locversion.plist$", rule(1100.0, &["omit"]));
    v2.insert("^Base\\.lproj/", rule(1010.0, &[]));
    v2.insert("^Info\\.plist$", rule(20.0, &["omit"]));
    v2.insert("^PkgInfo$", rule(20.0, &["omit"]));
    v2.insert("^[^/]+$", rule(10.0, &["nested"]));
    v2.insert("^embedded\\.provisionprofile$", rule(20.0, &[]));
    v2.insert("^version\\.plist$", rule(20.0, &[]));
    (v1, v2)
}

/// A version-2 CodeResources sealing `files` (bundle-relative path, bytes;
/// `None` bytes: a symlink whose target is given instead).
pub fn code_resources(files: &[(String, FileContent)]) -> Vec<u8> {
    let (rules1, rules2) = rules();
    let mut v1 = Dictionary::new();
    let mut v2 = Dictionary::new();
    for (path, content) in files {
        if path == "Info.plist" || path == "PkgInfo" || path.ends_with(".DS_Store") {
            continue;
        }
        match content {
            FileContent::Bytes(b) => {
                let sha1 = sha1::Sha1::digest(b).to_vec();
                let sha256 = sha2::Sha256::digest(b).to_vec();
                v1.insert(path.clone(), Value::Data(sha1.clone()));
                let mut d = Dictionary::new();
                d.insert("hash", Value::Data(sha1));
                d.insert("hash2", Value::Data(sha256));
                v2.insert(path.clone(), Value::Dictionary(d));
            }
            FileContent::Symlink(t) => {
                let mut d = Dictionary::new();
                d.insert("symlink", Value::String(t.clone()));
                v2.insert(path.clone(), Value::Dictionary(d));
            }
        }
    }
    let mut root = Dictionary::new();
    root.insert("files", Value::Dictionary(v1));
    root.insert("files2", Value::Dictionary(v2));
    root.insert("rules", Value::Dictionary(rules1));
    root.insert("rules2", Value::Dictionary(rules2));
    plist::to_xml(&Value::Dictionary(root)).unwrap_or_default()
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
    /// Nested bundles, under `Frameworks/` or `PlugIns/` by kind.
    pub nested: Vec<BundleSpec>,
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
        }
    }
}

/// Signs a bundle inside-out; returns its files (bundle-relative path,
/// content), ready to be placed under `Payload/` or a parent bundle.
pub fn sign_bundle(spec: &BundleSpec, team: &str, id: &Identity<'_>) -> Vec<(String, FileContent)> {
    let mut files: Vec<(String, FileContent)> = Vec::new();
    for n in &spec.nested {
        let dir = if n.name.ends_with(".appex") {
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
    let resources = code_resources(&files);
    let code = CodeSpec {
        identifier: spec.bundle_id.clone(),
        team: team.to_owned(),
        entitlements: spec.entitlements.clone(),
        info_plist: Some(info.clone()),
        code_resources: Some(resources.clone()),
        main_binary: !spec.name.ends_with(".framework"),
    };
    let exe = signed_macho(
        &spec.archs,
        spec.code_len,
        spec.bundle_id.len() as u64,
        &code,
        id,
    );
    files.push(("Info.plist".into(), FileContent::Bytes(info)));
    files.push((spec.executable.clone(), FileContent::Bytes(exe)));
    files.push((
        "_CodeSignature/CodeResources".into(),
        FileContent::Bytes(resources),
    ));
    files
}

/// Signs an app and zips it as an `.ipa`; `deflate` says which entries
/// (by bundle-relative path) are deflated, the rest are stored.
pub fn build_ipa(
    spec: &BundleSpec,
    team: &str,
    id: &Identity<'_>,
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

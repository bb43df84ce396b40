//! Writing code signatures: a signing identity (certificate, chain, private
//! key), the CMS over the CodeDirectory with the hash-agility attributes,
//! and the SuperBlob of a Mach-O slice (SHA-1 CodeDirectory at slot 0,
//! SHA-256 at 0x1000, version 0x20400 with the exec segment, requirements,
//! entitlements and DER entitlements).

use chrono::{DateTime, Utc};
use provkit_profile::cms::{SignerSpec, attribute, build_signed_data, standard_attributes};
use provkit_profile::plist::{self, Dictionary, Value};
use provkit_profile::write::{integer, octets, oid as w_oid, seq, tlv};
use provkit_profile::{Certificate, DigestAlgorithm};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

use crate::entitlements::{DER_ENTITLEMENTS, ENTITLEMENTS};
use crate::signature::blob::{CODE_DIRECTORY, HashType, SUPERBLOB};
use crate::signature::cms::CMS_WRAPPER;

/// Why an identity could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not PEM or DER, or a key type this signer does not support.
    #[error("the private key is not an RSA (PKCS#1 or PKCS#8) or P-256 (PKCS#8) key: {0}")]
    Key(String),
    /// The certificate does not parse.
    #[error("the certificate does not parse: {0}")]
    Certificate(String),
    /// The key does not belong to the certificate.
    #[error("the private key does not match the certificate")]
    Mismatch,
}

/// A private key.
#[derive(Debug)]
#[non_exhaustive]
pub enum SigningKey {
    /// RSA, signing PKCS#1 v1.5 with SHA-256.
    Rsa(RsaKeyPair),
    /// ECDSA P-256 with SHA-256.
    P256(EcdsaKeyPair),
}

impl SigningKey {
    /// Reads a private key: PEM or DER, PKCS#8 (RSA or P-256) or PKCS#1 (RSA).
    ///
    /// # Errors
    /// [`KeyError::Key`] when none of these forms parses.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, KeyError> {
        let der = match provkit_profile::pem::decode(bytes, |label| label.ends_with("PRIVATE KEY"))
        {
            None => bytes.to_vec(),
            Some(pem) => pem.map_err(|e| KeyError::Key(e.to_string()))?.1,
        };
        if let Ok(k) = RsaKeyPair::from_pkcs8(&der) {
            return Ok(SigningKey::Rsa(k));
        }
        if let Ok(k) = RsaKeyPair::from_der(&der) {
            return Ok(SigningKey::Rsa(k));
        }
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &SystemRandom::new())
            .map(SigningKey::P256)
            .map_err(|e| KeyError::Key(e.to_string()))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|e| KeyError::Key(e.to_string()))?;
                Ok(sig)
            }
            SigningKey::P256(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| KeyError::Key(e.to_string())),
        }
    }

    fn public_key(&self) -> Vec<u8> {
        use ring::signature::KeyPair as _;
        match self {
            SigningKey::Rsa(k) => k.public().as_ref().to_vec(),
            SigningKey::P256(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// Signature algorithm identifier as Apple writes it.
    fn algorithm(&self) -> Vec<u8> {
        match self {
            // rsaEncryption, NULL
            SigningKey::Rsa(_) => seq(&[w_oid(RSA_ENCRYPTION), vec![0x05, 0x00]]),
            // ecdsa-with-SHA256
            SigningKey::P256(_) => seq(&[w_oid(ECDSA_SHA256)]),
        }
    }
}

/// Who signs: the leaf certificate (its OU is the team), the intermediates
/// to carry in the CMS, and the private key.
#[derive(Debug)]
pub struct Identity {
    /// The signing certificate.
    pub certificate: Certificate,
    /// Intermediates carried in the CMS (e.g. Apple WWDR).
    pub chain: Vec<Certificate>,
    /// The private key of `certificate`.
    pub key: SigningKey,
}

impl Identity {
    /// An identity from a certificate and its key (PEM or DER each).
    ///
    /// # Errors
    /// [`KeyError`] when either does not parse or they do not belong together.
    pub fn new(certificate: &[u8], key: &[u8], chain: Vec<Certificate>) -> Result<Self, KeyError> {
        let certificate = Certificate::from_pem_or_der(certificate)
            .map_err(|e| KeyError::Certificate(e.to_string()))?;
        let key = SigningKey::from_pem_or_der(key)?;
        let spki_key = certificate.public_key();
        // RSA: the SPKI bit string holds RSAPublicKey DER; ring's public key is that DER.
        // P-256: the bit string holds the uncompressed point; ring's public key is the point.
        if spki_key != key.public_key().as_slice() {
            return Err(KeyError::Mismatch);
        }
        Ok(Identity {
            certificate,
            chain,
            key,
        })
    }

    /// An identity from a PKCS#12 (`.p12`) file: its private key, the
    /// certificate that key belongs to, and the other certificates (not
    /// self-signed roots) as the chain.
    ///
    /// # Errors
    /// [`KeyError::Key`] for a wrong password or an unreadable file,
    /// [`KeyError::Mismatch`] when no certificate matches the key.
    #[cfg(feature = "pkcs12")]
    pub fn from_pkcs12(bytes: &[u8], password: &str) -> Result<Self, KeyError> {
        let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password)
            .map_err(|e| KeyError::Key(format!("PKCS#12: {e}")))?;
        let key = archive
            .keys
            .first()
            .ok_or_else(|| KeyError::Key("PKCS#12: no private key".into()))?;
        let certs: Vec<&[u8]> = archive.certs.iter().map(|c| c.cert.as_der()).collect();
        for (i, leaf) in certs.iter().enumerate() {
            if let Ok(mut id) = Identity::new(leaf, key.key.as_der(), Vec::new()) {
                id.chain = certs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .filter_map(|(_, c)| Certificate::from_der(c).ok())
                    .filter(|c| !c.is_self_issued())
                    .collect();
                return Ok(id);
            }
        }
        Err(KeyError::Mismatch)
    }

    /// The team: the certificate's OU.
    pub fn team(&self) -> Option<&str> {
        self.certificate.subject_ou()
    }
}

use provkit_profile::oid::{
    APPLE_CDHASHES_PLIST as CDHASHES_PLIST, APPLE_CDHASHES_SET as CDHASHES_SET,
    ECDSA_WITH_SHA256 as ECDSA_SHA256, RSA_ENCRYPTION, SHA1, SHA256,
};

/// A detached CMS SignedData over `cd0` (the slot-0 CodeDirectory) carrying
/// the cdhashes of every CodeDirectory (`cds`: hash type, raw blob), with
/// the signed attributes in DER order.
fn cms(
    cd0: &[u8],
    cds: &[(HashType, &[u8])],
    id: &Identity,
    signing_time: DateTime<Utc>,
) -> Result<Vec<u8>, KeyError> {
    let mut list = Dictionary::new();
    list.insert(
        "cdhashes",
        Value::Array(
            cds.iter()
                .map(|(t, cd)| {
                    let mut d = t.digest(cd);
                    d.truncate(20);
                    Value::Data(d)
                })
                .collect(),
        ),
    );
    let list = plist::to_xml(&Value::Dictionary(list)).map_err(|e| KeyError::Key(e.to_string()))?;
    let mut pairs: Vec<Vec<u8>> = cds
        .iter()
        .map(|(t, cd)| {
            let o = if *t == HashType::Sha1 { SHA1 } else { SHA256 };
            seq(&[w_oid(o), octets(&t.digest(cd))])
        })
        .collect();
    pairs.sort();
    let mut attrs = standard_attributes(cd0, DigestAlgorithm::Sha256, signing_time);
    attrs.push(attribute(CDHASHES_PLIST, &[octets(&list)]));
    attrs.push(attribute(CDHASHES_SET, &pairs));
    attrs.sort();
    let algorithm = id.key.algorithm();
    let chain: Vec<&Certificate> = id.chain.iter().collect();
    let signer = SignerSpec {
        certificate: &id.certificate,
        chain: &chain,
        digest: DigestAlgorithm::Sha256,
        signature_algorithm: &algorithm,
    };
    build_signed_data(cd0, true, &attrs, &signer, |m| id.key.sign(m))
}

/// What one executable's signature seals.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CodeSpec {
    /// The CodeDirectory identifier (the bundle id, or a dylib's name).
    pub identifier: String,
    /// The team id.
    pub team: String,
    /// The entitlements (written as both blobs), if any.
    pub entitlements: Option<Dictionary>,
    /// The raw Info.plist sealed in special slot 1.
    pub info_plist: Option<Vec<u8>>,
    /// The raw CodeResources sealed in special slot 3.
    pub code_resources: Option<Vec<u8>>,
    /// The main executable of an app or extension (exec segment flag).
    pub main_binary: bool,
    /// The CMS signingTime.
    pub signing_time: DateTime<Utc>,
}

impl CodeSpec {
    /// A signature for `identifier` of `team` at `signing_time`, sealing no
    /// entitlements, Info.plist or resources, not a main binary.
    pub fn new(
        identifier: impl Into<String>,
        team: impl Into<String>,
        signing_time: DateTime<Utc>,
    ) -> Self {
        CodeSpec {
            identifier: identifier.into(),
            team: team.into(),
            signing_time,
            ..CodeSpec::default()
        }
    }
}

pub(crate) fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

pub(crate) fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn blob(magic: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 8);
    b.extend_from_slice(&be(magic));
    b.extend_from_slice(&be(u32_of(body.len() + 8)));
    b.extend_from_slice(body);
    b
}

/// The exec-segment flags Apple's signer writes: `CS_EXECSEG_MAIN_BINARY`
/// (0x1) on a main executable, and the flags its entitlements ask for:
/// `get-task-allow` or `run-unsigned-code` allow unsigned pages (0x10),
/// `com.apple.private.cs.debugger` marks a debugger (0x20),
/// `dynamic-codesigning` allows JIT (0x40).
pub fn exec_segment_flags(spec: &CodeSpec) -> u64 {
    let mut flags = u64::from(spec.main_binary);
    if let Some(e) = &spec.entitlements {
        let on = |k: &str| e.get(k).and_then(Value::as_bool) == Some(true);
        if on("get-task-allow") || on("run-unsigned-code") {
            flags |= 0x10;
        }
        if on("com.apple.private.cs.debugger") {
            flags |= 0x20;
        }
        if on("dynamic-codesigning") {
            flags |= 0x40;
        }
    }
    flags
}

/// Page size of the CodeDirectories written.
pub const PAGE: usize = 4096;

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
    exec: (u64, u64),
    hash_pages: bool,
) -> Vec<u8> {
    use rayon::prelude::*;
    let hash_size = t.size();
    // Special slots up to the highest component present, as Apple writes them.
    let n_special = if parts.der_entitlements.is_some() {
        7
    } else if parts.entitlements.is_some() {
        5
    } else if parts.code_resources.is_some() {
        3
    } else {
        2
    };
    let n_code = code.len().div_ceil(PAGE);
    let ident_off = 88;
    let team_off = ident_off + spec.identifier.len() + 1;
    let hash_off = team_off + spec.team.len() + 1 + n_special * hash_size;
    let length = hash_off + n_code * hash_size;
    let mut cd = Vec::with_capacity(length);
    for v in [
        CODE_DIRECTORY,
        u32_of(length),
        0x20400,
        0,
        u32_of(hash_off),
        u32_of(ident_off),
        u32_of(n_special),
        u32_of(n_code),
        u32_of(code.len()),
    ] {
        cd.extend_from_slice(&be(v));
    }
    cd.extend_from_slice(&[
        if t == HashType::Sha256 { 32 } else { 20 },
        if t == HashType::Sha256 { 2 } else { 1 },
        0,
        12,
    ]);
    for v in [0, 0, u32_of(team_off), 0] {
        cd.extend_from_slice(&be(v));
    }
    for v in [0u64, exec.0, exec.1, exec_segment_flags(spec)] {
        cd.extend_from_slice(&v.to_be_bytes());
    }
    cd.extend_from_slice(spec.identifier.as_bytes());
    cd.push(0);
    cd.extend_from_slice(spec.team.as_bytes());
    cd.push(0);
    let zero = vec![0u8; hash_size];
    let slot = |c: &Option<Vec<u8>>| c.as_deref().map_or_else(|| zero.clone(), |b| t.stored(b));
    let specials = [
        slot(&parts.der_entitlements),
        zero.clone(),
        slot(&parts.entitlements),
        zero.clone(),
        slot(&parts.code_resources),
        t.stored(&parts.requirements),
        slot(&parts.info_plist),
    ];
    for s in &specials[7 - n_special..] {
        cd.extend_from_slice(s);
    }
    if hash_pages {
        let hashes: Vec<Vec<u8>> = code.par_chunks(PAGE).map(|p| t.stored(p)).collect();
        for h in hashes {
            cd.extend_from_slice(&h);
        }
    } else {
        cd.resize(length, 0);
    }
    cd
}

/// The embedded signature (a SuperBlob) for `code`, the bytes of a slice up
/// to its signature; `exec` is the exec segment (base, limit).
///
/// # Errors
/// [`KeyError`] when signing fails.
pub fn signature(
    code: &[u8],
    spec: &CodeSpec,
    id: &Identity,
    exec: (u64, u64),
) -> Result<Vec<u8>, KeyError> {
    build(code, spec, id, exec, true)
}

/// The length [`signature`] will have for `code`, without hashing its
/// pages (a signer reserves the room in the header before hashing). An
/// ECDSA signature may come out a few bytes shorter.
///
/// # Errors
/// [`KeyError`] when signing fails.
pub fn signature_len(
    code: &[u8],
    spec: &CodeSpec,
    id: &Identity,
    exec: (u64, u64),
) -> Result<usize, KeyError> {
    build(code, spec, id, exec, false).map(|s| s.len())
}

fn build(
    code: &[u8],
    spec: &CodeSpec,
    id: &Identity,
    exec: (u64, u64),
    hash_pages: bool,
) -> Result<Vec<u8>, KeyError> {
    let parts = Components {
        info_plist: spec.info_plist.clone(),
        requirements: blob(0xfade_0c01, &be(0)),
        code_resources: spec.code_resources.clone(),
        entitlements: spec
            .entitlements
            .as_ref()
            .map(|d| plist::to_xml(&Value::Dictionary(d.clone())).map(|x| blob(ENTITLEMENTS, &x)))
            .transpose()
            .map_err(|e| KeyError::Key(e.to_string()))?,
        der_entitlements: spec
            .entitlements
            .as_ref()
            .map(|d| blob(DER_ENTITLEMENTS, &der_entitlements(d))),
    };
    let (cd1, cd2) = rayon::join(
        || code_directory(HashType::Sha1, code, spec, &parts, exec, hash_pages),
        || code_directory(HashType::Sha256, code, spec, &parts, exec, hash_pages),
    );
    let cms = cms(
        &cd1,
        &[(HashType::Sha1, &cd1), (HashType::Sha256, &cd2)],
        id,
        spec.signing_time,
    )?;
    let mut blobs = vec![(0u32, cd1), (2, parts.requirements)];
    if let Some(e) = parts.entitlements {
        blobs.push((5, e));
    }
    if let Some(e) = parts.der_entitlements {
        blobs.push((7, e));
    }
    blobs.push((0x1000, cd2));
    blobs.push((0x10000, blob(CMS_WRAPPER, &cms)));
    let head = 12 + 8 * blobs.len();
    let total = head + blobs.iter().map(|(_, b)| b.len()).sum::<usize>();
    let mut sb = Vec::with_capacity(total);
    for v in [SUPERBLOB, u32_of(total), u32_of(blobs.len())] {
        sb.extend_from_slice(&be(v));
    }
    let mut off = head;
    for (slot, b) in &blobs {
        sb.extend_from_slice(&be(*slot));
        sb.extend_from_slice(&be(u32_of(off)));
        off += b.len();
    }
    for (_, b) in &blobs {
        sb.extend_from_slice(b);
    }
    Ok(sb)
}

/// The DER entitlements payload: `[APPLICATION 16] { INTEGER 1, dict }`.
pub fn der_entitlements(d: &Dictionary) -> Vec<u8> {
    tlv(
        0x70,
        &[integer(&[1]), plist::to_der(&Value::Dictionary(d.clone()))].concat(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_plist_round_trips_through_the_reader() {
        let mut d = Dictionary::new();
        d.insert("b", Value::Boolean(true));
        d.insert(
            "a",
            Value::Array(vec![Value::String("x".into()), Value::Integer(-5)]),
        );
        let back = plist::parse_der(&der_entitlements(&d)).unwrap();
        let Value::Dictionary(back) = back else {
            panic!("dict")
        };
        assert_eq!(back.get("a"), d.get("a"));
        assert_eq!(back.get("b"), d.get("b"));
    }
}

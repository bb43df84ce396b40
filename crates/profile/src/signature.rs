//! Signature checks over raw bytes: RSASSA-PKCS1-v1_5 with SHA-1, SHA-256,
//! SHA-384 and SHA-512, and ECDSA over P-256 and P-384, through `aws-lc-rs`.
//!
//! Public keys are prepared once per process: the same few keys sign every
//! profile (Apple's profile signer) and every intermediate, and preparing an
//! RSA-2048 key (parsing it, its Montgomery constants) costs about 2.7 µs of
//! a 20.6 µs verification (measured 2026-12-06).
//! A prepared key is a pure function of the key's bytes and the algorithm,
//! so a cached one can only be reused for exactly the same bytes.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use aws_lc_rs::signature::{self as rs, ParsedPublicKey, VerificationAlgorithm};

use crate::x509::{Certificate, DigestAlgorithm, KeyKind, SignatureAlgorithm};

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The algorithm, key type or key size is not one this crate verifies.
    #[error("unsupported signature algorithm: {0}")]
    Unsupported(String),
    /// The signature does not match the key and message.
    #[error("signature does not verify")]
    Invalid,
}

fn pick(
    kind: KeyKind,
    alg: &SignatureAlgorithm,
    digest: Option<DigestAlgorithm>,
) -> Result<&'static dyn VerificationAlgorithm, SignatureError> {
    use DigestAlgorithm::{Sha1, Sha256, Sha384, Sha512};
    let unsupported = || SignatureError::Unsupported(format!("{alg:?} with a {kind:?} key"));
    let hash = match alg {
        SignatureAlgorithm::RsaPkcs1(h) | SignatureAlgorithm::Ecdsa(h) => *h,
        SignatureAlgorithm::RsaEncryption => digest.ok_or_else(unsupported)?,
        SignatureAlgorithm::Unknown(_) => return Err(unsupported()),
    };
    let is_rsa_alg = !matches!(alg, SignatureAlgorithm::Ecdsa(_));
    // An RSA signature cannot come from an EC key, nor the reverse.
    let is_rsa_key = matches!(kind, KeyKind::Rsa(_));
    if kind != KeyKind::Unsupported && is_rsa_alg != is_rsa_key {
        return Err(SignatureError::Invalid);
    }
    Ok(match (kind, is_rsa_alg, hash) {
        (KeyKind::Rsa(bits), true, Sha1) if bits >= 2048 => {
            &rs::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        (KeyKind::Rsa(bits), true, Sha256) if bits >= 2048 => &rs::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa(_), true, Sha256) => &rs::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        (KeyKind::Rsa(bits), true, Sha384) if bits >= 2048 => &rs::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa(bits), true, Sha512) if bits >= 2048 => &rs::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::Rsa(_), true, Sha512) => &rs::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        (KeyKind::EcP256, false, Sha256) => &rs::ECDSA_P256_SHA256_ASN1,
        (KeyKind::EcP256, false, Sha384) => &rs::ECDSA_P256_SHA384_ASN1,
        (KeyKind::EcP384, false, Sha384) => &rs::ECDSA_P384_SHA384_ASN1,
        (KeyKind::EcP384, false, Sha256) => &rs::ECDSA_P384_SHA256_ASN1,
        _ => return Err(unsupported()),
    })
}

/// How many prepared keys the process keeps before it starts afresh.
const KEY_CACHE_CAPACITY: usize = 1024;

/// Prepared keys by algorithm (its address: each is a distinct static),
/// then by the key's bytes, compared in full (looked up without a copy).
type PreparedKeys = HashMap<usize, HashMap<Box<[u8]>, Arc<ParsedPublicKey>>>;

/// Prepared public keys, shared by every verifier in the process. Keys that
/// do not parse are not kept: they are refused again each time.
static KEYS: LazyLock<Mutex<PreparedKeys>> = LazyLock::new(Mutex::default);

/// Forgets every prepared key, so the next verification is as cold as the
/// first of a process (for benchmarks).
pub(crate) fn forget_prepared_keys() {
    KEYS.lock().unwrap_or_else(PoisonError::into_inner).clear();
}

/// The prepared form of `key` for `algorithm`, from the cache or made now.
fn prepared(
    algorithm: &'static dyn VerificationAlgorithm,
    key: &[u8],
) -> Result<Arc<ParsedPublicKey>, SignatureError> {
    let address = std::ptr::from_ref(algorithm).cast::<()>() as usize;
    if let Some(hit) = KEYS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&address)
        .and_then(|keys| keys.get(key))
    {
        return Ok(Arc::clone(hit));
    }
    // A key the algorithm rejects (wrong size, malformed) fails the signature.
    let parsed =
        Arc::new(ParsedPublicKey::new(algorithm, key).map_err(|_| SignatureError::Invalid)?);
    let mut all = KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    if all.values().map(HashMap::len).sum::<usize>() >= KEY_CACHE_CAPACITY {
        all.clear();
    }
    all.entry(address)
        .or_default()
        .insert(key.into(), Arc::clone(&parsed));
    Ok(parsed)
}

/// Verifies `signature` over `message` with the certificate's public key.
///
/// `digest` supplies the hash when `alg` is plain `rsaEncryption` (as Apple
/// writes in CMS SignerInfo).
pub(crate) fn verify_with(
    signer: &Certificate,
    alg: &SignatureAlgorithm,
    digest: Option<DigestAlgorithm>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let algorithm = pick(signer.key_kind(), alg, digest)?;
    prepared(algorithm, signer.public_key())?
        .verify_sig(message, signature)
        .map_err(|_| SignatureError::Invalid)
}

/// Verifies that `issuer` signed `child`.
pub(crate) fn verify_issued_by(
    child: &Certificate,
    issuer: &Certificate,
) -> Result<(), SignatureError> {
    verify_with(
        issuer,
        child.signature_algorithm(),
        None,
        child.tbs_der(),
        child.signature(),
    )
}

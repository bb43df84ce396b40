//! Signature checks over raw bytes: RSASSA-PKCS1-v1_5 with SHA-1, SHA-256,
//! SHA-384 and SHA-512, and ECDSA over P-256 and P-384, through `ring`.

use ring::signature::{self as rs, VerificationAlgorithm};

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
    rs::UnparsedPublicKey::new(algorithm, signer.public_key())
        .verify(message, signature)
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

//! Object identifiers as their encoded DER bodies (the bytes after the tag
//! and length), so that comparing one is a byte comparison: the one list of
//! OIDs for the workspace (the CMS and X.509 readers here, the code-signature
//! reader and signer in provkit-codesign).

// PKCS #7 / CMS (RFC 5652).
/// id-signedData: 1.2.840.113549.1.7.2.
pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// id-data: 1.2.840.113549.1.7.1.
pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// id-envelopedData: 1.2.840.113549.1.7.3.
pub const ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
/// id-encryptedData: 1.2.840.113549.1.7.6.
pub const ENCRYPTED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];

// Signed attributes (PKCS #9, RFC 6211).
/// id-contentType: 1.2.840.113549.1.9.3.
pub const ATTR_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
/// id-messageDigest: 1.2.840.113549.1.9.4.
pub const ATTR_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// id-signingTime: 1.2.840.113549.1.9.5.
pub const ATTR_SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
/// id-aa-CMSAlgorithmProtection: 1.2.840.113549.1.9.52.
pub const ATTR_ALGORITHM_PROTECTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x34];

// Digest algorithms.
/// id-sha1: 1.3.14.3.2.26.
pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// id-sha256: 2.16.840.1.101.3.4.2.1.
pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-sha384: 2.16.840.1.101.3.4.2.2.
pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
/// id-sha512: 2.16.840.1.101.3.4.2.3.
pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

// Signature and key algorithms.
/// rsaEncryption: 1.2.840.113549.1.1.1.
pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// sha1WithRSAEncryption: 1.2.840.113549.1.1.5.
pub const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
/// sha256WithRSAEncryption: 1.2.840.113549.1.1.11.
pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// sha384WithRSAEncryption: 1.2.840.113549.1.1.12.
pub const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
/// sha512WithRSAEncryption: 1.2.840.113549.1.1.13.
pub const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
/// id-ecPublicKey: 1.2.840.10045.2.1.
pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// ecdsa-with-SHA256: 1.2.840.10045.4.3.2.
pub const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// ecdsa-with-SHA384: 1.2.840.10045.4.3.3.
pub const ECDSA_WITH_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// secp256r1 (P-256): 1.2.840.10045.3.1.7.
pub const CURVE_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1 (P-384): 1.3.132.0.34.
pub const CURVE_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

// Names (X.520).
/// id-at-commonName: 2.5.4.3.
pub const CN: &[u8] = &[0x55, 0x04, 0x03];
/// id-at-organizationName: 2.5.4.10.
pub const O: &[u8] = &[0x55, 0x04, 0x0a];
/// id-at-organizationalUnitName: 2.5.4.11.
pub const OU: &[u8] = &[0x55, 0x04, 0x0b];
/// userId (0.9.2342.19200300.100.1.1): 0.9.2342.19200300.100.1.1.
pub const UID: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];

// Certificate extensions (RFC 5280).
/// id-ce-subjectKeyIdentifier: 2.5.29.14.
pub const EXT_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
/// id-ce-keyUsage: 2.5.29.15.
pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// id-ce-basicConstraints: 2.5.29.19.
pub const EXT_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// id-ce-certificatePolicies: 2.5.29.32.
pub const EXT_CERT_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
/// id-ce-authorityKeyIdentifier: 2.5.29.35.
pub const EXT_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
/// id-ce-extKeyUsage: 2.5.29.37.
pub const EXT_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// id-ce-cRLDistributionPoints: 2.5.29.31.
pub const EXT_CRL_DISTRIBUTION: &[u8] = &[0x55, 0x1d, 0x1f];

/// Apple's certificate extension arc 1.2.840.113635.100.6: developer and
/// distribution markers (for example 100.6.1.2, 100.6.1.4), which Apple marks
/// critical and which the device's policy, not a generic verifier, interprets.
pub const APPLE_CERT_EXT_ARC: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x06];

/// Apple's CMS signed attribute holding the CodeDirectory hashes as a plist
/// (`cdhashes`): 1.2.840.113635.100.9.1.
pub const APPLE_CDHASHES_PLIST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x09, 0x01];
/// Apple's CMS signed attribute holding the CodeDirectory hashes as a SET of
/// (digest algorithm, digest) pairs: 1.2.840.113635.100.9.2.
pub const APPLE_CDHASHES_SET: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x09, 0x02];

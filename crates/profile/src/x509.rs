//! X.509 certificates (RFC 5280 §4.1), read zero-copy from their DER and kept
//! with the original bytes, so that names compare by raw encoding and the
//! to-be-signed part is hashed exactly as it was signed.
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate TBSCertificate,
//!     signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
//! ```

use std::ops::Range;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use sha1::Digest as _;

use crate::der::{DerError, DerErrorKind, Reader, Tlv, hex, oid_to_string, tag};
use crate::oid;
use crate::time::{parse_generalized_time, parse_utc_time};

/// A hash function used by signatures and digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    pub(crate) fn from_oid(body: &[u8]) -> Option<Self> {
        match body {
            oid::SHA1 => Some(Self::Sha1),
            oid::SHA256 => Some(Self::Sha256),
            oid::SHA384 => Some(Self::Sha384),
            oid::SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The short lowercase name (`sha1`, `sha256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// A signature algorithm as named in an AlgorithmIdentifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with the given hash.
    RsaPkcs1(DigestAlgorithm),
    /// Plain `rsaEncryption`, as Apple writes in SignerInfo: the hash comes
    /// from the digest algorithm field.
    RsaEncryption,
    /// ECDSA with the given hash.
    Ecdsa(DigestAlgorithm),
    /// Anything else, by dotted OID.
    Unknown(String),
}

impl SignatureAlgorithm {
    pub(crate) fn from_oid(body: &[u8]) -> Self {
        match body {
            oid::SHA1_WITH_RSA => Self::RsaPkcs1(DigestAlgorithm::Sha1),
            oid::SHA256_WITH_RSA => Self::RsaPkcs1(DigestAlgorithm::Sha256),
            oid::SHA384_WITH_RSA => Self::RsaPkcs1(DigestAlgorithm::Sha384),
            oid::SHA512_WITH_RSA => Self::RsaPkcs1(DigestAlgorithm::Sha512),
            oid::RSA_ENCRYPTION => Self::RsaEncryption,
            oid::ECDSA_WITH_SHA256 => Self::Ecdsa(DigestAlgorithm::Sha256),
            oid::ECDSA_WITH_SHA384 => Self::Ecdsa(DigestAlgorithm::Sha384),
            other => Self::Unknown(oid_to_string(other)),
        }
    }
}

/// The kind of public key a certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyKind {
    /// RSA with the modulus size in bits.
    Rsa(usize),
    /// ECDSA over NIST P-256.
    EcP256,
    /// ECDSA over NIST P-384.
    EcP384,
    /// A key this crate cannot use.
    Unsupported,
}

/// basicConstraints (RFC 5280 §4.2.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BasicConstraints {
    /// Whether the subject is a CA.
    pub ca: bool,
    /// The maximum number of intermediates below this one, if constrained.
    pub path_len: Option<u64>,
}

/// keyCertSign, bit 5 of keyUsage (RFC 5280 §4.2.1.3) counted from the most
/// significant bit of the first byte, in the first two bytes read big-endian.
const KEY_USAGE_CERT_SIGN: u16 = 0x0400;

/// A parsed X.509 certificate that keeps its DER.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    serial: Range<usize>,
    issuer: Range<usize>,
    subject: Range<usize>,
    key: Range<usize>,
    signature: Range<usize>,
    key_kind: KeyKind,
    signature_algorithm: SignatureAlgorithm,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    subject_names: OnceLock<NameParts>,
    issuer_cn: OnceLock<Option<String>>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<u16>,
    unknown_critical: Vec<String>,
    sha1: OnceLock<[u8; 20]>,
    sha256: OnceLock<[u8; 32]>,
}

#[derive(Debug, Clone, Default)]
struct NameParts {
    cn: Option<String>,
    ou: Option<String>,
    o: Option<String>,
    uid: Option<String>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject_cn", &self.subject_cn())
            .field("issuer_cn", &self.issuer_cn())
            .field("serial", &self.serial_hex())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

const CTX: &str = "Certificate";

fn algorithm_identifier<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DerError> {
    let mut alg = r.sequence()?;
    let oid = alg.oid()?;
    // Parameters (NULL, a curve OID, ...) are read by whoever needs them.
    while !alg.is_empty() {
        alg.read()?;
    }
    Ok(oid)
}

pub(crate) fn read_time(r: &mut Reader<'_>) -> Result<DateTime<Utc>, DerError> {
    let tlv = r.read()?;
    let parsed = match tlv.tag {
        tag::UTC_TIME => parse_utc_time(tlv.contents),
        tag::GENERALIZED_TIME => parse_generalized_time(tlv.contents),
        found => {
            return Err(tlv.err(
                CTX,
                DerErrorKind::UnexpectedTag {
                    expected: tag::UTC_TIME,
                    found,
                },
            ));
        }
    };
    parsed.ok_or_else(|| tlv.err(CTX, DerErrorKind::BadValue))
}

/// Decodes a directory string (UTF8String, PrintableString, IA5String,
/// TeletexString as Latin-1, BMPString as UTF-16BE).
pub(crate) fn directory_string(tlv: &Tlv<'_>) -> Option<String> {
    match tlv.tag {
        tag::UTF8_STRING | tag::PRINTABLE_STRING | tag::IA5_STRING => {
            std::str::from_utf8(tlv.contents).ok().map(str::to_owned)
        }
        tag::TELETEX_STRING => Some(tlv.contents.iter().map(|b| char::from(*b)).collect()),
        tag::BMP_STRING => {
            if !tlv.contents.len().is_multiple_of(2) {
                return None;
            }
            let units = tlv
                .contents
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

fn name_parts(name: &Tlv<'_>) -> Result<NameParts, DerError> {
    let mut rdns = name.reader(CTX);
    let mut parts = NameParts::default();
    while !rdns.is_empty() {
        let set = rdns.expect(tag::SET)?;
        let mut atvs = set.reader(CTX);
        while !atvs.is_empty() {
            let mut atv = atvs.sequence()?;
            let oid = atv.oid()?;
            let value = atv.read()?;
            let slot = match oid {
                oid::CN => &mut parts.cn,
                oid::OU => &mut parts.ou,
                oid::O => &mut parts.o,
                oid::UID => &mut parts.uid,
                _ => continue,
            };
            if slot.is_none() {
                *slot = directory_string(&value);
            }
        }
    }
    Ok(parts)
}

/// Walks a Name's RDNs without decoding the strings.
fn validate_name(name: &Tlv<'_>) -> Result<(), DerError> {
    let mut rdns = name.reader(CTX);
    while !rdns.is_empty() {
        let set = rdns.expect(tag::SET)?;
        let mut atvs = set.reader(CTX);
        while !atvs.is_empty() {
            let mut atv = atvs.sequence()?;
            atv.oid()?;
            atv.read()?;
        }
    }
    Ok(())
}

/// Decodes a validated Name's CN, OU, O and UID.
fn decode_name(der: &[u8]) -> NameParts {
    Reader::new(der, CTX)
        .read()
        .ok()
        .and_then(|tlv| name_parts(&tlv).ok())
        .unwrap_or_default()
}

fn range_of(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

fn public_key(spki: Tlv<'_>) -> Result<(KeyKind, &[u8]), DerError> {
    let mut r = spki.reader(CTX);
    let mut alg = r.sequence()?;
    let alg_oid = alg.oid()?;
    let curve = if alg_oid == oid::EC_PUBLIC_KEY {
        Some(alg.oid()?)
    } else {
        None
    };
    let bits = r.expect(tag::BIT_STRING)?;
    let key = match bits.contents.split_first() {
        Some((0, key)) => key,
        _ => return Err(bits.err(CTX, DerErrorKind::BadValue)),
    };
    let kind = match (alg_oid, curve) {
        (oid::RSA_ENCRYPTION, _) => {
            // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
            let mut k = Reader::new(key, CTX);
            let mut seq = k.sequence()?;
            let n = seq.expect(tag::INTEGER)?;
            let significant = n.contents.iter().skip_while(|b| **b == 0).count();
            KeyKind::Rsa(significant * 8)
        }
        (oid::EC_PUBLIC_KEY, Some(oid::CURVE_P256)) => KeyKind::EcP256,
        (oid::EC_PUBLIC_KEY, Some(oid::CURVE_P384)) => KeyKind::EcP384,
        _ => KeyKind::Unsupported,
    };
    Ok((kind, key))
}

impl Certificate {
    /// Parses one DER certificate, copying its bytes.
    ///
    /// # Errors
    /// A [`DerError`] naming the offset of the first malformed element,
    /// including trailing bytes after the certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, DerError> {
        let mut c = Self::parse(der)?;
        c.der = der.to_vec();
        Ok(c)
    }

    /// Like [`Certificate::from_der`], taking ownership of the bytes instead
    /// of copying them.
    ///
    /// # Errors
    /// As [`Certificate::from_der`].
    pub fn from_der_vec(der: Vec<u8>) -> Result<Self, DerError> {
        let mut c = Self::parse(&der)?;
        c.der = der;
        Ok(c)
    }

    /// Parses; the caller stores the bytes the ranges refer to.
    fn parse(der: &[u8]) -> Result<Self, DerError> {
        let mut top = Reader::new(der, CTX);
        let cert = top.expect(tag::SEQUENCE)?;
        top.finish()?;
        let mut r = cert.reader(CTX);
        let tbs = r.expect(tag::SEQUENCE)?;
        let sig_alg_oid = algorithm_identifier(&mut r)?;
        let sig_bits = r.expect(tag::BIT_STRING)?;
        r.finish()?;
        let signature = match sig_bits.contents.split_first() {
            Some((0, s)) => s,
            _ => return Err(sig_bits.err(CTX, DerErrorKind::BadValue)),
        };

        let mut t = tbs.reader(CTX);
        if let Some(v) = t.optional(tag::CTX0)? {
            let mut vr = v.reader(CTX);
            let version = vr.small_uint()?;
            if version > 2 {
                return Err(v.err(CTX, DerErrorKind::BadValue));
            }
        }
        let serial = t.expect(tag::INTEGER)?;
        if serial.contents.is_empty() {
            return Err(serial.err(CTX, DerErrorKind::BadValue));
        }
        let _inner_sig_alg = algorithm_identifier(&mut t)?;
        let issuer = t.expect(tag::SEQUENCE)?;
        let mut validity = t.sequence()?;
        let not_before = read_time(&mut validity)?;
        let not_after = read_time(&mut validity)?;
        validity.finish()?;
        let subject = t.expect(tag::SEQUENCE)?;
        let spki = t.expect(tag::SEQUENCE)?;
        let (key_kind, key) = public_key(spki)?;
        let _ = t.optional(0x81)?;
        let _ = t.optional(0x82)?;
        let mut basic_constraints = None;
        let mut key_usage = None;
        let mut unknown_critical = Vec::new();
        if let Some(exts) = t.optional(tag::CTX3)? {
            let mut er = exts.reader(CTX);
            let mut list = er.sequence()?;
            er.finish()?;
            while !list.is_empty() {
                let mut ext = list.sequence()?;
                let ext_oid = ext.oid()?;
                let critical = match ext.optional(tag::BOOLEAN)? {
                    Some(b) => b.contents.first().is_some_and(|v| *v != 0),
                    None => false,
                };
                let value = ext.expect(tag::OCTET_STRING)?;
                ext.finish()?;
                match ext_oid {
                    oid::EXT_BASIC_CONSTRAINTS => {
                        let mut vr = value.reader(CTX);
                        let mut seq = vr.sequence()?;
                        let ca = match seq.optional(tag::BOOLEAN)? {
                            Some(b) => b.contents.first().is_some_and(|v| *v != 0),
                            None => false,
                        };
                        let path_len = if seq.is_empty() {
                            None
                        } else {
                            Some(seq.small_uint()?)
                        };
                        basic_constraints = Some(BasicConstraints { ca, path_len });
                    }
                    oid::EXT_KEY_USAGE => {
                        let mut vr = value.reader(CTX);
                        let bits = vr.expect(tag::BIT_STRING)?;
                        let b = bits.contents;
                        let hi = b.get(1).copied().unwrap_or(0);
                        let lo = b.get(2).copied().unwrap_or(0);
                        key_usage = Some(u16::from_be_bytes([hi, lo]));
                    }
                    oid::EXT_SUBJECT_KEY_ID
                    | oid::EXT_AUTHORITY_KEY_ID
                    | oid::EXT_EXT_KEY_USAGE
                    | oid::EXT_CERT_POLICIES
                    | oid::EXT_CRL_DISTRIBUTION => {}
                    other if other.starts_with(oid::APPLE_CERT_EXT_ARC) => {}
                    other => {
                        if critical {
                            unknown_critical.push(oid_to_string(other));
                        }
                    }
                }
            }
        }
        t.finish()?;

        // Names are checked now and decoded into strings on first use.
        validate_name(&subject)?;
        validate_name(&issuer)?;
        Ok(Certificate {
            tbs: range_of(der, tbs.raw),
            serial: range_of(der, serial.contents),
            issuer: range_of(der, issuer.raw),
            subject: range_of(der, subject.raw),
            key: range_of(der, key),
            signature: range_of(der, signature),
            key_kind,
            signature_algorithm: SignatureAlgorithm::from_oid(sig_alg_oid),
            not_before,
            not_after,
            subject_names: OnceLock::new(),
            issuer_cn: OnceLock::new(),
            basic_constraints,
            key_usage,
            unknown_critical,
            sha1: OnceLock::new(),
            sha256: OnceLock::new(),
            der: Vec::new(),
        })
    }

    /// Parses a certificate from DER, or from PEM (`-----BEGIN CERTIFICATE-----`).
    ///
    /// # Errors
    /// A [`DerError`]; PEM whose base64 is invalid reports the offending offset
    /// with [`DerErrorKind::BadValue`].
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, DerError> {
        match crate::pem::decode(bytes, |label| label == "CERTIFICATE") {
            None => Self::from_der(bytes),
            Some(pem) => Self::from_der_vec(pem?.1),
        }
    }

    fn names(&self) -> &NameParts {
        self.subject_names
            .get_or_init(|| decode_name(self.subject_der()))
    }

    /// The certificate's DER encoding, as it was read.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The to-be-signed part, exactly as signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }
    /// The serial number's INTEGER contents (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        &self.der[self.serial.clone()]
    }
    /// The serial number in lowercase hex, leading zero byte removed.
    pub fn serial_hex(&self) -> String {
        let s = self.serial();
        let s = if s.len() > 1 && s[0] == 0 { &s[1..] } else { s };
        hex(s)
    }
    /// The issuer Name's raw DER.
    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer.clone()]
    }
    /// The subject Name's raw DER.
    pub fn subject_der(&self) -> &[u8] {
        &self.der[self.subject.clone()]
    }
    /// The public key bytes: an RSAPublicKey DER or an uncompressed EC point.
    pub fn public_key(&self) -> &[u8] {
        &self.der[self.key.clone()]
    }
    /// The kind and size of the public key.
    pub fn key_kind(&self) -> KeyKind {
        self.key_kind
    }
    /// The certificate's signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.der[self.signature.clone()]
    }
    /// The algorithm the issuer signed this certificate with.
    pub fn signature_algorithm(&self) -> &SignatureAlgorithm {
        &self.signature_algorithm
    }
    /// Start of the validity period.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }
    /// End of the validity period.
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }
    /// Whether `at` lies within the validity period (both ends inclusive).
    pub fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        self.not_before <= at && at <= self.not_after
    }
    /// Subject common name.
    pub fn subject_cn(&self) -> Option<&str> {
        self.names().cn.as_deref()
    }
    /// Subject organisational unit: the team identifier on Apple developer certificates.
    pub fn subject_ou(&self) -> Option<&str> {
        self.names().ou.as_deref()
    }
    /// Subject organisation.
    pub fn subject_o(&self) -> Option<&str> {
        self.names().o.as_deref()
    }
    /// Subject user id (0.9.2342.19200300.100.1.1), which Apple sets to the
    /// certificate's identifier.
    pub fn subject_uid(&self) -> Option<&str> {
        self.names().uid.as_deref()
    }
    /// Issuer common name.
    pub fn issuer_cn(&self) -> Option<&str> {
        self.issuer_cn
            .get_or_init(|| decode_name(self.issuer_der()).cn)
            .as_deref()
    }
    /// basicConstraints, when present.
    pub fn basic_constraints(&self) -> Option<BasicConstraints> {
        self.basic_constraints
    }
    /// Whether keyUsage, when present, allows signing certificates.
    pub fn may_sign_certificates(&self) -> bool {
        self.key_usage
            .is_none_or(|ku| ku & KEY_USAGE_CERT_SIGN != 0)
    }
    /// Critical extensions this crate does not understand, as dotted OIDs.
    pub fn unknown_critical_extensions(&self) -> &[String] {
        &self.unknown_critical
    }
    /// Whether subject and issuer are the same name.
    pub fn is_self_issued(&self) -> bool {
        self.subject_der() == self.issuer_der()
    }
    /// SHA-1 fingerprint of the DER (computed once, on first use).
    pub fn sha1_fingerprint(&self) -> [u8; 20] {
        *self
            .sha1
            .get_or_init(|| sha1::Sha1::digest(&self.der).into())
    }
    /// SHA-256 fingerprint of the DER (computed once, on first use).
    pub fn sha256_fingerprint(&self) -> [u8; 32] {
        *self
            .sha256
            .get_or_init(|| sha2::Sha256::digest(&self.der).into())
    }
}

/// Serialises the facts an admin needs: names, team, serial, dates, fingerprints.
impl Serialize for Certificate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Certificate", 9)?;
        st.serialize_field("subject_cn", &self.subject_cn())?;
        st.serialize_field("team", &self.subject_ou())?;
        st.serialize_field("organization", &self.subject_o())?;
        st.serialize_field("issuer_cn", &self.issuer_cn())?;
        st.serialize_field("serial", &self.serial_hex())?;
        st.serialize_field(
            "not_before",
            &self
                .not_before
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )?;
        st.serialize_field(
            "not_after",
            &self
                .not_after
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )?;
        st.serialize_field("sha1", &hex(&self.sha1_fingerprint()))?;
        st.serialize_field("sha256", &hex(&self.sha256_fingerprint()))?;
        st.end()
    }
}

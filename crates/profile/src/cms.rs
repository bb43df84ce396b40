//! CMS SignedData (RFC 5652 §5), read from DER, or from BER where Apple's
//! code signatures use indefinite lengths.
//!
//! The signed attributes are kept exactly as stored (RFC 5652 §5.4: the
//! signature covers their DER with the `[0]` tag replaced by SET OF), because
//! Apple writes some sets in non-canonical order and re-encoding breaks them.
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
//! SignedData ::= SEQUENCE { version INTEGER, digestAlgorithms SET OF AlgorithmIdentifier,
//!     encapContentInfo EncapsulatedContentInfo, certificates [0] IMPLICIT SET OF ... OPTIONAL,
//!     crls [1] IMPLICIT ... OPTIONAL, signerInfos SET OF SignerInfo }
//! ```

use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use crate::der::{DerError, DerErrorKind, Reader, oid_to_string, tag};
use crate::oid;
use crate::x509::{Certificate, DigestAlgorithm, SignatureAlgorithm, read_time};

/// Why bytes are not a usable CMS SignedData.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CmsError {
    /// The outer structure is not a DER ContentInfo.
    #[error("not a CMS ContentInfo: {0}")]
    NotContentInfo(DerError),
    /// A ContentInfo of another type (EnvelopedData means encrypted).
    #[error("CMS content type is {content_type}, not SignedData")]
    NotSignedData {
        /// Dotted OID of the content type found.
        content_type: String,
    },
    /// The SignedData is malformed.
    #[error("malformed SignedData: {0}")]
    Malformed(DerError),
    /// Bytes after the ContentInfo.
    #[error("{count} trailing bytes after the CMS structure, from byte {offset}")]
    TrailingBytes {
        /// Offset of the first trailing byte.
        offset: usize,
        /// How many bytes follow the structure.
        count: usize,
    },
    /// A certificate in the certificate set is malformed.
    #[error("certificate {index} of the CMS certificate set: {source}")]
    Certificate {
        /// Position in the set.
        index: usize,
        /// The parse error.
        source: DerError,
    },
    /// No SignerInfo.
    #[error("SignedData has no SignerInfo")]
    NoSigner,
}

/// How a SignerInfo names its certificate (RFC 5652 §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerIdentifier {
    /// The issuer's raw Name DER and the serial number's INTEGER contents.
    IssuerAndSerial {
        /// Raw issuer Name.
        issuer: Vec<u8>,
        /// Serial number contents.
        serial: Vec<u8>,
    },
    /// A subjectKeyIdentifier.
    SubjectKeyId(Vec<u8>),
}

/// One signed attribute, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Encoded OID body.
    pub oid: Vec<u8>,
    /// The attribute's values, each as raw DER.
    pub values: Vec<Vec<u8>>,
}

impl Attribute {
    /// The attribute type as a dotted OID.
    pub fn oid_string(&self) -> String {
        oid_to_string(&self.oid)
    }

    /// A short name for the well-known attribute types, else the dotted OID.
    pub fn name(&self) -> String {
        match self.oid.as_slice() {
            oid::ATTR_CONTENT_TYPE => "contentType".into(),
            oid::ATTR_SIGNING_TIME => "signingTime".into(),
            oid::ATTR_MESSAGE_DIGEST => "messageDigest".into(),
            _ => self.oid_string(),
        }
    }
}

/// A SignerInfo (RFC 5652 §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo {
    /// Which certificate signed.
    pub sid: SignerIdentifier,
    /// The digest algorithm, when known.
    pub digest_algorithm: Option<DigestAlgorithm>,
    /// The digest algorithm OID, dotted.
    pub digest_algorithm_oid: String,
    /// The signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// The signed attributes' DER re-tagged as SET OF (0x31): the bytes the
    /// signature covers, checked well-formed at parse time and read in place
    /// by the accessors below. `None` when there are no signed attributes.
    pub signed_attrs_der: Option<Vec<u8>>,
    /// The signature value.
    pub signature: Vec<u8>,
}

/// Visits each (type, values SET contents) of a stored signed-attribute SET.
fn each_attribute<'a>(
    der: &'a [u8],
    mut f: impl FnMut(&'a [u8], crate::der::Tlv<'a>) -> bool,
) -> Result<(), DerError> {
    let mut top = Reader::new(der, "SignedAttributes");
    let set = top.expect(tag::SET)?;
    let mut ar = set.reader("SignedAttributes");
    while !ar.is_empty() {
        let mut attr = ar.sequence()?;
        let oid = attr.oid()?;
        let values = attr.expect(tag::SET)?;
        attr.finish()?;
        let mut vr = values.reader("AttributeValue");
        while !vr.is_empty() {
            vr.read()?;
        }
        if !f(oid, values) {
            break;
        }
    }
    Ok(())
}

impl SignerInfo {
    /// The first value of the first attribute of this type, as raw DER.
    fn attribute(&self, oid: &[u8]) -> Option<&[u8]> {
        let der = self.signed_attrs_der.as_deref()?;
        let mut found = None;
        let _ = each_attribute(der, |o, values| {
            if o == oid {
                found = Reader::new(values.contents, "AttributeValue")
                    .read()
                    .ok()
                    .map(|t| t.raw);
                false
            } else {
                true
            }
        });
        found
    }

    /// The signed attributes in stored order (copied out).
    pub fn attributes(&self) -> Vec<Attribute> {
        let mut out = Vec::new();
        if let Some(der) = self.signed_attrs_der.as_deref() {
            let _ = each_attribute(der, |oid, values| {
                let mut vr = values.reader("AttributeValue");
                let mut vals = Vec::new();
                while let Ok(v) = vr.read() {
                    vals.push(v.raw.to_vec());
                }
                out.push(Attribute {
                    oid: oid.to_vec(),
                    values: vals,
                });
                true
            });
        }
        out
    }

    /// The messageDigest attribute's value.
    pub fn message_digest(&self) -> Option<&[u8]> {
        let v = self.attribute(oid::ATTR_MESSAGE_DIGEST)?;
        let mut r = Reader::new(v, "messageDigest");
        r.expect(tag::OCTET_STRING).ok().map(|t| t.contents)
    }

    /// The contentType attribute's value (encoded OID body).
    pub fn content_type_attr(&self) -> Option<&[u8]> {
        let v = self.attribute(oid::ATTR_CONTENT_TYPE)?;
        let mut r = Reader::new(v, "contentType");
        r.oid().ok()
    }

    /// The signingTime attribute.
    pub fn signing_time(&self) -> Option<DateTime<Utc>> {
        let v = self.attribute(oid::ATTR_SIGNING_TIME)?;
        read_time(&mut Reader::new(v, "signingTime")).ok()
    }

    /// The digest algorithm named by CMSAlgorithmProtection (RFC 6211), if present.
    pub fn protected_digest_algorithm(&self) -> Option<Option<DigestAlgorithm>> {
        let v = self.attribute(oid::ATTR_ALGORITHM_PROTECTION)?;
        let mut r = Reader::new(v, "CMSAlgorithmProtection");
        let parsed = (|| {
            let mut seq = r.sequence().ok()?;
            let mut alg = seq.sequence().ok()?;
            alg.oid().ok()
        })();
        Some(parsed.and_then(DigestAlgorithm::from_oid))
    }

    /// The names of the signed attributes, in stored order.
    pub fn attribute_names(&self) -> Vec<String> {
        self.attributes().iter().map(Attribute::name).collect()
    }
}

/// A parsed SignedData with owned parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedData {
    /// The encapsulated content type (encoded OID body).
    pub content_type: Vec<u8>,
    /// The attached content, `None` when detached.
    pub content: Option<Vec<u8>>,
    /// The certificate set's entries as stored (each a DER SEQUENCE, its
    /// framing checked), with the byte offset of each in the input.
    pub certificates_der: Vec<(usize, Vec<u8>)>,
    /// The certificates, decoded on first use (only verification needs them).
    certificates: OnceLock<Result<Vec<Certificate>, CmsError>>,
    /// The signers.
    pub signers: Vec<SignerInfo>,
}

const CTX: &str = "SignedData";

impl SignedData {
    /// Parses a DER ContentInfo holding SignedData; rejects trailing bytes.
    ///
    /// # Errors
    /// [`CmsError`] naming the structure and byte offset that failed.
    pub fn from_der(bytes: &[u8]) -> Result<Self, CmsError> {
        Self::parse(bytes, false)
    }

    /// Like [`SignedData::from_der`] but accepting BER indefinite lengths and
    /// constructed OCTET STRINGs, as found in Mach-O code signatures.
    ///
    /// # Errors
    /// [`CmsError`] naming the structure and byte offset that failed.
    pub fn from_ber(bytes: &[u8]) -> Result<Self, CmsError> {
        Self::parse(bytes, true)
    }

    fn parse(bytes: &[u8], ber: bool) -> Result<Self, CmsError> {
        let mut top = if ber {
            Reader::new_ber(bytes, "ContentInfo")
        } else {
            Reader::new(bytes, "ContentInfo")
        };
        let ci = top
            .expect(tag::SEQUENCE)
            .map_err(CmsError::NotContentInfo)?;
        if !top.is_empty() {
            return Err(CmsError::TrailingBytes {
                offset: top.offset(),
                count: bytes.len() - top.offset(),
            });
        }
        let mut ci = if ber {
            ci.ber_reader("ContentInfo")
        } else {
            ci.reader("ContentInfo")
        };
        let content_type = ci.oid().map_err(CmsError::NotContentInfo)?;
        if content_type != oid::SIGNED_DATA {
            return Err(CmsError::NotSignedData {
                content_type: oid_to_string(content_type),
            });
        }
        let explicit = ci.expect(tag::CTX0).map_err(CmsError::Malformed)?;
        ci.finish().map_err(CmsError::Malformed)?;
        let mut inner = if ber {
            explicit.ber_reader(CTX)
        } else {
            explicit.reader(CTX)
        };
        let sd = inner.sequence().map_err(CmsError::Malformed)?;
        inner.finish().map_err(CmsError::Malformed)?;
        Self::read_signed_data(sd, ber)
    }

    fn read_signed_data(mut r: Reader<'_>, ber: bool) -> Result<Self, CmsError> {
        let m = CmsError::Malformed;
        let _version = r.small_uint().map_err(m)?;
        let _digests = r.expect(tag::SET).map_err(m)?;
        let mut encap = r.sequence().map_err(m)?;
        let content_type = encap.oid().map_err(m)?.to_vec();
        let content = match encap.optional(tag::CTX0).map_err(m)? {
            None => None,
            Some(explicit) => {
                let mut er = if ber {
                    explicit.ber_reader(CTX)
                } else {
                    explicit.reader(CTX)
                };
                let os = er.read().map_err(m)?;
                er.finish().map_err(m)?;
                Some(octet_string(&os, ber)?)
            }
        };
        encap.finish().map_err(m)?;

        let mut certificates_der = Vec::new();
        if let Some(set) = r.optional(tag::CTX0).map_err(m)? {
            let mut cr = if ber {
                set.ber_reader(CTX)
            } else {
                set.reader(CTX)
            };
            while !cr.is_empty() {
                let c = cr.read().map_err(m)?;
                if c.tag != tag::SEQUENCE {
                    // Other certificate formats (attribute certificates) are skipped.
                    continue;
                }
                certificates_der.push((c.offset, c.raw.to_vec()));
            }
        }
        let _crls = r.optional(tag::CTX1).map_err(m)?;
        let signer_set = r.expect(tag::SET).map_err(m)?;
        r.finish().map_err(m)?;
        let mut sr = if ber {
            signer_set.ber_reader("SignerInfo")
        } else {
            signer_set.reader("SignerInfo")
        };
        let mut signers = Vec::new();
        while !sr.is_empty() {
            let si = sr.sequence().map_err(m)?;
            signers.push(signer_info(si)?);
        }
        if signers.is_empty() {
            return Err(CmsError::NoSigner);
        }
        Ok(SignedData {
            content_type,
            content,
            certificates_der,
            certificates: OnceLock::new(),
            signers,
        })
    }

    /// Whether the encapsulated content type is id-data.
    pub fn is_data(&self) -> bool {
        self.content_type == oid::DATA
    }

    /// The certificate a signer names, if the set holds it.
    /// The certificate set, decoded (once) on first use.
    ///
    /// # Errors
    /// [`CmsError::Certificate`] for the first entry that is not a certificate.
    pub fn certificates(&self) -> Result<&[Certificate], CmsError> {
        self.certificates
            .get_or_init(|| {
                self.certificates_der
                    .iter()
                    .enumerate()
                    .map(|(index, (offset, der))| {
                        Certificate::from_der_vec(der.clone()).map_err(|mut source| {
                            source.offset += offset;
                            CmsError::Certificate { index, source }
                        })
                    })
                    .collect()
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// The certificate a signer names, if the set holds it (and decodes).
    pub fn signer_certificate(&self, signer: &SignerInfo) -> Option<&Certificate> {
        self.certificates()
            .ok()?
            .iter()
            .find(|c| match &signer.sid {
                SignerIdentifier::IssuerAndSerial { issuer, serial } => {
                    c.issuer_der() == issuer.as_slice() && c.serial() == serial.as_slice()
                }
                SignerIdentifier::SubjectKeyId(_) => false,
            })
    }
}

/// An OCTET STRING's bytes; in BER, a constructed one is concatenated.
fn octet_string(os: &crate::der::Tlv<'_>, ber: bool) -> Result<Vec<u8>, CmsError> {
    match os.tag {
        tag::OCTET_STRING => Ok(os.contents.to_vec()),
        0x24 if ber => {
            let mut out = Vec::with_capacity(os.contents.len());
            let mut r = os.ber_reader("OCTET STRING");
            while !r.is_empty() {
                let part = r.read().map_err(CmsError::Malformed)?;
                out.extend_from_slice(&octet_string(&part, ber)?);
            }
            Ok(out)
        }
        found => Err(CmsError::Malformed(os.err(
            CTX,
            DerErrorKind::UnexpectedTag {
                expected: tag::OCTET_STRING,
                found,
            },
        ))),
    }
}

fn signer_info(mut r: Reader<'_>) -> Result<SignerInfo, CmsError> {
    let m = CmsError::Malformed;
    let _version = r.small_uint().map_err(m)?;
    let sid_tlv = r.read().map_err(m)?;
    let sid = match sid_tlv.tag {
        tag::SEQUENCE => {
            let mut ias = sid_tlv.reader("IssuerAndSerialNumber");
            let issuer = ias.expect(tag::SEQUENCE).map_err(m)?;
            let serial = ias.expect(tag::INTEGER).map_err(m)?;
            ias.finish().map_err(m)?;
            SignerIdentifier::IssuerAndSerial {
                issuer: issuer.raw.to_vec(),
                serial: serial.contents.to_vec(),
            }
        }
        tag::CTX0_PRIM => SignerIdentifier::SubjectKeyId(sid_tlv.contents.to_vec()),
        found => {
            return Err(m(sid_tlv.err(
                "SignerInfo",
                DerErrorKind::UnexpectedTag {
                    expected: tag::SEQUENCE,
                    found,
                },
            )));
        }
    };
    let mut dalg = r.sequence().map_err(m)?;
    let digest_oid = dalg.oid().map_err(m)?;
    let mut signed_attrs_der = None;
    if let Some(attrs) = r.optional(tag::CTX0).map_err(m)? {
        let mut der = attrs.raw.to_vec();
        der[0] = tag::SET;
        // Well-formed now; read in place later. Offsets in errors are relative to the attributes.
        each_attribute(&der, |_, _| true).map_err(|mut e| {
            e.offset += attrs.offset;
            m(e)
        })?;
        signed_attrs_der = Some(der);
    }
    let mut salg = r.sequence().map_err(m)?;
    let sig_oid = salg.oid().map_err(m)?;
    let signature = r.expect(tag::OCTET_STRING).map_err(m)?.contents.to_vec();
    let _unsigned = r.optional(tag::CTX1).map_err(m)?;
    r.finish().map_err(m)?;
    Ok(SignerInfo {
        sid,
        digest_algorithm: DigestAlgorithm::from_oid(digest_oid),
        // Known digests use a constant; only unknown ones are formatted.
        digest_algorithm_oid: match DigestAlgorithm::from_oid(digest_oid) {
            Some(DigestAlgorithm::Sha1) => "1.3.14.3.2.26".to_owned(),
            Some(DigestAlgorithm::Sha256) => "2.16.840.1.101.3.4.2.1".to_owned(),
            Some(DigestAlgorithm::Sha384) => "2.16.840.1.101.3.4.2.2".to_owned(),
            Some(DigestAlgorithm::Sha512) => "2.16.840.1.101.3.4.2.3".to_owned(),
            None => oid_to_string(digest_oid),
        },
        signature_algorithm: SignatureAlgorithm::from_oid(sig_oid),
        signed_attrs_der,
        signature,
    })
}

/// Whether a ContentInfo's type is EnvelopedData or EncryptedData.
pub(crate) fn is_encrypted_type(content_type: &str) -> bool {
    content_type == oid_to_string(oid::ENVELOPED_DATA)
        || content_type == oid_to_string(oid::ENCRYPTED_DATA)
}

/// Who signs a SignedData built by [`build_signed_data`].
#[derive(Debug, Clone, Copy)]
pub struct SignerSpec<'a> {
    /// The signing certificate (named by issuer and serial).
    pub certificate: &'a Certificate,
    /// More certificates to carry (intermediates).
    pub chain: &'a [&'a Certificate],
    /// The digest algorithm of the content and the signed attributes.
    pub digest: DigestAlgorithm,
    /// The signature AlgorithmIdentifier, as DER.
    pub signature_algorithm: &'a [u8],
}

/// One signed attribute: `SEQUENCE { type, SET OF values }`.
pub fn attribute(oid_body: &[u8], values: &[Vec<u8>]) -> Vec<u8> {
    use crate::write::{oid as w_oid, seq, set};
    seq(&[w_oid(oid_body), set(values)])
}

/// The attributes every signer writes, in this order: contentType (data),
/// signingTime, and the messageDigest of `content`.
pub fn standard_attributes(
    content: &[u8],
    digest: DigestAlgorithm,
    signing_time: DateTime<Utc>,
) -> Vec<Vec<u8>> {
    use crate::write::{octets, oid as w_oid, time};
    vec![
        attribute(oid::ATTR_CONTENT_TYPE, &[w_oid(oid::DATA)]),
        attribute(oid::ATTR_SIGNING_TIME, &[time(signing_time)]),
        attribute(oid::ATTR_MESSAGE_DIGEST, &[octets(&digest.digest(content))]),
    ]
}

/// The DER AlgorithmIdentifier of a digest algorithm (with NULL parameters).
pub fn digest_algorithm_der(d: DigestAlgorithm) -> Vec<u8> {
    use crate::write::{oid as w_oid, seq};
    let o = match d {
        DigestAlgorithm::Sha1 => oid::SHA1,
        DigestAlgorithm::Sha256 => oid::SHA256,
        DigestAlgorithm::Sha384 => oid::SHA384,
        DigestAlgorithm::Sha512 => oid::SHA512,
    };
    seq(&[w_oid(o), vec![0x05, 0x00]])
}

/// Builds a DER `ContentInfo` holding a SignedData with one signer:
/// `signed_attrs` are written in the order given (sort them for canonical
/// DER), `sign` signs their DER encoding; the content is embedded unless
/// `detached`.
///
/// # Errors
/// Whatever `sign` returns.
pub fn build_signed_data<E>(
    content: &[u8],
    detached: bool,
    signed_attrs: &[Vec<u8>],
    signer: &SignerSpec<'_>,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E> {
    use crate::write::{ctx, integer, octets, oid as w_oid, seq, set, tlv};
    let signed = set(signed_attrs);
    let signature = sign(&signed)?;
    let mut implicit = signed;
    implicit[0] = 0xa0;
    let cert = signer.certificate;
    let signer_info = seq(&[
        integer(&[1]),
        seq(&[cert.issuer_der().to_vec(), tlv(0x02, cert.serial())]),
        digest_algorithm_der(signer.digest),
        implicit,
        signer.signature_algorithm.to_vec(),
        octets(&signature),
    ]);
    let mut certs: Vec<u8> = cert.der().to_vec();
    for c in signer.chain {
        certs.extend_from_slice(c.der());
    }
    let encapsulated = if detached {
        seq(&[w_oid(oid::DATA)])
    } else {
        seq(&[w_oid(oid::DATA), ctx(0, &octets(content))])
    };
    let signed_data = seq(&[
        integer(&[1]),
        set(&[digest_algorithm_der(signer.digest)]),
        encapsulated,
        tlv(0xa0, &certs),
        set(&[signer_info]),
    ]);
    Ok(seq(&[w_oid(oid::SIGNED_DATA), ctx(0, &signed_data)]))
}

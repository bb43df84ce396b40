//! Verification at an explicit instant: the CMS signature, the chain to the
//! anchors, the profile's own dates, and the nested `DER-Encoded-Profile`.
//! Every problem found is reported, each with a stable code.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::cms::{SignedData, SignerInfo};
use crate::der::hex;
use crate::file::ProvisioningProfile;
use crate::plist::Value;
use crate::signature::{SignatureError, verify_with};
use crate::trust::{LinkCache, PathError, TrustAnchors, build_path};
use crate::x509::Certificate;

/// How much a finding matters: one type for the profile verifier's and the
/// app verifier's findings (provkit-codesign uses it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// The profile is not valid at the instant (a device would refuse it).
    Error,
    /// Worth knowing, but a device would still accept the profile (for
    /// example an expired signing certificate, which Apple's device policy
    /// ignores).
    Warning,
}

impl Severity {
    /// The stable lowercase word (`error`, `warning`), as JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding is about. The `as_str` codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingCode {
    /// The messageDigest attribute does not match the content.
    MessageDigestMismatch,
    /// Signed attributes without a messageDigest.
    MissingMessageDigest,
    /// The contentType attribute differs from the encapsulated content type.
    ContentTypeMismatch,
    /// CMSAlgorithmProtection names another digest algorithm.
    AlgorithmProtectionMismatch,
    /// The signature over the signed attributes does not verify.
    SignatureInvalid,
    /// An algorithm or key this crate does not verify.
    UnsupportedAlgorithm,
    /// An entry of the CMS certificate set is not a certificate.
    CertificateMalformed,
    /// The signer's certificate is not in the CMS.
    SignerCertificateMissing,
    /// No path from the signer to a trust anchor.
    ChainUntrusted,
    /// A certificate in the path is not validly signed by its issuer.
    ChainSignatureInvalid,
    /// The path is longer than allowed.
    ChainTooLong,
    /// Building the path needed more signature checks than the budget allows
    /// (a certificate set crowded with look-alike issuers).
    ChainBudgetExceeded,
    /// An issuer in the path is not a CA (basicConstraints, keyUsage).
    IssuerNotCa,
    /// A certificate in the path has a critical extension not understood.
    UnknownCriticalExtension,
    /// A certificate of the signing chain has expired at the instant.
    CertificateExpired,
    /// A certificate of the signing chain is not yet valid at the instant.
    CertificateNotYetValid,
    /// The profile's ExpirationDate has passed.
    ProfileExpired,
    /// The profile's CreationDate is after the instant.
    ProfileNotYetValid,
    /// A DeveloperCertificates entry has expired: apps it signed no longer launch.
    DeveloperCertificateExpired,
    /// The nested DER-Encoded-Profile cannot be decoded.
    DerProfileMalformed,
    /// The nested DER-Encoded-Profile disagrees with the plist.
    DerProfileMismatch,
}

impl FindingCode {
    /// The stable kebab-case code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageDigestMismatch => "message-digest-mismatch",
            Self::MissingMessageDigest => "missing-message-digest",
            Self::ContentTypeMismatch => "content-type-mismatch",
            Self::AlgorithmProtectionMismatch => "algorithm-protection-mismatch",
            Self::SignatureInvalid => "signature-invalid",
            Self::UnsupportedAlgorithm => "unsupported-algorithm",
            Self::CertificateMalformed => "certificate-malformed",
            Self::SignerCertificateMissing => "signer-certificate-missing",
            Self::ChainUntrusted => "chain-untrusted",
            Self::ChainSignatureInvalid => "chain-signature-invalid",
            Self::ChainTooLong => "chain-too-long",
            Self::ChainBudgetExceeded => "chain-budget-exceeded",
            Self::IssuerNotCa => "issuer-not-ca",
            Self::UnknownCriticalExtension => "unknown-critical-extension",
            Self::CertificateExpired => "certificate-expired",
            Self::CertificateNotYetValid => "certificate-not-yet-valid",
            Self::ProfileExpired => "profile-expired",
            Self::ProfileNotYetValid => "profile-not-yet-valid",
            Self::DeveloperCertificateExpired => "developer-certificate-expired",
            Self::DerProfileMalformed => "der-profile-malformed",
            Self::DerProfileMismatch => "der-profile-mismatch",
        }
    }

    /// Whether the code means the file is not what its signer signed, or is
    /// not signed through a trusted chain (the integrity and trust errors);
    /// false for the dates (an expired profile is genuine) and for warnings.
    pub fn breaks_trust(self) -> bool {
        self.severity() == Severity::Error
            && !matches!(self, Self::ProfileExpired | Self::ProfileNotYetValid)
    }

    /// The severity this code always has.
    pub fn severity(self) -> Severity {
        match self {
            Self::CertificateExpired
            | Self::CertificateNotYetValid
            | Self::DeveloperCertificateExpired => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// Serialised as [`FindingCode::as_str`]: one spelling in text and JSON.
impl Serialize for FindingCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which signature a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Scope {
    /// The outer CMS signature and the plist.
    Profile,
    /// The nested `DER-Encoded-Profile`.
    DerProfile,
}

impl Scope {
    /// The stable kebab-case name (`profile`, `der-profile`), as JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::DerProfile => "der-profile",
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code.
    pub code: FindingCode,
    /// Error or warning.
    pub severity: Severity,
    /// Outer or nested signature.
    pub scope: Scope,
    /// The certificate concerned (subject common name), if any.
    pub certificate: Option<String>,
    /// A plain sentence.
    pub message: String,
}

/// A certificate of the verified path, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathEntry {
    /// Subject common name.
    pub subject: Option<String>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Serial number, hex.
    pub serial: String,
    /// Whether this is a trust anchor.
    pub anchor: bool,
}

/// The outcome of verifying one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The instant the checks were made at.
    pub at: DateTime<Utc>,
    /// True when no finding has [`Severity::Error`].
    pub valid: bool,
    /// Every problem found.
    pub findings: Vec<Finding>,
    /// The outer signature's signingTime.
    pub signing_time: Option<DateTime<Utc>>,
    /// The outer signature's certificate path, leaf first.
    pub path: Vec<PathEntry>,
}

impl Report {
    /// Whether any finding has this code.
    pub fn has(&self, code: FindingCode) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }
}

/// Verifies profiles against a set of trust anchors. Issuer links that
/// verified are cached once per process, so a new verifier is as fast as an
/// old one; share one across threads and calls, or make one per call.
#[derive(Debug)]
pub struct Verifier {
    anchors: TrustAnchors,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new(TrustAnchors::apple())
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn cn(c: &Certificate) -> String {
    c.subject_cn()
        .map_or_else(|| format!("serial {}", c.serial_hex()), str::to_owned)
}

struct Sink {
    scope: Scope,
    findings: Vec<Finding>,
}

impl Sink {
    fn push(&mut self, code: FindingCode, certificate: Option<&Certificate>, message: String) {
        self.findings.push(Finding {
            code,
            severity: code.severity(),
            scope: self.scope,
            certificate: certificate.map(cn),
            message,
        });
    }
}

impl Verifier {
    /// A verifier trusting these anchors.
    pub fn new(anchors: TrustAnchors) -> Self {
        Verifier { anchors }
    }

    /// Forgets the process's cached issuer links and prepared public keys,
    /// so the next verification pays every signature check and key
    /// preparation as the first one in a fresh process does.
    /// For benchmarks of cold verification; never needed for correctness.
    #[doc(hidden)]
    pub fn forget_cached_links() {
        LinkCache::shared().clear();
        crate::signature::forget_prepared_keys();
    }

    /// The anchors in use.
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Verifies a profile as of `at`.
    pub fn verify(&self, file: &ProvisioningProfile, at: DateTime<Utc>) -> Report {
        let mut sink = Sink {
            scope: Scope::Profile,
            findings: Vec::new(),
        };
        let sd = file.signed_data();
        let path =
            self.check_signed_data(sd, sd.content.as_deref().unwrap_or_default(), at, &mut sink);

        let p = file.profile();
        if p.is_expired(at) {
            sink.push(
                FindingCode::ProfileExpired,
                None,
                format!("the profile expired at {}", fmt_time(p.expiration_date)),
            );
        }
        if at < p.creation_date {
            sink.push(
                FindingCode::ProfileNotYetValid,
                None,
                format!(
                    "the profile is not valid before {}",
                    fmt_time(p.creation_date)
                ),
            );
        }
        for c in &p.developer_certificates {
            if at > c.not_after() {
                sink.push(
                    FindingCode::DeveloperCertificateExpired,
                    Some(c),
                    format!(
                        "developer certificate {} (serial {}) expired at {}; apps it signed no longer launch",
                        cn(c),
                        c.serial_hex(),
                        fmt_time(c.not_after())
                    ),
                );
            }
        }
        self.check_der_profile(file, at, &mut sink);

        Report {
            at,
            valid: !sink.findings.iter().any(|f| f.severity == Severity::Error),
            signing_time: sd.signers.first().and_then(SignerInfo::signing_time),
            path,
            findings: sink.findings,
        }
    }

    /// Verifies a profile as of its own signing time (the outer signature's
    /// signingTime attribute; the profile's CreationDate when absent).
    pub fn verify_at_signing_time(&self, file: &ProvisioningProfile) -> Report {
        let at = file
            .signed_data()
            .signers
            .first()
            .and_then(SignerInfo::signing_time)
            .unwrap_or(file.profile().creation_date);
        self.verify(file, at)
    }

    /// Verifies any SignedData over `content` (its attached content, or the
    /// detached content it signs, such as a code signature's CodeDirectory)
    /// at `at`: digests, the signature over the stored signed attributes, and
    /// the path to the anchors. Returns every finding and the first signer's
    /// path; profile-specific checks are not made.
    pub fn verify_signed_data(
        &self,
        sd: &SignedData,
        content: &[u8],
        at: DateTime<Utc>,
    ) -> (Vec<Finding>, Vec<PathEntry>) {
        let mut sink = Sink {
            scope: Scope::Profile,
            findings: Vec::new(),
        };
        let path = self.check_signed_data(sd, content, at, &mut sink);
        (sink.findings, path)
    }

    /// Checks every signer of a SignedData over its content, and
    /// the signer's path. Returns the first signer's path.
    fn check_signed_data(
        &self,
        sd: &SignedData,
        content: &[u8],
        at: DateTime<Utc>,
        sink: &mut Sink,
    ) -> Vec<PathEntry> {
        if let Err(e) = sd.certificates() {
            sink.push(FindingCode::CertificateMalformed, None, e.to_string());
        }
        let mut first_path = None;
        for signer in &sd.signers {
            let path = self.check_signer(sd, signer, content, at, sink);
            first_path.get_or_insert(path);
        }
        first_path.unwrap_or_default()
    }

    fn check_signer(
        &self,
        sd: &SignedData,
        signer: &SignerInfo,
        content: &[u8],
        at: DateTime<Utc>,
        sink: &mut Sink,
    ) -> Vec<PathEntry> {
        let Some(digest_alg) = signer.digest_algorithm else {
            sink.push(
                FindingCode::UnsupportedAlgorithm,
                None,
                format!(
                    "unsupported digest algorithm {}",
                    signer.digest_algorithm_oid
                ),
            );
            return Vec::new();
        };
        // The bytes the signature covers: the stored signed attributes, or the content.
        let signed_bytes: &[u8] = match &signer.signed_attrs_der {
            Some(attrs) => {
                match signer.message_digest() {
                    None => sink.push(
                        FindingCode::MissingMessageDigest,
                        None,
                        "the signed attributes have no messageDigest".into(),
                    ),
                    Some(md) => {
                        let actual = digest_alg.digest(content);
                        if md != actual.as_slice() {
                            sink.push(
                                FindingCode::MessageDigestMismatch,
                                None,
                                format!(
                                    "messageDigest {} does not match the content's {} {}",
                                    hex(md),
                                    digest_alg.name(),
                                    hex(&actual)
                                ),
                            );
                        }
                    }
                }
                if signer.content_type_attr() != Some(sd.content_type.as_slice()) {
                    sink.push(
                        FindingCode::ContentTypeMismatch,
                        None,
                        "the contentType attribute is missing or differs from the content's type"
                            .into(),
                    );
                }
                if let Some(protected) = signer.protected_digest_algorithm()
                    && protected != Some(digest_alg)
                {
                    sink.push(
                        FindingCode::AlgorithmProtectionMismatch,
                        None,
                        format!(
                            "CMSAlgorithmProtection names {:?}, the signer uses {}",
                            protected.map(|a| a.name()),
                            digest_alg.name()
                        ),
                    );
                }
                attrs
            }
            None => content,
        };
        let Some(cert) = sd.signer_certificate(signer) else {
            sink.push(
                FindingCode::SignerCertificateMissing,
                None,
                "the signer's certificate is not in the CMS certificate set".into(),
            );
            return Vec::new();
        };
        match verify_with(
            cert,
            &signer.signature_algorithm,
            Some(digest_alg),
            signed_bytes,
            &signer.signature,
        ) {
            Ok(()) => {}
            Err(SignatureError::Invalid) => sink.push(
                FindingCode::SignatureInvalid,
                Some(cert),
                format!("the CMS signature by {} does not verify", cn(cert)),
            ),
            Err(e @ SignatureError::Unsupported(_)) => {
                sink.push(FindingCode::UnsupportedAlgorithm, Some(cert), e.to_string());
            }
        }
        self.check_path(cert, sd.certificates().unwrap_or_default(), at, sink)
    }

    fn check_path(
        &self,
        leaf: &Certificate,
        pool: &[Certificate],
        at: DateTime<Utc>,
        sink: &mut Sink,
    ) -> Vec<PathEntry> {
        let (path, outcome) = build_path(leaf, pool, &self.anchors, LinkCache::shared());
        match outcome {
            Ok(()) => {}
            Err(PathError::NoIssuer) => {
                let last = path[path.len() - 1];
                sink.push(
                    FindingCode::ChainUntrusted,
                    Some(last),
                    format!(
                        "no trusted issuer for {} (issued by {}): the chain does not reach a trust anchor",
                        cn(last),
                        last.issuer_cn().unwrap_or("an unnamed issuer")
                    ),
                );
            }
            Err(PathError::BadSignature {
                child,
                issuer,
                error,
            }) => {
                let code = match error {
                    SignatureError::Invalid => FindingCode::ChainSignatureInvalid,
                    SignatureError::Unsupported(_) => FindingCode::UnsupportedAlgorithm,
                };
                sink.push(
                    code,
                    Some(path[child]),
                    format!(
                        "{} is not validly signed by {}: {error}",
                        cn(path[child]),
                        cn(&issuer)
                    ),
                );
            }
            Err(PathError::BudgetExceeded) => sink.push(
                FindingCode::ChainBudgetExceeded,
                Some(leaf),
                format!(
                    "building the certificate path took more than {} signature checks; \
                     the certificate set holds too many candidate issuers",
                    crate::trust::MAX_SIGNATURE_CHECKS
                ),
            ),
            Err(PathError::TooLong) => sink.push(
                FindingCode::ChainTooLong,
                Some(leaf),
                format!(
                    "the certificate path is longer than {} certificates",
                    crate::trust::MAX_PATH_LEN
                ),
            ),
        }
        let anchors = self.anchors.certificates();
        for (i, c) in path.iter().enumerate() {
            if at > c.not_after() {
                sink.push(
                    FindingCode::CertificateExpired,
                    Some(c),
                    format!(
                        "certificate {} of the signing chain expired at {}",
                        cn(c),
                        fmt_time(c.not_after())
                    ),
                );
            } else if at < c.not_before() {
                sink.push(
                    FindingCode::CertificateNotYetValid,
                    Some(c),
                    format!(
                        "certificate {} of the signing chain is not valid before {}",
                        cn(c),
                        fmt_time(c.not_before())
                    ),
                );
            }
            if let Some(oid) = c.unknown_critical_extensions().first() {
                sink.push(
                    FindingCode::UnknownCriticalExtension,
                    Some(c),
                    format!(
                        "certificate {} has an unknown critical extension {oid}",
                        cn(c)
                    ),
                );
            }
            if i > 0 {
                let is_ca =
                    c.basic_constraints().is_some_and(|b| b.ca) && c.may_sign_certificates();
                // path_len counts intermediates below this issuer: i - 1 of them.
                let len_ok = c
                    .basic_constraints()
                    .and_then(|b| b.path_len)
                    .is_none_or(|max| (i as u64).saturating_sub(1) <= max);
                if !is_ca || !len_ok {
                    sink.push(
                        FindingCode::IssuerNotCa,
                        Some(c),
                        format!(
                            "{} issues certificates but is not a CA allowed to at this depth",
                            cn(c)
                        ),
                    );
                }
            }
        }
        path.iter()
            .map(|c| PathEntry {
                subject: c.subject_cn().map(str::to_owned),
                not_after: c.not_after(),
                serial: c.serial_hex(),
                anchor: anchors.contains(c),
            })
            .collect()
    }

    fn check_der_profile(&self, file: &ProvisioningProfile, at: DateTime<Utc>, outer: &mut Sink) {
        let Some(decoded) = file.der_profile() else {
            return;
        };
        let mut sink = Sink {
            scope: Scope::DerProfile,
            findings: Vec::new(),
        };
        match decoded {
            Err(e) => sink.push(
                FindingCode::DerProfileMalformed,
                None,
                format!("the DER-Encoded-Profile cannot be decoded: {e}"),
            ),
            Ok(der) => {
                let content = der.signed_data.content.as_deref().unwrap_or_default();
                self.check_signed_data(&der.signed_data, content, at, &mut sink);
                cross_check(file, &der.payload, &mut sink);
            }
        }
        outer.findings.extend(sink.findings);
    }
}

/// Compares the nested profile's UUID, team, expiry and certificate hashes
/// with the plist's.
fn cross_check(file: &ProvisioningProfile, der: &crate::plist::Dictionary, sink: &mut Sink) {
    let p = file.profile();
    let mut mismatch = |field: &str, plist: String, nested: String| {
        sink.push(
            FindingCode::DerProfileMismatch,
            None,
            format!(
                "{field} differs: the plist says {plist}, the DER-Encoded-Profile says {nested}"
            ),
        );
    };
    let uuid = der.get("UUID").and_then(Value::as_str);
    if !uuid.is_some_and(|u| u.eq_ignore_ascii_case(&p.uuid)) {
        mismatch("UUID", p.uuid.clone(), format!("{uuid:?}"));
    }
    let teams: Option<Vec<&str>> = der
        .get("TeamIdentifier")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let plist_teams: Vec<&str> = p.team_identifier.iter().map(String::as_str).collect();
    if teams.as_deref() != Some(plist_teams.as_slice()) {
        mismatch(
            "TeamIdentifier",
            format!("{plist_teams:?}"),
            format!("{teams:?}"),
        );
    }
    match der.get("ExpirationDate") {
        Some(Value::Date(t)) if *t == p.expiration_date => {}
        other => mismatch(
            "ExpirationDate",
            fmt_time(p.expiration_date),
            format!("{other:?}"),
        ),
    }
    let mut nested: Vec<Vec<u8>> = der
        .get("DeveloperCertificates")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| match v {
            Value::Data(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let mut ours: Vec<Vec<u8>> = p
        .developer_certificates
        .iter()
        .map(|c| c.sha256_fingerprint().to_vec())
        .collect();
    nested.sort();
    ours.sort();
    if nested != ours {
        mismatch(
            "DeveloperCertificates (SHA-256)",
            ours.iter().map(|h| hex(h)).collect::<Vec<_>>().join(","),
            nested.iter().map(|h| hex(h)).collect::<Vec<_>>().join(","),
        );
    }
}

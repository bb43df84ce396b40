//! The verdict on an app: every finding with a stable code, where it is, the
//! installd error class it corresponds to, and a one-line fix.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a finding is about. The kebab-case codes ([`Code::as_str`]) are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// An archive entry whose name leaves the archive (`..`, absolute path).
    ArchivePathTraversal,
    /// An archive entry listed twice.
    ArchiveDuplicateEntry,
    /// An encrypted archive entry.
    ArchiveEncryptedEntry,
    /// An archive entry compressed with a method other than stored/deflated.
    ArchiveUnsupportedMethod,
    /// An entry beyond the size or inflate-ratio limits.
    ArchiveEntryTooLarge,
    /// Archive entries sharing stored bytes.
    ArchiveOverlappingEntries,
    /// An entry whose data is corrupt (CRC, length).
    ArchiveCorruptEntry,
    /// A symbolic link that leaves the app bundle.
    SymlinkEscapesBundle,
    /// A bundle without a readable Info.plist.
    InfoPlistInvalid,
    /// The executable named by CFBundleExecutable is missing.
    ExecutableMissing,
    /// The executable is not a well-formed Mach-O.
    MachoMalformed,
    /// A slice without a code signature.
    CodeSignatureMissing,
    /// A SuperBlob or CodeDirectory that does not parse.
    SignatureMalformed,
    /// Two CodeDirectories with the same hash type.
    DuplicateHashType,
    /// A code page whose hash does not match.
    CodePageModified,
    /// Info.plist differs from its special-slot digest.
    InfoPlistModified,
    /// The requirements blob differs from its special-slot digest.
    RequirementsModified,
    /// CodeResources differs from its special-slot digest.
    CodeResourcesModified,
    /// The entitlements blob differs from its special-slot digest.
    EntitlementsModified,
    /// The DER entitlements blob differs from its special-slot digest.
    DerEntitlementsModified,
    /// A special slot has a digest but its component is missing.
    SealedComponentMissing,
    /// An entitlements blob the CodeDirectory does not seal.
    EntitlementsUnsealed,
    /// The bundle's Info.plist is not sealed (special slot 1 empty).
    InfoPlistUnsealed,
    /// The bundle's CodeResources is not sealed (special slot 3 empty).
    CodeResourcesUnsealed,
    /// No CMS signature (ad-hoc signed).
    CmsMissing,
    /// The CMS signature does not parse.
    CmsMalformed,
    /// The CMS signature does not verify over the CodeDirectory.
    CmsInvalid,
    /// The signing chain does not reach a trusted Apple root.
    ChainUntrusted,
    /// The signing certificate (or its issuer) is expired or not yet valid.
    SigningCertificateExpired,
    /// The CMS hash-agility attributes disagree with the CodeDirectories.
    CdhashesMismatch,
    /// The signing certificate's OU differs from the CodeDirectory's team id.
    TeamMismatch,
    /// The bundle has resources but no CodeResources.
    CodeResourcesMissing,
    /// CodeResources cannot be read.
    CodeResourcesMalformed,
    /// A file not in the seal.
    ResourceAdded,
    /// A sealed file whose content differs.
    ResourceModified,
    /// A sealed file that is missing.
    ResourceMissing,
    /// Nested code whose cdhash differs from the seal.
    NestedCodeModified,
    /// No embedded.mobileprovision where one is needed.
    ProfileMissing,
    /// The embedded profile does not parse.
    ProfileMalformed,
    /// The embedded profile's signature does not verify.
    ProfileSignatureInvalid,
    /// The embedded profile has expired or is not yet valid.
    ProfileExpired,
    /// The embedded profile is for another platform.
    ProfilePlatformMismatch,
    /// The signing certificate is not among the profile's DeveloperCertificates.
    SignerNotInProfile,
    /// application-identifier does not cover the bundle id.
    BundleIdNotCovered,
    /// The profile's team differs from the signature's.
    ProfileTeamMismatch,
    /// An entitlement the profile does not allow.
    EntitlementNotAllowed,
    /// The device's UDID is not provisioned.
    DeviceNotProvisioned,
    /// Version-1 CodeResources (obsolete in strict mode).
    ResourcesVersion1,
    /// An app extension's executable whose CodeDirectory lacks the
    /// main-binary exec-segment flag (`CS_EXECSEG_MAIN_BINARY`); iOS 26
    /// reportedly stops such extensions.
    ExecSegmentNotMainBinary,
}

impl Code {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            ArchivePathTraversal => "archive-path-traversal",
            ArchiveDuplicateEntry => "archive-duplicate-entry",
            ArchiveEncryptedEntry => "archive-encrypted-entry",
            ArchiveUnsupportedMethod => "archive-unsupported-method",
            ArchiveEntryTooLarge => "archive-entry-too-large",
            ArchiveOverlappingEntries => "archive-overlapping-entries",
            ArchiveCorruptEntry => "archive-corrupt-entry",
            SymlinkEscapesBundle => "symlink-escapes-bundle",
            InfoPlistInvalid => "info-plist-invalid",
            ExecutableMissing => "executable-missing",
            MachoMalformed => "macho-malformed",
            CodeSignatureMissing => "code-signature-missing",
            SignatureMalformed => "signature-malformed",
            DuplicateHashType => "duplicate-hash-type",
            CodePageModified => "code-page-modified",
            InfoPlistModified => "info-plist-modified",
            RequirementsModified => "requirements-modified",
            CodeResourcesModified => "code-resources-modified",
            EntitlementsModified => "entitlements-modified",
            DerEntitlementsModified => "der-entitlements-modified",
            SealedComponentMissing => "sealed-component-missing",
            EntitlementsUnsealed => "entitlements-unsealed",
            InfoPlistUnsealed => "info-plist-unsealed",
            CodeResourcesUnsealed => "code-resources-unsealed",
            CmsMissing => "cms-missing",
            CmsMalformed => "cms-malformed",
            CmsInvalid => "cms-invalid",
            ChainUntrusted => "chain-untrusted",
            SigningCertificateExpired => "signing-certificate-expired",
            CdhashesMismatch => "cdhashes-mismatch",
            TeamMismatch => "team-mismatch",
            CodeResourcesMissing => "code-resources-missing",
            CodeResourcesMalformed => "code-resources-malformed",
            ResourceAdded => "resource-added",
            ResourceModified => "resource-modified",
            ResourceMissing => "resource-missing",
            NestedCodeModified => "nested-code-modified",
            ProfileMissing => "profile-missing",
            ProfileMalformed => "profile-malformed",
            ProfileSignatureInvalid => "profile-signature-invalid",
            ProfileExpired => "profile-expired",
            ProfilePlatformMismatch => "profile-platform-mismatch",
            SignerNotInProfile => "signer-not-in-profile",
            BundleIdNotCovered => "bundle-id-not-covered",
            ProfileTeamMismatch => "profile-team-mismatch",
            EntitlementNotAllowed => "entitlement-not-allowed",
            DeviceNotProvisioned => "device-not-provisioned",
            ResourcesVersion1 => "resources-version-1",
            ExecSegmentNotMainBinary => "exec-segment-not-main-binary",
        }
    }

    /// The installd / MobileDevice error this corresponds to, with its text;
    /// `None` for a warning, which installd does not raise.
    pub fn class(self) -> Option<&'static str> {
        use Code::*;
        Some(match self {
            ResourcesVersion1 | ExecSegmentNotMainBinary => return None,
            ArchivePathTraversal
            | ArchiveDuplicateEntry
            | ArchiveEncryptedEntry
            | ArchiveUnsupportedMethod
            | ArchiveEntryTooLarge
            | ArchiveOverlappingEntries
            | ArchiveCorruptEntry
            | SymlinkEscapesBundle
            | InfoPlistInvalid
            | ExecutableMissing => "package: installd cannot unpack or read the bundle",
            CodeSignatureMissing => "0xe800801c: No code signature found.",
            MachoMalformed
            | SignatureMalformed
            | DuplicateHashType
            | CodePageModified
            | InfoPlistModified
            | RequirementsModified
            | EntitlementsModified
            | DerEntitlementsModified
            | SealedComponentMissing
            | EntitlementsUnsealed
            | InfoPlistUnsealed
            | CmsMalformed
            | CmsInvalid => "0xe8008014: The executable contains an invalid signature.",
            CodeResourcesUnsealed
            | CodeResourcesModified
            | CodeResourcesMissing
            | CodeResourcesMalformed
            | ResourceAdded
            | ResourceModified
            | ResourceMissing
            | NestedCodeModified => {
                "0xe8008017: A signed resource has been added, modified, or deleted."
            }
            ChainUntrusted | SigningCertificateExpired => {
                "0xe8008018: The identity used to sign the executable is no longer valid."
            }
            CmsMissing | CdhashesMismatch | TeamMismatch => {
                "0xe8008019: The application does not have a valid signature."
            }
            ProfileSignatureInvalid => {
                "0xe800801a: This provisioning profile does not have a valid signature."
            }
            ProfileMissing
            | ProfileMalformed
            | ProfileExpired
            | ProfilePlatformMismatch
            | SignerNotInProfile
            | BundleIdNotCovered
            | ProfileTeamMismatch
            | DeviceNotProvisioned => {
                "0xe8008015: A valid provisioning profile for this executable was not found."
            }
            EntitlementNotAllowed => {
                "0xe8008016: The executable was signed with invalid entitlements."
            }
        })
    }

    /// A one-line fix.
    pub fn fix(self) -> &'static str {
        use Code::*;
        match self {
            ArchivePathTraversal
            | ArchiveDuplicateEntry
            | ArchiveEncryptedEntry
            | ArchiveUnsupportedMethod
            | ArchiveEntryTooLarge
            | ArchiveOverlappingEntries
            | ArchiveCorruptEntry => {
                "rebuild the .ipa with a plain zip of Payload/ (stored or deflated, no encryption)"
            }
            SymlinkEscapesBundle => "replace the link with the file, or point it inside the bundle",
            InfoPlistInvalid | ExecutableMissing => {
                "rebuild the bundle: Info.plist must name an executable that is present"
            }
            MachoMalformed => "rebuild the executable; it is not a valid Mach-O",
            CodeSignatureMissing | CmsMissing => "sign the bundle with an Apple-issued identity",
            SignatureMalformed
            | DuplicateHashType
            | CodePageModified
            | SealedComponentMissing
            | EntitlementsUnsealed
            | InfoPlistUnsealed
            | CodeResourcesUnsealed
            | CmsMalformed
            | CmsInvalid
            | CdhashesMismatch
            | RequirementsModified
            | EntitlementsModified
            | DerEntitlementsModified => {
                "the executable changed after signing: rebuild it or re-sign (provkit ipa resign)"
            }
            InfoPlistModified => "Info.plist changed after signing: restore it or re-sign",
            CodeResourcesModified | CodeResourcesMissing | CodeResourcesMalformed => {
                "the resource seal changed after signing: re-sign the bundle"
            }
            ResourceAdded => "remove the file, or re-sign so that it is sealed",
            ResourceModified => "restore the original file, or re-sign",
            ResourceMissing => "restore the file, or re-sign without it",
            NestedCodeModified => "re-sign the nested code, then the bundle that contains it",
            ChainUntrusted => "sign with a certificate issued by Apple (WWDR)",
            SigningCertificateExpired => {
                "re-sign with a current certificate and a profile that lists it"
            }
            TeamMismatch => "sign with a certificate of the team named in the signature",
            ProfileMissing => {
                "embed a provisioning profile (embedded.mobileprovision) for this bundle"
            }
            ProfileMalformed | ProfileSignatureInvalid => {
                "download the profile again from the developer portal and re-sign"
            }
            ProfileExpired => "renew the profile and re-sign (provkit renew, provkit ipa resign)",
            ProfilePlatformMismatch => "use a profile made for iOS",
            SignerNotInProfile => {
                "regenerate the profile with this certificate, or sign with one it lists"
            }
            BundleIdNotCovered => "use a profile whose App ID matches the bundle id",
            ProfileTeamMismatch => "use a profile of the signing team",
            EntitlementNotAllowed => {
                "enable the capability on the App ID and regenerate the profile, or drop the entitlement"
            }
            DeviceNotProvisioned => {
                "add the device's UDID to the profile, or use an enterprise/App Store profile"
            }
            ResourcesVersion1 => "re-sign with a current codesign to get a version-2 seal",
            ExecSegmentNotMainBinary => {
                "re-sign the extension so that its executable is marked as a main binary (provkit ipa resign)"
            }
        }
    }

    /// Whether the app still installs with this finding.
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            Code::ResourcesVersion1 | Code::ExecSegmentNotMainBinary
        )
    }
}

/// Serialised as [`Code::as_str`]: one spelling in text and JSON.
impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem, where it is, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Error or warning (JSON: `error`, `warning`).
    pub severity: provkit_profile::Severity,
    /// The installd error class (`None` for a warning).
    pub class: Option<&'static str>,
    /// Bundle path inside the archive (`Payload/App.app`, ...).
    pub bundle: String,
    /// The Mach-O slice (`arm64`, ...), when the finding is about one.
    pub arch: Option<String>,
    /// The file, relative to the bundle.
    pub path: Option<String>,
    /// The special slot, page or entitlement concerned.
    pub item: Option<String>,
    /// A plain sentence.
    pub message: String,
    /// A one-line fix.
    pub fix: &'static str,
}

impl Finding {
    /// A finding with this code in `bundle`.
    pub fn new(code: Code, bundle: &str, message: impl Into<String>) -> Self {
        Finding {
            code,
            severity: if code.is_warning() {
                provkit_profile::Severity::Warning
            } else {
                provkit_profile::Severity::Error
            },
            class: code.class(),
            bundle: bundle.to_owned(),
            arch: None,
            path: None,
            item: None,
            message: message.into(),
            fix: code.fix(),
        }
    }

    /// With a slice.
    #[must_use]
    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = Some(arch.to_owned());
        self
    }

    /// With a file.
    #[must_use]
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// With a slot, page or entitlement.
    #[must_use]
    pub fn item(mut self, item: impl Into<String>) -> Self {
        self.item = Some(item.into());
        self
    }
}

/// One slice of an executable, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SliceInfo {
    /// Architecture.
    pub arch: String,
    /// Hash types of its CodeDirectories, slot 0 first.
    pub hash_types: Vec<String>,
    /// CodeDirectory versions, hex.
    pub versions: Vec<String>,
    /// The team id in the CodeDirectory.
    pub team_id: Option<String>,
    /// The CodeDirectory identifier.
    pub identifier: Option<String>,
    /// The signing certificate's common name.
    pub signer: Option<String>,
    /// The signing certificate's end of validity.
    pub signer_not_after: Option<DateTime<Utc>>,
    /// SHA-256 of the signing certificate, hex.
    pub signer_sha256: Option<String>,
    /// The CMS signingTime.
    pub signing_time: Option<DateTime<Utc>>,
    /// The exec-segment flags of the first CodeDirectory (version 0x20400
    /// and later; bit 0 is `CS_EXECSEG_MAIN_BINARY`).
    pub exec_segment_flags: Option<u64>,
}

/// The embedded profile, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileInfo {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name: Option<String>,
    /// Kind (development, ad-hoc, enterprise, app-store).
    pub kind: String,
    /// Team.
    pub team_id: Option<String>,
    /// application-identifier.
    pub application_identifier: Option<String>,
    /// ExpirationDate.
    pub expiration_date: DateTime<Utc>,
    /// Number of provisioned devices (none: all devices or App Store).
    pub devices: Option<usize>,
}

/// One executable bundle (or standalone dylib), summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BundleInfo {
    /// Path inside the archive.
    pub path: String,
    /// What the code is (serialised as `app`, `appex`, `framework`,
    /// `xctest`, `xpc`, `bundle` or `dylib`).
    pub kind: crate::BundleKind,
    /// CFBundleIdentifier.
    pub bundle_id: Option<String>,
    /// CFBundleShortVersionString.
    pub version: Option<String>,
    /// CFBundleVersion.
    pub build: Option<String>,
    /// MinimumOSVersion.
    pub minimum_os: Option<String>,
    /// The executable, relative to the bundle.
    pub executable: Option<String>,
    /// Every slice.
    pub slices: Vec<SliceInfo>,
    /// The CodeResources version (1 or 2) and the number of sealed paths.
    pub resources: Option<(u8, usize)>,
    /// The embedded profile.
    pub profile: Option<ProfileInfo>,
    /// The claimed entitlements (slot 5, else slot 7), as a plist value tree.
    #[serde(serialize_with = "ser_entitlements")]
    pub entitlements: Option<provkit_profile::Dictionary>,
    /// The instant this bundle was checked at.
    pub checked_at: Option<DateTime<Utc>>,
}

fn ser_entitlements<S: serde::Serializer>(
    v: &Option<provkit_profile::Dictionary>,
    s: S,
) -> Result<S::Ok, S::Error> {
    v.as_ref()
        .map(|d| provkit_profile::Value::Dictionary(d.clone()))
        .serialize(s)
}

/// The outcome of verifying an app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// True when there is no error finding.
    pub valid: bool,
    /// Every bundle, the main app first, then nested code inside-out order.
    pub bundles: Vec<BundleInfo>,
    /// Every problem found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether any finding has this code.
    pub fn has(&self, code: Code) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// The findings with this code.
    pub fn with(&self, code: Code) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.code == code)
    }
}

//! Why a file could not be read as a provisioning profile.

use crate::cms::CmsError;
use crate::der::DerError;
use crate::plist::PlistError;

/// The largest profile accepted. Real profiles are 4 KB to 1 MB (old
/// development profiles with thousands of devices); 16 MiB leaves headroom
/// while bounding every allocation.
pub const MAX_PROFILE_SIZE: usize = 16 * 1024 * 1024;

/// A profile that could not be parsed. Every variant says what is wrong and,
/// where it applies, at which byte or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Zero bytes.
    #[error("empty file")]
    Empty,
    /// Larger than [`MAX_PROFILE_SIZE`].
    #[error("{len} bytes is more than the {max}-byte limit for a profile")]
    TooLarge {
        /// Input size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Encrypted storage (fastlane match's OpenSSL `Salted__` format, or CMS
    /// EnvelopedData): decrypt it first.
    #[error("encrypted profile ({format}); decrypt it before reading")]
    Encrypted {
        /// Which encryption format was recognised.
        format: &'static str,
    },
    /// Base64 text of something: decode it first.
    #[error("base64 text, not DER; decode it first")]
    Base64Text,
    /// Text, not DER (for example a placeholder or a Git LFS pointer).
    #[error("text, not a DER-encoded profile (starts with {start:?})")]
    Text {
        /// The first characters, for the message.
        start: String,
    },
    /// The CMS envelope is malformed or of the wrong type.
    #[error(transparent)]
    Cms(#[from] CmsError),
    /// The SignedData carries no content (detached signature).
    #[error("the profile's CMS signature is detached: no plist content")]
    DetachedContent,
    /// The signed content is not of type id-data.
    #[error("the signed content type is {0}, not id-data")]
    UnexpectedContentType(String),
    /// The content is not a property list.
    #[error("profile content: {0}")]
    Plist(#[from] PlistError),
    /// The property list's root is not a dictionary.
    #[error("the profile plist's root is a {0}, not a dict")]
    RootNotDictionary(&'static str),
    /// A required key is absent.
    #[error("required key {0} is missing")]
    MissingKey(&'static str),
    /// A key holds the wrong type.
    #[error("key {key}: expected {expected}, found {found}")]
    WrongType {
        /// The key path, for example `DeveloperCertificates[2]`.
        key: String,
        /// The type the key must have.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A DeveloperCertificates entry is not an X.509 certificate.
    #[error("DeveloperCertificates[{index}] is not a certificate: {source}")]
    DeveloperCertificate {
        /// Position in the array.
        index: usize,
        /// The DER error.
        source: DerError,
    },
}

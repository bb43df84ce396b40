//! A signed profile file: bytes → CMS envelope → plist → typed [`Profile`].

use crate::cms::{CmsError, SignedData, is_encrypted_type};
use crate::error::{MAX_PROFILE_SIZE, ParseError};
use crate::plist::{self, Dictionary, PlistFormat, Value};
use crate::profile::Profile;

/// A `.mobileprovision` or `.provisionprofile` file, parsed.
#[derive(Debug, Clone)]
pub struct ProvisioningProfile {
    bytes: Vec<u8>,
    signed_data: SignedData,
    format: PlistFormat,
    profile: Profile,
}

/// The nested `DER-Encoded-Profile`: its envelope and decoded payload.
#[derive(Debug, Clone)]
pub struct DerProfile {
    /// The nested CMS envelope.
    pub signed_data: SignedData,
    /// The payload, decoded from Apple's DER plist form.
    pub payload: Dictionary,
}

/// Recognises inputs that are clearly not DER, to give a precise error.
fn sniff(bytes: &[u8]) -> Result<(), ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    if bytes.len() > MAX_PROFILE_SIZE {
        return Err(ParseError::TooLarge {
            len: bytes.len(),
            max: MAX_PROFILE_SIZE,
        });
    }
    if bytes.starts_with(b"Salted__") {
        return Err(ParseError::Encrypted {
            format: "OpenSSL enc (Salted__), as fastlane match stores profiles",
        });
    }
    if bytes[0] == 0x30 {
        return Ok(());
    }
    let head = &bytes[..bytes.len().min(4096)];
    let text = head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if !text {
        return Ok(());
    }
    let base64ish = head.iter().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') || b.is_ascii_whitespace()
    });
    if base64ish {
        // "Salted__" in base64 is "U2FsdGVkX1".
        if bytes.starts_with(b"U2FsdGVkX1") {
            return Err(ParseError::Encrypted {
                format: "base64 of OpenSSL enc (Salted__), as fastlane match stores profiles",
            });
        }
        if bytes.starts_with(b"MI") {
            return Err(ParseError::Base64Text);
        }
    }
    let start: String = String::from_utf8_lossy(&head[..head.len().min(40)]).into_owned();
    Err(ParseError::Text { start })
}

impl ProvisioningProfile {
    /// Parses a profile file.
    ///
    /// # Errors
    /// A [`ParseError`] saying what is wrong and where: not DER, not CMS,
    /// encrypted, detached, trailing bytes, a malformed plist, a key of the
    /// wrong type, a bad certificate.
    pub fn from_der(bytes: &[u8]) -> Result<Self, ParseError> {
        sniff(bytes)?;
        let signed_data = SignedData::from_der(bytes).map_err(|e| match e {
            CmsError::NotSignedData { content_type } if is_encrypted_type(&content_type) => {
                ParseError::Encrypted {
                    format: "CMS EnvelopedData",
                }
            }
            other => ParseError::Cms(other),
        })?;
        let (profile, format) = payload(&signed_data)?;
        Ok(ProvisioningProfile {
            bytes: bytes.to_vec(),
            signed_data,
            format,
            profile,
        })
    }

    /// The file's bytes, exactly as read (what an MDM install command carries).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The CMS envelope.
    pub fn signed_data(&self) -> &SignedData {
        &self.signed_data
    }

    /// The signed plist bytes.
    pub fn content(&self) -> &[u8] {
        self.signed_data.content.as_deref().unwrap_or_default()
    }

    /// XML or binary.
    pub fn plist_format(&self) -> PlistFormat {
        self.format
    }

    /// The typed payload.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Takes the typed payload.
    pub fn into_profile(self) -> Profile {
        self.profile
    }

    /// Decodes the nested `DER-Encoded-Profile`, if the profile has one.
    ///
    /// # Errors
    /// The inner result is a [`ParseError`] when the nested envelope or its
    /// DER payload is malformed.
    pub fn der_profile(&self) -> Option<Result<DerProfile, ParseError>> {
        let der = self.profile.der_encoded_profile.as_deref()?;
        Some((|| {
            let signed_data = SignedData::from_der(der)?;
            let content = signed_data
                .content
                .as_deref()
                .ok_or(ParseError::DetachedContent)?;
            let payload = match plist::from_der_plist(content)? {
                Value::Dictionary(d) => d,
                other => return Err(ParseError::RootNotDictionary(other.type_name())),
            };
            Ok(DerProfile {
                signed_data,
                payload,
            })
        })())
    }
}

fn payload(sd: &SignedData) -> Result<(Profile, PlistFormat), ParseError> {
    let content = sd.content.as_deref().ok_or(ParseError::DetachedContent)?;
    if !sd.is_data() {
        return Err(ParseError::UnexpectedContentType(
            crate::der::oid_to_string(&sd.content_type),
        ));
    }
    Profile::from_plist(content)
}

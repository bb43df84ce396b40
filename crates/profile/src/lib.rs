//! Read Apple provisioning profiles (`.mobileprovision`, `.provisionprofile`)
//! into typed data, and verify their CMS signature and certificate chain to
//! Apple's roots at an instant you choose.
//!
//! Data flows one way: bytes → [`ProvisioningProfile`] (the CMS envelope and
//! the typed [`Profile`]) → [`Verifier::verify`] → a [`Report`] listing every
//! [`Finding`], each with a stable [`FindingCode`]. Nothing here reads the
//! clock: every check that depends on "now" takes the instant.
//!
//! The CMS ([`SignedData`]) and X.509 ([`Certificate`]) readers are
//! zero-copy over DER, keep the raw encodings that signatures cover, and are
//! the shared core that `provkit-codesign` reuses for code signatures.
//!
//! ```
//! # #[cfg(not(feature = "fixtures"))] fn main() {}
//! # #[cfg(feature = "fixtures")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use provkit_profile::{ProvisioningProfile, Verifier};
//! # let bytes = provkit_profile::fixtures::doc_example_profile();
//! let file = ProvisioningProfile::from_der(&bytes)?;
//! let profile = file.profile();
//! println!("{} expires {}", profile.uuid, profile.expiration_date);
//! println!("kind {}, {} days left", profile.kind(), profile.days_left(profile.creation_date));
//!
//! let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")?.to_utc();
//! let report = Verifier::default().verify(&file, at);
//! for finding in &report.findings {
//!     println!("{}: {}", finding.code, finding.message);
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod base64;
pub mod cms;
mod der;
mod devices;
mod error;
mod file;
pub mod oid;
pub mod pem;
pub mod plist;
mod profile;
mod signature;
mod time;
mod trust;
mod verify;
pub mod write;
mod x509;

#[cfg(feature = "fixtures")]
pub mod fixtures;

pub use cms::{CmsError, SignedData, SignerInfo};
pub use der::{DerError, DerErrorKind, MAX_DER_DEPTH, hex, oid_to_string};
pub use devices::DeviceList;
pub use error::{MAX_PROFILE_SIZE, ParseError};
pub use file::{DerProfile, ProvisioningProfile};
pub use plist::{Dictionary, PlistError, PlistFormat, Value};
pub use profile::{Profile, ProfileKind, days_left, wildcard_matches};
pub use signature::SignatureError;
pub use trust::TrustAnchors;
pub use verify::{Finding, FindingCode, PathEntry, Report, Scope, Severity, Verifier};
pub use x509::{BasicConstraints, Certificate, DigestAlgorithm, KeyKind, SignatureAlgorithm};

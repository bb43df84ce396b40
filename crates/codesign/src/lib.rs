//! Verify iOS apps the way the device does, and say exactly why one would
//! not install.
//!
//! Data flows one way: bytes ([`archive`]: a hostile `.ipa` or an unpacked
//! `.app`) → bundles (the app, every nested `.appex`/`.app`/`.framework`
//! and `.dylib`, inside-out) → per executable: Mach-O slices ([`slices`]),
//! SuperBlob and CodeDirectories ([`SuperBlob`], [`CodeDirectory`]), page
//! hashes, special slots, the CMS over the CodeDirectory ([`cms`], reusing
//! provkit-profile's CMS and X.509 core) with its hash-agility attributes
//! and team → the resource seal ([`resources`]) → the embedded profile and
//! the entitlements ([`entitlements`]) → a [`Report`] of every [`Finding`],
//! each with a stable [`Code`], its installd error class, where it is and a
//! one-line fix.
//!
//! Time is explicit: [`cms::At::Instant`] or each signature's own
//! [`cms::At::SigningTime`].
//!
//! ```no_run
//! use provkit_codesign::{Options, cms::At, verify_path};
//! use provkit_profile::Verifier;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::default(); // Apple's roots
//! let options = Options::new(&verifier, At::SigningTime);
//! let report = verify_path("App.ipa".as_ref(), &options)?;
//! for f in &report.findings {
//!     println!("{} {} {:?}: {} (fix: {})", f.code, f.bundle, f.path, f.message, f.fix);
//! }
//! println!("{}", if report.valid { "valid" } else { "invalid" });
//! # Ok(())
//! # }
//! ```
//!
//! The lower layers are usable alone:
//!
//! ```
//! use provkit_codesign::{slices, SuperBlob, CodeDirectory, Where};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let bytes: Vec<u8> = Vec::new();
//! # if bytes.is_empty() { return Ok(()); }
//! for slice in slices(&bytes)? {
//!     let at = Where { slice: Some(slice.offset), ..Where::default() };
//!     let sig = SuperBlob::parse(slice.signature.unwrap_or_default(), &at)?;
//!     for (_, blob) in sig.code_directories() {
//!         let cd = CodeDirectory::parse(blob, &at)?;
//!         println!("{} {}: {} bad pages", slice.arch, cd.hash_type.name(), cd.check_pages(slice.data, &at)?.len());
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod archive;
mod blob;
pub mod bundle;
pub mod cms;
mod code;
pub mod entitlements;
mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
mod macho;
mod report;
#[cfg(feature = "sign")]
pub mod resign;
pub mod resources;
#[cfg(feature = "sign")]
pub mod sign;
mod verify;

pub use blob::{
    CODE_DIRECTORY, CodeDirectory, HashType, SLOT_ALTERNATE, SLOT_CODE_DIRECTORY,
    SLOT_CODE_RESOURCES, SLOT_DER_ENTITLEMENTS, SLOT_ENTITLEMENTS, SLOT_INFO_PLIST,
    SLOT_REQUIREMENTS, SLOT_SIGNATURE, SUPERBLOB, SpecialSlot, SuperBlob,
};
pub use bundle::BundleKind;
pub use error::{CodesignError, Where};
pub use macho::{Layout, Slice, arch_name, slices};
pub use report::{BundleInfo, Code, Finding, ProfileInfo, Report, SliceInfo};
pub use verify::{Options, VerifyError, verify_archive, verify_macho, verify_path};

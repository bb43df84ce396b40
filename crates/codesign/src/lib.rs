//! Verify iOS apps the way the device does, and say exactly why one would
//! not install.
//!
//! Data flows one way, and the modules follow it: bytes ([`archive`]: a
//! hostile `.ipa` or an unpacked `.app`) → bundles ([`bundle`]: the app,
//! every nested `.appex`/`.app`/`.framework`/`.xctest` and `.dylib`, by
//! [`BundleKind`], inside-out) → per executable: Mach-O slices ([`slices`])
//! → its signature ([`signature`]: [`SuperBlob`], [`CodeDirectory`], page
//! hashes, special slots, the CMS over the CodeDirectory reusing
//! provkit-profile's CMS and X.509 core, hash agility and team) → the
//! resource seal ([`seal`]) → the embedded profile and the entitlements
//! ([`entitlements`]) → a [`Report`] of every [`Finding`], each with a
//! stable [`Code`], its installd error class, where it is and a one-line
//! fix. With the `sign` feature, [`resign`] runs the other way: a plan
//! checked whole, then new signatures, seals and profiles inside-out.
//!
//! Time is explicit: [`At::Instant`] or each signature's own
//! [`At::SigningTime`].
//!
//! ```no_run
//! use provkit_codesign::{At, Options, verify_path};
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

// The pipeline, in the order data flows through it.
pub mod archive;
pub mod bundle;
pub mod entitlements;
mod macho;
mod profile_check;
#[cfg(feature = "sign")]
pub mod resign;
pub mod seal;
pub mod signature;
mod verify;

mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
mod report;

pub use bundle::BundleKind;
pub use error::{CodesignError, VerifyError, Where};
pub use macho::{Layout, Slice, arch_name, slices};
pub use report::{BundleInfo, Code, Finding, ProfileInfo, Report, SliceInfo};
pub use signature::At;
pub use signature::blob::{
    CODE_DIRECTORY, CodeDirectory, HashType, SLOT_ALTERNATE, SLOT_CODE_DIRECTORY,
    SLOT_CODE_RESOURCES, SLOT_DER_ENTITLEMENTS, SLOT_ENTITLEMENTS, SLOT_INFO_PLIST,
    SLOT_REQUIREMENTS, SLOT_SIGNATURE, SUPERBLOB, SpecialSlot, SuperBlob,
};
#[cfg(feature = "sign")]
pub use signature::sign::{CodeSpec, Identity, KeyError, SigningKey};
pub use verify::{Options, verify_archive, verify_macho, verify_path};

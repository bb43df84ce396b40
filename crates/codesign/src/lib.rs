//! Verify iOS app code signatures the way the device does. This first layer
//! reads Mach-O files (thin and both fat forms), locates each slice's
//! `LC_CODE_SIGNATURE` inside `__LINKEDIT`, parses the SuperBlob with strict
//! bounds and every CodeDirectory (slot 0 and alternates; hash types 1–4;
//! versions up to 0x20500), and checks the page hashes under each.
//!
//! Still to come (issue 3): archives and bundles, special slots,
//! CodeResources, the CMS signature over the CodeDirectory, the embedded
//! profile, the report and the CLI.
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

mod blob;
pub mod cms;
mod error;
mod macho;

pub use blob::{
    CODE_DIRECTORY, CodeDirectory, HashType, SLOT_ALTERNATE, SLOT_CODE_DIRECTORY,
    SLOT_CODE_RESOURCES, SLOT_DER_ENTITLEMENTS, SLOT_ENTITLEMENTS, SLOT_INFO_PLIST,
    SLOT_REQUIREMENTS, SLOT_SIGNATURE, SUPERBLOB, SpecialSlot, SuperBlob,
};
pub use error::{CodesignError, Where};
pub use macho::{Slice, arch_name, slices};

//! provkit: the open engine for enterprise iOS provisioning.
//!
//! This facade re-exports the workspace's libraries, each usable alone:
//!
//! - [`profile`] (`provkit-profile`): parse `.mobileprovision` and
//!   `.provisionprofile` files into typed data and verify their CMS signature
//!   and chain to Apple's roots at a given instant.
//! - [`codesign`] (`provkit-codesign`): verify an `.ipa` the way iOS does and
//!   say exactly why it would not install.
//! - [`policy`], [`store`]: the assignment and expiry engine, and storage.
//! - [`service`] (`provkit-service`): every tenant operation as a library
//!   call over a store.
//! - [`server`] (`provkit-server`): the HTTP API over the service, as
//!   `provkit serve` runs it.
//!
//! ```
//! # #[cfg(not(feature = "fixtures"))] fn main() {}
//! # #[cfg(feature = "fixtures")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let bytes = provkit::profile::fixtures::doc_example_profile();
//! let file = provkit::profile::ProvisioningProfile::from_der(&bytes)?;
//! assert_eq!(file.profile().kind().as_str(), "adhoc");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use provkit_codesign as codesign;
pub use provkit_mdm as mdm;
pub use provkit_policy as policy;
pub use provkit_profile as profile;
pub use provkit_server as server;
pub use provkit_service as service;
pub use provkit_store as store;

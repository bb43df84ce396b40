//! One executable's code signature, read, checked and written: the
//! SuperBlob and its CodeDirectories (`blob`), the checks of an executable
//! against them (`code`), the CMS over the CodeDirectory ([`cms`]) and, with
//! the `sign` feature, the signer that writes all three ([`sign`]).

pub(crate) mod blob;
pub mod cms;
pub(crate) mod code;
#[cfg(feature = "sign")]
pub mod sign;
pub(crate) mod stream;

pub use cms::At;

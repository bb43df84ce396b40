//! Why a tenant operation was refused or failed.

use provkit_store::StoreError;

/// One error enum for every operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The store refused or failed (nothing was written).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A profile that is not genuine or not signed through a trusted chain
    /// (nothing was stored; `--allow-untrusted` overrides on the record).
    #[error("profile {uuid} is not trusted: {}", .findings.join(", "))]
    Untrusted {
        /// Its UUID.
        uuid: String,
        /// Its trust and integrity finding codes.
        findings: Vec<String>,
    },
    /// Names given that the tenant does not know.
    #[error("unknown {kind}: {}", .names.join(", "))]
    Unknown {
        /// `command`, `profile`, `device`, ...
        kind: &'static str,
        /// The names, as given.
        names: Vec<String>,
    },
}

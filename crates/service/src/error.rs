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
    /// A renewal whose successor does not qualify (nothing was written).
    #[error("cannot renew {old} with {new}: {reason}")]
    NotASuccessor {
        /// The old profile.
        old: String,
        /// The would-be successor.
        new: String,
        /// Why not.
        reason: String,
    },
    /// A deletion refused while the profile is in use.
    #[error("profile {uuid} is in use: {}", in_use(.apps, .assignments))]
    InUse {
        /// The profile.
        uuid: String,
        /// Apps linked to it.
        apps: Vec<String>,
        /// Its active assignments.
        assignments: Vec<String>,
    },
    /// An app that did not verify, with its error codes (nothing stored).
    #[error("invalid app, not imported: {}", .codes.join("; "))]
    InvalidApp {
        /// Error codes with the file or bundle.
        codes: Vec<String>,
    },
    /// Bytes that are not an app (no single `Payload/<Name>.app`, no
    /// embedded profile or signing certificate to link it by).
    #[error("not an app: {0}")]
    NotAnApp(String),
    /// A prefix that names more than one thing.
    #[error("{given:?} matches {}: give more of it", .matches.join(", "))]
    Ambiguous {
        /// What was given.
        given: String,
        /// What it matches.
        matches: Vec<String>,
    },
    /// Bytes that are not an inventory in the format given.
    #[error("not an inventory: {0}")]
    NotAnInventory(String),
    /// A number outside what the operation accepts.
    #[error("{0}")]
    OutOfRange(String),
    /// A store that already holds a tenant, where an empty one is needed.
    #[error(
        "the database already holds a tenant ({profiles} profiles, {devices} devices); \
         use --force to add a generated one to it, or another --db"
    )]
    NotEmpty {
        /// Its profiles.
        profiles: usize,
        /// Its devices.
        devices: usize,
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

fn in_use(apps: &[String], assignments: &[String]) -> String {
    let mut parts = Vec::new();
    if !apps.is_empty() {
        parts.push(format!("linked apps {}", apps.join(", ")));
    }
    if !assignments.is_empty() {
        parts.push(format!("active assignments {}", assignments.join(", ")));
    }
    parts.join("; ")
}

//! Why a store operation failed. Nothing is written when one fails.

/// A store error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The bytes are not a profile (the parser's error).
    #[error("not a provisioning profile: {0}")]
    Profile(#[from] provkit_profile::ParseError),
    /// A reference to something that does not exist.
    #[error("unknown {kind} {name:?} (in {context})")]
    UnknownReference {
        /// `user`, `device`, `group`, `profile`, `command`.
        kind: &'static str,
        /// The name used.
        name: String,
        /// Where it was used.
        context: String,
    },
    /// Input that breaks a rule (a group of users containing a device group, ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The stored state moved on since the caller read it (an assignment
    /// form saved after another edit): nothing is written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database file's schema is newer than this program.
    #[error("the database schema is version {found}; this program knows up to {known}")]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this program knows.
        known: i64,
    },
    /// SQLite failed.
    #[cfg(feature = "sqlite")]
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// No database where one was expected (only `init` creates one).
    #[error("no provkit database at {0}; create one with `provkit init`")]
    Missing(String),
    /// A database or file that provkit did not make; it is left untouched.
    #[error("{0} is not a provkit database (left untouched)")]
    NotProvkit(String),
}

//! What the web console keeps: its users (a password hash, never the
//! password) and their sessions (the SHA-256 of the cookie, never the
//! cookie).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A person who signs in to the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleUser {
    /// A name unique in the tenant (what the audit log shows as the actor).
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// The organization group the user is scoped to (a path).
    pub org_group: String,
    /// The password's argon2id hash as a PHC string.
    pub password_hash: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// SHA-256 of the session cookie, hex (the key it is found by).
    pub id_sha256: String,
    /// The user's name.
    pub user: String,
    /// The user's role when the session began.
    pub role: String,
    /// The user's own organization group (the most the session may see).
    pub home_org_group: String,
    /// The group the session looks at now (the home group or below it).
    pub org_group: String,
    /// The token every form carries back (CSRF).
    pub csrf: String,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it ends unless ended before.
    pub expires_at: DateTime<Utc>,
}

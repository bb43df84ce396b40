//! API tokens: who may call the server, with which role, over which
//! organization group. A token is 32 random bytes shown once (`pk_` and 64
//! hex digits); the store keeps only its SHA-256, so a copy of the database
//! authenticates nothing.

use provkit_profile::hex;
use provkit_store::{Actor, Store, TokenRecord};
use sha2::{Digest as _, Sha256};

use crate::ServiceError;

/// What a token may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Reads.
    Viewer,
    /// Also assigns, renews, imports inventory and apps, enqueues.
    Operator,
    /// Also deletes, and manages tokens, trust anchors and connections.
    Admin,
}

impl Role {
    /// The stable lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parses `viewer`, `operator` or `admin`.
    ///
    /// # Errors
    /// [`ServiceError::OutOfRange`] naming the roles.
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            _ => Err(ServiceError::OutOfRange(format!(
                "role {s:?}: give viewer, operator or admin"
            ))),
        }
    }
}

/// The organization group at the root of every tenant.
pub const ROOT_ORG_GROUP: &str = "Global";

/// The prefix of every token.
const TOKEN_PREFIX: &str = "pk_";

/// The token for 32 random bytes: `pk_` and 64 hex digits.
pub fn token_text(random: &[u8; 32]) -> String {
    format!("{TOKEN_PREFIX}{}", hex(random))
}

/// The SHA-256 of a token, hex: what the store keeps and looks up.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A new token and its record.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Created {
    /// The token: shown once, never stored.
    pub token: String,
    /// What is stored.
    pub record: TokenRecord,
}

/// Makes a token named `name` from 32 random bytes the caller draws from
/// the operating system, scoped to `org_group` (the root when `None`), and
/// stores its hash in one audited transaction.
///
/// # Errors
/// [`ServiceError::Unknown`] for an organization group that does not exist
/// (or lies outside the store's scope); [`ServiceError::Store`] with
/// `Invalid` for a name in use or empty.
pub fn create(
    store: &mut dyn Store,
    name: &str,
    role: Role,
    org_group: Option<&str>,
    random: &[u8; 32],
    actor: &Actor,
) -> Result<Created, ServiceError> {
    let group = org_group.unwrap_or(ROOT_ORG_GROUP);
    if !store.org_groups()?.iter().any(|g| g.path == group) {
        return Err(ServiceError::Unknown {
            kind: "organization group",
            names: vec![group.to_owned()],
        });
    }
    let token = token_text(random);
    let record = TokenRecord {
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        org_group: org_group.unwrap_or(ROOT_ORG_GROUP).to_owned(),
        sha256: token_hash(&token),
        created_by: actor.name.clone(),
        created_at: actor.at,
        revoked_at: None,
    };
    store.add_token(&record, actor)?;
    Ok(Created { token, record })
}

/// Every token record, revoked ones included, by name.
///
/// # Errors
/// [`ServiceError::Store`] on a backend failure.
pub fn list(store: &mut dyn Store) -> Result<Vec<TokenRecord>, ServiceError> {
    Ok(store.tokens()?)
}

/// Revokes a token by name; audited.
///
/// # Errors
/// [`ServiceError::Store`] with `UnknownReference` for an unknown name.
pub fn revoke(
    store: &mut dyn Store,
    name: &str,
    actor: &Actor,
) -> Result<TokenRecord, ServiceError> {
    Ok(store.revoke_token(name, actor)?)
}

/// A caller the token identifies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// The token's name (the actor in the audit log).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its organization group.
    pub org_group: String,
    /// A console user signed in with a password, not an API token.
    pub console: bool,
}

impl Caller {
    /// A console user's session acting as `role` within `org_group`.
    pub fn console_user(name: &str, role: Role, org_group: &str) -> Self {
        Caller {
            name: name.to_owned(),
            role,
            org_group: org_group.to_owned(),
            console: true,
        }
    }
}

/// The caller a presented token identifies, if it is one of `tokens` and
/// not revoked. The comparison is of SHA-256 digests, so its timing says
/// nothing about the stored hashes' preimages.
pub fn authenticate(tokens: &[TokenRecord], presented: &str) -> Option<Caller> {
    if !presented.starts_with(TOKEN_PREFIX) {
        return None;
    }
    let want = token_hash(presented);
    let rec = tokens
        .iter()
        .find(|t| t.revoked_at.is_none() && t.sha256 == want)?;
    Some(Caller {
        name: rec.name.clone(),
        role: Role::parse(&rec.role).ok()?,
        org_group: rec.org_group.clone(),
        console: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use provkit_store::MemoryStore;

    #[test]
    fn created_tokens_authenticate_until_revoked_and_only_hashes_are_kept() {
        let mut store = MemoryStore::default();
        let actor = Actor {
            name: "cli".into(),
            at: chrono::DateTime::UNIX_EPOCH,
        };
        let made = create(&mut store, "ci", Role::Operator, None, &[7; 32], &actor).unwrap();
        assert!(made.token.starts_with("pk_") && made.token.len() == 67);
        let stored = list(&mut store).unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0].sha256, made.token);
        assert!(!format!("{stored:?}").contains(&made.token[3..]));
        let caller = authenticate(&stored, &made.token).expect("authenticates");
        assert_eq!(
            (caller.role, caller.org_group.as_str()),
            (Role::Operator, "Global")
        );
        assert_eq!(authenticate(&stored, "pk_0000"), None);
        assert!(matches!(
            create(&mut store, "ci", Role::Admin, None, &[8; 32], &actor),
            Err(ServiceError::Store(_))
        ));
        revoke(&mut store, "ci", &actor).unwrap();
        assert_eq!(authenticate(&list(&mut store).unwrap(), &made.token), None);
        let log = store.audit_log().unwrap();
        assert_eq!(
            log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["token-create", "token-revoke"]
        );
    }
}

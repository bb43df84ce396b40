//! Console users and their sessions. A password is kept only as its
//! argon2id hash; a session cookie only as its SHA-256, so a copy of the
//! database signs nobody in. Every form of a session carries its CSRF
//! token, compared in constant time.
//!
//! ```
//! use provkit_service::console;
//! use provkit_service::tokens::Role;
//! use provkit_store::{Actor, MemoryStore, Store};
//! # fn main() -> Result<(), provkit_service::ServiceError> {
//! let mut store = MemoryStore::default();
//! let at = chrono::DateTime::UNIX_EPOCH;
//! let admin = Actor { name: "setup".into(), at };
//! console::create_user(&mut store, "ana", Role::Admin, None, "correct horse battery", &[7; 16], &admin)?;
//! let (cookie, session) = console::sign_in(&mut store, "ana", "correct horse battery", &[1; 64], at)?
//!     .expect("the password is right");
//! assert!(console::session(&mut store, &cookie, at)?.is_some());
//! assert!(console::csrf_matches(&session, &session.csrf));
//! assert!(console::sign_in(&mut store, "ana", "wrong", &[2; 64], at)?.is_none());
//! # Ok(()) }
//! ```

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use chrono::{DateTime, Duration, Utc};
use provkit_profile::hex;
use provkit_store::{Actor, ConsoleUser, Session, Store};
use sha2::{Digest as _, Sha256};

use crate::ServiceError;
use crate::tokens::{ROOT_ORG_GROUP, Role};

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::hours(12);

/// A hash verified when the user is unknown, so that a wrong name costs
/// the same time as a wrong password (made once per process).
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("no user has this password", &[0; 16]).unwrap_or_default())
}

fn hash_password(password: &str, salt: &[u8; 16]) -> Result<String, ServiceError> {
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::OutOfRange(format!("password: {e}")))
}

/// Makes a console user with `role`, scoped to `org_group` (the root when
/// `None`), its password hashed with argon2id over the 16 random bytes of
/// `salt` the caller draws from the operating system; audited.
///
/// # Errors
/// [`ServiceError::OutOfRange`] for a role that does not parse or a
/// password shorter than [`MIN_PASSWORD`]; [`ServiceError::Unknown`] for an
/// organization group that does not exist within the scope;
/// [`ServiceError::Store`] for a name in use.
pub fn create_user(
    store: &mut dyn Store,
    name: &str,
    role: Role,
    org_group: Option<&str>,
    password: &str,
    salt: &[u8; 16],
    actor: &Actor,
) -> Result<ConsoleUser, ServiceError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(ServiceError::OutOfRange(format!(
            "the password has fewer than {MIN_PASSWORD} characters"
        )));
    }
    let group = org_group.unwrap_or(ROOT_ORG_GROUP);
    if !store.org_groups()?.iter().any(|g| g.path == group) {
        return Err(ServiceError::Unknown {
            kind: "organization group",
            names: vec![group.to_owned()],
        });
    }
    let user = ConsoleUser {
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        org_group: group.to_owned(),
        password_hash: hash_password(password, salt)?,
        created_by: actor.name.clone(),
        created_at: actor.at,
    };
    store.add_console_user(&user, actor)?;
    Ok(user)
}

/// The SHA-256 of a session cookie, hex: the key its session is kept by.
pub fn cookie_hash(cookie: &str) -> String {
    hex(&Sha256::digest(cookie.as_bytes()))
}

/// Signs `name` in when `password` is theirs: a new session of
/// [`SESSION_TTL`] from `at`, its cookie and CSRF token made from the 64
/// random bytes of `random`; sessions expired by `at` are removed. Returns
/// the cookie (shown to the browser only) and the session; `None` for a
/// wrong name or password, which take the same time.
///
/// # Errors
/// [`ServiceError::Store`] on a backend failure.
pub fn sign_in(
    store: &mut dyn Store,
    name: &str,
    password: &str,
    random: &[u8; 64],
    at: DateTime<Utc>,
) -> Result<Option<(String, Session)>, ServiceError> {
    let users = store.console_users()?;
    let user = users.iter().find(|u| u.name == name);
    let hash = user.map_or(decoy(), |u| u.password_hash.as_str());
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok();
    let Some(user) = user.filter(|_| ok) else {
        return Ok(None);
    };
    // Expired sessions authenticate nothing; each sign-in clears them out.
    store.purge_sessions(at)?;
    let (cookie_bytes, csrf_bytes) = random.split_at(32);
    let cookie = hex(cookie_bytes);
    let session = Session {
        id_sha256: cookie_hash(&cookie),
        user: user.name.clone(),
        role: user.role.clone(),
        home_org_group: user.org_group.clone(),
        org_group: user.org_group.clone(),
        csrf: hex(csrf_bytes),
        created_at: at,
        expires_at: at + SESSION_TTL,
    };
    store.put_session(&session)?;
    Ok(Some((cookie, session)))
}

/// The live session a cookie names at `at` (`None` when unknown, ended or
/// expired).
///
/// # Errors
/// [`ServiceError::Store`] on a backend failure.
pub fn session(
    store: &mut dyn Store,
    cookie: &str,
    at: DateTime<Utc>,
) -> Result<Option<Session>, ServiceError> {
    if cookie.len() != 64 || !cookie.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(store
        .session(&cookie_hash(cookie))?
        .filter(|s| s.expires_at > at))
}

/// Points a session at `org_group`, which must be its user's own group or
/// lie below it.
///
/// # Errors
/// [`ServiceError::Unknown`] for a group outside the user's subtree or
/// that does not exist (the same answer, so existence does not leak).
pub fn switch_group(
    store: &mut dyn Store,
    session: &Session,
    org_group: &str,
) -> Result<Session, ServiceError> {
    let known = store.org_groups()?.iter().any(|g| g.path == org_group);
    if !known || !provkit_store::org::within(&session.home_org_group, org_group) {
        return Err(ServiceError::Unknown {
            kind: "organization group",
            names: vec![org_group.to_owned()],
        });
    }
    let mut s = session.clone();
    s.org_group = org_group.to_owned();
    store.put_session(&s)?;
    Ok(s)
}

/// Ends the session a cookie names.
///
/// # Errors
/// [`ServiceError::Store`] on a backend failure.
pub fn sign_out(store: &mut dyn Store, cookie: &str) -> Result<(), ServiceError> {
    Ok(store.end_session(&cookie_hash(cookie))?)
}

/// Whether `presented` is the session's CSRF token, compared in constant
/// time.
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), presented.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use provkit_store::MemoryStore;

    fn at() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::days(20_000)
    }

    /// A store with one viewer, ana, and the actor that made her.
    fn with_ana() -> (MemoryStore, Actor, ConsoleUser) {
        let mut store = MemoryStore::default();
        let actor = Actor {
            name: "t".into(),
            at: at(),
        };
        let u = create_user(
            &mut store,
            "ana",
            Role::Viewer,
            None,
            "a long enough secret",
            &[3; 16],
            &actor,
        )
        .expect("created");
        (store, actor, u)
    }

    #[test]
    fn passwords_are_kept_only_as_argon2id_hashes() {
        let (mut store, actor, u) = with_ana();
        assert!(u.password_hash.starts_with("$argon2id$"));
        assert!(!u.password_hash.contains("a long enough secret"));
        assert!(matches!(
            create_user(
                &mut store,
                "bo",
                Role::Viewer,
                None,
                "short",
                &[3; 16],
                &actor
            ),
            Err(ServiceError::OutOfRange(_))
        ));
        assert!(
            create_user(
                &mut store,
                "ana",
                Role::Admin,
                None,
                "another long secret",
                &[4; 16],
                &actor
            )
            .is_err()
        );
    }

    #[test]
    fn sessions_expire_end_and_never_leave_the_users_subtree() {
        let mut store = MemoryStore::default();
        let actor = Actor {
            name: "t".into(),
            at: at(),
        };
        for g in ["Global/EMEA/Benelux", "Global/EMEA/DACH"] {
            store.add_org_group(g, &actor).expect("group");
        }
        create_user(
            &mut store,
            "be",
            Role::Operator,
            Some("Global/EMEA/Benelux"),
            "benelux secret!",
            &[5; 16],
            &actor,
        )
        .expect("created");
        assert!(
            sign_in(&mut store, "nobody", "benelux secret!", &[1; 64], at())
                .expect("ran")
                .is_none()
        );
        let (cookie, s) = sign_in(&mut store, "be", "benelux secret!", &[1; 64], at())
            .expect("ran")
            .expect("signed in");
        assert!(!cookie.contains(&s.id_sha256));
        assert!(
            session(&mut store, &cookie, at() + Duration::hours(11))
                .expect("ran")
                .is_some()
        );
        assert!(
            session(&mut store, &cookie, at() + SESSION_TTL)
                .expect("ran")
                .is_none()
        );
        assert!(switch_group(&mut store, &s, "Global/EMEA/DACH").is_err());
        assert!(switch_group(&mut store, &s, "Global").is_err());
        assert!(!csrf_matches(&s, ""));
        assert!(!csrf_matches(
            &s,
            &s.csrf.replace(|c: char| c.is_ascii_digit(), "x")
        ));
        sign_out(&mut store, &cookie).expect("ended");
        assert!(session(&mut store, &cookie, at()).expect("ran").is_none());
    }

    #[test]
    fn expired_sessions_were_never_removed() {
        let (mut store, _, _) = with_ana();
        let (old, _) = sign_in(&mut store, "ana", "a long enough secret", &[1; 64], at())
            .expect("ran")
            .expect("signed in");
        let live = cookie_hash(&old);
        assert!(store.session(&live).expect("ran").is_some());
        // A wrong password later removes nothing; a sign-in after the first
        // session expired removes it from the store.
        let later = at() + SESSION_TTL + Duration::minutes(1);
        assert!(
            sign_in(&mut store, "ana", "wrong", &[2; 64], later)
                .expect("ran")
                .is_none()
        );
        assert!(store.session(&live).expect("ran").is_some());
        let (new, _) = sign_in(&mut store, "ana", "a long enough secret", &[3; 64], later)
            .expect("ran")
            .expect("signed in");
        assert!(store.session(&live).expect("ran").is_none());
        assert!(session(&mut store, &new, later).expect("ran").is_some());
    }
}

//! Organization groups: a tree of paths from the root (`Global`,
//! `Global/EMEA`, `Global/EMEA/Benelux`). Every object belongs to one; a
//! store connection acts within one ([`crate::Store::set_scope`]) and sees
//! and changes that group and its descendants only.

use crate::StoreError;

/// The root of every tenant.
pub const ROOT: &str = "Global";
/// The deepest path accepted.
const MAX_DEPTH: usize = 16;
/// The longest name of one group in a path.
const MAX_NAME: usize = 64;

/// Whether `group` is `scope` or lies below it.
pub fn within(scope: &str, group: &str) -> bool {
    group == scope
        || (group.len() > scope.len()
            && group.starts_with(scope)
            && group.as_bytes()[scope.len()] == b'/')
}

/// An object's group: its own, or the root.
pub fn of(group: Option<&String>) -> &str {
    group.map_or(ROOT, String::as_str)
}

/// Checks a path: starts at the root, at most 16 deep, each name 1 to 64
/// characters without control characters, `/`, or a leading or trailing
/// space, and not `.` or `..`.
///
/// # Errors
/// [`StoreError::Invalid`] saying what is wrong.
pub fn validate(path: &str) -> Result<(), StoreError> {
    let bad = |why: String| {
        Err(StoreError::Invalid(format!(
            "organization group {path:?}: {why}"
        )))
    };
    let names: Vec<&str> = path.split('/').collect();
    if names.first() != Some(&ROOT) {
        return bad(format!("a path starts at {ROOT}, as in {ROOT}/EMEA"));
    }
    if names.len() > MAX_DEPTH {
        return bad(format!("at most {MAX_DEPTH} levels"));
    }
    for n in &names {
        if n.is_empty() || n.chars().count() > MAX_NAME {
            return bad(format!("each name is 1 to {MAX_NAME} characters"));
        }
        if n.chars().any(char::is_control) || *n == "." || *n == ".." || n.trim() != *n {
            return bad(format!("{n:?} is not a usable name"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_scopes() {
        assert!(within("Global", "Global/EMEA/Benelux"));
        assert!(within("Global/EMEA", "Global/EMEA"));
        assert!(!within("Global/EMEA", "Global/EMEAX"));
        assert!(!within("Global/EMEA/Benelux", "Global/EMEA"));
        assert!(validate("Global/EMEA/Benelux").is_ok());
        for bad in [
            "EMEA",
            "Global//x",
            "Global/..",
            "Global/ x",
            "Global/a\u{0}",
            "",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}

//! The entitlements an executable claims (slot 5, an XML plist blob; slot 7,
//! a DER plist blob) and whether a profile allows them.

use provkit_profile::plist::{self, Dictionary, Value};
use provkit_profile::wildcard_matches;

/// Magic of the entitlements blob.
pub const ENTITLEMENTS: u32 = 0xfade_7171;
/// Magic of the DER entitlements blob.
pub const DER_ENTITLEMENTS: u32 = 0xfade_7172;

/// Reads an entitlements blob (either form) into its dictionary.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn parse_blob(blob: &[u8]) -> Result<Dictionary, String> {
    let head = blob.get(..8).ok_or("truncated entitlements blob")?;
    let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let body = &blob[8..];
    let value = match magic {
        ENTITLEMENTS => plist::parse(body).map(|(v, _)| v),
        DER_ENTITLEMENTS => plist::parse_der(body),
        _ => return Err(format!("unexpected entitlements blob magic {magic:#010x}")),
    }
    .map_err(|e| e.to_string())?;
    match value {
        Value::Dictionary(d) => Ok(d),
        other => Err(format!(
            "entitlements are a {}, not a dict",
            other.type_name()
        )),
    }
}

/// Whether one claimed value is allowed by the profile's value for the same key.
pub fn value_allowed(claimed: &Value, allowed: &Value) -> bool {
    match (claimed, allowed) {
        // Claiming false never needs permission; claiming true needs true.
        (Value::Boolean(false), _) => true,
        (Value::Boolean(true), Value::Boolean(a)) => *a,
        (Value::String(c), Value::String(a)) => wildcard_matches(a, c),
        (Value::String(c), Value::Array(a)) => a
            .iter()
            .any(|a| a.as_str().is_some_and(|a| wildcard_matches(a, c))),
        (Value::Array(c), allowed) => c.iter().all(|item| match (item, allowed) {
            (_, Value::Array(a)) => a.iter().any(|a| value_allowed(item, a)),
            (_, a) => value_allowed(item, a),
        }),
        (c, a) => c == a,
    }
}

/// Every claimed key (in claim order) the profile does not allow, each with
/// a sentence saying why.
pub fn not_allowed(claimed: &Dictionary, profile: &Dictionary) -> Vec<(String, String)> {
    claimed
        .iter()
        .filter_map(|(key, value)| match profile.get(key) {
            None => Some((key.to_owned(), "the profile does not grant it".to_owned())),
            Some(allowed) if !value_allowed(value, allowed) => Some((
                key.to_owned(),
                format!(
                    "the app claims {} but the profile allows {}",
                    show(value),
                    show(allowed)
                ),
            )),
            Some(_) => None,
        })
        .collect()
}

/// A short rendering of a value for messages.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", ")),
        other => other.type_name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    #[test]
    fn wildcards_and_types() {
        assert!(value_allowed(&s("T.com.a.b"), &s("T.*")));
        assert!(!value_allowed(&s("U.com.a.b"), &s("T.*")));
        assert!(value_allowed(&s("T.com.a"), &s("T.com.a")));
        assert!(!value_allowed(&s("T.com.ab"), &s("T.com.a")));
        assert!(value_allowed(
            &Value::Boolean(false),
            &Value::Boolean(false)
        ));
        assert!(!value_allowed(
            &Value::Boolean(true),
            &Value::Boolean(false)
        ));
        let groups = Value::Array(vec![s("T.*")]);
        assert!(value_allowed(
            &Value::Array(vec![s("T.x"), s("T.y")]),
            &groups
        ));
        assert!(!value_allowed(
            &Value::Array(vec![s("T.x"), s("U.y")]),
            &groups
        ));
        let envs = Value::Array(vec![s("development"), s("production")]);
        assert!(value_allowed(&s("production"), &envs));
        assert!(!value_allowed(&s("staging"), &envs));
    }

    #[test]
    fn blobs() {
        let mut d = Dictionary::new();
        d.insert("get-task-allow", Value::Boolean(true));
        let xml = plist::to_xml(&Value::Dictionary(d.clone())).unwrap();
        let mut blob = ENTITLEMENTS.to_be_bytes().to_vec();
        blob.extend_from_slice(&u32::try_from(xml.len() + 8).unwrap().to_be_bytes());
        blob.extend_from_slice(&xml);
        assert_eq!(parse_blob(&blob).unwrap(), d);
        assert!(parse_blob(b"\xfa\xde\x71\x71").is_err());
        let mut profile = Dictionary::new();
        profile.insert("get-task-allow", Value::Boolean(false));
        assert_eq!(not_allowed(&d, &profile).len(), 1);
        assert!(
            not_allowed(&d, &Dictionary::new())[0]
                .1
                .contains("does not grant")
        );
    }
}

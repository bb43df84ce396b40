//! The plist value tree.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// A property list value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<string>`.
    String(String),
    /// `<integer>`: the union of the i64 and u64 ranges.
    Integer(i128),
    /// `<real>`.
    Real(f64),
    /// `<true/>` or `<false/>`.
    Boolean(bool),
    /// `<date>`, a UTC instant.
    Date(DateTime<Utc>),
    /// `<data>`.
    Data(Vec<u8>),
    /// `<array>`.
    Array(Vec<Value>),
    /// `<dict>`.
    Dictionary(Dictionary),
}

/// A dictionary that keeps its keys in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dictionary {
    entries: Vec<(String, Value)>,
}

impl Dictionary {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty dictionary with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Dictionary {
            entries: Vec::with_capacity(n),
        }
    }

    /// The value for `key` (the last one, if a file repeats a key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Sets `key`, replacing an existing value in place.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }

    /// Removes and returns `key`'s value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.entries.iter().rposition(|(k, _)| k == key)?;
        Some(self.entries.remove(pos).1)
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Consumes the dictionary, yielding its entries in order.
    pub fn into_entries(self) -> impl Iterator<Item = (String, Value)> {
        self.entries.into_iter()
    }

    pub(crate) fn push(&mut self, key: String, value: Value) {
        self.entries.push((key, value));
    }
}

impl FromIterator<(String, Value)> for Dictionary {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        let mut d = Dictionary::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

impl Value {
    /// The type's name as plists spell it (`string`, `dict`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Boolean(_) => "boolean",
            Value::Date(_) => "date",
            Value::Data(_) => "data",
            Value::Array(_) => "array",
            Value::Dictionary(_) => "dict",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dictionary(&self) -> Option<&Dictionary> {
        match self {
            Value::Dictionary(d) => Some(d),
            _ => None,
        }
    }

    /// Fails when the value nests deeper than [`super::MAX_DEPTH`], without
    /// recursing, so that the writers (which recurse) are safe on any value.
    pub(crate) fn check_depth(&self) -> Result<(), super::PlistError> {
        let mut pending: Vec<(&Value, usize)> = vec![(self, 0)];
        while let Some((v, depth)) = pending.pop() {
            let collection = matches!(v, Value::Array(_) | Value::Dictionary(_));
            if collection && depth >= super::MAX_DEPTH {
                return Err(super::PlistError::WriteTooDeep);
            }
            match v {
                Value::Array(a) => pending.extend(a.iter().map(|c| (c, depth + 1))),
                Value::Dictionary(d) => {
                    pending.extend(d.entries.iter().map(|(_, c)| (c, depth + 1)));
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub(crate) fn to_plist_crate(&self) -> plist::Value {
        match self {
            Value::String(s) => plist::Value::String(s.clone()),
            Value::Integer(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(v), _) => plist::Value::Integer(v.into()),
                (_, Ok(v)) => plist::Value::Integer(v.into()),
                _ => plist::Value::Integer(0.into()),
            },
            Value::Real(r) => plist::Value::Real(*r),
            Value::Boolean(b) => plist::Value::Boolean(*b),
            Value::Date(d) => plist::Value::Date(std::time::SystemTime::from(*d).into()),
            Value::Data(d) => plist::Value::Data(d.clone()),
            Value::Array(a) => plist::Value::Array(a.iter().map(Value::to_plist_crate).collect()),
            Value::Dictionary(d) => plist::Value::Dictionary(
                d.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_plist_crate()))
                    .collect(),
            ),
        }
    }
}

/// JSON-friendly: dates as RFC 3339 UTC strings, data as base64.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(v) => s.serialize_str(v),
            Value::Integer(v) => match i64::try_from(*v) {
                Ok(i) => s.serialize_i64(i),
                Err(_) => s.serialize_u64(u64::try_from(*v).unwrap_or(u64::MAX)),
            },
            Value::Real(v) => s.serialize_f64(*v),
            Value::Boolean(v) => s.serialize_bool(*v),
            Value::Date(v) => s.serialize_str(&v.to_rfc3339_opts(SecondsFormat::Secs, true)),
            Value::Data(v) => s.serialize_str(&crate::base64::encode(v)),
            Value::Array(v) => v.serialize(s),
            Value::Dictionary(v) => v.serialize(s),
        }
    }
}

impl Serialize for Dictionary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

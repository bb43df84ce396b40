//! Binary plists (`bplist00`), read through the `plist` crate's event stream
//! and built here without recursion.
//!
//! The `plist` crate resolves object references itself, so one object may be
//! referenced from many places. Three budgets bound what a hostile file can
//! make us build: the nesting depth ([`MAX_DEPTH`]), the number of values
//! (shared collections would otherwise expand exponentially) and the bytes of
//! strings and data materialised (a shared blob referenced many times).

use std::io::Cursor;

use plist::stream::{BinaryReader, Event};

use super::{Dictionary, MAX_DEPTH, PlistError, Value};

/// One open collection while building.
enum Open {
    Array(Vec<Value>),
    /// A dictionary and the key whose value comes next, if one was read.
    Dict(Dictionary, Option<String>),
}

/// Values a file of `len` bytes may produce: every value but the root costs
/// at least one reference byte in its parent, and every collection one more
/// event for its end.
fn value_budget(len: usize) -> usize {
    len.saturating_mul(2).saturating_add(16)
}

/// Bytes of strings and data a file of `len` bytes may materialise: Apple's
/// writer shares repeated keys, so some expansion is legitimate.
fn byte_budget(len: usize) -> usize {
    len.saturating_mul(32).saturating_add(1 << 20)
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Value, PlistError> {
    let max_values = value_budget(bytes.len());
    let max_bytes = byte_budget(bytes.len());
    let mut stack: Vec<Open> = Vec::new();
    let mut values = 0usize;
    let mut materialised = 0usize;
    for event in BinaryReader::new(Cursor::new(bytes)) {
        let event = event.map_err(|e| PlistError::Binary(e.to_string()))?;
        values += 1;
        if values > max_values {
            return Err(PlistError::Expansion {
                what: "values",
                limit: max_values,
            });
        }
        let leaf = match event {
            Event::StartArray(_) | Event::StartDictionary(_) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(PlistError::TooDeep {
                        format: "binary",
                        position: values,
                    });
                }
                stack.push(match event {
                    Event::StartArray(_) => Open::Array(Vec::new()),
                    _ => Open::Dict(Dictionary::new(), None),
                });
                continue;
            }
            Event::EndCollection => match stack.pop() {
                Some(Open::Array(items)) => Value::Array(items),
                Some(Open::Dict(dict, None)) => Value::Dictionary(dict),
                Some(Open::Dict(_, Some(_))) | None => {
                    return Err(PlistError::Binary(format!(
                        "collection ends without a value for its last key (value {values})"
                    )));
                }
            },
            Event::String(s) => {
                materialised = materialised.saturating_add(s.len());
                Value::String(s.into_owned())
            }
            Event::Data(d) => {
                materialised = materialised.saturating_add(d.len());
                Value::Data(d.into_owned())
            }
            Event::Integer(i) => Value::Integer(
                i.as_signed()
                    .map(i128::from)
                    .or_else(|| i.as_unsigned().map(i128::from))
                    .unwrap_or_default(),
            ),
            Event::Real(r) => Value::Real(r),
            Event::Boolean(b) => Value::Boolean(b),
            Event::Date(d) => {
                let st: std::time::SystemTime = d.into();
                Value::Date(st.into())
            }
            // UIDs appear only in keyed archives; keep the number.
            Event::Uid(u) => Value::Integer(i128::from(u.get())),
            _ => {
                return Err(PlistError::Binary(format!(
                    "unsupported binary plist object (value {values})"
                )));
            }
        };
        if materialised > max_bytes {
            return Err(PlistError::Expansion {
                what: "bytes of strings and data",
                limit: max_bytes,
            });
        }
        match stack.last_mut() {
            None => return Ok(leaf),
            Some(Open::Array(items)) => items.push(leaf),
            Some(Open::Dict(dict, key)) => match key.take() {
                Some(k) => dict.push(k, leaf),
                None => match leaf {
                    Value::String(k) => *key = Some(k),
                    other => {
                        return Err(PlistError::Binary(format!(
                            "dictionary key is a {} (value {values})",
                            other.type_name()
                        )));
                    }
                },
            },
        }
    }
    Err(PlistError::Binary("binary plist has no root object".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(v: &Value) -> Vec<u8> {
        super::super::to_binary(v).expect("write")
    }

    #[test]
    fn round_trips_nested_values() {
        let mut inner = Dictionary::new();
        inner.push(
            "k".into(),
            Value::Array(vec![Value::Integer(-3), Value::Boolean(true)]),
        );
        inner.push("d".into(), Value::Data(vec![1, 2, 3]));
        let mut root = Dictionary::new();
        root.push("inner".into(), Value::Dictionary(inner));
        root.push("s".into(), Value::String("text".into()));
        let v = Value::Dictionary(root);
        assert_eq!(parse(&binary(&v)).expect("parse"), v);
    }
}

//! Apple's DER encoding of property lists, used by `DER-Encoded-Profile`
//! payloads and DER entitlements blobs:
//!
//! ```text
//! dict    SET (0x31) or [16] constructed (0xb0) of SEQUENCE { UTF8String key, value }
//! array   SEQUENCE (0x30)
//! string  UTF8String (0x0c)    integer INTEGER, or NumericString (0x12)
//! boolean BOOLEAN
//! date    UTCTime / GeneralizedTime              data    OCTET STRING
//! wrapper [APPLICATION 16] (0x70) { INTEGER version, dict }
//! ```

use super::{Dictionary, MAX_DEPTH, PlistError, Value};
use crate::der::{DerErrorKind, Reader, Tlv, tag};
use crate::time::{parse_generalized_time, parse_utc_time};

const CTX: &str = "DER plist";
const APPLICATION_16: u8 = 0x70;
const CONTEXT_16: u8 = 0xb0;
const NUMERIC_STRING: u8 = 0x12;

/// Encodes a value in Apple's DER plist form: dictionaries as `[16]`
/// constructed (0xb0) with their entries in DER order, arrays as SEQUENCE,
/// reals as their decimal text.
pub(crate) fn to_der(v: &Value) -> Vec<u8> {
    use crate::write::{octets, seq, time, tlv, utf8};
    match v {
        Value::String(s) => utf8(s),
        Value::Integer(i) => {
            // Minimal two's complement.
            let bytes = i.to_be_bytes();
            let mut start = 0;
            while start < 15
                && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
                    || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
            {
                start += 1;
            }
            tlv(0x02, &bytes[start..])
        }
        Value::Real(r) => utf8(&r.to_string()),
        Value::Boolean(b) => tlv(0x01, &[if *b { 0xff } else { 0 }]),
        Value::Date(t) => time(*t),
        Value::Data(d) => octets(d),
        Value::Array(a) => seq(&a.iter().map(to_der).collect::<Vec<_>>()),
        Value::Dictionary(d) => {
            let mut entries: Vec<Vec<u8>> =
                d.iter().map(|(k, v)| seq(&[utf8(k), to_der(v)])).collect();
            entries.sort();
            tlv(CONTEXT_16, &entries.concat())
        }
    }
}

/// Decodes a whole DER plist; trailing bytes are an error.
pub(crate) fn from_der(bytes: &[u8]) -> Result<Value, PlistError> {
    let mut r = Reader::new(bytes, CTX);
    let tlv = r.read().map_err(PlistError::Der)?;
    r.finish().map_err(PlistError::Der)?;
    value(&tlv, 0)
}

fn bad(tlv: &Tlv<'_>) -> PlistError {
    PlistError::Der(tlv.err(CTX, DerErrorKind::BadValue))
}

fn value(tlv: &Tlv<'_>, depth: usize) -> Result<Value, PlistError> {
    if depth >= MAX_DEPTH && matches!(tlv.tag, tag::SEQUENCE | tag::SET | CONTEXT_16) {
        return Err(PlistError::TooDeep {
            format: "DER",
            position: tlv.offset,
        });
    }
    let e = PlistError::Der;
    Ok(match tlv.tag {
        tag::UTF8_STRING => Value::String(
            std::str::from_utf8(tlv.contents)
                .map_err(|_| bad(tlv))?
                .to_owned(),
        ),
        tag::INTEGER => {
            let c = tlv.contents;
            if c.is_empty() || c.len() > 9 {
                return Err(bad(tlv));
            }
            let negative = c[0] & 0x80 != 0;
            let mut v: i128 = if negative { -1 } else { 0 };
            for b in c {
                v = (v << 8) | i128::from(*b);
            }
            Value::Integer(v)
        }
        NUMERIC_STRING => {
            // Some DER profiles write integers as NumericString ("1", "7").
            let text = std::str::from_utf8(tlv.contents).map_err(|_| bad(tlv))?;
            text.parse::<i128>()
                .ok()
                .filter(|v| *v >= i128::from(i64::MIN) && *v <= i128::from(u64::MAX))
                .map(Value::Integer)
                .ok_or_else(|| bad(tlv))?
        }
        tag::BOOLEAN => match tlv.contents {
            [0] => Value::Boolean(false),
            [_] => Value::Boolean(true),
            _ => return Err(bad(tlv)),
        },
        tag::UTC_TIME => Value::Date(parse_utc_time(tlv.contents).ok_or_else(|| bad(tlv))?),
        tag::GENERALIZED_TIME => {
            Value::Date(parse_generalized_time(tlv.contents).ok_or_else(|| bad(tlv))?)
        }
        tag::OCTET_STRING => Value::Data(tlv.contents.to_vec()),
        tag::SEQUENCE => {
            let mut r = tlv.reader(CTX);
            let mut items = Vec::new();
            while !r.is_empty() {
                items.push(value(&r.read().map_err(e)?, depth + 1)?);
            }
            Value::Array(items)
        }
        tag::SET | CONTEXT_16 => {
            let mut r = tlv.reader(CTX);
            let mut dict = Dictionary::new();
            while !r.is_empty() {
                let mut pair = r.sequence().map_err(e)?;
                let key = pair.expect(tag::UTF8_STRING).map_err(e)?;
                let key = std::str::from_utf8(key.contents)
                    .map_err(|_| bad(&key))?
                    .to_owned();
                let v = value(&pair.read().map_err(e)?, depth + 1)?;
                pair.finish().map_err(e)?;
                dict.push(key, v);
            }
            Value::Dictionary(dict)
        }
        APPLICATION_16 => {
            let mut r = tlv.reader(CTX);
            let _version = r.small_uint().map_err(e)?;
            let inner = r.read().map_err(e)?;
            r.finish().map_err(e)?;
            value(&inner, depth + 1)?
        }
        _ => return Err(bad(tlv)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_dict_with_wrapper() {
        // { "a": [1, true], "e": wrapper { "k": "v" } }
        let bytes = [
            0x31, 0x1b, 0x30, 0x0a, 0x0c, 0x01, b'a', 0x30, 0x06, 0x02, 0x01, 0x01, 0x01, 0x01,
            0xff, 0x30, 0x0d, 0x0c, 0x01, b'e', 0x70, 0x08, 0x02, 0x01, 0x01, 0xb0, 0x03, 0x30,
            0x01, 0x0c,
        ];
        // The inner pair above is deliberately truncated: must be an error.
        assert!(from_der(&bytes).is_err());
        let good = [
            0x31, 0x1d, 0x30, 0x0a, 0x0c, 0x01, b'a', 0x30, 0x06, 0x02, 0x01, 0x01, 0x01, 0x01,
            0xff, 0x30, 0x0f, 0x0c, 0x01, b'e', 0x70, 0x0a, 0x02, 0x01, 0x01, 0xb0, 0x05, 0x30,
            0x03, 0x0c, 0x01, b'k',
        ];
        // Pair without a value is malformed too.
        assert!(from_der(&good).is_err());
        let ok = [
            0x31, 0x21, 0x30, 0x0b, 0x0c, 0x01, b'a', 0x30, 0x06, 0x02, 0x01, 0x01, 0x01, 0x01,
            0xff, 0x30, 0x12, 0x0c, 0x01, b'e', 0x70, 0x0d, 0x02, 0x01, 0x01, 0xb0, 0x08, 0x30,
            0x06, 0x0c, 0x01, b'k', 0x0c, 0x01, b'v',
        ];
        let v = from_der(&ok).expect("decode");
        let d = v.as_dictionary().expect("dict");
        assert_eq!(
            d.get("a"),
            Some(&Value::Array(vec![Value::Integer(1), Value::Boolean(true)]))
        );
        let e = d
            .get("e")
            .and_then(Value::as_dictionary)
            .expect("wrapped dict");
        assert_eq!(e.get("k").and_then(Value::as_str), Some("v"));
    }
}

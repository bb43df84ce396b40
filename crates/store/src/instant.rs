//! Instants in stored documents, written and read without chrono's
//! general formatter and parser on the common path.
//!
//! Acknowledging a command writes its row and its device's document back,
//! and formatting their instants through chrono's `Display` (one `char` at
//! a time into serde_json's escaper) was about 5% of acknowledging, reading
//! them back through chrono's general parser a little more. The text is
//! exactly chrono's own: `YYYY-MM-DDTHH:MM:SS`, then `.fff`, `.ffffff` or
//! `.fffffffff` when the fraction needs them, then `Z`. Instants that are
//! not written that way (years outside 0-9999, leap seconds) and text that
//! is not in that form go to chrono, so what is accepted, refused and
//! produced is chrono's in every case (a property test holds the two
//! side by side).

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, Timelike, Utc};
use serde::{Deserializer, Serializer, de};

/// The longest text the fast path writes: `YYYY-MM-DDTHH:MM:SS.fffffffffZ`.
const MAX_LEN: usize = 30;

/// `t` as chrono writes it, in `buf`; `None` when chrono's form is not the
/// fixed one (a year outside 0-9999 or a leap second).
fn write(t: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    // Read once: each of `DateTime`'s own field accessors converts anew.
    let (date, time) = (t.date_naive(), t.time());
    let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let put = |buf: &mut [u8; MAX_LEN], at: usize, mut v: u32, digits: usize| {
        for i in (at..at + digits).rev() {
            // A digit: always below 10.
            buf[i] = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
        }
    };
    put(buf, 0, year, 4);
    buf[4] = b'-';
    put(buf, 5, date.month(), 2);
    buf[7] = b'-';
    put(buf, 8, date.day(), 2);
    buf[10] = b'T';
    put(buf, 11, time.hour(), 2);
    buf[13] = b':';
    put(buf, 14, time.minute(), 2);
    buf[16] = b':';
    put(buf, 17, time.second(), 2);
    let mut len = 19;
    let (value, digits) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    if digits > 0 {
        buf[len] = b'.';
        put(buf, len + 1, value, digits);
        len += 1 + digits;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// Appends `t` as a JSON string, as [`serialize`] writes it through
/// serde_json; false (nothing appended) when chrono's form is not the
/// fixed one, for the caller to fall back to serde_json.
pub(crate) fn push_json(out: &mut String, t: &DateTime<Utc>) -> bool {
    let mut buf = [0u8; MAX_LEN];
    let Some(text) = fixed_text(t, &mut buf) else {
        return false;
    };
    out.push('"');
    out.push_str(text);
    out.push('"');
    true
}

/// [`write`]'s text in `buf` (only ASCII digits and separators).
fn fixed_text<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; MAX_LEN]) -> Option<&'b str> {
    let len = write(t, buf)?;
    std::str::from_utf8(buf.get(..len)?).ok()
}

/// Serializes an instant as chrono does (for `#[serde(serialize_with)]`).
pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX_LEN];
    match fixed_text(t, &mut buf) {
        Some(text) => s.serialize_str(text),
        None => serde::Serialize::serialize(t, s),
    }
}

/// The `n` ASCII digits at `at` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// `s` read in the form [`write`] produces (`None` for anything else,
/// including a leap second, which chrono then reads).
pub(crate) fn read_fixed(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let frac = match b.len() {
        20 => 0,
        24 => 3,
        27 => 6,
        30 => 9,
        _ => return None,
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b[i] != c) || b[b.len() - 1] != b'Z' {
        return None;
    }
    let nanos = if frac > 0 {
        if b[19] != b'.' {
            return None;
        }
        digits(b, 20, frac)? * 10u32.pow(9 - u32::try_from(frac).ok()?)
    } else {
        0
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(digits(b, 0, 4)?).ok()?,
        digits(b, 5, 2)?,
        digits(b, 8, 2)?,
    )?;
    let time = NaiveTime::from_hms_nano_opt(
        digits(b, 11, 2)?,
        digits(b, 14, 2)?,
        digits(b, 17, 2)?,
        nanos,
    )?;
    Some(date.and_time(time).and_utc())
}

/// `s` as chrono's own `Deserialize` reads it.
fn read_as_chrono(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    s.parse::<DateTime<FixedOffset>>()
        .map(|t| t.with_timezone(&Utc))
}

/// Reads a borrowed or owned string and hands it to a parser.
struct Text<F>(F, &'static str);

impl<T, F: Fn(&str) -> Result<T, String>> de::Visitor<'_> for Text<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.0)(s).map_err(E::custom)
    }
}

/// Deserializes an instant exactly as chrono does (for
/// `#[serde(deserialize_with)]`).
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_str(Text(
        |s: &str| match read_fixed(s) {
            Some(t) => Ok(t),
            None => read_as_chrono(s).map_err(|e| e.to_string()),
        },
        "an RFC 3339 instant",
    ))
}

/// `s` as RFC 3339, or a date alone (`2027-01-01`) as midnight UTC, or as
/// chrono writes it (what [`serialize`] and chrono's RFC 3339 writer make
/// of years before 0 or after 9999, which RFC 3339 cannot hold).
pub(crate) fn parse_lenient(s: &str) -> Option<DateTime<Utc>> {
    read_fixed(s)
        .or_else(|| crate::records::parse_instant(s))
        .or_else(|| read_as_chrono(s).ok())
}

/// Deserializes an instant as [`parse_lenient`] reads it.
pub(crate) fn deserialize_lenient<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_str(Text(
        |s: &str| {
            parse_lenient(s).ok_or_else(|| {
                format!(
                    "{s:?} is not an RFC 3339 instant (2027-01-01T00:00:00Z) or a date (2027-01-01)"
                )
            })
        },
        "an RFC 3339 instant or a date",
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Fast {
        #[serde(serialize_with = "serialize", deserialize_with = "deserialize")]
        t: DateTime<Utc>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Lenient {
        #[serde(serialize_with = "serialize", deserialize_with = "deserialize_lenient")]
        t: DateTime<Utc>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Chrono {
        t: DateTime<Utc>,
    }

    /// Instants across chrono's whole range, with fractions of every
    /// width chrono writes, and leap seconds.
    pub(crate) fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let min = DateTime::<Utc>::MIN_UTC.timestamp();
        let max = DateTime::<Utc>::MAX_UTC.timestamp();
        (
            prop_oneof![min..=max, -62_135_596_800i64..=253_402_300_799],
            prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|m| m * 1_000_000),
                (0u32..1_000_000).prop_map(|u| u * 1000),
                0u32..2_000_000_000,
            ],
        )
            .prop_filter_map("representable", |(secs, nanos)| {
                DateTime::from_timestamp(secs, nanos)
            })
    }

    proptest! {
        #[test]
        fn instants_are_written_and_read_as_chrono_does(t in instant()) {
            let ours = serde_json::to_string(&Fast { t }).unwrap();
            let chrono = serde_json::to_string(&Chrono { t }).unwrap();
            prop_assert_eq!(&ours, &chrono);
            let back: Fast = serde_json::from_str(&chrono).unwrap();
            let theirs: Chrono = serde_json::from_str(&chrono).unwrap();
            prop_assert_eq!(back.t, theirs.t);
        }

        #[test]
        fn every_instant_written_is_read_back_leniently(t in instant()) {
            let text = serde_json::to_string(&Lenient { t }).unwrap();
            let back: Lenient = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back.t, t);
        }

        #[test]
        fn any_text_reads_as_chrono_reads_it(
            t in instant(),
            at in 0usize..30,
            with in prop::sample::select(vec![
                "0", "9", "-", ":", "T", "t", " ", "Z", "+00:00", ".", "", "60", "1",
            ]),
            cut in any::<bool>(),
        ) {
            // A written instant with one place changed, removed or cut.
            let mut s = serde_json::to_string(&Chrono { t }).unwrap();
            s = s.trim_matches('"').to_string();
            let at = at.min(s.len());
            if s.is_char_boundary(at) {
                if cut {
                    s.truncate(at);
                } else {
                    let end = (at + 1).min(s.len());
                    s.replace_range(at..end, with);
                }
            }
            let json = serde_json::to_string(&s).unwrap();
            let ours = serde_json::from_str::<Fast>(&format!("{{\"t\":{json}}}")).map(|f| f.t);
            let theirs = serde_json::from_str::<Chrono>(&format!("{{\"t\":{json}}}")).map(|c| c.t);
            prop_assert_eq!(ours.ok(), theirs.ok(), "{}", s);
        }
    }

    /// Each fraction width chrono uses, and the forms it writes another way.
    #[test]
    fn instants_of_every_form_match_chrono() {
        for text in [
            "2026-11-23T00:00:00Z",
            "2026-11-23T01:02:03.120Z",
            "2026-11-23T01:02:03.000120Z",
            "2026-11-23T01:02:03.000000120Z",
            "1970-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.500Z",
            "+10000-01-01T00:00:00Z",
            "-0001-12-31T00:00:00Z",
        ] {
            let json = format!("{{\"t\":\"{text}\"}}");
            let theirs: Chrono = serde_json::from_str(&json).unwrap();
            let ours: Fast = serde_json::from_str(&json).unwrap();
            assert_eq!(ours.t, theirs.t, "{text}");
            assert_eq!(
                serde_json::to_string(&ours).unwrap(),
                serde_json::to_string(&theirs).unwrap(),
                "{text}"
            );
        }
    }
}

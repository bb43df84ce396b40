//! UTCTime and GeneralizedTime (X.690 / RFC 5280 §4.1.2.5) and plist dates.

use chrono::{DateTime, NaiveDate, Timelike, Utc};

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn build(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<DateTime<Utc>> {
    let y = i32::try_from(y).ok()?;
    let date = NaiveDate::from_ymd_opt(y, mo, d)?;
    // X.509 uses 23:59:59 as the last second; leap seconds are not representable here.
    Some(date.and_hms_opt(h, mi, s)?.and_utc())
}

/// `YYMMDDHHMMSSZ`, years 50..99 meaning 19xx (RFC 5280).
pub(crate) fn parse_utc_time(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 13 || b[12] != b'Z' {
        return None;
    }
    let yy = digits(&b[0..2])?;
    let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
    build(
        year,
        digits(&b[2..4])?,
        digits(&b[4..6])?,
        digits(&b[6..8])?,
        digits(&b[8..10])?,
        digits(&b[10..12])?,
    )
}

/// `YYYYMMDDHHMMSSZ` (no fractional seconds, as RFC 5280 requires).
pub(crate) fn parse_generalized_time(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 15 || b[14] != b'Z' {
        return None;
    }
    build(
        digits(&b[0..4])?,
        digits(&b[4..6])?,
        digits(&b[6..8])?,
        digits(&b[8..10])?,
        digits(&b[10..12])?,
        digits(&b[12..14])?,
    )
}

/// A plist `<date>`: `YYYY-MM-DDTHH:MM:SSZ`, also with a fractional second
/// (`...SS.fffZ`), which some writers emit.
pub(crate) fn parse_plist_date(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() > 20 && b.get(19) == Some(&b'.') && b.last() == Some(&b'Z') {
        let frac = &b[20..b.len() - 1];
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        let digits_value = digits(frac)?;
        let nanos = digits_value * 10u32.pow(9 - u32::try_from(frac.len()).ok()?);
        let mut whole = s[..19].to_owned();
        whole.push('Z');
        return parse_plist_date(&whole)?.with_nanosecond(nanos);
    }
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    build(
        digits(&b[0..4])?,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = parse_utc_time(b"200521000000Z").expect("utc");
        assert_eq!(t.to_rfc3339(), "2020-05-21T00:00:00+00:00");
        let t = parse_utc_time(b"991231235959Z").expect("19xx");
        assert_eq!(t.to_rfc3339(), "1999-12-31T23:59:59+00:00");
        let t = parse_generalized_time(b"20500101000000Z").expect("gt");
        assert_eq!(t.to_rfc3339(), "2050-01-01T00:00:00+00:00");
        let t = parse_plist_date("2024-02-19T07:39:35Z").expect("plist");
        assert_eq!(t.to_rfc3339(), "2024-02-19T07:39:35+00:00");
        assert!(parse_utc_time(b"201321000000Z").is_none());
        assert!(parse_plist_date("2024-02-19 07:39:35Z").is_none());
        let t = parse_plist_date("2024-02-19T07:39:35.250Z").expect("fraction");
        assert_eq!(t.timestamp_subsec_millis(), 250);
        assert!(parse_plist_date("2024-02-19T07:39:35.Z").is_none());
        assert!(parse_generalized_time(b"2050010100000Z").is_none());
    }
}

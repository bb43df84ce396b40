//! A bounds-checked, zero-copy reader for DER TLVs (X.690), with BER
//! indefinite lengths accepted only where a caller asks for them.
//!
//! Every read goes through [`Reader`], which never indexes past its slice and
//! reports absolute byte offsets into the original input, so an error always
//! says where the bad byte is.

use std::fmt;

/// Universal tags used by the parsers.
pub(crate) mod tag {
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const UTF8_STRING: u8 = 0x0c;
    pub(crate) const PRINTABLE_STRING: u8 = 0x13;
    pub(crate) const TELETEX_STRING: u8 = 0x14;
    pub(crate) const IA5_STRING: u8 = 0x16;
    pub(crate) const UTC_TIME: u8 = 0x17;
    pub(crate) const GENERALIZED_TIME: u8 = 0x18;
    pub(crate) const BMP_STRING: u8 = 0x1e;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
    /// `[0]` constructed, context-specific.
    pub(crate) const CTX0: u8 = 0xa0;
    /// `[1]` constructed, context-specific.
    pub(crate) const CTX1: u8 = 0xa1;
    /// `[3]` constructed, context-specific.
    pub(crate) const CTX3: u8 = 0xa3;
    /// `[0]` primitive, context-specific.
    pub(crate) const CTX0_PRIM: u8 = 0x80;
}

/// What went wrong while reading DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DerErrorKind {
    /// The input ends before the element does.
    Truncated,
    /// A tag with the high-tag-number form (0x1f), which no structure here uses.
    HighTagNumber,
    /// A length in a form DER forbids (non-minimal, or more than 4 length bytes).
    BadLength,
    /// An indefinite length where only definite lengths are allowed.
    IndefiniteLength,
    /// A different tag than the structure requires.
    UnexpectedTag {
        /// The tag the structure requires.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// Bytes left over after a complete structure.
    TrailingBytes,
    /// A value that does not fit its type (bad INTEGER, OID, time, string).
    BadValue,
    /// Nesting deeper than the reader allows.
    TooDeep,
}

impl fmt::Display for DerErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated"),
            Self::HighTagNumber => f.write_str("high tag number form"),
            Self::BadLength => f.write_str("invalid length encoding"),
            Self::IndefiniteLength => f.write_str("indefinite length not allowed"),
            Self::UnexpectedTag { expected, found } => {
                write!(f, "expected tag 0x{expected:02x}, found 0x{found:02x}")
            }
            Self::TrailingBytes => f.write_str("trailing bytes"),
            Self::BadValue => f.write_str("invalid value"),
            Self::TooDeep => f.write_str("nesting too deep"),
        }
    }
}

/// A DER decoding error: what, where (absolute byte offset) and in which structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {kind} at byte {offset}")]
pub struct DerError {
    /// Absolute offset of the offending byte in the input.
    pub offset: usize,
    /// The structure being read (for example `"SignerInfo"`).
    pub context: &'static str,
    /// What was wrong.
    pub kind: DerErrorKind,
}

/// One decoded TLV.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    /// The value bytes (for an indefinite-length element, without the end-of-contents octets).
    pub(crate) contents: &'a [u8],
    /// The whole element: tag, length and contents.
    pub(crate) raw: &'a [u8],
    /// Absolute offset of the tag byte.
    pub(crate) offset: usize,
    /// Absolute offset of the first contents byte.
    pub(crate) contents_offset: usize,
    /// How many elements enclose this one in the whole input (0 at the top),
    /// carried into the readers over its contents.
    pub(crate) depth: usize,
}

impl<'a> Tlv<'a> {
    /// A reader over this element's contents.
    pub(crate) fn reader(&self, context: &'static str) -> Reader<'a> {
        Reader {
            data: self.contents,
            pos: 0,
            base: self.contents_offset,
            context,
            ber: false,
            depth: self.depth + 1,
        }
    }

    /// A reader over the contents that accepts BER indefinite lengths.
    pub(crate) fn ber_reader(&self, context: &'static str) -> Reader<'a> {
        let mut r = self.reader(context);
        r.ber = true;
        r
    }

    pub(crate) fn err(&self, context: &'static str, kind: DerErrorKind) -> DerError {
        DerError {
            offset: self.offset,
            context,
            kind,
        }
    }
}

/// The one nesting budget of every DER and BER structure read from an
/// input: an element enclosed by this many others is refused with
/// [`DerErrorKind::TooDeep`]. The depth travels from each element into the
/// readers over its contents, so nested readers never restart the count.
/// Certificates nest about 10 levels, CMS about 15, Apple's DER plists two
/// levels per plist level (the plist readers stop at 64 of those).
pub const MAX_DER_DEPTH: usize = 160;

/// A cursor over DER bytes.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    context: &'static str,
    ber: bool,
    /// The depth of the elements this reader reads.
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A DER reader over a whole input (offsets start at 0).
    pub(crate) fn new(data: &'a [u8], context: &'static str) -> Self {
        Reader {
            data,
            pos: 0,
            base: 0,
            context,
            ber: false,
            depth: 0,
        }
    }

    /// A reader that also accepts BER indefinite lengths.
    pub(crate) fn new_ber(data: &'a [u8], context: &'static str) -> Self {
        let mut r = Self::new(data, context);
        r.ber = true;
        r
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    #[cold]
    pub(crate) fn err(&self, kind: DerErrorKind) -> DerError {
        DerError {
            offset: self.offset(),
            context: self.context,
            kind,
        }
    }

    /// The tag of the next element, if any.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Reads the next element.
    pub(crate) fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let (tlv, next) = self.read_at(self.pos, self.depth)?;
        self.pos = next;
        Ok(tlv)
    }

    fn read_at(&self, start: usize, depth: usize) -> Result<(Tlv<'a>, usize), DerError> {
        let at = |pos: usize, kind| DerError {
            offset: self.base + pos,
            context: self.context,
            kind,
        };
        let data = self.data;
        if depth >= MAX_DER_DEPTH {
            return Err(at(start, DerErrorKind::TooDeep));
        }
        let tag = *data.get(start).ok_or(at(start, DerErrorKind::Truncated))?;
        if tag & 0x1f == 0x1f {
            return Err(at(start, DerErrorKind::HighTagNumber));
        }
        let len_pos = start + 1;
        let first = *data
            .get(len_pos)
            .ok_or(at(len_pos, DerErrorKind::Truncated))?;
        let (len, contents_start) = if first < 0x80 {
            (usize::from(first), len_pos + 1)
        } else if first == 0x80 {
            // Indefinite length: BER only, constructed only.
            if !self.ber || tag & 0x20 == 0 {
                return Err(at(len_pos, DerErrorKind::IndefiniteLength));
            }
            let contents_start = len_pos + 1;
            let mut p = contents_start;
            loop {
                if data.get(p..p + 2) == Some(&[0, 0]) {
                    let tlv = Tlv {
                        tag,
                        contents: &data[contents_start..p],
                        raw: &data[start..p + 2],
                        offset: self.base + start,
                        contents_offset: self.base + contents_start,
                        depth,
                    };
                    return Ok((tlv, p + 2));
                }
                if p >= data.len() {
                    return Err(at(p, DerErrorKind::Truncated));
                }
                let (_, next) = self.read_at(p, depth + 1)?;
                p = next;
            }
        } else {
            let n = usize::from(first & 0x7f);
            if n > 4 {
                return Err(at(len_pos, DerErrorKind::BadLength));
            }
            let bytes = data
                .get(len_pos + 1..len_pos + 1 + n)
                .ok_or(at(len_pos, DerErrorKind::Truncated))?;
            if !self.ber && (bytes[0] == 0 || (n == 1 && bytes[0] < 0x80)) {
                return Err(at(len_pos, DerErrorKind::BadLength));
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, len_pos + 1 + n)
        };
        let end = contents_start
            .checked_add(len)
            .filter(|e| *e <= data.len())
            .ok_or(at(start, DerErrorKind::Truncated))?;
        let tlv = Tlv {
            tag,
            contents: &data[contents_start..end],
            raw: &data[start..end],
            offset: self.base + start,
            contents_offset: self.base + contents_start,
            depth,
        };
        Ok((tlv, end))
    }

    /// Reads the next element and checks its tag.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        match self.peek_tag() {
            Some(t) if t == tag => self.read(),
            Some(found) => Err(self.err(DerErrorKind::UnexpectedTag {
                expected: tag,
                found,
            })),
            None => Err(self.err(DerErrorKind::Truncated)),
        }
    }

    /// Reads the next element if it has this tag.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DerError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.err(DerErrorKind::TrailingBytes))
        }
    }

    /// Reads a SEQUENCE and returns a reader over its contents.
    pub(crate) fn sequence(&mut self) -> Result<Reader<'a>, DerError> {
        let ctx = self.context;
        let ber = self.ber;
        let tlv = self.expect(tag::SEQUENCE)?;
        let mut r = tlv.reader(ctx);
        r.ber = ber;
        Ok(r)
    }

    /// Reads an OBJECT IDENTIFIER and returns its encoded body.
    pub(crate) fn oid(&mut self) -> Result<&'a [u8], DerError> {
        let tlv = self.expect(tag::OID)?;
        if tlv.contents.is_empty() || tlv.contents.last().is_some_and(|b| b & 0x80 != 0) {
            return Err(tlv.err(self.context, DerErrorKind::BadValue));
        }
        Ok(tlv.contents)
    }

    /// Reads a small non-negative INTEGER.
    pub(crate) fn small_uint(&mut self) -> Result<u64, DerError> {
        let tlv = self.expect(tag::INTEGER)?;
        let c = tlv.contents;
        if c.is_empty() || c.len() > 9 || c[0] & 0x80 != 0 || (c.len() == 9 && c[0] != 0) {
            return Err(tlv.err(self.context, DerErrorKind::BadValue));
        }
        Ok(c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

/// Formats an encoded OID body as dotted decimal.
pub fn oid_to_string(body: &[u8]) -> String {
    let mut out = String::new();
    let mut value: u64 = 0;
    let mut first = true;
    for &b in body {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if first {
                let (a, rest) = if value < 40 {
                    (0, value)
                } else if value < 80 {
                    (1, value - 40)
                } else {
                    (2, value - 80)
                };
                out.push_str(&format!("{a}.{rest}"));
                first = false;
            } else {
                out.push_str(&format!(".{value}"));
            }
            value = 0;
        }
        if value > (u64::MAX >> 8) {
            return format!("<bad oid {}>", hex(body));
        }
    }
    out
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_and_reports_offsets() {
        let data = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xff];
        let mut r = Reader::new(&data, "test");
        let mut seq = r.sequence().expect("sequence");
        assert_eq!(seq.small_uint().expect("int"), 5);
        let os = seq.expect(tag::OCTET_STRING).expect("octets");
        assert_eq!(os.contents, &[0xff]);
        assert_eq!(os.offset, 5);
        assert!(seq.finish().is_ok());
        assert!(r.finish().is_ok());
    }

    #[test]
    fn truncated_and_bad_lengths() {
        let e = Reader::new(&[0x30, 0x05, 0x02], "t")
            .read()
            .expect_err("short");
        assert_eq!(e.kind, DerErrorKind::Truncated);
        let e = Reader::new(&[0x30, 0x81, 0x05], "t")
            .read()
            .expect_err("nonminimal");
        assert_eq!(e.kind, DerErrorKind::BadLength);
        let e = Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1], "t")
            .read()
            .expect_err("huge");
        assert_eq!(e.kind, DerErrorKind::BadLength);
        let e = Reader::new(&[0x30, 0x80, 0, 0], "t")
            .read()
            .expect_err("indefinite");
        assert_eq!(e.kind, DerErrorKind::IndefiniteLength);
    }

    #[test]
    fn ber_indefinite_lengths() {
        let data = [0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 0xaa, 0, 0, 0, 0];
        let tlv = Reader::new_ber(&data, "t").read().expect("ber");
        assert_eq!(tlv.raw.len(), data.len());
        assert_eq!(tlv.contents, &data[2..9]);
        // Unterminated.
        let e = Reader::new_ber(&data[..8], "t")
            .read()
            .expect_err("unterminated");
        assert_eq!(e.kind, DerErrorKind::Truncated);
    }

    #[test]
    fn oid_strings() {
        for (body, dotted) in [
            (crate::oid::SHA1, "1.3.14.3.2.26"),
            (crate::oid::SHA256, "2.16.840.1.101.3.4.2.1"),
            (crate::oid::SHA384, "2.16.840.1.101.3.4.2.2"),
            (crate::oid::SHA512, "2.16.840.1.101.3.4.2.3"),
        ] {
            assert_eq!(oid_to_string(body), dotted);
        }
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]),
            "1.2.840.113549.1.7.2"
        );
    }
}

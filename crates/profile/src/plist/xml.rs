//! A single-pass reader for XML property lists.
//!
//! It accepts exactly the plist vocabulary (`plist`, `dict`, `key`, `array`,
//! `string`, `data`, `date`, `integer`, `real`, `true`, `false`), comments,
//! processing instructions, a DOCTYPE without an internal subset (so no
//! entity can expand), CDATA sections, the five predefined entities and
//! character references. Nesting is capped at [`MAX_DEPTH`].

use super::{Dictionary, MAX_DEPTH, PlistError, Value};
use crate::time::parse_plist_date;

struct Parser<'a> {
    /// The whole document, validated as UTF-8 once, so that every slice taken
    /// at an ASCII delimiter is a `&str` without further validation.
    s: &'a str,
    b: &'a [u8],
    pos: usize,
}

type R<T> = Result<T, PlistError>;

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

pub(crate) fn parse(bytes: &[u8]) -> R<Value> {
    let mut dict = Dictionary::with_capacity(8);
    let root = parse_root_dict(bytes, |key, entry| {
        dict.push(key.to_owned(), entry.value()?);
        Ok::<(), PlistError>(())
    })?;
    Ok(match root {
        Root::Dict => Value::Dictionary(dict),
        Root::Other(v) => v,
    })
}

/// What [`parse_root_dict`] found at the root.
pub(crate) enum Root {
    /// A dictionary, whose entries went to the callback.
    Dict,
    /// Another value, read whole.
    Other(Value),
}

/// One entry of the root dictionary: its value, read by the callback on
/// demand (exactly once: a value left unread is taken for the next key and
/// refused as such).
pub(crate) struct Entry<'p, 'a> {
    p: &'p mut Parser<'a>,
}

/// Where [`Entry::strings`] puts what it reads.
pub(crate) trait StringSink {
    /// Room for about `items` more strings of `bytes` bytes in all.
    fn reserve(&mut self, items: usize, bytes: usize);
    /// One string, in document order.
    fn push(&mut self, s: &str);
}

/// What [`Entry::strings`] read.
pub(crate) enum Strings {
    /// An array of strings, each handed over.
    Read,
    /// Not an array: the value, read whole.
    NotArray(Value),
    /// An array with a non-string item: the first such item and its index
    /// (the strings before it were handed over).
    NotString {
        /// The item's index.
        index: usize,
        /// The item.
        found: Value,
    },
}

impl Entry<'_, '_> {
    /// The value, read whole.
    pub(crate) fn value(self) -> R<Value> {
        self.p.value(1)
    }

    /// Reads an array of strings into `sink` as they are read (borrowed
    /// from the document when they have no entity), without building a value
    /// per item. Before the first item the sink gets an estimate of the
    /// array's items and text bytes (from the text up to the next
    /// `</array>`, so never more than the document holds), to make room once
    /// instead of growing item by item.
    pub(crate) fn strings(self, sink: &mut impl StringSink) -> R<Strings> {
        let p = self.p;
        let (name, empty) = p.open_tag()?;
        if name != b"array" {
            return p.value_after_open(name, empty, 1).map(Strings::NotArray);
        }
        if empty {
            return Ok(Strings::Read);
        }
        if let Some(end) = p.find(b"</array>") {
            let span = &p.b[p.pos..end];
            // Each item is `<string>` and `</string>`: two '<' an item.
            sink.reserve(memchr::memchr_iter(b'<', span).count() / 2, span.len());
        }
        let mut bad = None;
        let mut index = 0;
        loop {
            p.skip_misc()?;
            if p.starts_with(b"</") {
                p.close_tag(b"array")?;
                return Ok(match bad {
                    None => Strings::Read,
                    Some((index, found)) => Strings::NotString { index, found },
                });
            }
            let (tag, empty) = p.open_tag()?;
            if tag == b"string" && bad.is_none() {
                if empty {
                    sink.push("");
                } else {
                    sink.push(&p.text_ref(b"string")?);
                }
            } else {
                let v = p.value_after_open(tag, empty, 2)?;
                if bad.is_none() {
                    bad = Some((index, v));
                }
            }
            index += 1;
        }
    }
}

/// Reads an XML plist whose root is expected to be a dictionary, handing
/// each entry to `entry` in file order with its key borrowed from the
/// document where it can be: a typed reader takes the values it knows
/// without a tree or a key copied. Syntax is checked exactly as by
/// [`parse`]; a root of another type comes back read whole.
pub(crate) fn parse_root_dict<E: From<PlistError>>(
    bytes: &[u8],
    mut entry: impl FnMut(&str, Entry<'_, '_>) -> Result<(), E>,
) -> Result<Root, E> {
    let mut p = Parser::new(bytes)?;
    p.skip_misc()?;
    let (mut name, mut empty) = p.open_tag()?;
    let in_plist = name == b"plist";
    if in_plist {
        if empty {
            return Err(p.err("empty <plist/>").into());
        }
        p.skip_misc()?;
        (name, empty) = p.open_tag()?;
    }
    let root = if name == b"dict" {
        if !empty {
            p.dict_entries(|key, p| entry(&key, Entry { p }))?;
        }
        Root::Dict
    } else {
        Root::Other(p.value_after_open(name, empty, 0)?)
    };
    if in_plist {
        p.skip_misc()?;
        p.close_tag(b"plist")?;
    }
    p.skip_misc()?;
    if p.pos != p.b.len() {
        return Err(p.err("content after the root element").into());
    }
    Ok(root)
}

impl<'a> Parser<'a> {
    /// A reader at the start of `bytes` (after a UTF-8 byte order mark).
    fn new(bytes: &'a [u8]) -> R<Self> {
        let b = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let s = std::str::from_utf8(b).map_err(|e| PlistError::Xml {
            offset: e.valid_up_to(),
            reason: "invalid UTF-8",
        })?;
        Ok(Parser { s, b, pos: 0 })
    }

    #[cold]
    fn err(&self, reason: &'static str) -> PlistError {
        PlistError::Xml {
            offset: self.pos,
            reason,
        }
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.b.get(self.pos..).is_some_and(|r| r.starts_with(s))
    }

    fn find(&self, needle: &[u8]) -> Option<usize> {
        let hay = self.b.get(self.pos..)?;
        if let [one] = needle {
            return memchr::memchr(*one, hay).map(|i| self.pos + i);
        }
        memchr::memmem::find(hay, needle).map(|i| self.pos + i)
    }

    fn skip_ws(&mut self) {
        while self.pos < self.b.len() && is_ws(self.b[self.pos]) {
            self.pos += 1;
        }
    }

    /// Skips whitespace, comments, processing instructions and a DOCTYPE.
    fn skip_misc(&mut self) -> R<()> {
        loop {
            self.skip_ws();
            // Fast path: the next thing is an element or text.
            if !matches!(
                self.b.get(self.pos..self.pos + 2),
                Some([b'<', b'!' | b'?'])
            ) {
                return Ok(());
            }
            if self.starts_with(b"<!--") {
                let end = self
                    .find(b"-->")
                    .ok_or_else(|| self.err("unterminated comment"))?;
                self.pos = end + 3;
            } else if self.starts_with(b"<?") {
                let end = self
                    .find(b"?>")
                    .ok_or_else(|| self.err("unterminated processing instruction"))?;
                self.pos = end + 2;
            } else if self.starts_with(b"<!DOCTYPE") {
                let end = self
                    .find(b">")
                    .ok_or_else(|| self.err("unterminated DOCTYPE"))?;
                if self.b[self.pos..end].contains(&b'[') {
                    return Err(self.err("DOCTYPE internal subsets are not accepted"));
                }
                self.pos = end + 1;
            } else {
                return Ok(());
            }
        }
    }

    /// Reads `<name attr="...">` or `<name/>`; returns the name and whether it was empty.
    fn open_tag(&mut self) -> R<(&'a [u8], bool)> {
        if self.b.get(self.pos) != Some(&b'<') {
            return Err(self.err("expected an element"));
        }
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.b.len()
            && (self.b[self.pos].is_ascii_alphanumeric()
                || matches!(self.b[self.pos], b'_' | b'-' | b':'))
        {
            self.pos += 1;
        }
        let name = &self.b[start..self.pos];
        if name.is_empty() {
            return Err(self.err("expected an element name"));
        }
        // Fast path: no attributes.
        match self.b.get(self.pos..self.pos + 2) {
            Some([b'>', _]) => {
                self.pos += 1;
                return Ok((name, false));
            }
            Some([b'/', b'>']) => {
                self.pos += 2;
                return Ok((name, true));
            }
            _ => {}
        }
        // Attributes: skip, honouring quotes.
        let mut quote = None;
        while let Some(&c) = self.b.get(self.pos) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(c),
                (None, b'>') => {
                    self.pos += 1;
                    return Ok((name, false));
                }
                (None, b'/') if self.b.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    return Ok((name, true));
                }
                (None, b'<') => return Err(self.err("'<' inside a tag")),
                _ => {}
            }
            self.pos += 1;
        }
        Err(self.err("unterminated tag"))
    }

    fn close_tag(&mut self, name: &[u8]) -> R<()> {
        if !self.starts_with(b"</") {
            return Err(self.err("expected a closing tag"));
        }
        self.pos += 2;
        if !self.starts_with(name) {
            return Err(self.err("closing tag does not match"));
        }
        self.pos += name.len();
        self.skip_ws();
        if self.b.get(self.pos) != Some(&b'>') {
            return Err(self.err("closing tag does not match"));
        }
        self.pos += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> R<Value> {
        let (name, empty) = self.open_tag()?;
        self.value_after_open(name, empty, depth)
    }

    fn value_after_open(&mut self, name: &[u8], empty: bool, depth: usize) -> R<Value> {
        match name {
            b"dict" => {
                if depth >= MAX_DEPTH {
                    return Err(PlistError::TooDeep {
                        format: "XML",
                        position: self.pos,
                    });
                }
                let mut dict = Dictionary::with_capacity(if empty { 0 } else { 8 });
                if !empty {
                    self.dict_entries(|key, p| {
                        dict.push(key.into_owned(), p.value(depth + 1)?);
                        Ok::<(), PlistError>(())
                    })?;
                }
                Ok(Value::Dictionary(dict))
            }
            b"array" => {
                if depth >= MAX_DEPTH {
                    return Err(PlistError::TooDeep {
                        format: "XML",
                        position: self.pos,
                    });
                }
                let mut items = Vec::with_capacity(if empty { 0 } else { 4 });
                if empty {
                    return Ok(Value::Array(items));
                }
                loop {
                    self.skip_misc()?;
                    if self.starts_with(b"</") {
                        self.close_tag(b"array")?;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value(depth + 1)?);
                }
            }
            b"true" | b"false" => {
                if !empty {
                    self.skip_ws();
                    self.close_tag(name)?;
                }
                Ok(Value::Boolean(name == b"true"))
            }
            b"string" => Ok(Value::String(if empty {
                String::new()
            } else {
                self.text(b"string")?
            })),
            b"data" => {
                if empty {
                    return Ok(Value::Data(Vec::new()));
                }
                let start = self.pos;
                let end = self
                    .find(b"<")
                    .ok_or_else(|| self.err("unterminated <data>"))?;
                let data =
                    crate::base64::decode(&self.b[start..end]).map_err(|i| PlistError::Xml {
                        offset: start + i,
                        reason: "invalid base64 in <data>",
                    })?;
                self.pos = end;
                self.close_tag(b"data")?;
                Ok(Value::Data(data))
            }
            b"date" => {
                let at = self.pos;
                let text = if empty {
                    std::borrow::Cow::Borrowed("")
                } else {
                    self.text_ref(b"date")?
                };
                parse_plist_date(text.trim())
                    .map(Value::Date)
                    .ok_or(PlistError::Xml {
                        offset: at,
                        reason: "invalid <date>",
                    })
            }
            b"integer" => {
                let at = self.pos;
                let text = if empty {
                    std::borrow::Cow::Borrowed("")
                } else {
                    self.text_ref(b"integer")?
                };
                let t = text.trim();
                let parsed = if let Some(hex) = t.strip_prefix("0x") {
                    i128::from_str_radix(hex, 16).ok()
                } else {
                    t.parse::<i128>().ok()
                };
                parsed
                    .filter(|v| *v >= i128::from(i64::MIN) && *v <= i128::from(u64::MAX))
                    .map(Value::Integer)
                    .ok_or(PlistError::Xml {
                        offset: at,
                        reason: "invalid <integer>",
                    })
            }
            b"real" => {
                let at = self.pos;
                let text = if empty {
                    std::borrow::Cow::Borrowed("")
                } else {
                    self.text_ref(b"real")?
                };
                text.trim()
                    .parse::<f64>()
                    .map(Value::Real)
                    .map_err(|_| PlistError::Xml {
                        offset: at,
                        reason: "invalid <real>",
                    })
            }
            _ => Err(self.err("unknown plist element")),
        }
    }

    /// Reads a dictionary's entries up to its closing tag (its opening tag
    /// read), handing each key (borrowed when its text is plain) to `entry`
    /// with the reader at the key's value, which `entry` must read.
    fn dict_entries<E: From<PlistError>>(
        &mut self,
        mut entry: impl FnMut(std::borrow::Cow<'a, str>, &mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            self.skip_misc()?;
            if self.starts_with(b"</") {
                self.close_tag(b"dict")?;
                return Ok(());
            }
            let (tag, key_empty) = self.open_tag()?;
            if tag != b"key" {
                return Err(self.err("expected <key> in <dict>").into());
            }
            let key = if key_empty {
                std::borrow::Cow::Borrowed("")
            } else {
                self.text_ref(b"key")?
            };
            self.skip_misc()?;
            entry(key, self)?;
        }
    }

    /// Reads character data up to `</name>`, decoding entities and CDATA.
    fn text(&mut self, name: &[u8]) -> R<String> {
        self.text_ref(name).map(std::borrow::Cow::into_owned)
    }

    /// [`Parser::text`] borrowed from the document when the text is plain
    /// (no entity, CDATA or comment), as nearly all text is.
    fn text_ref(&mut self, name: &[u8]) -> R<std::borrow::Cow<'a, str>> {
        let start = self.pos;
        if let Some(stop) = memchr::memchr2(b'<', b'&', &self.b[start..])
            && self.b[start + stop] == b'<'
            && self.b.get(start + stop + 1) == Some(&b'/')
        {
            self.pos = start + stop;
            self.close_tag(name)?;
            return Ok(std::borrow::Cow::Borrowed(&self.s[start..start + stop]));
        }
        self.text_decoded(name).map(std::borrow::Cow::Owned)
    }

    fn text_decoded(&mut self, name: &[u8]) -> R<String> {
        let mut out = String::new();
        loop {
            let start = self.pos;
            let rest = &self.b[start..];
            let stop =
                memchr::memchr2(b'<', b'&', rest).ok_or_else(|| self.err("unterminated text"))?;
            // Delimiters are ASCII, so these are char boundaries of the validated text.
            out.push_str(&self.s[start..start + stop]);
            self.pos = start + stop;
            if self.b[self.pos] == b'&' {
                let semi = memchr::memchr(b';', &self.b[self.pos..])
                    .filter(|n| *n <= 12)
                    .ok_or_else(|| self.err("invalid entity reference"))?;
                self.decode_entity(&self.b[self.pos + 1..self.pos + semi], &mut out)?;
                self.pos += semi + 1;
                continue;
            }
            if self.starts_with(b"<![CDATA[") {
                let body = self.pos + 9;
                self.pos = body;
                let end = self
                    .find(b"]]>")
                    .ok_or_else(|| self.err("unterminated CDATA"))?;
                out.push_str(&self.s[body..end]);
                self.pos = end + 3;
                continue;
            }
            if self.starts_with(b"<!--") {
                let end = self
                    .find(b"-->")
                    .ok_or_else(|| self.err("unterminated comment"))?;
                self.pos = end + 3;
                continue;
            }
            self.close_tag(name)?;
            return Ok(out);
        }
    }

    fn decode_entity(&self, name: &[u8], out: &mut String) -> R<()> {
        let ch = match name {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"quot" => '"',
            b"apos" => '\'',
            _ => {
                let code = match name {
                    [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok()),
                    [b'#', dec @ ..] => std::str::from_utf8(dec).ok().and_then(|d| d.parse().ok()),
                    _ => None,
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| self.err("invalid entity reference"))?
            }
        };
        out.push(ch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> R<Value> {
        parse(s.as_bytes())
    }

    #[test]
    fn reads_all_types() {
        let v = p(r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>s</key><string>a &amp; b &#32418;&#x4e2d; <![CDATA[<raw>]]></string>
  <key>i</key><integer>-42</integer>
  <key>big</key><integer>18446744073709551615</integer>
  <key>r</key><real>1.5</real>
  <key>t</key><true/>
  <key>f</key><false/>
  <!-- a comment -->
  <key>d</key><date>2024-02-19T07:39:35Z</date>
  <key>data</key><data>
    TWFu
  </data>
  <key>a</key><array><string/><dict/><array/></array>
</dict>
</plist>"#)
        .expect("parse");
        let d = v.as_dictionary().expect("dict");
        assert_eq!(d.get("s").and_then(Value::as_str), Some("a & b 红中 <raw>"));
        assert_eq!(d.get("i"), Some(&Value::Integer(-42)));
        assert_eq!(d.get("big"), Some(&Value::Integer(i128::from(u64::MAX))));
        assert_eq!(d.get("r"), Some(&Value::Real(1.5)));
        assert_eq!(d.get("t"), Some(&Value::Boolean(true)));
        assert_eq!(d.get("f"), Some(&Value::Boolean(false)));
        assert_eq!(d.get("data"), Some(&Value::Data(b"Man".to_vec())));
        assert!(matches!(d.get("d"), Some(Value::Date(_))));
        assert_eq!(
            d.get("a").and_then(Value::as_array).map(<[Value]>::len),
            Some(3)
        );
    }

    #[test]
    fn rejects_malformed() {
        let cases = [
            (
                "<plist><dict><key>a</key></dict></plist>",
                "expected an element name",
            ),
            (
                "<plist><dict><string>a</string></dict></plist>",
                "expected <key> in <dict>",
            ),
            (
                "<plist><string>a</strin></plist>",
                "closing tag does not match",
            ),
            ("<plist><integer>x</integer></plist>", "invalid <integer>"),
            (
                "<plist><string>&bogus;</string></plist>",
                "invalid entity reference",
            ),
            ("<plist><data>!!</data></plist>", "invalid base64 in <data>"),
            (
                "<plist><string>a</string></plist>junk",
                "content after the root element",
            ),
            (
                "<!DOCTYPE x [<!ENTITY a 'b'>]><plist/>",
                "DOCTYPE internal subsets are not accepted",
            ),
            ("<plist><foo/></plist>", "unknown plist element"),
            ("<plist><string>abc", "unterminated text"),
        ];
        for (input, want) in cases {
            match p(input) {
                Err(PlistError::Xml { reason, .. }) => assert_eq!(reason, want, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = format!(
            "<plist>{}{}</plist>",
            "<array>".repeat(10_000),
            "</array>".repeat(10_000)
        );
        assert!(matches!(
            p(&s),
            Err(PlistError::TooDeep { format: "XML", .. })
        ));
    }
}

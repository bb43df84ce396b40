//! Property lists: a typed value tree, a fast reader for XML plists, binary
//! plists through the `plist` crate, and the DER encoding Apple uses inside
//! `DER-Encoded-Profile` and DER entitlements.

mod binary;
mod der;
mod value;
mod xml;

pub use value::{Dictionary, Value};

pub(crate) use der::from_der as from_der_plist;
pub(crate) use xml::{Root, StringSink, Strings, parse_root_dict};

/// Parses Apple's DER plist form (the `DER-Encoded-Profile` payload and DER
/// entitlements).
///
/// # Errors
/// [`PlistError::Der`] with the offset of the malformed element.
pub fn parse_der(bytes: &[u8]) -> Result<Value, PlistError> {
    der::from_der(bytes)
}

/// Writes Apple's DER plist form (the `DER-Encoded-Profile` payload, DER
/// entitlements): dictionaries as `[16]` constructed with entries in DER
/// order. [`parse_der`] reads it back.
pub fn to_der(value: &Value) -> Vec<u8> {
    der::to_der(value)
}

/// The deepest nesting of arrays and dictionaries that any of the readers
/// (XML, binary, DER) accepts; real profiles, entitlements and seals use
/// fewer than ten levels. Checked before descending, so no input can exhaust
/// the stack.
pub const MAX_DEPTH: usize = 64;

/// The encoding a plist was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PlistFormat {
    /// XML (`<?xml ... <plist>`).
    Xml,
    /// Binary (`bplist00`).
    Binary,
}

/// Why bytes are not a property list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlistError {
    /// Malformed XML or an element plists do not have.
    #[error("XML plist: {reason} at byte {offset}")]
    Xml {
        /// Byte offset in the plist.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A binary plist the `plist` crate rejected.
    #[error("binary plist: {0}")]
    Binary(String),
    /// The DER form is malformed.
    #[error("DER plist: {0}")]
    Der(crate::der::DerError),
    /// Arrays and dictionaries nested deeper than [`MAX_DEPTH`].
    #[error("{format} plist nests deeper than {limit} levels at {position}", limit = MAX_DEPTH)]
    TooDeep {
        /// `"XML"`, `"binary"` or `"DER"`.
        format: &'static str,
        /// Where the level that went too deep opens: a byte offset for XML and
        /// DER, the number of the value in reading order for binary plists.
        position: usize,
    },
    /// A binary plist whose shared objects would expand to far more than the
    /// file holds (the same collection or blob referenced over and over).
    #[error("binary plist expands past {limit} {what}")]
    Expansion {
        /// What ran over: values, or bytes of strings and data.
        what: &'static str,
        /// The budget for a file of this size.
        limit: usize,
    },
    /// A value nested deeper than [`MAX_DEPTH`] was given to a writer.
    #[error("the value nests deeper than {limit} levels", limit = MAX_DEPTH)]
    WriteTooDeep,
    /// Neither XML nor binary.
    #[error("not a property list")]
    Unrecognised,
}

/// Parses an XML or binary plist, telling which it was.
///
/// # Errors
/// [`PlistError`] with the byte offset of the first problem.
pub fn parse(bytes: &[u8]) -> Result<(Value, PlistFormat), PlistError> {
    if bytes.starts_with(b"bplist") {
        return parse_binary(bytes).map(|v| (v, PlistFormat::Binary));
    }
    xml::parse(bytes).map(|v| (v, PlistFormat::Xml))
}

fn parse_binary(bytes: &[u8]) -> Result<Value, PlistError> {
    binary::parse(bytes)
}

/// Writes a value as an XML plist, through the `plist` crate's writer.
///
/// # Errors
/// [`PlistError::WriteTooDeep`] for a value nested deeper than [`MAX_DEPTH`];
/// otherwise when the `plist` crate refuses the value (it cannot represent
/// an integer beyond the u64/i64 ranges).
pub fn to_xml(value: &Value) -> Result<Vec<u8>, PlistError> {
    value.check_depth()?;
    let mut out = Vec::new();
    value
        .to_plist_crate()
        .to_writer_xml(&mut out)
        .map_err(|e| PlistError::Binary(e.to_string()))?;
    Ok(out)
}

/// Writes a value as a binary plist, through the `plist` crate's writer.
///
/// # Errors
/// As [`to_xml`].
pub fn to_binary(value: &Value) -> Result<Vec<u8>, PlistError> {
    value.check_depth()?;
    let mut out = Vec::new();
    value
        .to_plist_crate()
        .to_writer_binary(&mut out)
        .map_err(|e| PlistError::Binary(e.to_string()))?;
    Ok(out)
}

//! PEM (RFC 7468): the DER inside a `-----BEGIN LABEL-----` block, and back.

use crate::der::{DerError, DerErrorKind};

/// The label and DER of the first PEM block whose label `wanted` accepts;
/// `None` when there is no such block (the input may be DER).
///
/// # Errors
/// A [`DerError`] in context `PEM` with the offset of invalid base64.
pub fn decode(
    bytes: &[u8],
    wanted: impl Fn(&str) -> bool,
) -> Option<Result<(String, Vec<u8>), DerError>> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut from = 0;
    while let Some(at) = bytes
        .get(from..)?
        .windows(BEGIN.len())
        .position(|w| w == BEGIN)
    {
        let label_start = from + at + BEGIN.len();
        let rest = &bytes[label_start..];
        let label_len = rest.windows(5).position(|w| w == b"-----")?;
        let label = String::from_utf8_lossy(&rest[..label_len]).into_owned();
        let body_start = label_start + label_len + 5;
        from = body_start;
        if !wanted(&label) {
            continue;
        }
        let end_marker = format!("-----END {label}-----");
        let body = &bytes[body_start..];
        let end = body
            .windows(end_marker.len())
            .position(|w| w == end_marker.as_bytes())
            .unwrap_or(body.len());
        return Some(
            crate::base64::decode(&body[..end])
                .map(|der| (label, der))
                .map_err(|offset| DerError {
                    offset: body_start + offset,
                    context: "PEM",
                    kind: DerErrorKind::BadValue,
                }),
        );
    }
    None
}

/// A PEM block of `der` under `label`, base64 in 64-column lines.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = crate::base64::encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_label_choice() {
        let der: Vec<u8> = (0..=255).collect();
        let key = encode("PRIVATE KEY", b"key");
        let both = format!("{}{}", encode("CERTIFICATE", &der), key);
        let (label, back) = decode(both.as_bytes(), |l| l == "CERTIFICATE")
            .unwrap()
            .unwrap();
        assert_eq!(
            (label.as_str(), back.as_slice()),
            ("CERTIFICATE", der.as_slice())
        );
        let (_, k) = decode(both.as_bytes(), |l| l.ends_with("PRIVATE KEY"))
            .unwrap()
            .unwrap();
        assert_eq!(k, b"key");
        assert!(decode(b"\x30\x03", |_| true).is_none());
        assert!(
            decode(b"-----BEGIN X-----\n$$$\n-----END X-----\n", |_| true)
                .unwrap()
                .is_err()
        );
    }
}

//! Standard base64 (RFC 4648 §4) as plists write it: whitespace between
//! characters is skipped, padding is optional at the very end.

const INVALID: u8 = 0xff;
const SKIP: u8 = 0xfe;

const fn table() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        #[allow(clippy::cast_possible_truncation)] // i < 64
        {
            t[alphabet[i] as usize] = i as u8;
        }
        i += 1;
    }
    t[b' ' as usize] = SKIP;
    t[b'\t' as usize] = SKIP;
    t[b'\n' as usize] = SKIP;
    t[b'\r' as usize] = SKIP;
    t
}

static DECODE: [u8; 256] = table();

/// Decodes base64, skipping ASCII whitespace. Returns the offset of the first
/// invalid byte on failure.
pub(crate) fn decode(input: &[u8]) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut n = 0u8;
    let mut pad_at = None;
    let mut i = 0;
    while i < input.len() {
        // Fast path: four alphabet characters at a quartet boundary.
        if n == 0 && pad_at.is_none() {
            while let Some(q) = input.get(i..i + 4) {
                let v = [
                    DECODE[usize::from(q[0])],
                    DECODE[usize::from(q[1])],
                    DECODE[usize::from(q[2])],
                    DECODE[usize::from(q[3])],
                ];
                if (v[0] | v[1] | v[2] | v[3]) & 0xc0 != 0 {
                    break;
                }
                let w = (u32::from(v[0]) << 18)
                    | (u32::from(v[1]) << 12)
                    | (u32::from(v[2]) << 6)
                    | u32::from(v[3]);
                out.extend_from_slice(&w.to_be_bytes()[1..]);
                i += 4;
            }
            if i >= input.len() {
                break;
            }
        }
        let c = input[i];
        let v = DECODE[usize::from(c)];
        i += 1;
        if v == SKIP {
            continue;
        }
        if c == b'=' {
            pad_at.get_or_insert(i - 1);
            continue;
        }
        if v == INVALID || pad_at.is_some() {
            return Err(i - 1);
        }
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&acc.to_be_bytes()[1..]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        0 => {}
        2 => out.push((acc >> 4).to_be_bytes()[3]),
        3 => out.extend_from_slice(&(acc >> 2).to_be_bytes()[2..]),
        _ => return Err(input.len()),
    }
    Ok(out)
}

/// Encodes as standard base64 with padding.
pub(crate) fn encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(A[((v >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        for len in 0..20 {
            let data: Vec<u8> = (0..len)
                .map(|i: u32| (i * 37 + 11).to_le_bytes()[0])
                .collect();
            let enc = encode(&data);
            assert_eq!(decode(enc.as_bytes()), Ok(data.clone()));
            let spaced: String = enc.chars().flat_map(|c| [c, '\n']).collect();
            assert_eq!(decode(spaced.as_bytes()), Ok(data));
        }
        assert_eq!(decode(b"TWFu"), Ok(b"Man".to_vec()));
        assert_eq!(decode(b"TW!u"), Err(2));
        assert_eq!(decode(b"TQ==TQ=="), Err(4));
        assert_eq!(decode(b"T"), Err(1));
    }
}

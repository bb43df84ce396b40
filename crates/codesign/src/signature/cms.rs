//! The CMS signature over the CodeDirectory (slot 0x10000): a BER-tolerant
//! detached SignedData, verified with provkit-profile's CMS and X.509 core.

use chrono::{DateTime, Utc};
use provkit_profile::{Finding, PathEntry, SignedData, Verifier};

use crate::error::{CodesignError, Where};

/// Magic of the CMS wrapper blob.
pub const CMS_WRAPPER: u32 = 0xfade_0b01;

/// The SignedData inside a CMS wrapper blob (8-byte header, BER allowed).
///
/// # Errors
/// [`CodesignError::Signature`] when the wrapper is malformed,
/// [`CodesignError::Cms`] (with the CMS reader's byte offset) when the CMS is.
pub fn signed_data(blob: &[u8], at: &Where) -> Result<SignedData, CodesignError> {
    let bad = |reason: &'static str| CodesignError::Signature {
        at: at.clone(),
        reason,
    };
    let head: [u8; 8] = blob
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or(bad("truncated CMS blob"))?;
    let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if magic != CMS_WRAPPER {
        return Err(bad("slot 0x10000 is not a CMS wrapper"));
    }
    let body = blob
        .get(8..len)
        .ok_or(bad("CMS blob length outside the signature"))?;
    SignedData::from_ber(body).map_err(|source| CodesignError::Cms {
        at: at.clone(),
        source,
    })
}

/// When to check the signature: an instant, or its own signingTime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// This instant.
    Instant(DateTime<Utc>),
    /// The CMS signingTime attribute (how the corpus verdicts are stated).
    SigningTime,
}

/// Verifies the CMS over the slot-0 CodeDirectory at `at`; returns every
/// finding, the signer's path and the instant used.
pub fn verify(
    verifier: &Verifier,
    sd: &SignedData,
    code_directory: &[u8],
    at: At,
) -> (Vec<Finding>, Vec<PathEntry>, Option<DateTime<Utc>>) {
    let instant = match at {
        At::Instant(t) => Some(t),
        At::SigningTime => sd.signers.first().and_then(|s| s.signing_time()),
    };
    let Some(t) = instant else {
        return (Vec::new(), Vec::new(), None);
    };
    let (findings, path) = verifier.verify_signed_data(sd, code_directory, t);
    (findings, path, Some(t))
}

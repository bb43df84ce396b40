//! Trust anchors and certificate paths.
//!
//! Anchors come from the crate (Apple Root CA, Apple Root CA - G2 and - G3,
//! embedded) or from the caller, never from the file being verified;
//! intermediates come from the file. Verified issuer links are cached once
//! per process, because the same two or three intermediates sign every
//! profile: a link's verdict depends only on the two certificates' bytes, so
//! every verifier shares it, and a new verifier starts warm. Apple's
//! intermediate CAs ship with the crate too, each with the root that signed
//! it, so even the first verification of a process skips those links'
//! signatures (see `PINNED_LINKS`; a test checks each on every run).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use crate::signature::{SignatureError, verify_issued_by};
use crate::x509::Certificate;

const APPLE_ROOT_CA: &[u8] = include_bytes!("../certs/apple-root-ca.cer");
const APPLE_ROOT_CA_G2: &[u8] = include_bytes!("../certs/apple-root-ca-g2.cer");
const APPLE_ROOT_CA_G3: &[u8] = include_bytes!("../certs/apple-root-ca-g3.cer");

/// Apple's intermediate CAs that issue profile and code signers, each with
/// the root that signed it. A link from exactly these bytes to exactly that
/// root is taken as verified without checking its signature again, as an
/// anchor's own self-signature is never checked: the test
/// `every_pinned_link_verifies` checks each signature on every run. It
/// spares the first verification of a process the roots' signatures (an
/// ECDSA P-384 check of Apple System Integration CA 4 alone costs about
/// half a millisecond). Any other certificate, or one differing by a byte,
/// is checked as before.
const PINNED_LINKS: &[(&[u8], &[u8])] = &[
    (
        include_bytes!("../certs/intermediates/apple-iphone-ca-2007.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/apple-iphone-ca-2017.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/apple-system-integration-ca-4.cer"),
        APPLE_ROOT_CA_G3,
    ),
    (
        include_bytes!("../certs/intermediates/apple-wwdr-ca.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/apple-wwdr-ca-g2.cer"),
        APPLE_ROOT_CA_G3,
    ),
    (
        include_bytes!("../certs/intermediates/apple-wwdr-ca-g3.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/apple-wwdr-ca-g4.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/apple-wwdr-ca-g5.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/apple-wwdr-ca-g6.cer"),
        APPLE_ROOT_CA_G3,
    ),
    (
        include_bytes!("../certs/intermediates/apple-wwdr-ca-g7.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/apple-wwdr-ca-g8.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/developer-id-ca.cer"),
        APPLE_ROOT_CA,
    ),
    (
        include_bytes!("../certs/intermediates/developer-id-ca-g2.cer"),
        APPLE_ROOT_CA,
    ),
];

/// Whether `child` issued by `issuer` is one of [`PINNED_LINKS`], byte for
/// byte (slices compare their lengths first, so a miss costs next to
/// nothing).
fn pinned(child: &Certificate, issuer: &Certificate) -> bool {
    PINNED_LINKS
        .iter()
        .any(|(c, i)| *c == child.der() && *i == issuer.der())
}

/// The longest path accepted: leaf, at most four intermediates, anchor.
/// Apple's paths have three certificates.
pub(crate) const MAX_PATH_LEN: usize = 6;

/// How many issuer links the cache keeps before it starts afresh.
const LINK_CACHE_CAPACITY: usize = 4096;

/// A set of trust anchors.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    anchors: Vec<Certificate>,
}

impl TrustAnchors {
    /// Apple Root CA (2006), Apple Root CA - G2 and Apple Root CA - G3
    /// (parsed once per process; each call clones them).
    pub fn apple() -> Self {
        static APPLE: LazyLock<Vec<Certificate>> = LazyLock::new(|| {
            [APPLE_ROOT_CA, APPLE_ROOT_CA_G2, APPLE_ROOT_CA_G3]
                .into_iter()
                .filter_map(|der| Certificate::from_der(der).ok())
                .collect()
        });
        TrustAnchors {
            anchors: APPLE.clone(),
        }
    }

    /// No anchors: add your own with [`TrustAnchors::add`].
    pub fn empty() -> Self {
        TrustAnchors {
            anchors: Vec::new(),
        }
    }

    /// Adds an anchor (for example a test CA).
    pub fn add(&mut self, anchor: Certificate) -> &mut Self {
        if !self.anchors.contains(&anchor) {
            self.anchors.push(anchor);
        }
        self
    }

    /// The anchors.
    pub fn certificates(&self) -> &[Certificate] {
        &self.anchors
    }
}

/// Why a path could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathError {
    /// No issuer for the last certificate among the file's certificates and the anchors.
    NoIssuer,
    /// An issuer with the right name whose signature did not verify.
    BadSignature {
        /// Index in the returned partial path of the child.
        child: usize,
        issuer: Box<Certificate>,
        error: SignatureError,
    },
    /// Longer than [`MAX_PATH_LEN`].
    TooLong,
    /// More than [`MAX_SIGNATURE_CHECKS`] candidate issuers had to be tried.
    BudgetExceeded,
}

/// How many issuer signatures one path search may check before it gives up
/// (webpki's budget is the same order): a hostile certificate set of many
/// look-alike issuers cannot make verification slow.
pub(crate) const MAX_SIGNATURE_CHECKS: usize = 100;

/// Caches issuer links that verified (or failed): key is the child's DER
/// followed by the issuer's public key, so a cached verdict can only be
/// reused for exactly the same bytes. One per process ([`LinkCache::shared`]).
#[derive(Debug, Default)]
pub(crate) struct LinkCache {
    links: Mutex<HashMap<LinkKey, Result<(), SignatureError>>>,
}

/// The child's DER followed by the issuer's key. Equality compares every
/// byte; the hash reads only the length and the tail (the child's signature
/// and the issuer's key, both effectively random), which is enough to spread
/// entries and costs nothing next to a signature check.
#[derive(Debug, PartialEq, Eq)]
struct LinkKey(Vec<u8>);

impl std::hash::Hash for LinkKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        state.write(&self.0[self.0.len().saturating_sub(48)..]);
    }
}

/// The process's link cache.
static SHARED: LazyLock<LinkCache> = LazyLock::new(LinkCache::default);

impl LinkCache {
    /// The cache every verifier in this process shares.
    pub(crate) fn shared() -> &'static LinkCache {
        &SHARED
    }

    /// Forgets every link, so the next verification in this process is as
    /// cold as the first (for benchmarks).
    pub(crate) fn clear(&self) {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub(crate) fn check(
        &self,
        child: &Certificate,
        issuer: &Certificate,
    ) -> Result<(), SignatureError> {
        if pinned(child, issuer) {
            return Ok(());
        }
        let mut key = Vec::with_capacity(child.der().len() + issuer.public_key().len());
        key.extend_from_slice(child.der());
        key.extend_from_slice(issuer.public_key());
        let key = LinkKey(key);
        if let Some(hit) = self
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return hit.clone();
        }
        let verdict = verify_issued_by(child, issuer);
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        if links.len() >= LINK_CACHE_CAPACITY {
            links.clear();
        }
        links.insert(key, verdict.clone());
        verdict
    }
}

/// Builds a path from `leaf` to an anchor through `pool`, checking each
/// link's signature. Returns the path (leaf first, anchor last), or the
/// partial path and why it stops.
pub(crate) fn build_path<'a>(
    leaf: &'a Certificate,
    pool: &'a [Certificate],
    anchors: &'a TrustAnchors,
    cache: &LinkCache,
) -> (Vec<&'a Certificate>, Result<(), PathError>) {
    let mut path: Vec<&Certificate> = vec![leaf];
    let mut budget = MAX_SIGNATURE_CHECKS;
    // Spends one signature check; false once the budget is gone.
    let mut spend = || {
        budget = budget.saturating_sub(1);
        budget > 0
    };
    loop {
        let current = path[path.len() - 1];
        if anchors.anchors.iter().any(|a| a == current) {
            return (path, Ok(()));
        }
        if path.len() >= MAX_PATH_LEN {
            return (path, Err(PathError::TooLong));
        }
        let mut failure = None;
        let mut exhausted = false;
        let mut afford = || {
            exhausted = exhausted || !spend();
            !exhausted
        };
        let anchor_hit = anchors
            .anchors
            .iter()
            .filter(|a| a.subject_der() == current.issuer_der())
            .take_while(|_| afford())
            .find(|a| match cache.check(current, a) {
                Ok(()) => true,
                Err(e) => {
                    failure.get_or_insert((*a, e));
                    false
                }
            });
        if let Some(anchor) = anchor_hit {
            path.push(anchor);
            return (path, Ok(()));
        }
        let next = pool
            .iter()
            .filter(|c| c.subject_der() == current.issuer_der())
            .filter(|c| !c.is_self_issued() && !path.contains(c))
            .take_while(|_| afford())
            .find(|c| match cache.check(current, c) {
                Ok(()) => true,
                Err(e) => {
                    failure.get_or_insert((*c, e));
                    false
                }
            });
        if next.is_none() && exhausted {
            return (path, Err(PathError::BudgetExceeded));
        }
        match (next, failure) {
            (Some(issuer), _) => path.push(issuer),
            (None, Some((issuer, error))) => {
                let child = path.len() - 1;
                return (
                    path,
                    Err(PathError::BadSignature {
                        child,
                        issuer: Box::new(issuer.clone()),
                        error,
                    }),
                );
            }
            (None, None) => return (path, Err(PathError::NoIssuer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_link_verifies() {
        let roots = TrustAnchors::apple();
        for (child, root) in PINNED_LINKS {
            let child = Certificate::from_der(child).expect("pinned intermediate parses");
            let root = Certificate::from_der(root).expect("root parses");
            assert!(roots.certificates().contains(&root));
            assert!(child.may_sign_certificates(), "{child:?} is not a CA");
            assert_eq!(child.issuer_der(), root.subject_der());
            assert_eq!(
                verify_issued_by(&child, &root),
                Ok(()),
                "pinned link does not verify"
            );
        }
    }

    #[test]
    fn a_prepared_key_is_reused_only_for_its_own_bytes() {
        let child = Certificate::from_der(PINNED_LINKS[0].0).expect("parse");
        let root = Certificate::from_der(APPLE_ROOT_CA).expect("parse");
        // Apple Root CA - G2 has an RSA key too, another one.
        let other = Certificate::from_der(APPLE_ROOT_CA_G2).expect("parse");
        // The first check prepares the root's key, the second reuses it.
        assert_eq!(verify_issued_by(&child, &root), Ok(()));
        assert_eq!(verify_issued_by(&child, &root), Ok(()));
        // The prepared key does not make a changed signature verify.
        let mut der = PINNED_LINKS[0].0.to_vec();
        let last = der.len() - 1;
        der[last] ^= 1;
        let altered = Certificate::from_der(&der).expect("still parses");
        assert_eq!(
            verify_issued_by(&altered, &root),
            Err(SignatureError::Invalid)
        );
        // Another key, prepared beside it, does not verify the root's signature.
        assert_eq!(
            verify_issued_by(&child, &other),
            Err(SignatureError::Invalid)
        );
        crate::signature::forget_prepared_keys();
        assert_eq!(verify_issued_by(&child, &root), Ok(()));
        assert_eq!(
            verify_issued_by(&altered, &root),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn a_pinned_intermediate_under_another_issuer_is_checked() {
        let (child, _) = PINNED_LINKS[0];
        let child = Certificate::from_der(child).expect("parse");
        let wrong = Certificate::from_der(APPLE_ROOT_CA_G3).expect("parse");
        assert!(!pinned(&child, &wrong));
        let cache = LinkCache::default();
        assert!(cache.check(&child, &wrong).is_err());
        // One byte of the signature changed: no longer pinned, and refused.
        let mut der = PINNED_LINKS[0].0.to_vec();
        let last = der.len() - 1;
        der[last] ^= 1;
        let altered = Certificate::from_der(&der).expect("still parses");
        let root = Certificate::from_der(APPLE_ROOT_CA).expect("parse");
        assert!(!pinned(&altered, &root));
        assert!(cache.check(&altered, &root).is_err());
    }
}

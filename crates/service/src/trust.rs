//! Trust: which anchors a tenant's profiles must chain to (Apple's roots and
//! the anchors the admin added), and storing a profile only when it is
//! genuine and trusted, unless the admin overrides it on the record.

use chrono::{DateTime, Utc};
use provkit_profile::{Certificate, ProvisioningProfile, TrustAnchors, Verifier};
use provkit_store::{Actor, ProfileLabel, ProfileRecord, Store, TrustAnchorRecord};

use crate::ServiceError;

/// A verifier over Apple's roots and the tenant's own anchors.
///
/// # Errors
/// Store failures, or a stored anchor that no longer decodes.
pub fn tenant_verifier(store: &mut dyn Store) -> Result<Verifier, ServiceError> {
    let mut anchors = TrustAnchors::apple();
    for a in store.trust_anchors()? {
        let cert = Certificate::from_der(&a.der).map_err(|e| {
            ServiceError::Store(provkit_store::StoreError::Corrupt(format!(
                "trust anchor {}: {e}",
                a.sha256
            )))
        })?;
        anchors.add(cert);
    }
    Ok(Verifier::new(anchors))
}

/// The trust and integrity findings of a profile at `at`, as `code` or
/// `code (der-profile)`; empty when it is genuine and chains to an anchor.
/// Dates do not count: an expired profile is still genuine.
pub fn trust_failures(
    file: &ProvisioningProfile,
    verifier: &Verifier,
    at: DateTime<Utc>,
) -> Vec<String> {
    let mut out: Vec<String> = verifier
        .verify(file, at)
        .findings
        .iter()
        .filter(|f| f.code.breaks_trust())
        .map(|f| match f.scope {
            provkit_profile::Scope::Profile => f.code.to_string(),
            other => format!("{} ({})", f.code, other.as_str()),
        })
        .collect();
    out.dedup();
    out
}

/// Stores a profile's signed bytes when it is genuine and trusted at `at`.
/// An untrusted or tampered profile is refused with its finding codes,
/// unless `allow_untrusted`, which stores it and records the override and
/// the findings in the audit log.
///
/// # Errors
/// [`ServiceError::Untrusted`]; the store's refusal of bytes that are not a
/// profile.
pub fn store_profile(
    store: &mut dyn Store,
    bytes: &[u8],
    verifier: &Verifier,
    at: DateTime<Utc>,
    actor: &Actor,
    allow_untrusted: bool,
) -> Result<ProfileRecord, ServiceError> {
    store_labeled_profile(
        store,
        bytes,
        &ProfileLabel::default(),
        verifier,
        at,
        actor,
        allow_untrusted,
    )
}

/// [`store_profile`] with the admin's name and description (Intune's
/// form), stored with the profile in the same transaction.
///
/// # Errors
/// As [`store_profile`]; [`provkit_store::StoreError::Invalid`] for a label
/// [`ProfileLabel::validate`] refuses.
pub fn store_labeled_profile(
    store: &mut dyn Store,
    bytes: &[u8],
    label: &ProfileLabel,
    verifier: &Verifier,
    at: DateTime<Utc>,
    actor: &Actor,
    allow_untrusted: bool,
) -> Result<ProfileRecord, ServiceError> {
    let file = ProvisioningProfile::from_der(bytes).map_err(provkit_store::StoreError::from)?;
    let failures = trust_failures(&file, verifier, at);
    if failures.is_empty() {
        return Ok(store.add_labeled_profile(bytes, label, None, actor)?);
    }
    if !allow_untrusted {
        return Err(ServiceError::Untrusted {
            uuid: file.profile().uuid.clone(),
            findings: failures,
        });
    }
    Ok(store.add_labeled_profile(bytes, label, Some(&failures), actor)?)
}

/// Adds a trust anchor from a certificate in PEM or DER; audited.
///
/// # Errors
/// [`ServiceError::Store`] with [`provkit_store::StoreError::Invalid`] when
/// the bytes are not a certificate.
pub fn add_anchor(
    store: &mut dyn Store,
    pem_or_der: &[u8],
    actor: &Actor,
) -> Result<TrustAnchorRecord, ServiceError> {
    let cert = Certificate::from_pem_or_der(pem_or_der).map_err(|e| {
        provkit_store::StoreError::Invalid(format!("not a certificate (PEM or DER): {e}"))
    })?;
    Ok(store.add_trust_anchor(cert.der(), actor)?)
}

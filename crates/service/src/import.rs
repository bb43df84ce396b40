//! Importing apps: verify an IPA, store its embedded profile and link the
//! app to it, keeping today's verdict (which names an expired certificate
//! or profile: the re-sign and renew work).

use chrono::{DateTime, Utc};
use provkit_codesign::{At, Options, archive::Archive, verify_archive};
use provkit_profile::Verifier;
use provkit_store::{Actor, AppRecord, Store};
use serde::Serialize;

use crate::ServiceError;

/// An app that was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedApp {
    /// CFBundleIdentifier.
    pub bundle_id: String,
    /// Version (CFBundleShortVersionString, else CFBundleVersion).
    pub version: String,
    /// The embedded profile it is linked to.
    pub profile_uuid: String,
    /// Error codes at `now` (an expired certificate or profile), empty when
    /// the app would install today.
    pub today: Vec<String>,
}

/// Verifies the app at its own signing time against the tenant's anchors
/// (intact, signed through a trusted chain, profile consistent); when valid,
/// stores its embedded profile and links the app to it, with the report at
/// `now`, in the store's transactions for the profile and the app.
///
/// # Errors
/// [`ServiceError::InvalidApp`] with the error codes (nothing stored);
/// [`ServiceError::NotAnApp`]; store failures.
pub fn import_ipa(
    store: &mut dyn Store,
    archive: &Archive,
    verifier: &Verifier,
    now: DateTime<Utc>,
    actor: &Actor,
) -> Result<ImportedApp, ServiceError> {
    let not_an_app = |e: provkit_codesign::VerifyError| ServiceError::NotAnApp(e.to_string());
    let intact =
        verify_archive(archive, &Options::new(verifier, At::SigningTime)).map_err(not_an_app)?;
    if !intact.valid {
        let mut seen = std::collections::HashSet::new();
        let codes: Vec<String> = intact
            .findings
            .iter()
            .filter(|f| f.severity == provkit_profile::Severity::Error)
            .map(|f| format!("{} {}", f.code, f.path.as_deref().unwrap_or(&f.bundle)))
            .filter(|c| seen.insert(c.clone()))
            .collect();
        return Err(ServiceError::InvalidApp { codes });
    }
    let today =
        verify_archive(archive, &Options::new(verifier, At::Instant(now))).map_err(not_an_app)?;
    let main = intact
        .bundles
        .first()
        .ok_or_else(|| ServiceError::NotAnApp("no bundle".into()))?;
    let profile_path = format!("{}/embedded.mobileprovision", main.path);
    let entry = archive
        .entries()
        .iter()
        .find(|e| e.path == profile_path)
        .ok_or_else(|| ServiceError::NotAnApp("no embedded profile to link the app to".into()))?;
    let bytes = archive
        .read(entry, provkit_profile::MAX_PROFILE_SIZE as u64)
        .map_err(|e| ServiceError::NotAnApp(e.to_string()))?;
    let rec = store.add_profile(&bytes, actor)?;
    let slice = main.slices.first();
    let app = AppRecord {
        bundle_id: main.bundle_id.clone().unwrap_or_default(),
        version: main
            .version
            .clone()
            .or(main.build.clone())
            .unwrap_or_default(),
        team: slice.and_then(|s| s.team_id.clone()).unwrap_or_default(),
        profile_uuid: Some(rec.uuid.clone()),
        certificate_sha256: slice
            .and_then(|s| s.signer_sha256.clone())
            .unwrap_or_default(),
        certificate_not_after: slice
            .and_then(|s| s.signer_not_after)
            .ok_or_else(|| ServiceError::NotAnApp("no signing certificate".into()))?,
        report: serde_json::to_value(&today).ok(),
        org_group: None,
    };
    store.add_app(&app, actor)?;
    let mut codes: Vec<String> = today
        .findings
        .iter()
        .filter(|f| f.severity == provkit_profile::Severity::Error)
        .map(|f| f.code.to_string())
        .collect();
    codes.sort();
    codes.dedup();
    Ok(ImportedApp {
        bundle_id: app.bundle_id,
        version: app.version,
        profile_uuid: rec.uuid,
        today: codes,
    })
}

/// Registers an app by its facts: bundle id, version, the profile it was
/// signed with (UUID or unique prefix) and its signing certificate (PEM or
/// DER); the team is the certificate's OU. Replaces the same bundle id and
/// version.
///
/// # Errors
/// [`ServiceError::Store`] with [`provkit_store::StoreError::Invalid`] when
/// the bytes are not a certificate; [`ServiceError::Unknown`] or
/// [`ServiceError::Ambiguous`] for the profile.
pub fn register_app(
    store: &mut dyn Store,
    bundle_id: &str,
    version: &str,
    profile: &str,
    certificate: &[u8],
    actor: &Actor,
) -> Result<AppRecord, ServiceError> {
    let cert = provkit_profile::Certificate::from_pem_or_der(certificate).map_err(|e| {
        provkit_store::StoreError::Invalid(format!("not a certificate (PEM or DER): {e}"))
    })?;
    let profile_uuid = crate::names::profile_uuid(store, profile)?;
    let app = AppRecord {
        bundle_id: bundle_id.into(),
        version: version.into(),
        team: cert.subject_ou().unwrap_or_default().into(),
        profile_uuid: Some(profile_uuid),
        certificate_sha256: provkit_profile::hex(&cert.sha256_fingerprint()),
        certificate_not_after: cert.not_after(),
        org_group: None,
        report: None,
    };
    store.add_app(&app, actor)?;
    Ok(app)
}

//! The documents the store writes for profiles, owned by the store and
//! versioned with [`SCHEMA_VERSION`](crate::SCHEMA_VERSION): what is on
//! disk is spelt out here field by field, so a field added to the engine's
//! in-memory types changes nothing that is written until this file says so
//! (the conversions below name every field, and stop compiling instead).
//!
//! Version 2 (this one) is version 1 without the engine's in-memory fields
//! in `facts`: `superseded_by` (its renewal index, written as `null`; renewal
//! is the record's `successor`) and `retired` (a copy of the record's own
//! flag). A version-1 document reads as version 2 (those fields are
//! ignored); the migration rewrites them. The admin's `label` and
//! `description` are optional fields of version 2: documents written before
//! them read as having neither.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use provkit_policy::{CertFacts, DeviceScope, ProfileFacts};
use provkit_profile::ProfileKind;

use crate::records::ProfileRecord;

/// One version of a profile, as stored (`profiles` table, key
/// `UUID/version`; the signed bytes are stored beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProfileDoc {
    uuid: String,
    version: i64,
    sha256: String,
    facts: FactsDoc,
    uploaded_at: DateTime<Utc>,
    successor: Option<String>,
    retired: bool,
    /// The organization group (absent: the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org_group: Option<String>,
    /// The admin's display name (absent: none given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    /// The admin's description (absent: none given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// The facts extracted at upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FactsDoc {
    uuid: String,
    name: String,
    team: String,
    app_id: String,
    /// Its stable name (`enterprise`, `adhoc`, ...).
    kind: ProfileKind,
    platforms: Vec<String>,
    created: DateTime<Utc>,
    expires: DateTime<Utc>,
    certificates: Vec<CertDoc>,
    devices: DevicesDoc,
}

/// A developer certificate: its SHA-256 (32 numbers) and notAfter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CertDoc {
    sha256: [u8; 32],
    not_after: DateTime<Utc>,
}

/// `"All"`, or `{"Listed": [UDID, ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum DevicesDoc {
    All,
    Listed(Vec<String>),
}

impl From<&ProfileRecord> for ProfileDoc {
    fn from(r: &ProfileRecord) -> Self {
        let f = &r.facts;
        ProfileDoc {
            uuid: r.uuid.clone(),
            version: r.version,
            sha256: r.sha256.clone(),
            facts: FactsDoc {
                uuid: f.uuid.clone(),
                name: f.name.clone(),
                team: f.team.clone(),
                app_id: f.app_id.clone(),
                kind: f.kind,
                platforms: f.platforms.clone(),
                created: f.created,
                expires: f.expires,
                certificates: f
                    .certificates
                    .iter()
                    .map(|c| CertDoc {
                        sha256: c.sha256,
                        not_after: c.not_after,
                    })
                    .collect(),
                devices: match &f.devices {
                    DeviceScope::All => DevicesDoc::All,
                    DeviceScope::Listed(v) => DevicesDoc::Listed(v.clone()),
                },
            },
            uploaded_at: r.uploaded_at,
            successor: r.successor.clone(),
            retired: r.retired,
            org_group: r.org_group.clone(),
            label: r.label.name.clone(),
            description: r.label.description.clone(),
        }
    }
}

impl From<ProfileDoc> for ProfileRecord {
    fn from(d: ProfileDoc) -> Self {
        let f = d.facts;
        ProfileRecord {
            uuid: d.uuid,
            version: d.version,
            sha256: d.sha256,
            facts: ProfileFacts {
                uuid: f.uuid,
                name: f.name,
                team: f.team,
                app_id: f.app_id,
                kind: f.kind,
                platforms: f.platforms,
                created: f.created,
                expires: f.expires,
                certificates: f
                    .certificates
                    .into_iter()
                    .map(|c| CertFacts {
                        sha256: c.sha256,
                        not_after: c.not_after,
                    })
                    .collect(),
                devices: match f.devices {
                    DevicesDoc::All => DeviceScope::All,
                    DevicesDoc::Listed(v) => DeviceScope::Listed(v),
                },
                // The engine's renewal index, built when the tenant loads.
                superseded_by: None,
                // The record's own flag, not a second copy of it.
                retired: d.retired,
            },
            uploaded_at: d.uploaded_at,
            successor: d.successor,
            retired: d.retired,
            org_group: d.org_group,
            label: crate::ProfileLabel {
                name: d.label,
                description: d.description,
            },
        }
    }
}

/// A profile record as its stored document (JSON).
pub(crate) fn profile_to_doc(r: &ProfileRecord) -> String {
    serde_json::to_string(&ProfileDoc::from(r)).unwrap_or_default()
}

/// A stored profile document (version 1 or 2) as a record.
///
/// # Errors
/// [`StoreError::Corrupt`](crate::StoreError::Corrupt) naming what does not
/// read.
pub(crate) fn profile_from_doc(s: &str) -> Result<ProfileRecord, crate::StoreError> {
    serde_json::from_str::<ProfileDoc>(s)
        .map(ProfileRecord::from)
        .map_err(|e| crate::StoreError::Corrupt(format!("profile document: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect: the store serialised the engine's `ProfileFacts`, so its
    /// in-memory renewal index was written (as null) and any field added to
    /// it would silently change what is stored.
    #[test]
    fn profile_documents_hold_no_engine_index() {
        let v1 = r#"{"uuid":"A","version":1,"sha256":"00","facts":{"uuid":"A","name":"N",
            "team":"T","app_id":"T.x","kind":"enterprise","platforms":["iOS"],
            "created":"2026-01-01T00:00:00Z","expires":"2027-01-01T00:00:00Z",
            "certificates":[],"devices":"All","superseded_by":null,"retired":false},
            "uploaded_at":"2026-01-02T00:00:00Z","successor":"B","retired":false}"#;
        let rec = profile_from_doc(v1).expect("version 1 reads");
        assert_eq!(rec.successor.as_deref(), Some("B"));
        assert_eq!(rec.facts.superseded_by, None);
        let written = profile_to_doc(&rec);
        assert!(!written.contains("superseded_by"), "{written}");
        assert_eq!(written.matches("retired").count(), 1, "{written}");
        assert_eq!(profile_from_doc(&written).expect("reads back"), rec);
    }
}

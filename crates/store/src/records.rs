//! What the store keeps, as plain records (and the documented inventory
//! import format).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One stored version of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// UUID as uploaded.
    pub uuid: String,
    /// 1 for the first upload of a UUID; a new version for different bytes.
    pub version: i64,
    /// SHA-256 of the signed bytes, hex.
    pub sha256: String,
    /// The facts the engine needs, extracted at upload.
    pub facts: provkit_policy::ProfileFacts,
    /// When it was uploaded.
    pub uploaded_at: DateTime<Utc>,
    /// The UUID of the profile that renewed this one.
    pub successor: Option<String>,
    /// Deleted.
    pub retired: bool,
    /// The organization group it belongs to (`None`: the root, `Global`;
    /// in an import batch, the importer's group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_group: Option<String>,
    /// What the admin called it and said about it on upload.
    #[serde(default, skip_serializing_if = "ProfileLabel::is_empty")]
    pub label: ProfileLabel,
}

/// What an admin calls a profile and says about it (Intune's and
/// Workspace ONE's Name and Description), apart from the `Name` signed
/// into the profile itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileLabel {
    /// A display name (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A description (at most 2,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ProfileLabel {
    /// Neither a name nor a description.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none()
    }

    /// Checks the lengths and that neither holds control characters other
    /// than line breaks in the description; empty strings count as absent.
    ///
    /// # Errors
    /// [`crate::StoreError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<ProfileLabel, crate::StoreError> {
        fn field(
            what: &str,
            v: Option<&String>,
            max: usize,
            breaks: bool,
        ) -> Result<Option<String>, crate::StoreError> {
            let Some(v) = v.map(|v| v.trim()).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            if v.chars().count() > max {
                return Err(crate::StoreError::Invalid(format!(
                    "the profile's {what} is longer than {max} characters"
                )));
            }
            if v.chars()
                .any(|c| c.is_control() && !(breaks && (c == '\n' || c == '\r')))
            {
                return Err(crate::StoreError::Invalid(format!(
                    "the profile's {what} holds a control character"
                )));
            }
            Ok(Some(v.to_owned()))
        }
        Ok(ProfileLabel {
            name: field("name", self.name.as_ref(), 200, false)?,
            description: field("description", self.description.as_ref(), 2000, true)?,
        })
    }
}

/// An app and what verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// CFBundleIdentifier.
    pub bundle_id: String,
    /// Version.
    pub version: String,
    /// Team.
    pub team: String,
    /// UUID of the embedded profile it was signed with.
    pub profile_uuid: Option<String>,
    /// SHA-256 of the signing certificate, hex.
    pub certificate_sha256: String,
    /// The signing certificate's notAfter.
    pub certificate_not_after: DateTime<Utc>,
    /// The verification report, as JSON, when there is one.
    pub report: Option<serde_json::Value>,
    /// The organization group it belongs to (`None`: the root, `Global`;
    /// in an import batch, the importer's group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_group: Option<String>,
}

/// An app installed on a device, by bundle id and version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledApp {
    /// CFBundleIdentifier.
    pub bundle_id: String,
    /// Version.
    pub version: String,
}

/// A profile a device reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedProfile {
    /// UUID.
    pub uuid: String,
    /// ExpiryDate (RFC 3339; a date alone is midnight UTC).
    #[serde(
        serialize_with = "crate::instant::serialize",
        deserialize_with = "crate::instant::deserialize_lenient"
    )]
    pub expires: DateTime<Utc>,
    /// Installed by the MDM.
    #[serde(default = "yes")]
    pub managed: bool,
}

fn yes() -> bool {
    true
}

/// RFC 3339, or a date alone as midnight UTC.
pub(crate) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
        })
}

/// A device in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    /// UDID.
    pub udid: String,
    /// Platform.
    #[serde(default = "ios")]
    pub platform: String,
    /// Primary user's name.
    #[serde(default)]
    pub user: Option<String>,
    /// Installed apps.
    #[serde(default)]
    pub apps: Vec<InstalledApp>,
    /// Reported profiles.
    #[serde(default)]
    pub reported: Vec<ReportedProfile>,
    /// The organization group it belongs to (`None`: the root, `Global`;
    /// in an import batch, the importer's group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_group: Option<String>,
    /// The id its MDM server knows it by, when that is not its UDID (a User
    /// Enrollment's EnrollmentID); commands go to it and answers naming it
    /// are the device's. `None`: the UDID (in an import batch: as stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_id: Option<String>,
}

impl DeviceRecord {
    /// The id its MDM server knows it by: its enrollment id, else its UDID.
    pub fn enrollment(&self) -> &str {
        self.enrollment_id.as_deref().unwrap_or(&self.udid)
    }
}

fn ios() -> String {
    "iOS".into()
}

/// A group in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRecord {
    /// Name.
    pub name: String,
    /// `user` or `device`.
    pub kind: provkit_policy::GroupKind,
    /// Member user names (user groups) or UDIDs (device groups).
    #[serde(default)]
    pub members: Vec<String>,
    /// Nested group names.
    #[serde(default)]
    pub subgroups: Vec<String>,
    /// The organization group it belongs to (`None`: the root, `Global`;
    /// in an import batch, the importer's group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_group: Option<String>,
}

/// The inventory import format (JSON): users, devices, groups.
///
/// ```json
/// {
///   "users": ["alice", "bob"],
///   "emails": {"alice": "alice@example.com"},
///   "devices": [{"udid": "00008110-...", "user": "alice",
///                "apps": [{"bundle_id": "com.example.app", "version": "1.0"}],
///                "reported": [{"uuid": "...", "expires": "2027-01-01T00:00:00Z", "managed": true}]}],
///   "groups": [{"name": "Sales", "kind": "user", "members": ["alice"], "subgroups": ["Sales EU"]}]
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// User names.
    #[serde(default)]
    pub users: Vec<String>,
    /// Devices.
    #[serde(default)]
    pub devices: Vec<DeviceRecord>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<GroupRecord>,
    /// Users' email addresses, by user name, for the device users' notices
    /// (`user,NAME,ADDRESS,` in CSV). A batch sets the addresses it names
    /// and leaves the others; an empty address removes the stored one.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub emails: std::collections::BTreeMap<String, String>,
}

/// What an assignment targets, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetName {
    /// All users.
    AllUsers,
    /// All devices.
    AllDevices,
    /// A group by name.
    Group(String),
}

impl std::fmt::Display for TargetName {
    /// As the user writes it: `all-users`, `all-devices` or the group name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetName::AllUsers => "all-users",
            TargetName::AllDevices => "all-devices",
            TargetName::Group(g) => g,
        })
    }
}

impl TargetName {
    /// Parses `all-users`, `all-devices`, or a group name.
    pub fn parse(s: &str) -> Self {
        match s {
            "all-users" => TargetName::AllUsers,
            "all-devices" => TargetName::AllDevices,
            name => TargetName::Group(name.to_owned()),
        }
    }

    /// The stored form.
    pub fn as_key(&self) -> String {
        match self {
            TargetName::AllUsers => "all-users".into(),
            TargetName::AllDevices => "all-devices".into(),
            TargetName::Group(g) => format!("group:{g}"),
        }
    }
}

/// One assignment, by names. It belongs to its profile's organization
/// group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AssignmentRecord {
    /// Profile UUID.
    pub profile_uuid: String,
    /// Target.
    pub target: TargetName,
    /// Include or exclude.
    pub include: bool,
}

/// Where a command is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandStatus {
    /// Planned, not yet sent.
    Planned,
    /// Sent, no answer yet.
    Sent,
    /// The device acknowledged it.
    Acknowledged,
    /// The device answered with an error.
    Error,
    /// The device said NotNow: it will be retried.
    NotNow,
}

/// A command in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// CommandUUID.
    pub command_uuid: String,
    /// Device UDID.
    pub udid: String,
    /// `InstallProvisioningProfile` or `RemoveProvisioningProfile`.
    pub request_type: String,
    /// The profile's UUID.
    pub profile_uuid: String,
    /// Status.
    pub status: CommandStatus,
    /// The device's ErrorChain, when it answered with an error.
    pub error_chain: Option<String>,
    /// How many times it was sent again.
    pub retries: i64,
    /// Created.
    #[serde(with = "crate::instant")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "crate::instant")]
    pub updated_at: DateTime<Utc>,
}

/// One outbox row as [`crate::Store::each_command`] hands it over:
/// borrowed from the stored row, nothing copied (the outbox of a large
/// tenant holds millions of them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommandRow<'a> {
    /// Device UDID.
    #[serde(borrow)]
    pub udid: Cow<'a, str>,
    /// `InstallProvisioningProfile`, `RemoveProvisioningProfile`, ...
    #[serde(borrow)]
    pub request_type: Cow<'a, str>,
    /// The profile's UUID.
    #[serde(borrow)]
    pub profile_uuid: Cow<'a, str>,
    /// Status.
    pub status: CommandStatus,
    /// The device's ErrorChain, when it answered with an error.
    #[serde(borrow, default)]
    pub error_chain: Option<Cow<'a, str>>,
    /// Last change.
    #[serde(deserialize_with = "crate::instant::deserialize")]
    pub updated_at: DateTime<Utc>,
}

/// One admin change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What kind of change (`add-profile`, `set-assignments`, ...).
    pub action: String,
    /// The object changed.
    pub object: String,
    /// Before, as JSON.
    pub before: Option<serde_json::Value>,
    /// After, as JSON.
    pub after: Option<serde_json::Value>,
    /// The organization group it belongs to (`None`: the root, `Global`;
    /// in an import batch, the importer's group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_group: Option<String>,
}

/// Who and when, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Who.
    pub name: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What a later inventory batch replaces instead of merging into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Replace {
    /// Merge everything: a group's members and subgroups are the stored ones
    /// plus the batch's; a device keeps its apps and reports unless the
    /// batch gives new ones. The default.
    #[default]
    Nothing,
    /// Every group and device the batch names is replaced by the batch's.
    Batch,
    /// Only these groups are replaced; the rest merges.
    Groups(Vec<String>),
}

/// How one group changes in an inventory import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupChange {
    /// The group.
    pub name: String,
    /// Whether the batch creates it.
    pub created: bool,
    /// Members the batch adds.
    pub members_added: Vec<String>,
    /// Members the batch removes (only when replacing).
    pub members_removed: Vec<String>,
    /// Subgroups the batch adds.
    pub subgroups_added: Vec<String>,
    /// Subgroups the batch removes (only when replacing).
    pub subgroups_removed: Vec<String>,
}

/// A device whose desired profiles the import changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredChange {
    /// UDID.
    pub udid: String,
    /// Profile UUIDs it gains.
    pub gained: Vec<String>,
    /// Profile UUIDs it loses.
    pub lost: Vec<String>,
}

/// What an inventory import changes (or, in a dry run, would change).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InventoryChange {
    /// Users the batch adds.
    pub users_added: Vec<String>,
    /// Devices the batch adds.
    pub devices_added: Vec<String>,
    /// Stored devices whose record changes.
    pub devices_updated: Vec<String>,
    /// Groups created or whose members or subgroups change.
    pub groups: Vec<GroupChange>,
    /// Devices whose desired profiles change at the instant given.
    pub desired: Vec<DesiredChange>,
    /// Whether it was written (false for a dry run).
    pub written: bool,
}

/// An edit of one profile's assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentEdit {
    /// Add these include and exclude targets to the ones it has.
    Add {
        /// Targets to include.
        include: Vec<TargetName>,
        /// Targets to exclude.
        exclude: Vec<TargetName>,
    },
    /// Remove these targets (each must be assigned so).
    Remove {
        /// Included targets to remove.
        include: Vec<TargetName>,
        /// Excluded targets to remove.
        exclude: Vec<TargetName>,
    },
    /// Replace every assignment with exactly these (none: unassign all).
    Replace {
        /// Targets to include.
        include: Vec<TargetName>,
        /// Targets to exclude.
        exclude: Vec<TargetName>,
    },
    /// [`AssignmentEdit::Replace`], but only while the stored targets are
    /// still the ones the caller was shown (in any order): a form built
    /// from them does not silently undo an edit saved since
    /// ([`crate::StoreError::Conflict`] then, nothing written).
    ReplaceFrom {
        /// The included targets the caller read.
        was_include: Vec<TargetName>,
        /// The excluded targets the caller read.
        was_exclude: Vec<TargetName>,
        /// Targets to include.
        include: Vec<TargetName>,
        /// Targets to exclude.
        exclude: Vec<TargetName>,
    },
}

/// What an assignment edit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AssignmentChange {
    /// The profile.
    pub profile_uuid: String,
    /// Included targets before and after.
    pub include_before: Vec<TargetName>,
    /// Excluded targets before.
    pub exclude_before: Vec<TargetName>,
    /// Included targets after.
    pub include_after: Vec<TargetName>,
    /// Excluded targets after.
    pub exclude_after: Vec<TargetName>,
    /// Devices that now get the profile.
    pub devices_gaining: Vec<String>,
    /// Devices that no longer get it.
    pub devices_losing: Vec<String>,
}

/// A certificate the tenant trusts as an anchor, beside Apple's roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAnchorRecord {
    /// SHA-256 of the certificate's DER, hex.
    pub sha256: String,
    /// The subject common name, when it has one.
    pub subject: Option<String>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Who added it, when.
    pub added_by: String,
    /// When.
    pub added_at: DateTime<Utc>,
}

/// An API token: only its hash is kept; the token itself is shown once,
/// when it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// A name unique in the tenant (what the audit log shows as the actor).
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// The organization group it is scoped to (a path, `Global` for the
    /// root).
    pub org_group: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was revoked (a revoked token authenticates nothing).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An organization group: a path from the root (`Global/EMEA/Benelux`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgGroupRecord {
    /// The path.
    pub path: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Who holds a lease (the scheduler's, so that one process plans at a
/// time), and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The holder's id (host, process and a random part).
    pub holder: String,
    /// Held until this instant unless renewed.
    pub until: DateTime<Utc>,
}

/// Something to remove from a tenant's inventory or app list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// An app registration (devices that list it installed keep the entry).
    App {
        /// CFBundleIdentifier.
        bundle_id: String,
        /// Version.
        version: String,
    },
    /// A device, and its membership of device groups.
    Device(String),
    /// A user, and their membership of user groups; refused while a device
    /// has them as its primary user.
    User(String),
    /// A group, and its place in other groups; refused while an assignment
    /// targets it.
    Group(String),
}

/// `user` or `device`, as admins write a group's kind.
pub(crate) fn kind_word(k: provkit_policy::GroupKind) -> &'static str {
    match k {
        provkit_policy::GroupKind::User => "user",
        provkit_policy::GroupKind::Device => "device",
    }
}

//! The tenant snapshot: profiles, apps, users, devices, groups, assignments
//! and configuration. Objects refer to each other by dense indices
//! ([`ProfileId`], [`UserId`], ...) into the [`Tenant`]'s vectors, which is
//! what keeps a million-device tenant compact.

use chrono::{DateTime, Utc};
use provkit_profile::{Profile, ProfileKind};
use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u32);

        impl $name {
            /// The index into the tenant's vector.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id!(
    /// Index of a profile in [`Tenant::profiles`].
    ProfileId
);
id!(
    /// Index of an app in [`Tenant::apps`].
    AppId
);
id!(
    /// Index of a user in [`Tenant::users`].
    UserId
);
id!(
    /// Index of a device in [`Tenant::devices`].
    DeviceId
);
id!(
    /// Index of a group in [`Tenant::groups`].
    GroupId
);
id!(
    /// Index of an assignment in [`Tenant::assignments`].
    AssignmentId
);

/// A certificate a profile allows, by fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    /// SHA-256 of the certificate's DER.
    pub sha256: [u8; 32],
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

/// Which devices a profile may be installed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceScope {
    /// ProvisionsAllDevices, or a store profile (no device list).
    All,
    /// Only these UDIDs (upper-cased, sorted, deduplicated).
    Listed(Vec<String>),
}

/// What the engine needs to know of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileFacts {
    /// UUID as uploaded.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// Team identifier.
    pub team: String,
    /// The application-identifier pattern (`TEAM.bundle.id` or `TEAM.prefix*`).
    pub app_id: String,
    /// Kind.
    pub kind: ProfileKind,
    /// Platforms.
    pub platforms: Vec<String>,
    /// CreationDate.
    pub created: DateTime<Utc>,
    /// ExpirationDate.
    pub expires: DateTime<Utc>,
    /// DeveloperCertificates.
    pub certificates: Vec<CertFacts>,
    /// Where it may be installed.
    pub devices: DeviceScope,
    /// The renewal that supersedes this profile, if any.
    pub superseded_by: Option<ProfileId>,
    /// Deleted: no longer desired anywhere; devices still holding it get remove commands.
    #[serde(default)]
    pub retired: bool,
}

impl ProfileFacts {
    /// Extracts the facts from a parsed profile.
    pub fn from_profile(p: &Profile) -> Self {
        let devices = if p.provisions_all_devices == Some(true) || p.provisioned_devices.is_none() {
            DeviceScope::All
        } else {
            let mut v: Vec<String> = p.devices().iter().map(|d| d.to_ascii_uppercase()).collect();
            v.sort();
            v.dedup();
            DeviceScope::Listed(v)
        };
        ProfileFacts {
            uuid: p.uuid.clone(),
            name: p.name.clone().unwrap_or_default(),
            team: p.team_id().unwrap_or_default().to_owned(),
            app_id: p.application_identifier().unwrap_or_default().to_owned(),
            kind: p.kind(),
            platforms: p.platforms.clone(),
            created: p.creation_date,
            expires: p.expiration_date,
            certificates: p
                .developer_certificates
                .iter()
                .map(|c| CertFacts {
                    sha256: c.sha256_fingerprint(),
                    not_after: c.not_after(),
                })
                .collect(),
            devices,
            superseded_by: None,
            retired: false,
        }
    }

    /// Whether the application-identifier pattern covers `TEAM.bundle_id`:
    /// exactly, or by a single trailing `*`.
    pub fn covers(&self, team: &str, bundle_id: &str) -> bool {
        let Some(rest) = self
            .app_id
            .strip_prefix(team)
            .and_then(|r| r.strip_prefix('.'))
        else {
            return false;
        };
        provkit_profile::wildcard_matches(rest, bundle_id)
    }

    /// Whether the profile lets this device install it.
    pub fn allows_device(&self, udid: &str) -> bool {
        match &self.devices {
            DeviceScope::All => true,
            DeviceScope::Listed(list) => list
                .binary_search_by(|x| {
                    x.bytes()
                        .map(|c| c.to_ascii_uppercase())
                        .cmp(udid.bytes().map(|c| c.to_ascii_uppercase()))
                })
                .is_ok(),
        }
    }

    /// The certificate with this fingerprint, if the profile lists it.
    pub fn certificate(&self, sha256: &[u8; 32]) -> Option<&CertFacts> {
        self.certificates.iter().find(|c| &c.sha256 == sha256)
    }
}

/// An app the tenant distributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// CFBundleIdentifier.
    pub bundle_id: String,
    /// CFBundleShortVersionString.
    pub version: String,
    /// The team the app is signed for.
    pub team: String,
    /// The profile the app was signed with (embedded), if known.
    pub profile: Option<ProfileId>,
    /// SHA-256 of the signing certificate.
    pub certificate: [u8; 32],
    /// The signing certificate's notAfter.
    pub certificate_not_after: DateTime<Utc>,
}

/// A person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login name.
    pub name: UserName,
}

/// A UUID as 128 bits, compared case-insensitively; it remembers whether it
/// was written in lowercase so that it prints back as it was read.
#[derive(Debug, Clone, Copy)]
pub struct Uuid {
    bytes: [u8; 16],
    lowercase: bool,
}

impl Uuid {
    /// Parses `8-4-4-4-12` hex (or 32 hex digits), either case.
    pub fn parse(s: &str) -> Option<Uuid> {
        let mut bytes = [0u8; 16];
        let mut digits = 0usize;
        let mut lowercase = false;
        for c in s.bytes() {
            if c == b'-' {
                continue;
            }
            let d = u8::try_from(char::from(c).to_digit(16)?).ok()?;
            lowercase |= c.is_ascii_lowercase();
            let slot = bytes.get_mut(digits / 2)?;
            *slot = (*slot << 4) | d;
            digits += 1;
        }
        if digits == 32 {
            Some(Uuid { bytes, lowercase })
        } else {
            None
        }
    }

    /// The 128-bit value.
    pub fn value(self) -> u128 {
        u128::from_be_bytes(self.bytes)
    }
}

impl PartialEq for Uuid {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for Uuid {}
impl std::hash::Hash for Uuid {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.value());
    }
}
impl PartialOrd for Uuid {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Uuid {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            if self.lowercase {
                write!(f, "{b:02x}")?;
            } else {
                write!(f, "{b:02X}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Uuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Uuid::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a UUID")))
    }
}

/// Text kept inline up to `N` bytes and on the heap beyond: a million
/// devices' UDIDs or users' names then hold no allocation each (as one
/// `String` apiece, they and the app lists were most of what dropping a 1M
/// tenant cost glibc). It reads as a `str`: compare, hash, print and
/// serialize it as one.
///
/// ```
/// use provkit_policy::Udid;
/// let u = Udid::new("00008110-001A2B3C4D5E6F70");
/// assert_eq!(u, "00008110-001A2B3C4D5E6F70");
/// assert_eq!(u.len(), 25);
/// assert_eq!(serde_json::to_string(&u).unwrap(), r#""00008110-001A2B3C4D5E6F70""#);
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct InlineStr<const N: usize>(smallvec::SmallVec<[u8; N]>);

/// A device's UDID: both of Apple's formats (25 and 40 characters) inline,
/// in 48 bytes (a `String` takes 24 plus its heap block).
pub type Udid = InlineStr<40>;

/// A user's name: up to 24 bytes inline, in 32 bytes.
pub type UserName = InlineStr<24>;

impl<const N: usize> InlineStr<N> {
    /// The text `s`.
    pub fn new(s: &str) -> Self {
        InlineStr(smallvec::SmallVec::from_slice(s.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ever made from a `str`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> std::ops::Deref for InlineStr<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> AsRef<str> for InlineStr<N> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> std::borrow::Borrow<str> for InlineStr<N> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> std::hash::Hash for InlineStr<N> {
    /// As the `str` it holds (so maps keyed by it are searched by `&str`).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl<const N: usize> std::fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> std::fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> From<&str> for InlineStr<N> {
    fn from(s: &str) -> Self {
        InlineStr::new(s)
    }
}

impl<const N: usize> From<String> for InlineStr<N> {
    fn from(s: String) -> Self {
        InlineStr::new(&s)
    }
}

impl<const N: usize> From<&String> for InlineStr<N> {
    fn from(s: &String) -> Self {
        InlineStr::new(s)
    }
}

impl<const N: usize> From<InlineStr<N>> for String {
    fn from(s: InlineStr<N>) -> Self {
        s.as_str().to_owned()
    }
}

impl<const N: usize> PartialEq<str> for InlineStr<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for InlineStr<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<const N: usize> PartialEq<String> for InlineStr<N> {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> Serialize for InlineStr<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, const N: usize> Deserialize<'de> for InlineStr<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for Text<N> {
            type Value = InlineStr<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<InlineStr<N>, E> {
                Ok(InlineStr::new(v))
            }
        }
        d.deserialize_str(Text::<N>)
    }
}

/// A device's installed apps. A device holds a few managed apps at most, so
/// up to four are kept inline (no allocation: a million devices' lists
/// were, with the UDIDs, half of what dropping a 1M tenant cost glibc when
/// each was its own allocation); more spill to the heap. It reads and writes as a slice and
/// serializes as a sequence.
pub type AppList = smallvec::SmallVec<[AppId; 4]>;

/// A profile as the device reports it (ProvisioningProfileList).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    /// The profile's UUID as reported.
    pub uuid: Uuid,
    /// ExpiryDate.
    pub expires: DateTime<Utc>,
    /// Installed by the MDM (only managed profiles are ever removed).
    pub managed: bool,
}

/// A managed device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// UDID.
    pub udid: Udid,
    /// Platform (`iOS`, ...): one shared string per platform, so a million
    /// devices hold a handful of allocations for it, not a million.
    pub platform: std::sync::Arc<str>,
    /// Primary user, if any.
    pub user: Option<UserId>,
    /// Installed apps: up to four kept inline, so most devices hold no
    /// allocation for them.
    pub apps: AppList,
    /// The profiles the device last reported.
    pub reported: Vec<Reported>,
}

/// Whether a group holds users or devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// A user group.
    User,
    /// A device group.
    Device,
}

/// A group. Nested groups must be of the same kind (others are ignored);
/// nesting may form cycles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// User or device group.
    pub kind: GroupKind,
    /// Direct user members (user groups).
    pub users: Vec<UserId>,
    /// Direct device members (device groups).
    pub devices: Vec<DeviceId>,
    /// Nested groups whose members are members of this one.
    pub subgroups: Vec<GroupId>,
}

/// What an assignment targets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// Every user (so every device with a primary user).
    AllUsers,
    /// Every device.
    AllDevices,
    /// A user or device group.
    Group(GroupId),
    /// A group that does not exist (kept, reported as a warning, matches nothing).
    MissingGroup(String),
}

/// Include or exclude.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Deliver to the target.
    Include,
    /// Cancel includes of the same kind for the target.
    Exclude,
}

/// One assignment of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignment {
    /// The profile.
    pub profile: ProfileId,
    /// The target.
    pub target: Target,
    /// Include or exclude.
    pub intent: Intent,
}

/// Thresholds, in days before the death date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Config {
    /// Admin warning stages (default 60, 30, 7, 0).
    pub admin_thresholds_days: Vec<i64>,
    /// Device-user notice (default 30).
    pub user_notice_days: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            admin_thresholds_days: vec![60, 30, 7, 0],
            user_notice_days: 30,
        }
    }
}

/// The whole input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Profiles.
    pub profiles: Vec<ProfileFacts>,
    /// Apps.
    pub apps: Vec<App>,
    /// Users.
    pub users: Vec<User>,
    /// Devices.
    pub devices: Vec<Device>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Assignments.
    pub assignments: Vec<Assignment>,
    /// Thresholds.
    pub config: Config,
}

impl Tenant {
    /// `N devices, N users, N groups, N profiles, N apps, N assignments`.
    pub fn summary(&self) -> String {
        format!(
            "{} devices, {} users, {} groups, {} profiles, {} apps, {} assignments",
            self.devices.len(),
            self.users.len(),
            self.groups.len(),
            self.profiles.len(),
            self.apps.len(),
            self.assignments.len()
        )
    }

    /// The profile.
    pub fn profile(&self, id: ProfileId) -> &ProfileFacts {
        &self.profiles[id.index()]
    }

    /// Looks a profile up by UUID (case-insensitive), by scanning.
    pub fn profile_by_uuid(&self, uuid: &str) -> Option<ProfileId> {
        self.profiles
            .iter()
            .position(|p| p.uuid.eq_ignore_ascii_case(uuid))
            .and_then(|i| u32::try_from(i).ok())
            .map(ProfileId)
    }

    /// The kind of principal an assignment's target selects, if it selects any.
    pub fn target_kind(&self, target: &Target) -> Option<GroupKind> {
        match target {
            Target::AllUsers => Some(GroupKind::User),
            Target::AllDevices => Some(GroupKind::Device),
            Target::Group(g) => self.groups.get(g.index()).map(|g| g.kind),
            Target::MissingGroup(_) => None,
        }
    }

    /// The death date of an app: the earlier of its profile's ExpirationDate
    /// and its signing certificate's notAfter.
    pub fn app_death(&self, app: AppId) -> DateTime<Utc> {
        let a = &self.apps[app.index()];
        match a.profile {
            Some(p) => self.profile(p).expires.min(a.certificate_not_after),
            None => a.certificate_not_after,
        }
    }
}

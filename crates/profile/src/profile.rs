//! The typed profile: every documented key, unknown keys kept.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::devices::DeviceList;
use crate::error::ParseError;
use crate::plist::{Dictionary, PlistFormat, Root, Strings, Value};
use crate::x509::Certificate;

/// The keys a profile cannot do without, gathered while its entries are
/// read.
#[derive(Default)]
struct Required {
    uuid: Option<String>,
    creation_date: Option<DateTime<Utc>>,
    expiration_date: Option<DateTime<Utc>>,
}

impl Required {
    fn finish(self, mut p: Profile) -> Result<Profile, ParseError> {
        p.uuid = self.uuid.ok_or(ParseError::MissingKey("UUID"))?;
        p.creation_date = self
            .creation_date
            .ok_or(ParseError::MissingKey("CreationDate"))?;
        p.expiration_date = self
            .expiration_date
            .ok_or(ParseError::MissingKey("ExpirationDate"))?;
        Ok(p)
    }
}

/// `Platform` values of Apple's iOS family: a profile listing any of them is
/// not a macOS profile, whatever else it lists.
const IOS_FAMILY: &[&str] = &["iOS", "xrOS", "visionOS", "tvOS", "watchOS"];
/// What a profile is for, by the rule every tool uses: ProvisionsAllDevices
/// means enterprise (macOS: Developer ID); ProvisionedDevices means
/// development when `get-task-allow` is true, else ad hoc (macOS:
/// development); neither means App Store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ProfileKind {
    /// iOS development (IOS_APP_DEVELOPMENT).
    #[serde(rename = "development")]
    Development,
    /// iOS ad hoc (IOS_APP_ADHOC).
    #[serde(rename = "adhoc")]
    AdHoc,
    /// iOS in-house (IOS_APP_INHOUSE).
    #[serde(rename = "enterprise")]
    Enterprise,
    /// iOS App Store (IOS_APP_STORE).
    #[serde(rename = "appstore")]
    AppStore,
    /// macOS Developer ID.
    #[serde(rename = "macos-developerid")]
    MacosDeveloperId,
    /// macOS development.
    #[serde(rename = "macos-development")]
    MacosDevelopment,
    /// macOS App Store.
    #[serde(rename = "macos-appstore")]
    MacosAppStore,
}

impl ProfileKind {
    /// The stable lowercase name (`development`, `adhoc`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::AdHoc => "adhoc",
            Self::Enterprise => "enterprise",
            Self::AppStore => "appstore",
            Self::MacosDeveloperId => "macos-developerid",
            Self::MacosDevelopment => "macos-development",
            Self::MacosAppStore => "macos-appstore",
        }
    }

    /// Whether installs are limited to the listed devices.
    pub fn limited_to_listed_devices(self) -> bool {
        matches!(
            self,
            Self::Development | Self::AdHoc | Self::MacosDevelopment
        )
    }
}

impl std::fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provisioning profile's payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// `UUID`, as written (compare case-insensitively).
    pub uuid: String,
    /// `Name`.
    pub name: Option<String>,
    /// `AppIDName`.
    pub app_id_name: Option<String>,
    /// `ApplicationIdentifierPrefix`.
    pub application_identifier_prefix: Vec<String>,
    /// `TeamIdentifier`.
    pub team_identifier: Vec<String>,
    /// `TeamName`.
    pub team_name: Option<String>,
    /// `CreationDate`.
    pub creation_date: DateTime<Utc>,
    /// `ExpirationDate`.
    pub expiration_date: DateTime<Utc>,
    /// `Platform` (empty in old files).
    pub platforms: Vec<String>,
    /// `ProvisionedDevices`, when present.
    pub provisioned_devices: Option<DeviceList>,
    /// `ProvisionsAllDevices`, when present.
    pub provisions_all_devices: Option<bool>,
    /// `DeveloperCertificates`, parsed.
    pub developer_certificates: Vec<Certificate>,
    /// `DER-Encoded-Profile`: the nested signed profile's bytes.
    #[serde(skip)]
    pub der_encoded_profile: Option<Vec<u8>>,
    /// `Entitlements`: the allowlist.
    pub entitlements: Option<Dictionary>,
    /// `IsXcodeManaged`.
    pub is_xcode_managed: Option<bool>,
    /// `LocalProvision`.
    pub local_provision: Option<bool>,
    /// `TimeToLive` (days).
    pub time_to_live: Option<i64>,
    /// `Version`.
    pub version: Option<i64>,
    /// `PPQCheck`.
    pub ppq_check: Option<bool>,
    /// Keys this crate does not know, kept as they were.
    pub other: Dictionary,
}

/// Whether `value` matches an Apple wildcard `pattern`: equal, or the
/// pattern ends in `*` and `value` starts with what precedes it
/// (application identifiers, keychain groups, entitlement values).
pub fn wildcard_matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

fn wrong(key: impl Into<String>, expected: &'static str, found: &Value) -> ParseError {
    ParseError::WrongType {
        key: key.into(),
        expected,
        found: found.type_name(),
    }
}

fn string(key: &str, v: Value) -> Result<String, ParseError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(wrong(key, "string", &other)),
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool, ParseError> {
    v.as_bool().ok_or_else(|| wrong(key, "boolean", v))
}

fn int(key: &str, v: &Value) -> Result<i64, ParseError> {
    match v {
        Value::Integer(i) => i64::try_from(*i).map_err(|_| wrong(key, "integer in i64 range", v)),
        other => Err(wrong(key, "integer", other)),
    }
}

fn date(key: &str, v: &Value) -> Result<DateTime<Utc>, ParseError> {
    match v {
        Value::Date(t) => Ok(*t),
        other => Err(wrong(key, "date", other)),
    }
}

fn string_list(key: &str, v: Value) -> Result<Vec<String>, ParseError> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(wrong(format!("{key}[{i}]"), "string", &other)),
            })
            .collect(),
        other => Err(wrong(key, "array", &other)),
    }
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

impl Profile {
    /// Builds the typed profile from the plist's root dictionary.
    ///
    /// # Errors
    /// [`ParseError::MissingKey`] for an absent `UUID`, `CreationDate` or
    /// `ExpirationDate`; [`ParseError::WrongType`] naming the key path of any
    /// value of the wrong type; [`ParseError::DeveloperCertificate`] for a
    /// certificate that does not parse.
    pub fn from_dictionary(d: &Dictionary) -> Result<Self, ParseError> {
        Self::from_owned_dictionary(d.clone())
    }

    /// Like [`Profile::from_dictionary`], moving the values out instead of
    /// copying them (one pass over the keys; a repeated key's last value wins).
    ///
    /// # Errors
    /// As [`Profile::from_dictionary`].
    pub fn from_owned_dictionary(d: Dictionary) -> Result<Self, ParseError> {
        let mut p = Profile::empty();
        let mut req = Required::default();
        for (key, v) in d.into_entries() {
            p.set(&mut req, &key, v)?;
        }
        req.finish(p)
    }

    /// Reads the typed profile from a bare plist payload (the signed content
    /// of a profile, as `security cms -D` prints it), XML or binary.
    ///
    /// XML is read straight into the profile, without a value tree: keys
    /// are borrowed from the document and `ProvisionedDevices` goes into its
    /// [`DeviceList`] as it is read. The result, and the error, are those of
    /// [`plist::parse`](crate::plist::parse) followed by
    /// [`Profile::from_owned_dictionary`]: a syntax error anywhere comes
    /// first, then a root that is not a dictionary, then the first key of
    /// the wrong type, then a missing key.
    ///
    /// ```
    /// use provkit_profile::{PlistFormat, Profile};
    /// let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
    /// <plist version="1.0"><dict>
    ///   <key>UUID</key><string>5a1d3e2c-0000-4000-8000-000000000001</string>
    ///   <key>CreationDate</key><date>2026-01-01T00:00:00Z</date>
    ///   <key>ExpirationDate</key><date>2027-01-01T00:00:00Z</date>
    ///   <key>ProvisionedDevices</key><array><string>00008030-000A</string></array>
    /// </dict></plist>"#;
    /// let (profile, format) = Profile::from_plist(xml)?;
    /// assert_eq!(format, PlistFormat::Xml);
    /// assert_eq!(profile.devices().get(0), Some("00008030-000A"));
    /// # Ok::<(), provkit_profile::ParseError>(())
    /// ```
    ///
    /// # Errors
    /// [`ParseError::Plist`] for bytes that are not a plist,
    /// [`ParseError::RootNotDictionary`], and those of
    /// [`Profile::from_dictionary`].
    pub fn from_plist(content: &[u8]) -> Result<(Self, PlistFormat), ParseError> {
        if !content.starts_with(b"bplist") {
            return Ok((Self::from_xml(content)?, PlistFormat::Xml));
        }
        let (value, format) = crate::plist::parse(content)?;
        match value {
            Value::Dictionary(d) => Ok((Self::from_owned_dictionary(d)?, format)),
            other => Err(ParseError::RootNotDictionary(other.type_name())),
        }
    }

    fn from_xml(content: &[u8]) -> Result<Self, ParseError> {
        let mut p = Profile::empty();
        let mut req = Required::default();
        let mut first: Option<ParseError> = None;
        let root = crate::plist::parse_root_dict(content, |key, entry| {
            let result = if key == "ProvisionedDevices" {
                let mut list = DeviceList::new();
                match entry.strings(&mut list)? {
                    Strings::Read => {
                        p.provisioned_devices = Some(list);
                        Ok(())
                    }
                    Strings::NotArray(v) => Err(wrong(key, "array", &v)),
                    Strings::NotString { index, found } => {
                        Err(wrong(format!("{key}[{index}]"), "string", &found))
                    }
                }
            } else {
                let v = entry.value()?;
                p.set(&mut req, key, v)
            };
            if let Err(e) = result {
                first.get_or_insert(e);
            }
            Ok::<(), ParseError>(())
        })?;
        if let Root::Other(v) = root {
            return Err(ParseError::RootNotDictionary(v.type_name()));
        }
        if let Some(e) = first {
            return Err(e);
        }
        req.finish(p)
    }

    fn empty() -> Profile {
        Profile {
            uuid: String::new(),
            name: None,
            app_id_name: None,
            application_identifier_prefix: Vec::new(),
            team_identifier: Vec::new(),
            team_name: None,
            creation_date: DateTime::<Utc>::MIN_UTC,
            expiration_date: DateTime::<Utc>::MIN_UTC,
            platforms: Vec::new(),
            provisioned_devices: None,
            provisions_all_devices: None,
            developer_certificates: Vec::new(),
            der_encoded_profile: None,
            entitlements: None,
            is_xcode_managed: None,
            local_provision: None,
            time_to_live: None,
            version: None,
            ppq_check: None,
            other: Dictionary::new(),
        }
    }

    /// Takes one top-level entry (a repeated key's last value wins).
    fn set(&mut self, req: &mut Required, k: &str, v: Value) -> Result<(), ParseError> {
        let p = self;
        match k {
            "UUID" => req.uuid = Some(string(k, v)?),
            "Name" => p.name = Some(string(k, v)?),
            "AppIDName" => p.app_id_name = Some(string(k, v)?),
            "TeamName" => p.team_name = Some(string(k, v)?),
            "ApplicationIdentifierPrefix" => p.application_identifier_prefix = string_list(k, v)?,
            "TeamIdentifier" => p.team_identifier = string_list(k, v)?,
            "Platform" => p.platforms = string_list(k, v)?,
            "ProvisionedDevices" => {
                p.provisioned_devices = Some(string_list(k, v)?.into_iter().collect())
            }
            "CreationDate" => req.creation_date = Some(date(k, &v)?),
            "ExpirationDate" => req.expiration_date = Some(date(k, &v)?),
            "ProvisionsAllDevices" => p.provisions_all_devices = Some(boolean(k, &v)?),
            "IsXcodeManaged" => p.is_xcode_managed = Some(boolean(k, &v)?),
            "LocalProvision" => p.local_provision = Some(boolean(k, &v)?),
            "PPQCheck" => p.ppq_check = Some(boolean(k, &v)?),
            "TimeToLive" => p.time_to_live = Some(int(k, &v)?),
            "Version" => p.version = Some(int(k, &v)?),
            "DeveloperCertificates" => {
                let Value::Array(items) = v else {
                    return Err(wrong(k, "array", &v));
                };
                p.developer_certificates = items
                    .into_iter()
                    .enumerate()
                    .map(|(index, v)| match v {
                        Value::Data(der) => Certificate::from_der_vec(der)
                            .map_err(|source| ParseError::DeveloperCertificate { index, source }),
                        other => Err(wrong(
                            format!("DeveloperCertificates[{index}]"),
                            "data",
                            &other,
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            }
            "DER-Encoded-Profile" => match v {
                Value::Data(b) => p.der_encoded_profile = Some(b),
                other => return Err(wrong(k, "data", &other)),
            },
            "Entitlements" => match v {
                Value::Dictionary(e) => p.entitlements = Some(e),
                other => return Err(wrong(k, "dict", &other)),
            },
            _ => p.other.insert(k, v),
        }
        Ok(())
    }

    /// The profile as a plist dictionary: known keys first, then unknown keys
    /// in their original order. Empty lists for `ApplicationIdentifierPrefix`,
    /// `TeamIdentifier` and `Platform` are written as absent.
    pub fn to_dictionary(&self) -> Dictionary {
        let mut d = Dictionary::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                d.push(k.to_owned(), v);
            }
        };
        put("AppIDName", self.app_id_name.clone().map(Value::String));
        put(
            "ApplicationIdentifierPrefix",
            (!self.application_identifier_prefix.is_empty())
                .then(|| strings(&self.application_identifier_prefix)),
        );
        put("CreationDate", Some(Value::Date(self.creation_date)));
        put(
            "Platform",
            (!self.platforms.is_empty()).then(|| strings(&self.platforms)),
        );
        put("IsXcodeManaged", self.is_xcode_managed.map(Value::Boolean));
        put(
            "DeveloperCertificates",
            Some(Value::Array(
                self.developer_certificates
                    .iter()
                    .map(|c| Value::Data(c.der().to_vec()))
                    .collect(),
            )),
        );
        put(
            "DER-Encoded-Profile",
            self.der_encoded_profile.clone().map(Value::Data),
        );
        put(
            "Entitlements",
            self.entitlements.clone().map(Value::Dictionary),
        );
        put("ExpirationDate", Some(Value::Date(self.expiration_date)));
        put("Name", self.name.clone().map(Value::String));
        put(
            "ProvisionedDevices",
            self.provisioned_devices
                .as_ref()
                .map(|d| Value::Array(d.iter().map(|u| Value::String(u.to_owned())).collect())),
        );
        put(
            "ProvisionsAllDevices",
            self.provisions_all_devices.map(Value::Boolean),
        );
        put("LocalProvision", self.local_provision.map(Value::Boolean));
        put(
            "TeamIdentifier",
            (!self.team_identifier.is_empty()).then(|| strings(&self.team_identifier)),
        );
        put("TeamName", self.team_name.clone().map(Value::String));
        put(
            "TimeToLive",
            self.time_to_live.map(|v| Value::Integer(i128::from(v))),
        );
        put("UUID", Some(Value::String(self.uuid.clone())));
        put(
            "Version",
            self.version.map(|v| Value::Integer(i128::from(v))),
        );
        put("PPQCheck", self.ppq_check.map(Value::Boolean));
        for (k, v) in self.other.iter() {
            d.push(k.to_owned(), v.clone());
        }
        d
    }

    /// The entitlements, or an empty dictionary.
    pub fn entitlements(&self) -> &Dictionary {
        static EMPTY: std::sync::OnceLock<Dictionary> = std::sync::OnceLock::new();
        self.entitlements
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Dictionary::new))
    }

    /// `application-identifier` (macOS: `com.apple.application-identifier`).
    pub fn application_identifier(&self) -> Option<&str> {
        let e = self.entitlements();
        e.get("application-identifier")
            .or_else(|| e.get("com.apple.application-identifier"))
            .and_then(Value::as_str)
    }

    /// Whether `application-identifier` covers `bundle_id`: its part after
    /// the team prefix is the bundle id, or ends in `*` and prefixes it.
    pub fn covers_bundle_id(&self, bundle_id: &str) -> bool {
        let app_id = self.application_identifier().unwrap_or_default();
        let pattern = app_id.split_once('.').map_or(app_id, |(_, p)| p);
        wildcard_matches(pattern, bundle_id)
    }

    /// `aps-environment` (macOS: `com.apple.developer.aps-environment`).
    pub fn aps_environment(&self) -> Option<&str> {
        let e = self.entitlements();
        e.get("aps-environment")
            .or_else(|| e.get("com.apple.developer.aps-environment"))
            .and_then(Value::as_str)
    }

    /// The first `TeamIdentifier`.
    pub fn team_id(&self) -> Option<&str> {
        self.team_identifier.first().map(String::as_str)
    }

    /// `get-task-allow` from the entitlements (macOS: `com.apple.security.get-task-allow`).
    pub fn get_task_allow(&self) -> Option<bool> {
        let e = self.entitlements();
        e.get("get-task-allow")
            .or_else(|| e.get("com.apple.security.get-task-allow"))
            .and_then(Value::as_bool)
    }

    /// Whether the profile provisions iOS apps: `Platform` lists `iOS`
    /// (alone or with others), or an old file without `Platform` is not a
    /// macOS one ([`Profile::is_macos`]).
    pub fn provisions_ios(&self) -> bool {
        if self.platforms.is_empty() {
            return !self.is_macos();
        }
        self.platforms.iter().any(|p| p == "iOS")
    }

    /// Whether this is a macOS-only profile: `Platform` names OSX and no iOS
    /// platform (a profile for `[OSX, iOS]` provisions iOS and has its iOS
    /// kind), or (old files without `Platform`) only the macOS
    /// application-identifier key is set.
    pub fn is_macos(&self) -> bool {
        if !self.platforms.is_empty() {
            return self.platforms.iter().any(|p| p == "OSX")
                && !self
                    .platforms
                    .iter()
                    .any(|p| IOS_FAMILY.contains(&p.as_str()));
        }
        let e = self.entitlements();
        e.get("application-identifier").is_none()
            && e.get("com.apple.application-identifier").is_some()
    }

    /// The kind, by the documented rule; a multi-platform profile that
    /// provisions iOS has its iOS kind.
    pub fn kind(&self) -> ProfileKind {
        let mac = self.is_macos();
        if self.provisions_all_devices == Some(true) {
            return if mac {
                ProfileKind::MacosDeveloperId
            } else {
                ProfileKind::Enterprise
            };
        }
        if self.provisioned_devices.is_some() {
            return if mac {
                ProfileKind::MacosDevelopment
            } else if self.get_task_allow() == Some(true) {
                ProfileKind::Development
            } else {
                ProfileKind::AdHoc
            };
        }
        if mac {
            ProfileKind::MacosAppStore
        } else {
            ProfileKind::AppStore
        }
    }

    /// The listed device UDIDs (empty when none are listed).
    pub fn devices(&self) -> &DeviceList {
        static NONE: DeviceList = DeviceList::new();
        self.provisioned_devices.as_ref().unwrap_or(&NONE)
    }

    /// Whether the profile allows installing on this device: it provisions
    /// all devices, or lists the UDID (compared case-insensitively).
    pub fn provisions_device(&self, udid: &str) -> bool {
        self.provisions_all_devices == Some(true) || self.devices().contains_ignore_case(udid)
    }

    /// Whether `at` is after `ExpirationDate`.
    pub fn is_expired(&self, at: DateTime<Utc>) -> bool {
        at > self.expiration_date
    }

    /// When apps signed under this profile stop launching: the earliest of
    /// `ExpirationDate` and every developer certificate's notAfter.
    pub fn death_date(&self) -> DateTime<Utc> {
        self.developer_certificates
            .iter()
            .map(Certificate::not_after)
            .fold(self.expiration_date, DateTime::min)
    }

    /// Whole days from `at` to the death date ([`days_left`]); negative once dead.
    pub fn days_left(&self, at: DateTime<Utc>) -> i64 {
        days_left(self.death_date(), at)
    }
}

/// Whole days from `at` until `death`, rounded down: 0 on the last day,
/// -1 from the moment it has passed by less than a day. The one rule for
/// "days left" everywhere in provkit.
pub fn days_left(death: DateTime<Utc>, at: DateTime<Utc>) -> i64 {
    (death - at)
        .num_seconds()
        .div_euclid(TimeDelta::days(1).num_seconds())
}

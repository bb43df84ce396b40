//! A device's answer to a command, as the plist it sends:
//! `{CommandUUID, UDID, Status, ErrorChain?, ProvisioningProfileList?}`.

use chrono::{DateTime, Utc};
use provkit_profile::plist::{self, Dictionary, Value};
use serde::Serialize;

use crate::MdmError;

/// `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Done.
    Acknowledged,
    /// Failed; see the error chain.
    Error,
    /// The device could not read the command.
    CommandFormatError,
    /// A check-in with nothing to answer.
    Idle,
    /// Busy or locked: ask again later (never a failure).
    NotNow,
}

impl Status {
    /// Apple's spelling.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "Acknowledged" => Status::Acknowledged,
            "Error" => Status::Error,
            "CommandFormatError" => Status::CommandFormatError,
            "Idle" => Status::Idle,
            "NotNow" => Status::NotNow,
            _ => return None,
        })
    }
}

/// One link of an `ErrorChain`: domain, code and text, shown to admins as
/// they are (Apple says the numbers may change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    /// `ErrorDomain`.
    pub domain: String,
    /// `ErrorCode`.
    pub code: i64,
    /// `USEnglishDescription` when given, else `LocalizedDescription`.
    pub description: String,
}

/// One entry of a `ProvisioningProfileList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedProfile {
    /// `Name`.
    pub name: String,
    /// `UUID`.
    pub uuid: String,
    /// `ExpiryDate`, when given.
    pub expires: Option<DateTime<Utc>>,
}

/// A device's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceResult {
    /// `CommandUUID` (absent on an idle check-in).
    pub command_uuid: Option<String>,
    /// `UDID`, when the device names itself.
    pub udid: Option<String>,
    /// `Status`.
    pub status: Status,
    /// `ErrorChain`, outermost first.
    pub error_chain: Vec<ChainLink>,
    /// The profiles it reports, when it answered a `ProvisioningProfileList`.
    pub profiles: Option<Vec<ListedProfile>>,
}

/// The most entries read from a list (a device holds a few dozen
/// profiles; more is not a device's answer).
const MAX_ENTRIES: usize = 10_000;

fn text(d: &Dictionary, key: &str) -> Option<String> {
    d.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl DeviceResult {
    /// Reads an answer plist (XML or binary).
    ///
    /// # Errors
    /// [`MdmError::Result`] naming what is missing or malformed.
    pub fn parse(bytes: &[u8]) -> Result<DeviceResult, MdmError> {
        let (v, _) = plist::parse(bytes).map_err(|e| MdmError::Result(e.to_string()))?;
        let d = v
            .as_dictionary()
            .ok_or_else(|| MdmError::Result(format!("a {}, not a dict", v.type_name())))?;
        let status = text(d, "Status").ok_or_else(|| MdmError::Result("no Status".into()))?;
        let status = Status::parse(&status)
            .ok_or_else(|| MdmError::Result(format!("Status {status:?} is not Apple's")))?;
        let error_chain = match d.get("ErrorChain") {
            None => Vec::new(),
            Some(Value::Array(links)) => links
                .iter()
                .take(MAX_ENTRIES)
                .enumerate()
                .map(|(i, l)| {
                    let l = l.as_dictionary().ok_or_else(|| {
                        MdmError::Result(format!("ErrorChain[{i}] is not a dict"))
                    })?;
                    let code = match l.get("ErrorCode") {
                        Some(Value::Integer(c)) => i64::try_from(*c).unwrap_or(i64::MAX),
                        _ => {
                            return Err(MdmError::Result(format!(
                                "ErrorChain[{i}]: no integer ErrorCode"
                            )));
                        }
                    };
                    Ok(ChainLink {
                        domain: text(l, "ErrorDomain").unwrap_or_default(),
                        code,
                        description: text(l, "USEnglishDescription")
                            .or_else(|| text(l, "LocalizedDescription"))
                            .unwrap_or_default(),
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(MdmError::Result(format!(
                    "ErrorChain is a {}, not an array",
                    other.type_name()
                )));
            }
        };
        let profiles = match d.get("ProvisioningProfileList") {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .take(MAX_ENTRIES)
                    .enumerate()
                    .map(|(i, p)| {
                        let p = p.as_dictionary().ok_or_else(|| {
                            MdmError::Result(format!("ProvisioningProfileList[{i}] is not a dict"))
                        })?;
                        let uuid = text(p, "UUID").ok_or_else(|| {
                            MdmError::Result(format!("ProvisioningProfileList[{i}]: no UUID"))
                        })?;
                        let expires = match p.get("ExpiryDate") {
                            Some(Value::Date(t)) => Some(*t),
                            _ => None,
                        };
                        Ok(ListedProfile {
                            name: text(p, "Name").unwrap_or_default(),
                            uuid,
                            expires,
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => {
                return Err(MdmError::Result(format!(
                    "ProvisioningProfileList is a {}, not an array",
                    other.type_name()
                )));
            }
        };
        Ok(DeviceResult {
            command_uuid: text(d, "CommandUUID"),
            udid: text(d, "UDID"),
            status,
            error_chain,
            profiles,
        })
    }

    /// The error chain as one line per link: `domain code: description`.
    pub fn error_text(&self) -> Option<String> {
        (!self.error_chain.is_empty()).then(|| {
            self.error_chain
                .iter()
                .map(|l| format!("{} {}: {}", l.domain, l.code, l.description))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }
}

/// A device answer plist, as a device would send it (for test doubles and
/// simulators): status, an optional error chain and profile list.
pub fn answer_plist(
    command_uuid: &str,
    udid: &str,
    status: &str,
    error_chain: &[ChainLink],
    profiles: Option<&[ListedProfile]>,
) -> Vec<u8> {
    let mut d = Dictionary::new();
    d.insert("CommandUUID", Value::String(command_uuid.into()));
    d.insert("UDID", Value::String(udid.into()));
    d.insert("Status", Value::String(status.into()));
    if !error_chain.is_empty() {
        d.insert(
            "ErrorChain",
            Value::Array(
                error_chain
                    .iter()
                    .map(|l| {
                        let mut e = Dictionary::new();
                        e.insert("ErrorCode", Value::Integer(i128::from(l.code)));
                        e.insert("ErrorDomain", Value::String(l.domain.clone()));
                        e.insert("LocalizedDescription", Value::String(l.description.clone()));
                        Value::Dictionary(e)
                    })
                    .collect(),
            ),
        );
    }
    if let Some(list) = profiles {
        d.insert(
            "ProvisioningProfileList",
            Value::Array(
                list.iter()
                    .map(|p| {
                        let mut e = Dictionary::new();
                        e.insert("Name", Value::String(p.name.clone()));
                        e.insert("UUID", Value::String(p.uuid.clone()));
                        if let Some(t) = p.expires {
                            e.insert("ExpiryDate", Value::Date(t));
                        }
                        Value::Dictionary(e)
                    })
                    .collect(),
            ),
        );
    }
    plist::to_xml(&Value::Dictionary(d)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answer_keeps_its_whole_chain() {
        let chain = vec![
            ChainLink {
                domain: "MCProvisioningProfileErrorDomain".into(),
                code: 25001,
                description: "The profile cannot be installed.".into(),
            },
            ChainLink {
                domain: "MCMDMErrorDomain".into(),
                code: 12014,
                description: "Not managed.".into(),
            },
        ];
        let bytes = answer_plist("C", "U", "Error", &chain, None);
        let r = DeviceResult::parse(&bytes).expect("parse");
        assert_eq!(r.status, Status::Error);
        assert_eq!(r.error_chain, chain);
        assert!(
            r.error_text()
                .is_some_and(|t| t.contains("25001") && t.contains("12014"))
        );
    }

    #[test]
    fn a_profile_list_answer() {
        let list = vec![ListedProfile {
            name: "Sales".into(),
            uuid: "0E0E0E0E-0000-4000-8000-000000000001".into(),
            expires: Some(DateTime::from_timestamp(1_800_000_000, 0).expect("t")),
        }];
        let bytes = answer_plist("C", "U", "Acknowledged", &[], Some(&list));
        let r = DeviceResult::parse(&bytes).expect("parse");
        assert_eq!(r.profiles.as_deref(), Some(list.as_slice()));
    }

    #[test]
    fn malformed_answers_are_typed_errors() {
        for bad in [
            &b"not a plist"[..],
            b"<plist><array/></plist>",
            b"<plist><dict><key>Status</key><string>Maybe</string></dict></plist>",
            b"<plist><dict><key>Status</key><string>Error</string><key>ErrorChain</key><string>x</string></dict></plist>",
        ] {
            assert!(DeviceResult::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}

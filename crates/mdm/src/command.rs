//! Apple's MDM commands for provisioning profiles, written as the plist the
//! device receives: `{CommandUUID, Command: {RequestType, ...}}`.

use provkit_profile::plist::{self, Dictionary, Value};

use crate::MdmError;

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Install the signed profile file as it is.
    InstallProvisioningProfile {
        /// The `.mobileprovision` bytes (CMS), unchanged.
        profile: Vec<u8>,
    },
    /// Remove the profile with this UUID.
    RemoveProvisioningProfile {
        /// The profile's UUID.
        uuid: String,
    },
    /// Report the installed profiles (`ManagedOnly`: those the MDM
    /// installed; iOS 13 and later).
    ProvisioningProfileList {
        /// Only the MDM's own.
        managed_only: bool,
    },
    /// Re-validate enterprise apps' profiles now (iOS 9.2 and later).
    ValidateApplications {
        /// Bundle identifiers (empty: every app).
        identifiers: Vec<String>,
    },
}

impl Command {
    /// Apple's `RequestType`.
    pub fn request_type(&self) -> &'static str {
        match self {
            Command::InstallProvisioningProfile { .. } => "InstallProvisioningProfile",
            Command::RemoveProvisioningProfile { .. } => "RemoveProvisioningProfile",
            Command::ProvisioningProfileList { .. } => "ProvisioningProfileList",
            Command::ValidateApplications { .. } => "ValidateApplications",
        }
    }

    /// The command as an XML plist under `command_uuid`.
    ///
    /// # Errors
    /// [`MdmError::Command`] when the plist writer refuses it.
    pub fn to_plist(&self, command_uuid: &str) -> Result<Vec<u8>, MdmError> {
        let mut inner = Dictionary::new();
        inner.insert("RequestType", Value::String(self.request_type().into()));
        match self {
            Command::InstallProvisioningProfile { profile } => {
                inner.insert("ProvisioningProfile", Value::Data(profile.clone()));
            }
            Command::RemoveProvisioningProfile { uuid } => {
                inner.insert("UUID", Value::String(uuid.clone()));
            }
            Command::ProvisioningProfileList { managed_only } => {
                inner.insert("ManagedOnly", Value::Boolean(*managed_only));
            }
            Command::ValidateApplications { identifiers } => {
                if !identifiers.is_empty() {
                    inner.insert(
                        "Identifiers",
                        Value::Array(identifiers.iter().cloned().map(Value::String).collect()),
                    );
                }
            }
        }
        let mut outer = Dictionary::new();
        outer.insert("CommandUUID", Value::String(command_uuid.into()));
        outer.insert("Command", Value::Dictionary(inner));
        plist::to_xml(&Value::Dictionary(outer)).map_err(|e| MdmError::Command(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_install_carries_the_signed_bytes_as_they_are() {
        let bytes = vec![0x30, 0x82, 0x00, 0xff, 0x3c, 0x26];
        let xml = Command::InstallProvisioningProfile {
            profile: bytes.clone(),
        }
        .to_plist("CMD-1")
        .expect("plist");
        let (v, _) = plist::parse(&xml).expect("reads back");
        let d = v.as_dictionary().expect("dict");
        assert_eq!(d.get("CommandUUID").and_then(Value::as_str), Some("CMD-1"));
        let c = d
            .get("Command")
            .and_then(Value::as_dictionary)
            .expect("Command");
        assert_eq!(
            c.get("RequestType").and_then(Value::as_str),
            Some("InstallProvisioningProfile")
        );
        assert_eq!(c.get("ProvisioningProfile"), Some(&Value::Data(bytes)));
    }

    #[test]
    fn a_profile_list_asks_for_managed_profiles_only() {
        let xml = Command::ProvisioningProfileList { managed_only: true }
            .to_plist("CMD-2")
            .expect("plist");
        let (v, _) = plist::parse(&xml).expect("reads back");
        let c = v
            .as_dictionary()
            .and_then(|d| d.get("Command"))
            .and_then(Value::as_dictionary)
            .expect("Command");
        assert_eq!(c.get("ManagedOnly"), Some(&Value::Boolean(true)));
    }
}

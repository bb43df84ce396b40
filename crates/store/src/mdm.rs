//! What the store keeps for delivery through MDM servers: the connections
//! (one per organization group, its devices' and its descendants' unless
//! they have their own), the dispatches (one call to a server: one
//! CommandUUID for one or more devices), and the devices' answers as the
//! service reads them from the servers' webhooks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::records::{CommandStatus, ReportedProfile};

/// Which server a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MdmKind {
    /// NanoMDM: `PUT /v1/enqueue/{ids}` with the raw plist.
    NanoMdm,
    /// MicroMDM: `POST /v1/commands` with JSON, one device a call.
    MicroMdm,
}

impl MdmKind {
    /// `nanomdm` or `micromdm`.
    pub fn as_str(self) -> &'static str {
        match self {
            MdmKind::NanoMdm => "nanomdm",
            MdmKind::MicroMdm => "micromdm",
        }
    }

    /// Parses `nanomdm` or `micromdm`.
    pub fn parse(s: &str) -> Option<MdmKind> {
        match s {
            "nanomdm" => Some(MdmKind::NanoMdm),
            "micromdm" => Some(MdmKind::MicroMdm),
            _ => None,
        }
    }
}

/// An MDM server the devices of one organization group (and of the groups
/// below it that have none of their own) are reached through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdmConnection {
    /// A name unique in the tenant.
    pub name: String,
    /// The server's kind.
    pub kind: MdmKind,
    /// Its base URL (`https://mdm.example.com`).
    pub url: String,
    /// The API key: stored to be used, never shown again.
    pub api_key: String,
    /// The webhook's HMAC key, when the server signs its events.
    pub webhook_hmac_key: Option<String>,
    /// The organization group (a path; `Global` for the root).
    pub org_group: String,
    /// Who added it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Where one device of a dispatch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetState {
    /// To be sent (again).
    Due,
    /// The server queued it for the device.
    Queued,
    /// The server refused it for the device (sending again would fail the
    /// same way); its outbox row is failed with the reason.
    Refused,
}

/// One device of a dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchTarget {
    /// The device.
    pub udid: String,
    /// The id the server knows it by (its UDID unless told otherwise).
    pub enrollment_id: String,
    /// The outbox row this delivers (none for a command of the delivery's
    /// own, such as a `ProvisioningProfileList` that reconciles).
    pub row: Option<String>,
    /// Where it stands.
    pub state: TargetState,
}

/// One call to an MDM server: a CommandUUID and the devices it goes to.
/// The CommandUUID is fixed before the first try and kept on every retry,
/// so an answer lost on the way can never queue the command twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// The CommandUUID the server and the devices see.
    pub command_uuid: String,
    /// The connection's name.
    pub connection: String,
    /// Apple's RequestType.
    pub request_type: String,
    /// The profile installed or removed (empty for a list).
    pub profile_uuid: String,
    /// The devices.
    pub targets: Vec<DispatchTarget>,
    /// Tries so far.
    pub attempts: u32,
    /// When it is next due (none: every device settled).
    pub due: Option<DateTime<Utc>>,
    /// The last failure, shown in status.
    pub last_error: Option<String>,
    /// The last push failure (queued, the device not woken).
    pub push_error: Option<String>,
    /// For `ValidateApplications`: the bundle identifiers to re-validate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A dispatch handed to a sender: the dispatch, its connection, and for an
/// install the signed profile bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The dispatch (its targets still due).
    pub dispatch: Dispatch,
    /// Where it goes.
    pub connection: MdmConnection,
    /// The profile's signed bytes, for an install.
    pub profile: Option<Vec<u8>>,
}

/// What a send came to for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued by the server (with the push failure, if the push failed).
    Queued(Option<String>),
    /// Refused for this device.
    Refused(String),
    /// Not queued; try again at the dispatch's next due time.
    Retry(String),
}

/// A device's answer to a command, as read from a webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAnswer {
    /// The CommandUUID answered (a dispatch's, or an outbox row's).
    pub command_uuid: String,
    /// The device.
    pub udid: String,
    /// Its status (`CommandFormatError` arrives as [`CommandStatus::Error`]).
    pub status: CommandStatus,
    /// The error chain, one link a line.
    pub error_chain: Option<String>,
    /// The profiles it listed, for a `ProvisioningProfileList` answer: what
    /// it holds from now on.
    pub profiles: Option<Vec<ReportedProfile>>,
}

/// What [`crate::Store::record_answers`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AnswerCounts {
    /// Answers that changed a command's status or a device's list.
    pub applied: usize,
    /// Answers that changed nothing (the same again, or a late answer to a
    /// command already final).
    pub unchanged: usize,
    /// Answers to commands or devices the store does not know.
    pub unknown: usize,
}

/// A connection's delivery state, for status pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionStatus {
    /// The connection.
    pub name: String,
    /// Dispatches waiting to be sent.
    pub due: usize,
    /// Of those, how many failed at least once.
    pub retrying: usize,
    /// The last failure among them.
    pub last_error: Option<String>,
}

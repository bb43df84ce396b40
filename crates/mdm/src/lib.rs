//! Delivering provisioning profiles through an MDM server, as data: no I/O.
//!
//! The flow reads top to bottom, as the folders do:
//!
//! - [`command`]: Apple's commands (`InstallProvisioningProfile`,
//!   `RemoveProvisioningProfile`, `ProvisioningProfileList`,
//!   `ValidateApplications`) as the XML plist a device receives.
//! - [`nanomdm`] and [`micromdm`]: each server's enqueue request, and its
//!   answer read the way the server means it (per enrollment id: queued,
//!   queued but the push failed, refused, or worth a retry).
//! - [`webhook`]: the servers' webhook events, their HMAC signature checked
//!   in constant time, and the device's result inside (`raw_payload`).
//! - [`result`]: a device's answer plist: status, `ErrorChain`, and the
//!   `ProvisioningProfileList` it reports.
//!
//! Sending the bytes, retrying and recording are the caller's (in provkit,
//! `provkit-server`'s delivery worker over `provkit-store`).
//!
//! ```
//! use provkit_mdm::command::Command;
//! use provkit_mdm::nanomdm;
//!
//! let cmd = Command::RemoveProvisioningProfile { uuid: "0E0E0E0E-0000-4000-8000-000000000001".into() };
//! let plist = cmd.to_plist("6F1C2B9A-5D34-4C3E-9E7A-1B2C3D4E5F60").unwrap();
//! assert!(std::str::from_utf8(&plist).unwrap().contains("RemoveProvisioningProfile"));
//!
//! // NanoMDM: one call for several enrollment ids, and its answer per id.
//! assert_eq!(nanomdm::enqueue_path(&["UDID-A", "UDID-B"]).unwrap(), "/v1/enqueue/UDID-A,UDID-B");
//! let answer = br#"{"status": {"UDID-A": {}, "UDID-B": {"push_error": "no APNs certificate"}},
//!                   "command_uuid": "6F1C2B9A-5D34-4C3E-9E7A-1B2C3D4E5F60"}"#;
//! let per_id = nanomdm::read_answer(207, answer, &["UDID-A", "UDID-B"]);
//! assert!(per_id.iter().all(|(_, o)| o.is_queued()));
//! ```

pub mod command;
pub mod micromdm;
pub mod nanomdm;
pub mod result;
pub mod webhook;

/// What became of one enrollment id in one enqueue call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Queued for the device; `push_error` when the push that wakes it
    /// failed (it will still fetch the command at its next check-in).
    Queued {
        /// The push failure, shown to admins, when there was one.
        push_error: Option<String>,
    },
    /// Refused for this id (an unknown enrollment id, a malformed command):
    /// sending the same again would fail the same way.
    Refused {
        /// What the server said.
        error: String,
    },
    /// Not queued for a reason that may pass (the server down, a 5xx, an
    /// unreadable answer): retry with backoff.
    Retry {
        /// What happened.
        error: String,
    },
}

impl Outcome {
    /// Queued, whether or not the push succeeded.
    pub fn is_queued(&self) -> bool {
        matches!(self, Outcome::Queued { .. })
    }
}

/// The most enrollment ids one enqueue call carries: larger sets are sent
/// in several calls, so one URL stays well under common proxies' limits.
pub const MAX_BATCH: usize = 200;

/// Why an input could not be read: what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MdmError {
    /// The webhook body is not the JSON event the servers send.
    #[error("webhook event: {0}")]
    Event(String),
    /// `raw_payload` is not base64.
    #[error("raw_payload: not base64 ({0})")]
    Base64(String),
    /// The device's answer is not a plist of the documented shape.
    #[error("device result: {0}")]
    Result(String),
    /// A command that cannot be written (an integer beyond the plist range,
    /// an id with a character that cannot travel in a URL path).
    #[error("command: {0}")]
    Command(String),
}

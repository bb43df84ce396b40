//! The servers' webhook events: NanoMDM's (a superset of MicroMDM's)
//! `{topic, event_id, created_at, acknowledge_event: {udid, enrollment_id,
//! status, command_uuid, raw_payload}}`, signed in `X-Hmac-Signature`
//! (base64 HMAC-SHA256 of the body) when the server has a key.

use base64::Engine as _;
use ring::hmac;
use serde::Deserialize;

use crate::MdmError;
use crate::result::DeviceResult;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Hmac-Signature";

/// Whether `signature` (the header's value) is the HMAC-SHA256 of `body`
/// under `key`, compared in constant time. A missing or undecodable
/// signature is not.
pub fn signature_ok(key: &[u8], body: &[u8], signature: Option<&str>) -> bool {
    let Some(tag) = signature.and_then(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .ok()
    }) else {
        return false;
    };
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), body, &tag).is_ok()
}

/// The signature a server with `key` sends for `body` (test doubles use it).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), body);
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    topic: String,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    acknowledge_event: Option<RawAcknowledge>,
}

#[derive(Debug, Deserialize)]
struct RawAcknowledge {
    #[serde(default)]
    udid: Option<String>,
    #[serde(default)]
    enrollment_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    command_uuid: Option<String>,
    #[serde(default)]
    raw_payload: Option<String>,
}

/// One webhook event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `mdm.Connect` for command results and idle check-ins; other topics
    /// (`mdm.Authenticate`, `mdm.TokenUpdate`, ...) carry no result.
    pub topic: String,
    /// The server's event id, when it gives one.
    pub event_id: Option<String>,
    /// When the server made it (RFC 3339, as sent).
    pub created_at: Option<String>,
    /// The device's answer to a command, when this event carries one.
    pub answer: Option<Answer>,
}

/// A device's answer to one of our commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The device (the event's `udid`, else the answer's `UDID`).
    pub udid: String,
    /// The enrollment id the server used, when it differs.
    pub enrollment_id: Option<String>,
    /// The CommandUUID answered.
    pub command_uuid: String,
    /// The device's answer plist, read.
    pub result: DeviceResult,
}

impl Event {
    /// Reads an event body.
    ///
    /// # Errors
    /// [`MdmError::Event`] for a body that is not such JSON or a command
    /// answer without a device; [`MdmError::Base64`] and
    /// [`MdmError::Result`] for a `raw_payload` that cannot be read.
    pub fn parse(body: &[u8]) -> Result<Event, MdmError> {
        let raw: RawEvent =
            serde_json::from_slice(body).map_err(|e| MdmError::Event(e.to_string()))?;
        let answer = match raw.acknowledge_event {
            Some(ack) if ack.command_uuid.as_deref().is_some_and(|c| !c.is_empty()) => {
                let payload = ack.raw_payload.as_deref().unwrap_or_default();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(payload.trim())
                    .map_err(|e| MdmError::Base64(e.to_string()))?;
                let result = DeviceResult::parse(&bytes)?;
                let command_uuid = ack.command_uuid.unwrap_or_default();
                let udid = ack
                    .udid
                    .filter(|u| !u.is_empty())
                    .or_else(|| result.udid.clone())
                    .or_else(|| ack.enrollment_id.clone())
                    .ok_or_else(|| MdmError::Event("a command answer names no device".into()))?;
                if ack.status.as_deref().is_some_and(|s| {
                    crate::result::Status::parse(s).is_some_and(|s| s != result.status)
                }) {
                    return Err(MdmError::Event(format!(
                        "status {:?} disagrees with the device's answer",
                        ack.status.unwrap_or_default()
                    )));
                }
                Some(Answer {
                    udid,
                    enrollment_id: ack.enrollment_id,
                    command_uuid,
                    result,
                })
            }
            _ => None,
        };
        Ok(Event {
            topic: raw.topic,
            event_id: raw.event_id.filter(|e| !e.is_empty()),
            created_at: raw.created_at,
            answer,
        })
    }
}

/// An event body as NanoMDM sends it for a device's answer (test doubles
/// and simulators use it).
pub fn answer_event(
    event_id: &str,
    udid: &str,
    command_uuid: &str,
    status: &str,
    answer_plist: &[u8],
) -> Vec<u8> {
    serde_json::json!({
        "topic": "mdm.Connect",
        "event_id": event_id,
        "created_at": "2026-12-05T00:00:00Z",
        "acknowledge_event": {
            "udid": udid,
            "enrollment_id": udid,
            "status": status,
            "command_uuid": command_uuid,
            "ids": {"id": udid, "type": "Device"},
            "url_params": {},
            "raw_payload": base64::engine::general_purpose::STANDARD.encode(answer_plist),
        }
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{Status, answer_plist};

    #[test]
    fn a_signed_event_verifies_and_a_forged_one_does_not() {
        let body = br#"{"topic": "mdm.Connect"}"#;
        let sig = sign(b"key", body);
        assert!(signature_ok(b"key", body, Some(&sig)));
        assert!(!signature_ok(b"other", body, Some(&sig)));
        assert!(!signature_ok(b"key", b"{}", Some(&sig)));
        assert!(!signature_ok(b"key", body, None));
        assert!(!signature_ok(b"key", body, Some("***")));
    }

    #[test]
    fn an_acknowledge_event_carries_the_device_answer() {
        let plist = answer_plist("CMD", "UDID-1", "NotNow", &[], None);
        let body = answer_event("E1", "UDID-1", "CMD", "NotNow", &plist);
        let e = Event::parse(&body).expect("parse");
        let a = e.answer.expect("answer");
        assert_eq!(
            (a.udid.as_str(), a.command_uuid.as_str()),
            ("UDID-1", "CMD")
        );
        assert_eq!(a.result.status, Status::NotNow);
        assert_eq!(e.event_id.as_deref(), Some("E1"));
    }

    #[test]
    fn idle_check_ins_and_other_topics_carry_no_answer() {
        let idle = br#"{"topic": "mdm.Connect", "acknowledge_event": {"udid": "U", "status": "Idle", "raw_payload": ""}}"#;
        assert_eq!(Event::parse(idle).expect("idle").answer, None);
        let auth = br#"{"topic": "mdm.Authenticate", "checkin_event": {"udid": "U"}}"#;
        assert_eq!(Event::parse(auth).expect("auth").answer, None);
    }

    #[test]
    fn a_malformed_raw_payload_is_an_error() {
        let bad = br#"{"topic": "mdm.Connect", "acknowledge_event": {"udid": "U", "status": "Acknowledged", "command_uuid": "C", "raw_payload": "%%%"}}"#;
        assert!(matches!(Event::parse(bad), Err(MdmError::Base64(_))));
        let junk = serde_json::json!({"topic": "mdm.Connect", "acknowledge_event": {"udid": "U", "command_uuid": "C",
            "raw_payload": base64::engine::general_purpose::STANDARD.encode(b"<plist><dict/></plist>")}});
        assert!(matches!(
            Event::parse(junk.to_string().as_bytes()),
            Err(MdmError::Result(_))
        ));
        assert!(Event::parse(b"[]").is_err());
    }
}

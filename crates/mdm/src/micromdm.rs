//! MicroMDM's command API: `POST /v1/commands` with a JSON body for one
//! device, HTTP Basic auth `micromdm:<api key>`, answered `201
//! {"payload": {"command_uuid": ..., "command": {...}}}`.

use base64::Engine as _;

use crate::command::Command;
use crate::{MdmError, Outcome};

/// The path commands are posted to.
pub const COMMANDS_PATH: &str = "/v1/commands";

/// The `Authorization` header value for an API key.
pub fn basic_auth(api_key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("micromdm:{api_key}"))
    )
}

/// The JSON body of one command for one device, under our CommandUUID.
///
/// `ValidateApplications` goes without its identifiers (MicroMDM's JSON
/// form has no field for them): the device re-validates every app.
///
/// # Errors
/// None today; kept for commands MicroMDM's JSON cannot carry.
pub fn command_json(
    udid: &str,
    command: &Command,
    command_uuid: &str,
) -> Result<Vec<u8>, MdmError> {
    let mut body = serde_json::json!({
        "udid": udid,
        "request_type": command.request_type(),
        "command_uuid": command_uuid,
    });
    match command {
        Command::InstallProvisioningProfile { profile } => {
            body["provisioning_profile"] = base64::engine::general_purpose::STANDARD
                .encode(profile)
                .into();
        }
        Command::RemoveProvisioningProfile { uuid } => body["uuid"] = uuid.as_str().into(),
        // No ManagedOnly in MicroMDM's JSON: the device lists every profile.
        Command::ProvisioningProfileList { .. } => {}
        Command::ValidateApplications { .. } => {}
    }
    Ok(body.to_string().into_bytes())
}

/// What one command call came to.
pub fn read_answer(http_status: u16, body: &[u8]) -> Outcome {
    let text = || {
        String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(300)
            .collect::<String>()
    };
    match http_status {
        200 | 201 => Outcome::Queued { push_error: None },
        401 | 403 => Outcome::Retry {
            error: format!("HTTP {http_status}: the server refused the API key"),
        },
        400..=499 => Outcome::Refused {
            error: format!("HTTP {http_status}: {}", text()),
        },
        _ => Outcome::Retry {
            error: format!("HTTP {http_status}: {}", text()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_install_is_base64_json_with_our_command_uuid() {
        let body = command_json(
            "UDID-1",
            &Command::InstallProvisioningProfile {
                profile: vec![1, 2, 3],
            },
            "CMD",
        )
        .expect("json");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["provisioning_profile"], "AQID");
        assert_eq!(v["command_uuid"], "CMD");
        assert_eq!(v["request_type"], "InstallProvisioningProfile");
    }

    #[test]
    fn answers() {
        assert!(read_answer(201, b"{}").is_queued());
        assert!(matches!(read_answer(400, b"bad"), Outcome::Refused { .. }));
        assert!(matches!(read_answer(503, b""), Outcome::Retry { .. }));
    }
}

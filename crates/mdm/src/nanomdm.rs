//! NanoMDM's command API: `PUT /v1/enqueue/{id,id,...}` with the raw
//! command plist, HTTP Basic auth `nanomdm:<api key>`, and a JSON answer
//! per enrollment id (HTTP 200 all queued, 207 some failed, 500 all
//! failed).
//!
//! Read as the server means it: a command queued whose push failed (no
//! APNs certificate, a push error) is queued, the push error kept to show;
//! `command already exists` for the caller's own CommandUUID is a retry
//! after a lost answer, so queued; a per-id command error is a refusal;
//! the server down, a 5xx without a reading, or an answer that cannot be
//! read is a retry.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{MdmError, Outcome};

/// The path of one enqueue call for these enrollment ids.
///
/// # Errors
/// [`MdmError::Command`] for no ids, or an id holding a comma, a slash or
/// anything but printable ASCII (it could not travel in the path).
pub fn enqueue_path(ids: &[&str]) -> Result<String, MdmError> {
    if ids.is_empty() {
        return Err(MdmError::Command("no enrollment ids".into()));
    }
    for id in ids {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b',' | b'/' | b'?' | b'#' | b'%'))
        {
            return Err(MdmError::Command(format!(
                "enrollment id {id:?} cannot travel in a URL path"
            )));
        }
    }
    Ok(format!("/v1/enqueue/{}", ids.join(",")))
}

/// The `Authorization` header value for an API key.
pub fn basic_auth(api_key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("nanomdm:{api_key}"))
    )
}

#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    status: BTreeMap<String, IdStatus>,
    #[serde(default)]
    push_error: Option<String>,
    #[serde(default)]
    command_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct IdStatus {
    #[serde(default)]
    push_error: Option<String>,
    #[serde(default)]
    command_error: Option<String>,
}

/// Whether a command error says the CommandUUID is stored already (so an
/// earlier try queued it).
fn already_exists(e: &str) -> bool {
    e.to_ascii_lowercase().contains("already exists")
}

fn nonempty(s: Option<&String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty()).cloned()
}

/// What each of `ids` came to, from the HTTP status and body of an enqueue
/// call (in the order of `ids`).
pub fn read_answer<'a>(http_status: u16, body: &[u8], ids: &[&'a str]) -> Vec<(&'a str, Outcome)> {
    let all = |o: Outcome| ids.iter().map(|id| (*id, o.clone())).collect();
    if http_status == 401 || http_status == 403 {
        return all(Outcome::Retry {
            error: format!("HTTP {http_status}: the server refused the API key"),
        });
    }
    let answer: Answer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => {
            return all(match http_status {
                200 => Outcome::Queued { push_error: None },
                400..=499 => Outcome::Refused {
                    error: format!(
                        "HTTP {http_status}: {}",
                        String::from_utf8_lossy(body).trim()
                    ),
                },
                _ => Outcome::Retry {
                    error: format!("HTTP {http_status}, the answer unreadable: {e}"),
                },
            });
        }
    };
    let top_push = nonempty(answer.push_error.as_ref());
    if let Some(err) = nonempty(answer.command_error.as_ref()) {
        // The command as a whole: stored already by an earlier try, or
        // not stored at all (on some backends one unknown id fails all).
        return all(if already_exists(&err) {
            Outcome::Queued {
                push_error: top_push,
            }
        } else {
            Outcome::Retry { error: err }
        });
    }
    ids.iter()
        .map(|id| {
            let outcome = match answer.status.get(*id) {
                Some(s) => match nonempty(s.command_error.as_ref()) {
                    Some(e) if already_exists(&e) => Outcome::Queued {
                        push_error: nonempty(s.push_error.as_ref()).or(top_push.clone()),
                    },
                    Some(e) => Outcome::Refused { error: e },
                    None => Outcome::Queued {
                        push_error: nonempty(s.push_error.as_ref()).or(top_push.clone()),
                    },
                },
                // Not named: all queued (200), or queued with a push
                // failure said once for all (500 with `push_error`).
                None if http_status == 200 => Outcome::Queued {
                    push_error: top_push.clone(),
                },
                None if top_push.is_some() && http_status < 600 => Outcome::Queued {
                    push_error: top_push.clone(),
                },
                None => Outcome::Retry {
                    error: format!("HTTP {http_status}: no status for {id}"),
                },
            };
            (*id, outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_but_push_failed_is_queued_with_the_push_error() {
        let body = br#"{"status": {"A": {"push_error": "no APNs certificate"}}, "push_error": "push failed", "command_uuid": "C"}"#;
        let got = read_answer(500, body, &["A"]);
        assert_eq!(
            got[0].1,
            Outcome::Queued {
                push_error: Some("no APNs certificate".into())
            }
        );
        let body =
            br#"{"no_push": false, "push_error": "no push certificate", "command_uuid": "C"}"#;
        let got = read_answer(500, body, &["A", "B"]);
        assert!(got.iter().all(|(_, o)| o.is_queued()), "{got:?}");
    }

    #[test]
    fn our_own_command_uuid_again_counts_as_queued() {
        let body = br#"{"command_error": "enqueue: command already exists", "command_uuid": "C"}"#;
        assert!(
            read_answer(500, body, &["A", "B"])
                .iter()
                .all(|(_, o)| o.is_queued())
        );
    }

    #[test]
    fn per_id_failures_in_a_207() {
        let body = br#"{"status": {"A": {}, "B": {"command_error": "unknown enrollment"}}}"#;
        let got = read_answer(207, body, &["A", "B", "C"]);
        assert!(got[0].1.is_queued());
        assert!(matches!(got[1].1, Outcome::Refused { .. }));
        assert!(
            matches!(got[2].1, Outcome::Retry { .. }),
            "unnamed in a 207"
        );
    }

    #[test]
    fn server_errors_and_bad_keys_retry() {
        assert!(matches!(
            read_answer(502, b"<html>bad gateway", &["A"])[0].1,
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            read_answer(401, b"", &["A"])[0].1,
            Outcome::Retry { .. }
        ));
        let body = br#"{"command_error": "database is down"}"#;
        assert!(matches!(
            read_answer(500, body, &["A"])[0].1,
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn ids_that_cannot_travel_in_a_path_are_refused() {
        assert!(enqueue_path(&["A,B"]).is_err());
        assert!(enqueue_path(&["../x"]).is_err());
        assert!(enqueue_path(&[]).is_err());
        assert_eq!(enqueue_path(&["A"]).as_deref(), Ok("/v1/enqueue/A"));
    }
}

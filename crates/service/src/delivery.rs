//! Delivery through MDM servers, without I/O: the command a dispatch
//! sends, what a server's answer means for each device, when to try again,
//! and the devices' answers read from webhook events. A sender (in
//! provkit, `provkit-server`'s worker) does the HTTP between these calls.

use chrono::{DateTime, Duration, Utc};
use provkit_mdm::command::Command;
use provkit_mdm::result::Status;
use provkit_mdm::webhook::Event;
use provkit_mdm::{Outcome, micromdm, nanomdm};
use provkit_store::{
    Actor, Claimed, CommandStatus, DeviceAnswer, MdmConnection, MdmKind, ReportedProfile,
    SendOutcome, Store,
};
use sha2::{Digest, Sha256};

use crate::ServiceError;

/// Adds an MDM connection for `org_group` (the caller's scope when
/// `None`), named `name` (the group's path when `None`).
///
/// # Errors
/// As [`Store::add_mdm_connection`].
#[allow(clippy::too_many_arguments)]
pub fn add_connection(
    store: &mut dyn Store,
    name: Option<&str>,
    kind: MdmKind,
    url: &str,
    api_key: &str,
    webhook_hmac_key: Option<&str>,
    org_group: Option<&str>,
    actor: &Actor,
) -> Result<MdmConnection, ServiceError> {
    let group = org_group.unwrap_or(store.scope()).to_owned();
    let c = MdmConnection {
        name: name.map_or_else(|| group.clone(), str::to_owned),
        kind,
        url: url.trim_end_matches('/').to_owned(),
        api_key: api_key.to_owned(),
        webhook_hmac_key: webhook_hmac_key.map(str::to_owned),
        org_group: group,
        created_by: actor.name.clone(),
        created_at: actor.at,
    };
    store.add_mdm_connection(&c, actor)?;
    Ok(c)
}

/// The Apple command a claimed dispatch sends.
///
/// # Errors
/// [`ServiceError::Unknown`] for an install whose profile bytes are gone,
/// or a request type provkit does not send.
pub fn command_of(c: &Claimed) -> Result<Command, ServiceError> {
    let d = &c.dispatch;
    Ok(match d.request_type.as_str() {
        "InstallProvisioningProfile" => Command::InstallProvisioningProfile {
            profile: c.profile.clone().ok_or_else(|| ServiceError::Unknown {
                kind: "profile",
                names: vec![d.profile_uuid.clone()],
            })?,
        },
        "RemoveProvisioningProfile" => Command::RemoveProvisioningProfile {
            uuid: d.profile_uuid.clone(),
        },
        "ProvisioningProfileList" => Command::ProvisioningProfileList { managed_only: true },
        "ValidateApplications" => Command::ValidateApplications {
            identifiers: d.identifiers.clone(),
        },
        other => {
            return Err(ServiceError::Unknown {
                kind: "request type",
                names: vec![other.to_owned()],
            });
        }
    })
}

/// One HTTP request a sender makes: method, path (after the connection's
/// URL), headers and body, and the enrollment ids it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `PUT` or `POST`.
    pub method: &'static str,
    /// The path.
    pub path: String,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Authorization`.
    pub authorization: String,
    /// The body.
    pub body: Vec<u8>,
    /// The enrollment ids it goes to.
    pub ids: Vec<String>,
}

/// The requests that send a claimed dispatch: one NanoMDM call for all its
/// devices, or one MicroMDM call per device, all under its CommandUUID.
///
/// # Errors
/// As [`command_of`]; an enrollment id that cannot travel in a URL.
pub fn requests_of(c: &Claimed) -> Result<Vec<Request>, ServiceError> {
    let command = command_of(c)?;
    let uuid = &c.dispatch.command_uuid;
    let ids: Vec<&str> = c
        .dispatch
        .targets
        .iter()
        .map(|t| t.enrollment_id.as_str())
        .collect();
    let bad = |e: provkit_mdm::MdmError| {
        ServiceError::Store(provkit_store::StoreError::Invalid(e.to_string()))
    };
    Ok(match c.connection.kind {
        MdmKind::NanoMdm => vec![Request {
            method: "PUT",
            path: nanomdm::enqueue_path(&ids).map_err(bad)?,
            content_type: "application/x-apple-aspen-mdm",
            authorization: nanomdm::basic_auth(&c.connection.api_key),
            body: command.to_plist(uuid).map_err(bad)?,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        }],
        MdmKind::MicroMdm => ids
            .iter()
            .map(|id| {
                Ok(Request {
                    method: "POST",
                    path: micromdm::COMMANDS_PATH.into(),
                    content_type: "application/json",
                    authorization: micromdm::basic_auth(&c.connection.api_key),
                    body: micromdm::command_json(id, &command, uuid).map_err(bad)?,
                    ids: vec![(*id).to_owned()],
                })
            })
            .collect::<Result<_, ServiceError>>()?,
    })
}

/// What an answer (HTTP status and body; `None` when no answer came)
/// means for each id of `request`.
pub fn outcomes_of(
    kind: MdmKind,
    request: &Request,
    answer: Option<(u16, &[u8])>,
) -> Vec<(String, SendOutcome)> {
    let Some((status, body)) = answer else {
        return request
            .ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    SendOutcome::Retry("no answer from the server".into()),
                )
            })
            .collect();
    };
    let ids: Vec<&str> = request.ids.iter().map(String::as_str).collect();
    let read = match kind {
        MdmKind::MicroMdm => ids
            .iter()
            .map(|id| (*id, micromdm::read_answer(status, body)))
            .collect(),
        MdmKind::NanoMdm => nanomdm::read_answer(status, body, &ids),
    };
    read.into_iter()
        .map(|(id, o)| {
            let o = match o {
                Outcome::Queued { push_error } => SendOutcome::Queued(push_error),
                Outcome::Refused { error } => SendOutcome::Refused(error),
                Outcome::Retry { error } => SendOutcome::Retry(error),
                _ => SendOutcome::Retry("an answer this version cannot read".into()),
            };
            (id.to_owned(), o)
        })
        .collect()
}

/// When a dispatch tried `attempts` times is due again: exponential from
/// 2 s, at most 15 minutes, with up to a fifth of jitter drawn from the
/// CommandUUID (so many failing dispatches spread out, and the same one
/// always waits the same).
pub fn retry_at(command_uuid: &str, attempts: u32, at: DateTime<Utc>) -> DateTime<Utc> {
    let base = 2_i64.saturating_pow(attempts.min(20)).min(900);
    let h = Sha256::digest(command_uuid.as_bytes());
    let jitter = i64::from(u16::from_be_bytes([h[0], h[1]])) * base * 200 / 65_535;
    at + Duration::milliseconds(base * 1000 + jitter)
}

/// A webhook event that could not be read, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The event id.
    pub id: String,
    /// Why.
    pub error: String,
}

/// The devices' answers in events `(id, body)` as the store records them;
/// events that carry none (idle check-ins, other topics) answer nothing,
/// unreadable ones are returned apart (they are processed too: recorded
/// as read, so they do not come back).
pub fn answers_of(events: &[(String, String)]) -> (Vec<DeviceAnswer>, Vec<Unreadable>) {
    let mut answers = Vec::new();
    let mut bad = Vec::new();
    for (id, body) in events {
        let event = match Event::parse(body.as_bytes()) {
            Ok(e) => e,
            Err(e) => {
                bad.push(Unreadable {
                    id: id.clone(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let Some(a) = event.answer else { continue };
        let status = match a.result.status {
            Status::Acknowledged => CommandStatus::Acknowledged,
            Status::Error | Status::CommandFormatError => CommandStatus::Error,
            Status::NotNow => CommandStatus::NotNow,
            Status::Idle => continue,
        };
        let error_chain = match a.result.status {
            Status::CommandFormatError => Some(a.result.error_text().unwrap_or_else(|| {
                "CommandFormatError: the device could not read the command".into()
            })),
            _ => a.result.error_text(),
        };
        let profiles = a.result.profiles.map(|list| {
            list.into_iter()
                .map(|p| ReportedProfile {
                    uuid: p.uuid,
                    // Unknown: the store fills in the profile's own.
                    expires: p.expires.unwrap_or(DateTime::UNIX_EPOCH),
                    managed: true,
                })
                .collect()
        });
        answers.push(DeviceAnswer {
            command_uuid: a.command_uuid,
            udid: a.udid,
            status,
            error_chain,
            profiles,
        });
    }
    (answers, bad)
}

/// The id an event read from `body` is kept under: the server's
/// `event_id`, else the SHA-256 of the body (so the same event twice is one
/// event).
pub fn event_id(event: &Event, body: &[u8]) -> String {
    event
        .event_id
        .as_deref()
        .filter(|e| e.len() <= 200)
        .map_or_else(
            || format!("sha256:{}", provkit_profile::hex(&Sha256::digest(body))),
            |e| format!("id:{e}"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_fifteen_minutes_with_jitter() {
        let at = DateTime::UNIX_EPOCH;
        let first = retry_at("A", 1, at) - at;
        assert!(first >= Duration::seconds(2) && first <= Duration::milliseconds(2400));
        let late = retry_at("A", 30, at) - at;
        assert!(late >= Duration::seconds(900) && late <= Duration::seconds(1080));
        assert_eq!(retry_at("A", 3, at), retry_at("A", 3, at));
    }

    #[test]
    fn the_same_event_body_gets_the_same_id() {
        let id = |b: &[u8]| event_id(&Event::parse(b).expect("event"), b);
        assert_eq!(id(br#"{"topic": "t", "event_id": "e1"}"#), "id:e1");
        assert_eq!(id(br#"{"topic": "t"}"#), id(br#"{"topic": "t"}"#));
        assert_ne!(id(br#"{"topic": "t"}"#), id(br#"{"topic":  "t"}"#));
    }
}

/// When devices are asked for their profile lists again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconcile {
    /// A command sent and unanswered this long: ask the device what it
    /// holds (NanoMDM never retries a webhook, so an answer can be lost).
    pub unanswered_after: Duration,
    /// Every device is asked once per period, spread over it.
    pub relist_every: Duration,
}

impl Default for Reconcile {
    fn default() -> Self {
        Reconcile {
            unanswered_after: Duration::hours(1),
            relist_every: Duration::days(1),
        }
    }
}

/// Whether `udid`'s turn in the re-listing period falls in `(since, at]`:
/// each device has a fixed offset in the period, drawn from its UDID, so
/// the period's requests spread evenly and each device is asked once.
pub fn relist_due(udid: &str, since: DateTime<Utc>, at: DateTime<Utc>, every: Duration) -> bool {
    let period = every.num_milliseconds().max(1);
    let h = Sha256::digest(udid.as_bytes());
    let offset = i64::try_from(
        u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
            % period.unsigned_abs(),
    )
    .unwrap_or(0);
    // The turn at or before `at`.
    let t = at.timestamp_millis();
    let turn = t - (t - offset).rem_euclid(period);
    turn > since.timestamp_millis()
}

/// Asks for `ProvisioningProfileList` the devices whose command went
/// unanswered past [`Reconcile::unanswered_after`] within `(since, at]`,
/// and those whose re-listing turn falls in it; returns how many devices
/// were asked. Their answers replace what each reports.
///
/// # Errors
/// Store failures.
pub fn reconcile(
    store: &mut dyn Store,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
    cfg: &Reconcile,
) -> Result<usize, ServiceError> {
    // Commands whose quiet time ended in the window: sent in it shifted
    // back by `unanswered_after` (an index by time, not the whole outbox).
    let mut ask: std::collections::BTreeSet<String> = store
        .unanswered(since - cfg.unanswered_after, at - cfg.unanswered_after)?
        .into_iter()
        .collect();
    for udid in store.device_udids()? {
        if relist_due(&udid, since, at, cfg.relist_every) {
            ask.insert(udid);
        }
    }
    let udids: Vec<String> = ask.into_iter().collect();
    if udids.is_empty() {
        return Ok(0);
    }
    store.dispatch_command(
        "ProvisioningProfileList",
        &udids,
        at,
        provkit_mdm::MAX_BATCH,
    )?;
    Ok(udids.len())
}

#[cfg(test)]
mod reconcile_tests {
    use super::*;

    #[test]
    fn every_device_is_relisted_once_a_period_spread_over_it() {
        let every = Duration::hours(24);
        let start = DateTime::UNIX_EPOCH + Duration::days(20_000);
        let udids: Vec<String> = (0..2400).map(|i| format!("UDID-{i}")).collect();
        let mut per_hour = Vec::new();
        let mut asked = std::collections::HashMap::new();
        for h in 0..24 {
            let (since, at) = (start + Duration::hours(h), start + Duration::hours(h + 1));
            let n = udids
                .iter()
                .filter(|u| relist_due(u, since, at, every))
                .inspect(|u| *asked.entry((*u).clone()).or_insert(0) += 1)
                .count();
            per_hour.push(n);
        }
        assert_eq!(asked.len(), 2400);
        assert!(asked.values().all(|&n| n == 1), "once each");
        assert!(
            per_hour.iter().all(|&n| (50..=150).contains(&n)),
            "spread: {per_hour:?}"
        );
    }
}

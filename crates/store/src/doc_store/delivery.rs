//! Delivery through MDM servers, on the document tables: connections in
//! `meta`, planned commands grouped into dispatches (`outbox_undispatched`
//! → `dispatches`), dispatches claimed by due time (`dispatch_due`, with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL) under a lease so a sender that
//! dies leaves them due again, and webhook events kept before they are
//! processed (`inbox`, `inbox_due`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::{DocStore, R, from_json, hidden, root_only, to_json, ukey};
use crate::conn::{Docs, Table};
use crate::error::StoreError;
use crate::mdm::{
    AnswerCounts, Claimed, DeviceAnswer, Dispatch, DispatchTarget, MdmConnection, MdmKind,
    SendOutcome, TargetState,
};
use crate::records::{Actor, CommandStatus, DeviceRecord, OutboxEntry, ReportedProfile};

/// MDM connections live in `meta` under this prefix and their name.
const MDM_PREFIX: &str = "mdm\u{1}";

/// The undispatched key of a command: request, profile, device (so one
/// scan meets identical commands side by side).
pub(super) fn undispatched_key(e: &OutboxEntry) -> String {
    format!(
        "{}\u{1}{}\u{1}{}",
        e.request_type,
        ukey(&e.profile_uuid),
        e.udid
    )
}

/// A due key: the instant in milliseconds, zero-padded so keys sort by
/// time, then the id.
fn due_key(at: DateTime<Utc>, id: &str) -> String {
    format!("{:020}\u{1}{id}", at.timestamp_millis().max(0))
}

/// The first key after every due key at or before `at`.
fn due_end(at: DateTime<Utc>) -> String {
    format!("{:020}\u{2}", at.timestamp_millis().max(0))
}

/// A CommandUUID derived from `seed` (unique per dispatch): the same seed
/// gives the same UUID, so nothing here needs a random source.
fn derived_uuid(seed: &str) -> String {
    let h = Sha256::digest(format!("provkit-dispatch\0{seed}").as_bytes());
    let x = provkit_profile::hex(&h[..16]).to_ascii_uppercase();
    format!(
        "{}-{}-8{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[16..20],
        &x[20..32]
    )
}

fn final_status(s: CommandStatus) -> bool {
    matches!(s, CommandStatus::Acknowledged | CommandStatus::Error)
}

/// The connection serving organization group `og`: its own, else the
/// nearest ancestor's.
fn serving<'a>(conns: &'a HashMap<String, MdmConnection>, og: &str) -> Option<&'a MdmConnection> {
    let mut path = og;
    loop {
        if let Some(c) = conns.get(path) {
            return Some(c);
        }
        path = &path[..path.rfind('/')?];
    }
}

/// A dispatch due at `at` for these (device, outbox row) pairs, each
/// device reached by its UDID.
fn new_dispatch(
    command_uuid: String,
    connection: &str,
    request_type: &str,
    profile_uuid: &str,
    devices: impl Iterator<Item = (String, Option<String>)>,
    at: DateTime<Utc>,
) -> Dispatch {
    Dispatch {
        command_uuid,
        connection: connection.to_owned(),
        request_type: request_type.to_owned(),
        profile_uuid: profile_uuid.to_owned(),
        targets: devices
            .map(|(udid, row)| DispatchTarget {
                enrollment_id: udid.clone(),
                udid,
                row,
                state: TargetState::Due,
            })
            .collect(),
        attempts: 0,
        due: Some(at),
        last_error: None,
        push_error: None,
        created_at: at,
        updated_at: at,
    }
}

#[allow(private_bounds)]
impl<D: Docs> DocStore<D> {
    pub(super) fn add_mdm_connection_in(d: &mut D, c: &MdmConnection, actor: &Actor) -> R<()> {
        if c.name.trim().is_empty() || c.name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "connection name {:?}: give a non-empty name without control characters",
                c.name
            )));
        }
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            return Err(StoreError::Invalid(format!(
                "connection URL {:?}: give http:// or https://",
                c.url
            )));
        }
        if c.api_key.is_empty() {
            return Err(StoreError::Invalid(
                "the connection's API key is empty".into(),
            ));
        }
        crate::org::validate(&c.org_group)?;
        if !crate::org::within(d.scope(), &c.org_group) {
            return Err(hidden("organization group", &c.org_group, "mdm add"));
        }
        let known = d.get(
            Table::Meta,
            &format!("{}{}", super::ORG_PREFIX, c.org_group),
        )?;
        if known.is_none() && c.org_group != crate::org::ROOT {
            return Err(hidden("organization group", &c.org_group, "mdm add"));
        }
        for (_, doc) in d.scan(Table::Meta, MDM_PREFIX)? {
            let other: MdmConnection = from_json(&doc)?;
            if other.name == c.name {
                return Err(StoreError::Invalid(format!(
                    "a connection named {:?} exists",
                    c.name
                )));
            }
            if other.org_group == c.org_group {
                return Err(StoreError::Invalid(format!(
                    "{} is served by connection {:?} already; remove it first",
                    c.org_group, other.name
                )));
            }
        }
        d.put(Table::Meta, &format!("{MDM_PREFIX}{}", c.name), &to_json(c))?;
        // The audit names the connection, never its keys.
        let after = serde_json::json!({
            "kind": c.kind.as_str(), "url": c.url, "org_group": c.org_group,
            "webhook_signed": c.webhook_hmac_key.is_some(),
        });
        Self::audit(d, actor, "mdm-add", &c.name, None, Some(after))
    }

    pub(super) fn mdm_connections_in(d: &mut D) -> R<Vec<MdmConnection>> {
        let mut all = Vec::new();
        for (_, doc) in d.scan(Table::Meta, MDM_PREFIX)? {
            let c: MdmConnection = from_json(&doc)?;
            if crate::org::within(d.scope(), &c.org_group) {
                all.push(c);
            }
        }
        Ok(all)
    }

    pub(super) fn remove_mdm_connection_in(
        d: &mut D,
        name: &str,
        actor: &Actor,
    ) -> R<MdmConnection> {
        let key = format!("{MDM_PREFIX}{name}");
        let c: MdmConnection = match d.get(Table::Meta, &key)? {
            Some(doc) => from_json(&doc)?,
            None => return Err(hidden("connection", name, "mdm remove")),
        };
        if !crate::org::within(d.scope(), &c.org_group) {
            return Err(hidden("connection", name, "mdm remove"));
        }
        d.delete(Table::Meta, &key)?;
        Self::audit(d, actor, "mdm-remove", name, None, None)?;
        Ok(c)
    }

    fn connections_by_group(d: &mut D) -> R<HashMap<String, MdmConnection>> {
        let mut out = HashMap::new();
        for (_, doc) in d.scan(Table::Meta, MDM_PREFIX)? {
            let c: MdmConnection = from_json(&doc)?;
            out.insert(c.org_group.clone(), c);
        }
        Ok(out)
    }

    /// Writes a new dispatch, due at `at`.
    fn put_dispatch(d: &mut D, disp: &Dispatch) -> R<()> {
        d.put(Table::Dispatches, &disp.command_uuid, &to_json(disp))?;
        if let Some(due) = disp.due {
            d.put(Table::DispatchDue, &due_key(due, &disp.command_uuid), "")?;
        }
        Ok(())
    }

    pub(super) fn prepare_dispatches_in(
        d: &mut D,
        at: DateTime<Utc>,
        max_batch: usize,
    ) -> R<usize> {
        root_only(d, "delivery")?;
        let conns = Self::connections_by_group(d)?;
        if conns.is_empty() {
            return Ok(0);
        }
        // (connection, request, profile) → (device, row), in key order.
        let mut groups: BTreeMap<(String, String, String), Vec<(String, String)>> = BTreeMap::new();
        let mut served: HashMap<String, Option<String>> = HashMap::new();
        let mut taken = Vec::new();
        for (key, row) in d.scan(Table::Undispatched, "")? {
            let mut parts = key.splitn(3, '\u{1}');
            let (Some(request), Some(profile), Some(udid)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(StoreError::Corrupt(format!("undispatched key {key:?}")));
            };
            let conn = match served.get(udid) {
                Some(c) => c.clone(),
                None => {
                    let c = match d.get(Table::Devices, udid)? {
                        Some(doc) => {
                            let dev: DeviceRecord = from_json(&doc)?;
                            serving(&conns, crate::org::of(dev.org_group.as_ref()))
                                .map(|c| c.name.clone())
                        }
                        None => None,
                    };
                    served.insert(udid.to_owned(), c.clone());
                    c
                }
            };
            let Some(conn) = conn else { continue };
            groups
                .entry((conn, request.to_owned(), profile.to_owned()))
                .or_default()
                .push((udid.to_owned(), row));
            taken.push(key);
        }
        let kinds: HashMap<&str, MdmKind> =
            conns.values().map(|c| (c.name.as_str(), c.kind)).collect();
        let mut dispatched = 0;
        for ((conn, request, profile), devices) in groups {
            // MicroMDM takes one device a call; NanoMDM up to the batch.
            let size = match kinds.get(conn.as_str()) {
                Some(MdmKind::MicroMdm) => 1,
                _ => max_batch.max(1),
            };
            for chunk in devices.chunks(size) {
                let disp = new_dispatch(
                    derived_uuid(&chunk[0].1),
                    &conn,
                    &request,
                    &profile,
                    chunk
                        .iter()
                        .map(|(udid, row)| (udid.clone(), Some(row.clone()))),
                    at,
                );
                Self::put_dispatch(d, &disp)?;
                dispatched += chunk.len();
            }
        }
        for key in taken {
            d.delete(Table::Undispatched, &key)?;
        }
        Ok(dispatched)
    }

    pub(super) fn dispatch_command_in(
        d: &mut D,
        request_type: &str,
        udids: &[String],
        at: DateTime<Utc>,
        max_batch: usize,
    ) -> R<Vec<String>> {
        root_only(d, "delivery")?;
        let conns = Self::connections_by_group(d)?;
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for udid in udids {
            let dev: DeviceRecord = Self::require(d, Table::Devices, udid, "device", request_type)?;
            let Some(c) = serving(&conns, crate::org::of(dev.org_group.as_ref())) else {
                continue;
            };
            groups.entry(c.name.clone()).or_default().push(dev.udid);
        }
        let mut made = Vec::new();
        for (conn, devices) in groups {
            let size = match conns.values().find(|c| c.name == conn).map(|c| c.kind) {
                Some(MdmKind::MicroMdm) => 1,
                _ => max_batch.max(1),
            };
            for chunk in devices.chunks(size) {
                let seed = format!(
                    "{request_type}\u{1}{}\u{1}{}",
                    at.timestamp_millis(),
                    chunk[0]
                );
                let disp = new_dispatch(
                    derived_uuid(&seed),
                    &conn,
                    request_type,
                    "",
                    chunk.iter().map(|u| (u.clone(), None)),
                    at,
                );
                if d.get(Table::Dispatches, &disp.command_uuid)?.is_none() {
                    Self::put_dispatch(d, &disp)?;
                    made.push(disp.command_uuid);
                }
            }
        }
        Ok(made)
    }

    pub(super) fn claim_dispatches_in(
        d: &mut D,
        at: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> R<Vec<Claimed>> {
        root_only(d, "delivery")?;
        let mut out = Vec::new();
        let mut bytes_of: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        for (key, _) in d.claim_below(Table::DispatchDue, &due_end(at), limit)? {
            d.delete(Table::DispatchDue, &key)?;
            let Some(uuid) = key.split('\u{1}').nth(1) else {
                continue;
            };
            let Some(doc) = d.get(Table::Dispatches, uuid)? else {
                continue;
            };
            let mut disp: Dispatch = from_json(&doc)?;
            // Due again when the lease lapses, in case this sender dies.
            let until = at + lease;
            disp.due = Some(until);
            disp.attempts += 1;
            disp.updated_at = at;
            d.put(Table::Dispatches, &disp.command_uuid, &to_json(&disp))?;
            d.put(Table::DispatchDue, &due_key(until, &disp.command_uuid), "")?;
            let Some(conn) = d.get(Table::Meta, &format!("{MDM_PREFIX}{}", disp.connection))?
            else {
                continue;
            };
            let connection: MdmConnection = from_json(&conn)?;
            let profile = if disp.request_type == "InstallProvisioningProfile" {
                match bytes_of.get(&disp.profile_uuid) {
                    Some(b) => b.clone(),
                    None => {
                        let newest = d
                            .scan(Table::Profiles, &format!("{}/", ukey(&disp.profile_uuid)))?
                            .into_iter()
                            .last();
                        let b = match newest {
                            Some((k, _)) => d.get_bytes(&k)?,
                            None => None,
                        };
                        bytes_of.insert(disp.profile_uuid.clone(), b.clone());
                        b
                    }
                }
            } else {
                None
            };
            disp.targets.retain(|t| t.state == TargetState::Due);
            out.push(Claimed {
                dispatch: disp,
                connection,
                profile,
            });
        }
        Ok(out)
    }

    /// Sets an outbox row's status unless it is final already; true when
    /// it changed.
    fn set_row(
        d: &mut D,
        row: &str,
        status: CommandStatus,
        error_chain: Option<&str>,
        at: DateTime<Utc>,
    ) -> R<Option<OutboxEntry>> {
        let Some(doc) = d.get(Table::Outbox, row)? else {
            return Ok(None);
        };
        let mut e: OutboxEntry = from_json(&doc)?;
        if final_status(e.status) || (e.status == status && status != CommandStatus::NotNow) {
            return Ok(None);
        }
        // A late "sent" never overrides what the device said.
        if status == CommandStatus::Sent && e.status == CommandStatus::NotNow {
            return Ok(None);
        }
        if status == CommandStatus::NotNow {
            e.retries += 1;
        }
        e.status = status;
        e.error_chain = error_chain.map(str::to_owned);
        e.updated_at = at;
        Self::settle_in(d, &e)?;
        d.put(Table::Outbox, row, &to_json(&e))?;
        Ok(Some(e))
    }

    pub(super) fn settle_dispatch_in(
        d: &mut D,
        command_uuid: &str,
        outcomes: &[(String, SendOutcome)],
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> R<()> {
        root_only(d, "delivery")?;
        let doc = d
            .get(Table::Dispatches, command_uuid)?
            .ok_or_else(|| hidden("dispatch", command_uuid, "settle"))?;
        let mut disp: Dispatch = from_json(&doc)?;
        if let Some(due) = disp.due {
            d.delete(Table::DispatchDue, &due_key(due, command_uuid))?;
        }
        let by_id: HashMap<&str, &SendOutcome> =
            outcomes.iter().map(|(id, o)| (id.as_str(), o)).collect();
        let mut retry = Vec::new();
        for t in disp
            .targets
            .iter_mut()
            .filter(|t| t.state == TargetState::Due)
        {
            match by_id.get(t.enrollment_id.as_str()) {
                Some(SendOutcome::Queued(push)) => {
                    t.state = TargetState::Queued;
                    if push.is_some() {
                        disp.push_error.clone_from(push);
                    }
                    if let Some(row) = &t.row {
                        Self::set_row(d, row, CommandStatus::Sent, None, at)?;
                    }
                }
                Some(SendOutcome::Refused(e)) => {
                    t.state = TargetState::Refused;
                    disp.last_error = Some(e.clone());
                    if let Some(row) = &t.row {
                        let why = format!("the MDM server refused the command: {e}");
                        Self::set_row(d, row, CommandStatus::Error, Some(&why), at)?;
                    }
                }
                Some(SendOutcome::Retry(e)) => {
                    disp.last_error = Some(e.clone());
                    retry.push(t.clone());
                }
                None => {
                    disp.last_error = Some(format!("no answer for {}", t.enrollment_id));
                    retry.push(t.clone());
                }
            }
        }
        disp.updated_at = at;
        let some_went = disp.targets.iter().any(|t| t.state != TargetState::Due);
        if retry.is_empty() {
            disp.due = None;
        } else if some_went {
            // Part of the call went through: the rest go under a new
            // CommandUUID (the server holds this one, and would answer
            // "already exists" for devices it never queued).
            disp.targets.retain(|t| t.state != TargetState::Due);
            disp.due = None;
            let split = Dispatch {
                command_uuid: derived_uuid(&format!("{command_uuid}\u{1}{}", disp.attempts)),
                targets: retry,
                due: Some(retry_at),
                created_at: at,
                ..disp.clone()
            };
            Self::put_dispatch(d, &split)?;
        } else {
            disp.due = Some(retry_at);
        }
        Self::put_dispatch(d, &disp)
    }

    pub(super) fn receive_event_in(d: &mut D, id: &str, body: &str, at: DateTime<Utc>) -> R<bool> {
        let key = due_key(at, id);
        let doc = serde_json::json!({"received_at": at, "body": body, "due": key});
        if !d.insert_new(Table::Inbox, id, &doc.to_string())? {
            return Ok(false);
        }
        d.put(Table::InboxDue, &key, id)?;
        Ok(true)
    }

    pub(super) fn take_events_in(
        d: &mut D,
        at: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> R<Vec<(String, String)>> {
        root_only(d, "delivery")?;
        let mut out = Vec::new();
        for (key, id) in d.claim_below(Table::InboxDue, &due_end(at), limit)? {
            d.delete(Table::InboxDue, &key)?;
            let Some(doc) = d.get(Table::Inbox, &id)? else {
                continue;
            };
            let mut v: serde_json::Value = from_json(&doc)?;
            let again = due_key(at + lease, &id);
            d.put(Table::InboxDue, &again, &id)?;
            v["due"] = again.into();
            d.put(Table::Inbox, &id, &v.to_string())?;
            out.push((id, v["body"].as_str().unwrap_or_default().to_owned()));
        }
        Ok(out)
    }

    /// The newest expiry of a profile, from its stored versions.
    fn expiry_of(d: &mut D, uuid: &str) -> R<Option<DateTime<Utc>>> {
        Ok(d.scan(Table::Profiles, &format!("{}/", ukey(uuid)))?
            .last()
            .map(|(_, v)| crate::schema::profile_from_doc(v))
            .transpose()?
            .map(|r| r.facts.expires))
    }

    pub(super) fn record_answers_in(
        d: &mut D,
        events: &[String],
        answers: &[DeviceAnswer],
        at: DateTime<Utc>,
    ) -> R<AnswerCounts> {
        root_only(d, "device results")?;
        let mut counts = AnswerCounts::default();
        let mut devices: BTreeMap<String, DeviceRecord> = BTreeMap::new();
        for a in answers {
            // The outbox row answered: a dispatch's device, or a row sent
            // under its own UUID.
            let (row, request) = match d.get(Table::Dispatches, &a.command_uuid)? {
                Some(doc) => {
                    let disp: Dispatch = from_json(&doc)?;
                    let t = disp.targets.iter().find(|t| {
                        t.udid.eq_ignore_ascii_case(&a.udid)
                            || t.enrollment_id.eq_ignore_ascii_case(&a.udid)
                    });
                    match t {
                        Some(t) => (t.row.clone(), disp.request_type),
                        None => {
                            counts.unknown += 1;
                            continue;
                        }
                    }
                }
                None if d.get(Table::Outbox, &a.command_uuid)?.is_some() => {
                    (Some(a.command_uuid.clone()), String::new())
                }
                None => {
                    counts.unknown += 1;
                    continue;
                }
            };
            let dev = match devices.get_mut(&a.udid) {
                Some(dev) => Some(dev),
                None => match d.get(Table::Devices, &a.udid)? {
                    Some(doc) => Some(devices.entry(a.udid.clone()).or_insert(from_json(&doc)?)),
                    None => None,
                },
            };
            let Some(dev) = dev else {
                counts.unknown += 1;
                continue;
            };
            let mut changed = false;
            if let Some(row) = &row
                && let Some(e) = Self::set_row(d, row, a.status, a.error_chain.as_deref(), at)?
            {
                changed = true;
                if a.status == CommandStatus::Acknowledged {
                    let uuid = ukey(&e.profile_uuid);
                    dev.reported.retain(|r| ukey(&r.uuid) != uuid);
                    if e.request_type == "InstallProvisioningProfile"
                        && let Some(expires) = Self::expiry_of(d, &e.profile_uuid)?
                    {
                        dev.reported.push(ReportedProfile {
                            uuid: e.profile_uuid.clone(),
                            expires,
                            managed: true,
                        });
                    }
                }
            }
            if let Some(list) = &a.profiles
                && a.status == CommandStatus::Acknowledged
                && (request.is_empty() || request == "ProvisioningProfileList")
            {
                let mut list = list.clone();
                for p in &mut list {
                    // A listed profile without its ExpiryDate: the stored one's.
                    if p.expires == DateTime::UNIX_EPOCH
                        && let Some(t) = Self::expiry_of(d, &p.uuid)?
                    {
                        p.expires = t;
                    }
                }
                if dev.reported != list {
                    dev.reported = list;
                    changed = true;
                }
            }
            if changed {
                counts.applied += 1;
            } else {
                counts.unchanged += 1;
            }
        }
        let rows: Vec<(String, String)> =
            devices.into_iter().map(|(k, v)| (k, to_json(&v))).collect();
        d.put_many(Table::Devices, &rows)?;
        for id in events {
            if let Some(doc) = d.get(Table::Inbox, id)? {
                let mut v: serde_json::Value = from_json(&doc)?;
                if let Some(due) = v["due"].as_str() {
                    d.delete(Table::InboxDue, due)?;
                }
                v["due"] = serde_json::Value::Null;
                v["processed_at"] = serde_json::json!(at);
                d.put(Table::Inbox, id, &v.to_string())?;
            }
        }
        if counts.applied > 0 {
            let actor = Actor {
                name: "mdm".into(),
                at,
            };
            Self::audit(
                d,
                &actor,
                "device-results",
                "devices",
                None,
                Some(serde_json::json!(counts)),
            )?;
        }
        Ok(counts)
    }

    pub(super) fn dispatches_in(d: &mut D) -> R<Vec<Dispatch>> {
        d.scan(Table::Dispatches, "")?
            .iter()
            .map(|(_, v)| from_json(v))
            .collect()
    }
}

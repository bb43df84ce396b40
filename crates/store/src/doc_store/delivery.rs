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

/// A webhook event as kept.
#[derive(serde::Serialize, serde::Deserialize)]
struct InboxDoc {
    received_at: DateTime<Utc>,
    body: String,
}

/// A command's failures in a row for one (device, request, profile).
#[derive(serde::Serialize, serde::Deserialize)]
struct FailureDoc {
    failures: u32,
    last: DateTime<Utc>,
}

/// The longest a failing command waits before a plan may queue it again;
/// a failure this long after the previous one starts the count anew.
const RETRY_CAP: Duration = Duration::hours(24);

/// How long after its `failures`-th failure in a row a command may be
/// queued again: at once after the first (a one-off failure, such as a
/// device busy installing something else, is retried by the next plan),
/// then one minute, doubling, up to [`RETRY_CAP`].
#[must_use]
pub(crate) fn retry_wait(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::zero(),
        n => Duration::minutes(1i64 << (n - 2).min(20)).min(RETRY_CAP),
    }
}

/// Counts the failures among `rows` (commands that just became final):
/// each `Error` adds one to its (device, request, profile) count, or
/// starts it at one when the previous failure is older than
/// [`RETRY_CAP`]. A few statements whatever the number.
pub(super) fn note_failures<'a, D: Docs>(
    d: &mut D,
    rows: impl IntoIterator<Item = &'a OutboxEntry>,
) -> R<()> {
    let failed: Vec<&OutboxEntry> = rows
        .into_iter()
        .filter(|e| e.status == CommandStatus::Error)
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = failed.iter().map(|e| super::pending_key(e)).collect();
    let known = d.get_many(Table::Failures, &keys)?;
    let mut counts: HashMap<String, FailureDoc> = HashMap::new();
    for (e, key) in failed.into_iter().zip(keys) {
        let before = match counts.remove(&key) {
            Some(doc) => Some(doc),
            None => known.get(&key).map(|doc| from_json(doc)).transpose()?,
        };
        let failures = match before {
            Some(b) if e.updated_at - b.last < RETRY_CAP => b.failures.saturating_add(1),
            _ => 1,
        };
        counts.insert(
            key,
            FailureDoc {
                failures,
                last: e.updated_at,
            },
        );
    }
    let docs: Vec<(String, String)> = counts
        .iter()
        .map(|(k, v)| (k.clone(), to_json(v)))
        .collect();
    d.put_many(Table::Failures, &docs)
}

/// The CommandUUIDs among `entries` whose (device, request, profile)
/// failed recently enough that [`retry_wait`] holds it back at the
/// entry's `created_at` (the instant it is queued).
pub(super) fn held_back<D: Docs>(
    d: &mut D,
    entries: &[OutboxEntry],
) -> R<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    // Most tenants have no failures at all: one look, then nothing.
    if d.last_key(Table::Failures)?.is_none() {
        return Ok(out);
    }
    let keys: Vec<String> = entries.iter().map(super::pending_key).collect();
    let known = d.get_many(Table::Failures, &keys)?;
    if known.is_empty() {
        return Ok(out);
    }
    for (e, key) in entries.iter().zip(keys) {
        if let Some(doc) = known.get(&key) {
            let f: FailureDoc = from_json(doc)?;
            // A wait past the last representable instant holds it back.
            let until = f.last.checked_add_signed(retry_wait(f.failures));
            if until.is_none_or(|until| e.created_at < until) {
                out.insert(e.command_uuid.clone());
            }
        }
    }
    Ok(out)
}

/// In `meta` once the sent index holds every command sent (a store written
/// before the index existed is indexed when it is first asked).
const SENT_INDEXED: &str = "index\u{1}sent";

/// Indexes the commands among `rows` that are `Sent`, by the instant they
/// were sent ([`Table::Sent`]).
pub(super) fn note_sent<'a, D: Docs>(
    d: &mut D,
    rows: impl IntoIterator<Item = &'a OutboxEntry>,
) -> R<()> {
    let docs: Vec<(String, String)> = rows
        .into_iter()
        .filter(|e| e.status == CommandStatus::Sent)
        .map(|e| {
            (
                due_key(e.updated_at, &e.command_uuid),
                e.command_uuid.clone(),
            )
        })
        .collect();
    if docs.is_empty() {
        return Ok(());
    }
    d.put_many(Table::Sent, &docs)
}

/// MDM connections live in `meta` under this prefix and their name.
const MDM_PREFIX: &str = "mdm\u{1}";

/// The undispatched key of a command: request, profile, device (so one
/// scan meets identical commands side by side).
pub(super) fn undispatched_key(e: &OutboxEntry) -> String {
    super::index_key([&e.request_type, &e.profile_uuid, &e.udid], 1)
}

/// A due key: the instant in milliseconds, zero-padded so keys sort by
/// time, then the id.
pub(super) fn due_key(at: DateTime<Utc>, id: &str) -> String {
    format!("{:020}\u{1}{id}", at.timestamp_millis().max(0))
}

/// The first key after every due key at or before `at`.
fn due_end(at: DateTime<Utc>) -> String {
    format!("{:020}\u{2}", at.timestamp_millis().max(0))
}

/// Claims up to `limit` ids due at `at` in a due table (rows `due key →
/// id`: dispatches, messages, webhook events), moving each to `at + lease`
/// so it comes due again unless settled before (a claimer that dies loses
/// nothing); (id, its new due key), in due order.
pub(super) fn claim_due<D: Docs>(
    d: &mut D,
    table: Table,
    at: DateTime<Utc>,
    lease: Duration,
    limit: usize,
) -> R<Vec<(String, String)>> {
    let claimed = d.claim_below(table, &due_end(at), limit)?;
    let old: Vec<String> = claimed.iter().map(|(k, _)| k.clone()).collect();
    d.delete_many(table, &old)?;
    let moved: Vec<(String, String)> = claimed
        .into_iter()
        .map(|(_, id)| (due_key(at + lease, &id), id))
        .collect();
    d.put_many(table, &moved)?;
    Ok(moved.into_iter().map(|(k, id)| (id, k)).collect())
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

/// Sets a row's status unless it is final already (a final status stays
/// final; a late "sent" never overrides what the device said); true when
/// it changed.
fn apply(
    e: &mut OutboxEntry,
    status: CommandStatus,
    error_chain: Option<&str>,
    at: DateTime<Utc>,
) -> bool {
    if final_status(e.status) || (e.status == status && status != CommandStatus::NotNow) {
        return false;
    }
    if status == CommandStatus::Sent && e.status == CommandStatus::NotNow {
        return false;
    }
    if status == CommandStatus::NotNow {
        e.retries += 1;
    }
    e.status = status;
    e.error_chain = error_chain.map(str::to_owned);
    e.updated_at = at;
    true
}

/// What a device holds once it acknowledged `e`: the profile taken out,
/// and for an install put back as `held` (its UUID as stored and its
/// expiry; nothing when the store does not know the profile).
pub(super) fn hold_after_ack(
    reported: &mut Vec<ReportedProfile>,
    e: &OutboxEntry,
    held: Option<(String, DateTime<Utc>)>,
) {
    reported.retain(|r| !r.uuid.eq_ignore_ascii_case(&e.profile_uuid));
    if e.request_type == "InstallProvisioningProfile"
        && let Some((uuid, expires)) = held
    {
        reported.push(ReportedProfile {
            uuid,
            expires,
            managed: true,
        });
    }
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

/// A dispatch due at `at` for these (UDID, enrollment id, outbox row)
/// triples, each device reached by its enrollment id.
fn new_dispatch(
    command_uuid: String,
    connection: &str,
    request_type: &str,
    profile_uuid: &str,
    devices: impl Iterator<Item = (String, String, Option<String>)>,
    at: DateTime<Utc>,
) -> Dispatch {
    Dispatch {
        command_uuid,
        connection: connection.to_owned(),
        request_type: request_type.to_owned(),
        profile_uuid: profile_uuid.to_owned(),
        targets: devices
            .map(|(udid, enrollment_id, row)| DispatchTarget {
                enrollment_id,
                udid,
                row,
                state: TargetState::Due,
            })
            .collect(),
        attempts: 0,
        due: Some(at),
        last_error: None,
        push_error: None,
        identifiers: Vec::new(),
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
            d.put(
                Table::DispatchDue,
                &due_key(due, &disp.command_uuid),
                &disp.command_uuid,
            )?;
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
        // (connection, request, profile) → (device, enrollment id, row), in
        // key order.
        type Targets = Vec<(String, String, String)>;
        let mut groups: BTreeMap<(String, String, String), Targets> = BTreeMap::new();
        let undispatched = d.scan(Table::Undispatched, "")?;
        // The devices' groups, read at once.
        let mut udids: Vec<String> = undispatched
            .iter()
            .filter_map(|(k, _)| k.rsplit('\u{1}').next().map(str::to_owned))
            .collect();
        udids.sort();
        udids.dedup();
        let mut served: HashMap<String, (String, String)> = HashMap::new();
        for (udid, doc) in d.get_many(Table::Devices, &udids)? {
            let dev = crate::json::read_device_record(&doc)?;
            if let Some(c) = serving(&conns, crate::org::of(dev.org_group.as_ref())) {
                served.insert(udid, (c.name.clone(), dev.enrollment().to_owned()));
            }
        }
        let mut taken = Vec::new();
        for (key, row) in undispatched {
            let mut parts = key.splitn(3, '\u{1}');
            let (Some(request), Some(profile), Some(udid)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(StoreError::Corrupt(format!("undispatched key {key:?}")));
            };
            let Some((conn, enrollment)) = served.get(udid) else {
                continue;
            };
            groups
                .entry((conn.clone(), request.to_owned(), profile.to_owned()))
                .or_default()
                .push((udid.to_owned(), enrollment.clone(), row));
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
                    derived_uuid(&chunk[0].2),
                    &conn,
                    &request,
                    &profile,
                    chunk
                        .iter()
                        .map(|(udid, enr, row)| (udid.clone(), enr.clone(), Some(row.clone()))),
                    at,
                );
                Self::put_dispatch(d, &disp)?;
                dispatched += chunk.len();
            }
        }
        d.delete_many(Table::Undispatched, &taken)?;
        Ok(dispatched)
    }

    pub(super) fn dispatch_command_in(
        d: &mut D,
        request_type: &str,
        udids: &[String],
        at: DateTime<Utc>,
        max_batch: usize,
        identifiers: &[String],
    ) -> R<Vec<String>> {
        root_only(d, "delivery")?;
        let conns = Self::connections_by_group(d)?;
        let mut groups: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for udid in udids {
            let dev: DeviceRecord = Self::require(d, Table::Devices, udid, "device", request_type)?;
            let Some(c) = serving(&conns, crate::org::of(dev.org_group.as_ref())) else {
                continue;
            };
            let enrollment = dev.enrollment().to_owned();
            groups
                .entry(c.name.clone())
                .or_default()
                .push((dev.udid, enrollment));
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
                    chunk[0].0
                );
                let mut disp = new_dispatch(
                    derived_uuid(&seed),
                    &conn,
                    request_type,
                    "",
                    chunk.iter().map(|(u, e)| (u.clone(), e.clone(), None)),
                    at,
                );
                disp.identifiers = identifiers.to_vec();
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
        for (uuid, _) in claim_due(d, Table::DispatchDue, at, lease, limit)? {
            let Some(doc) = d.get(Table::Dispatches, &uuid)? else {
                continue;
            };
            let mut disp: Dispatch = from_json(&doc)?;
            // Due again when the lease lapses, in case this sender dies.
            disp.due = Some(at + lease);
            disp.attempts += 1;
            disp.updated_at = at;
            d.put(Table::Dispatches, &disp.command_uuid, &to_json(&disp))?;
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

    /// Reads the outbox rows `keys` at once, into `rows`.
    fn load_rows(d: &mut D, keys: Vec<String>, rows: &mut HashMap<String, OutboxEntry>) -> R<()> {
        let missing: Vec<String> = keys.into_iter().filter(|k| !rows.contains_key(k)).collect();
        for (k, doc) in d.get_many(Table::Outbox, &missing)? {
            rows.insert(k, crate::json::read_outbox_entry(&doc)?);
        }
        Ok(())
    }

    /// Writes the rows that changed, and frees the pending and undispatched
    /// keys of those that became final; a few statements whatever their
    /// number.
    fn store_rows(
        d: &mut D,
        rows: &HashMap<String, OutboxEntry>,
        changed: &std::collections::BTreeSet<String>,
    ) -> R<()> {
        let mut docs = Vec::with_capacity(changed.len());
        let (mut pending, mut undispatched) = (Vec::new(), Vec::new());
        for k in changed {
            let e = &rows[k];
            docs.push((k.clone(), crate::json::outbox_entry(e)));
            if final_status(e.status) {
                pending.push((super::pending_key(e), k.clone()));
                undispatched.push((undispatched_key(e), k.clone()));
            }
        }
        d.put_many(Table::Outbox, &docs)?;
        note_failures(d, changed.iter().map(|k| &rows[k]))?;
        note_sent(d, changed.iter().map(|k| &rows[k]))?;
        for (table, keys) in [
            (Table::Pending, pending),
            (Table::Undispatched, undispatched),
        ] {
            if keys.is_empty() {
                continue;
            }
            let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
            let held = d.get_many(table, &names)?;
            let gone: Vec<String> = keys
                .into_iter()
                .filter(|(k, row)| held.get(k) == Some(row))
                .map(|(k, _)| k)
                .collect();
            d.delete_many(table, &gone)?;
        }
        Ok(())
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
        let mut rows = HashMap::new();
        let keys = disp.targets.iter().filter_map(|t| t.row.clone()).collect();
        Self::load_rows(d, keys, &mut rows)?;
        let mut changed = std::collections::BTreeSet::new();
        let mut set = |row: &Option<String>, status, why: Option<&str>| {
            if let Some(e) = row.as_ref().and_then(|r| rows.get_mut(r))
                && apply(e, status, why, at)
            {
                changed.insert(e.command_uuid.clone());
            }
        };
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
                    set(&t.row, CommandStatus::Sent, None);
                }
                Some(SendOutcome::Refused(e)) => {
                    t.state = TargetState::Refused;
                    disp.last_error = Some(e.clone());
                    let why = format!("the MDM server refused the command: {e}");
                    set(&t.row, CommandStatus::Error, Some(&why));
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
        Self::store_rows(d, &rows, &changed)?;
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

    pub(super) fn unanswered_in(
        d: &mut D,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> R<Vec<String>> {
        root_only(d, "delivery")?;
        if d.get(Table::Meta, SENT_INDEXED)?.is_none() {
            let mut docs = Vec::new();
            d.each_doc_stored(Table::Outbox, &mut |doc| {
                let e: OutboxEntry = from_json(doc)?;
                if e.status == CommandStatus::Sent {
                    docs.push((due_key(e.updated_at, &e.command_uuid), e.command_uuid));
                }
                Ok(())
            })?;
            d.put_many(Table::Sent, &docs)?;
            d.put(Table::Meta, SENT_INDEXED, "1")?;
        }
        // What was sent before the window is done with: windows move on.
        let start = due_key(after, "");
        let old: Vec<String> = d
            .range(Table::Sent, "", &start, usize::MAX)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        d.delete_many(Table::Sent, &old)?;
        let ids: Vec<String> = d
            .range(Table::Sent, &start, &due_end(until), usize::MAX)?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let rows = d.get_many(Table::Outbox, &ids)?;
        let mut out = std::collections::BTreeSet::new();
        for id in &ids {
            let Some(doc) = rows.get(id) else { continue };
            let e: OutboxEntry = from_json(doc)?;
            if e.status == CommandStatus::Sent && e.updated_at > after && e.updated_at <= until {
                out.insert(e.udid);
            }
        }
        Ok(out.into_iter().collect())
    }

    pub(super) fn receive_events_in(
        d: &mut D,
        events: &[(String, String)],
        at: DateTime<Utc>,
    ) -> R<Vec<bool>> {
        let ids: Vec<String> = events.iter().map(|(id, _)| id.clone()).collect();
        let known = d.get_many(Table::Inbox, &ids)?;
        let mut seen = std::collections::HashSet::new();
        let (mut fresh, mut docs, mut due) = (Vec::new(), Vec::new(), Vec::new());
        for (id, body) in events {
            let new = !known.contains_key(id) && seen.insert(id.clone());
            fresh.push(new);
            if new {
                let doc = InboxDoc {
                    received_at: at,
                    body: body.clone(),
                };
                docs.push((id.clone(), to_json(&doc)));
                due.push((due_key(at, id), id.clone()));
            }
        }
        d.put_many(Table::Inbox, &docs)?;
        d.put_many(Table::InboxDue, &due)?;
        Ok(fresh)
    }

    pub(super) fn take_events_in(
        d: &mut D,
        at: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> R<Vec<(String, String)>> {
        root_only(d, "delivery")?;
        // Due again when the lease lapses, unless recorded before; the new
        // due key is the handle that records it.
        let claimed = claim_due(d, Table::InboxDue, at, lease, limit)?;
        let ids: Vec<String> = claimed.iter().map(|(id, _)| id.clone()).collect();
        let kept = d.get_many(Table::Inbox, &ids)?;
        let mut out = Vec::with_capacity(claimed.len());
        for (id, handle) in claimed {
            let Some(doc) = kept.get(&id) else { continue };
            let v: InboxDoc = from_json(doc)?;
            out.push((handle, v.body));
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

    /// Settles `device`'s commands that were sent (not answered) by
    /// `asked` from the profile list it gave: an install of a listed
    /// profile or a removal of an unlisted one is acknowledged, anything
    /// else failed, with the reason, so the next plan sends it again.
    /// Returns the rows changed, each with the profile (upper case) when an
    /// install was acknowledged.
    fn settle_by_list(
        d: &mut D,
        device: &str,
        list: &[ReportedProfile],
        asked: DateTime<Utc>,
        at: DateTime<Utc>,
        rows: &mut HashMap<String, OutboxEntry>,
    ) -> R<Vec<(String, Option<String>)>> {
        let keys: Vec<String> = d
            .scan(Table::Pending, &format!("{device}\u{1}"))?
            .into_iter()
            .map(|(_, row)| row)
            .collect();
        Self::load_rows(d, keys.clone(), rows)?;
        let mut out = Vec::new();
        for k in keys {
            let Some(e) = rows.get_mut(&k) else { continue };
            if e.status != CommandStatus::Sent || e.updated_at > asked || e.udid != device {
                continue;
            }
            let held = list
                .iter()
                .any(|p| p.uuid.eq_ignore_ascii_case(&e.profile_uuid));
            let (status, why, installed) = match e.request_type.as_str() {
                "InstallProvisioningProfile" if held => (
                    CommandStatus::Acknowledged,
                    None,
                    Some(ukey(&e.profile_uuid)),
                ),
                "RemoveProvisioningProfile" if !held => (CommandStatus::Acknowledged, None, None),
                "InstallProvisioningProfile" | "RemoveProvisioningProfile" => (
                    CommandStatus::Error,
                    Some(
                        "not carried out: the device's profile list, asked for after this \
                         command was sent, says otherwise (the answer was lost or the server \
                         never queued it); planned again",
                    ),
                    None,
                ),
                _ => continue,
            };
            if apply(e, status, why, at) {
                out.push((k, installed));
            }
        }
        Ok(out)
    }

    pub(super) fn record_answers_in(
        d: &mut D,
        events: &[String],
        answers: &[DeviceAnswer],
        at: DateTime<Utc>,
    ) -> R<AnswerCounts> {
        root_only(d, "device results")?;
        let mut counts = AnswerCounts::default();
        // Everything the batch touches, read in a few statements.
        let mut uuids: Vec<String> = answers.iter().map(|a| a.command_uuid.clone()).collect();
        uuids.sort();
        uuids.dedup();
        let mut dispatches: HashMap<String, Dispatch> = HashMap::new();
        for (k, doc) in d.get_many(Table::Dispatches, &uuids)? {
            dispatches.insert(k, from_json(&doc)?);
        }
        let mut row_keys: Vec<String> = Vec::new();
        for a in answers {
            match dispatches.get(&a.command_uuid) {
                Some(disp) => row_keys.extend(disp.targets.iter().filter_map(|t| t.row.clone())),
                None => row_keys.push(a.command_uuid.clone()),
            }
        }
        row_keys.sort();
        row_keys.dedup();
        let mut rows = HashMap::new();
        Self::load_rows(d, row_keys, &mut rows)?;
        // The devices: as the answers name them, and as the dispatches
        // answered name them (an answer may name a device by its enrollment id).
        let mut udids: Vec<String> = answers.iter().map(|a| a.udid.clone()).collect();
        udids.extend(
            dispatches
                .values()
                .flat_map(|disp| disp.targets.iter().map(|t| t.udid.clone())),
        );
        // And the devices of rows answered under their own UUID.
        udids.extend(
            answers
                .iter()
                .filter(|a| !dispatches.contains_key(&a.command_uuid))
                .filter_map(|a| rows.get(&a.command_uuid).map(|e| e.udid.clone())),
        );
        udids.sort();
        udids.dedup();
        let mut devices: HashMap<String, DeviceRecord> = HashMap::new();
        for (k, doc) in d.get_many(Table::Devices, &udids)? {
            devices.insert(k, crate::json::read_device_record(&doc)?);
        }
        let mut expiries: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
        // Devices that acknowledged installing each profile, this batch.
        let mut installed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let (mut changed_rows, mut changed_devices) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        for a in answers {
            // The outbox row answered: a dispatch's device, or a row sent
            // under its own UUID.
            let (row, request, device) = match dispatches.get(&a.command_uuid) {
                Some(disp) => {
                    let t = disp.targets.iter().find(|t| {
                        t.udid.eq_ignore_ascii_case(&a.udid)
                            || t.enrollment_id.eq_ignore_ascii_case(&a.udid)
                    });
                    match t {
                        Some(t) => (t.row.clone(), disp.request_type.clone(), t.udid.clone()),
                        None => {
                            counts.unknown += 1;
                            continue;
                        }
                    }
                }
                None if rows.contains_key(&a.command_uuid) => {
                    // Only the row's own device answers it, by its UDID or
                    // its enrollment id.
                    let udid = rows[&a.command_uuid].udid.clone();
                    let named = udid.eq_ignore_ascii_case(&a.udid)
                        || devices
                            .get(&udid)
                            .and_then(|dev| dev.enrollment_id.as_deref())
                            .is_some_and(|e| e.eq_ignore_ascii_case(&a.udid));
                    if !named {
                        counts.unknown += 1;
                        continue;
                    }
                    (Some(a.command_uuid.clone()), String::new(), udid)
                }
                None => {
                    counts.unknown += 1;
                    continue;
                }
            };
            let Some(dev) = devices.get_mut(&device) else {
                counts.unknown += 1;
                continue;
            };
            let mut changed = false;
            if let Some(e) = row.as_ref().and_then(|r| rows.get_mut(r))
                && apply(e, a.status, a.error_chain.as_deref(), at)
            {
                changed = true;
                changed_rows.insert(e.command_uuid.clone());
                if a.status == CommandStatus::Acknowledged {
                    let uuid = ukey(&e.profile_uuid);
                    let expires = match expiries.get(&uuid) {
                        Some(t) => *t,
                        None => {
                            let t = Self::expiry_of(d, &e.profile_uuid)?;
                            expiries.insert(uuid.clone(), t);
                            t
                        }
                    };
                    if e.request_type == "InstallProvisioningProfile" {
                        installed
                            .entry(uuid.clone())
                            .or_default()
                            .push(device.clone());
                    }
                    let held = expires.map(|t| (e.profile_uuid.clone(), t));
                    hold_after_ack(&mut dev.reported, e, held);
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
                // Commands sent before this list was asked for and still
                // unanswered: the device carried them out in order before
                // it listed, so the list says what became of them (their
                // answers were lost, or the server never queued them).
                if let Some(asked) = dispatches.get(&a.command_uuid).map(|x| x.created_at) {
                    let settled = Self::settle_by_list(d, &device, &list, asked, at, &mut rows)?;
                    for (row, installed_now) in settled {
                        changed = true;
                        if let Some(uuid) = installed_now {
                            installed.entry(uuid).or_default().push(device.clone());
                        }
                        changed_rows.insert(row);
                    }
                }
                if dev.reported != list {
                    dev.reported = list;
                    changed = true;
                }
            }
            if changed {
                changed_devices.insert(device.clone());
                counts.applied += 1;
            } else {
                counts.unchanged += 1;
            }
        }
        Self::store_rows(d, &rows, &changed_rows)?;
        Self::validate_after_renewal(d, &installed, at)?;
        let docs: Vec<(String, String)> = changed_devices
            .iter()
            .map(|k| (k.clone(), crate::json::device_record(&devices[k])))
            .collect();
        d.put_many(Table::Devices, &docs)?;
        // The events are processed: out of the due list (kept, so the
        // same event id arriving again changes nothing).
        d.delete_many(Table::InboxDue, events)?;
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

    /// After devices acknowledge a renewal's successor, asks them to
    /// re-validate the apps that share it (`ValidateApplications` with
    /// their bundle identifiers), so they need not wait for a launch.
    fn validate_after_renewal(
        d: &mut D,
        installed: &BTreeMap<String, Vec<String>>,
        at: DateTime<Utc>,
    ) -> R<()> {
        if installed.is_empty() {
            return Ok(());
        }
        let mut renewed: HashMap<String, Vec<String>> = HashMap::new();
        for (_, doc) in d.scan(Table::Profiles, "")? {
            let p = crate::schema::profile_from_doc(&doc)?;
            if let Some(s) = p.successor.as_deref().map(ukey)
                && installed.contains_key(&s)
            {
                renewed.entry(s).or_default().push(ukey(&p.uuid));
            }
        }
        if renewed.is_empty() {
            return Ok(());
        }
        let apps: Vec<crate::records::AppRecord> = d
            .scan(Table::Apps, "")?
            .iter()
            .map(|(_, v)| from_json(v))
            .collect::<R<_>>()?;
        for (new, olds) in renewed {
            let mut ids: Vec<String> = apps
                .iter()
                .filter(|a| {
                    a.profile_uuid
                        .as_deref()
                        .map(ukey)
                        .is_some_and(|p| p == new || olds.contains(&p))
                })
                .map(|a| a.bundle_id.clone())
                .collect();
            ids.sort();
            ids.dedup();
            if ids.is_empty() {
                continue;
            }
            let devices = &installed[&new];
            Self::dispatch_command_in(
                d,
                "ValidateApplications",
                devices,
                at,
                crate::MAX_DISPATCH,
                &ids,
            )?;
        }
        Ok(())
    }

    pub(super) fn dispatches_in(d: &mut D) -> R<Vec<Dispatch>> {
        d.scan(Table::Dispatches, "")?
            .iter()
            .map(|(_, v)| from_json(v))
            .collect()
    }
}

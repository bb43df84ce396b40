//! The store's logic, once, over any [`Docs`] backend; the SQLite and
//! PostgreSQL constructors with their migrations.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use provkit_profile::hex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Digest as _;

use crate::conn::{Docs, MemDocs, Table};
use crate::data::{Data, validate_inventory};
use crate::error::StoreError;
use crate::records::{
    Actor, AppRecord, AssignmentRecord, AuditEntry, CommandStatus, DesiredChange, DeviceRecord,
    GroupChange, GroupRecord, Inventory, InventoryChange, LeaseRecord, OrgGroupRecord, OutboxEntry,
    ProfileLabel, ProfileRecord, Removal, Replace, ReportedProfile, TargetName, TokenRecord,
    TrustAnchorRecord,
};
use crate::records::{AssignmentChange, AssignmentEdit};
use crate::schema::{profile_from_doc, profile_to_doc};
use crate::{ImportBatch, Store};

/// The schema version this program writes. Version 1: document tables
/// `meta`, `profiles`, `profile_bytes`, `apps`, `users`, `devices`, `groups`,
/// `assignments`, `outbox`, `notifications`, `audit`. Version 2: profile
/// documents are the store's own (`schema.rs`), without the engine's
/// in-memory fields; opening a version-1 database rewrites them. Version
/// 3: table `outbox_pending`, the pending key (device, request, profile) of
/// every command not yet final, so that re-planning at another instant
/// queues nothing twice. Version 4: delivery through MDM servers: tables
/// `outbox_undispatched` (planned commands not yet in a dispatch),
/// `dispatches` and `dispatch_due`, `inbox` and `inbox_due` (webhook
/// events), and MDM connections in `meta`.
pub const SCHEMA_VERSION: i64 = 4;

mod delivery;
mod notify;

type R<T> = Result<T, StoreError>;

/// A store over a document backend.
#[derive(Debug)]
pub struct DocStore<D> {
    pub(crate) docs: D,
}

impl<D> DocStore<D> {
    /// A store over `docs`.
    pub(crate) fn over(docs: D) -> Self {
        DocStore { docs }
    }
}

/// In memory, for tests and embedding.
pub type MemoryStore = DocStore<MemDocs>;

impl Default for MemoryStore {
    fn default() -> Self {
        DocStore::over(MemDocs::default())
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn from_json<T: DeserializeOwned>(s: &str) -> R<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Rows of (key, JSON document) for records keyed by one of their fields.
fn keyed<T: Serialize>(items: &[T], key: impl Fn(&T) -> &String) -> Vec<(String, String)> {
    items.iter().map(|x| (key(x).clone(), to_json(x))).collect()
}

/// A new profile version record and its key (`uuid/version`).
fn new_version(
    facts: provkit_policy::ProfileFacts,
    version: i64,
    sha256: String,
    org_group: Option<String>,
    label: ProfileLabel,
    actor: &Actor,
) -> (String, ProfileRecord) {
    let rec = ProfileRecord {
        uuid: facts.uuid.clone(),
        version,
        sha256,
        facts,
        uploaded_at: actor.at,
        successor: None,
        retired: false,
        org_group,
        label,
    };
    (format!("{}/{:010}", ukey(&rec.uuid), rec.version), rec)
}

/// The pending key of a command: device, request and profile.
fn pending_key(e: &OutboxEntry) -> String {
    index_key([&e.udid, &e.request_type, &e.profile_uuid], 2)
}

/// The three parts joined by U+0001, the one at `upper` (a profile UUID) in
/// ASCII upper case, as `format!` and [`ukey`] would make it, in one
/// allocation: every command queued or settled makes two of these keys,
/// and formatting them cost more than a B-tree search.
fn index_key(parts: [&str; 3], upper: usize) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            key.push('\u{1}');
        }
        let start = key.len();
        key.push_str(part);
        if i == upper
            && let Some(added) = key.get_mut(start..)
        {
            added.make_ascii_uppercase();
        }
    }
    key
}

/// Pending keys read at a time when every pending command is acknowledged.
const ACK_CHUNK: usize = 8192;

/// What acknowledging has done so far, across chunks.
#[derive(Default)]
struct AckProgress {
    /// Commands acknowledged.
    commands: usize,
    /// Devices whose reported profiles changed.
    devices: std::collections::HashSet<String>,
    /// Each profile's newest version, by UUID (upper case), as looked up.
    expiry: std::collections::HashMap<String, Option<(String, DateTime<Utc>)>>,
}

/// Devices (by UDID) and their desired profiles as [`UuidTable`] numbers.
type Desired = Vec<(String, Vec<u32>)>;

/// Profile UUIDs (as stored) numbered in the order first seen, both ways:
/// comparing a million devices' desired sets as numbers instead of strings.
#[derive(Default)]
struct UuidTable {
    ids: std::collections::HashMap<String, u32>,
    names: Vec<String>,
}

impl UuidTable {
    fn id(&mut self, uuid: &str) -> u32 {
        if let Some(&i) = self.ids.get(uuid) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(uuid.to_owned(), i);
        self.names.push(uuid.to_owned());
        i
    }

    /// The numbers of the UUIDs equal to `uuid` but for case.
    fn matching(&self, uuid: &str) -> Vec<u32> {
        self.names
            .iter()
            .zip(0u32..)
            .filter(|(n, _)| n.eq_ignore_ascii_case(uuid))
            .map(|(_, i)| i)
            .collect()
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
}

fn ukey(uuid: &str) -> String {
    uuid.to_ascii_uppercase()
}

fn app_key(bundle: &str, version: &str) -> String {
    format!("{bundle}\u{1}{version}")
}

/// The stored rows for one profile's assignments: (key, record).
fn assignment_rows(
    profile_uuid: &str,
    include: &[TargetName],
    exclude: &[TargetName],
) -> Vec<(String, AssignmentRecord)> {
    let mut rows = Vec::new();
    for (targets, inc) in [(include, true), (exclude, false)] {
        for t in targets {
            let key = format!("{}\u{1}{}\u{1}{inc}", ukey(profile_uuid), t.as_key());
            rows.push((
                key,
                AssignmentRecord {
                    profile_uuid: profile_uuid.to_owned(),
                    target: t.clone(),
                    include: inc,
                },
            ));
        }
    }
    rows
}

/// The first group target `exists` does not know.
fn unknown_group<'a>(
    targets: impl Iterator<Item = &'a TargetName>,
    mut exists: impl FnMut(&str) -> R<bool>,
) -> R<Option<&'a str>> {
    for t in targets {
        if let TargetName::Group(g) = t
            && !exists(g)?
        {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

/// Hands `f` every document of `table` that holds `name` as a JSON string
/// (escaped as the store writes it), decoded; the table is streamed as
/// stored and the other documents are not decoded. One of those that does
/// not decode is an error, not passed over.
fn each_naming<D: Docs, T: DeserializeOwned>(
    d: &mut D,
    table: Table,
    name: &str,
    f: &mut dyn FnMut(T),
) -> R<()> {
    let needle = to_json(&name);
    d.each_doc_stored(table, &mut |v| {
        if v.contains(needle.as_str()) {
            f(from_json(v)?);
        }
        Ok(())
    })
}

/// Whether an object of group `og` is visible from the connection's scope.
fn visible<D: Docs>(d: &D, og: Option<&String>) -> bool {
    crate::org::within(d.scope(), crate::org::of(og))
}

/// The group a new object lands in: the one it names when that lies
/// within the scope, else (naming none) the scope itself; `None` for the
/// root.
fn place<D: Docs>(d: &D, given: Option<&String>) -> R<Option<String>> {
    let group = given.map_or(d.scope(), String::as_str);
    crate::org::validate(group)?;
    if !crate::org::within(d.scope(), group) {
        return Err(StoreError::Invalid(format!(
            "organization group {group:?} lies outside {:?}, where this change is made",
            d.scope()
        )));
    }
    Ok((group != crate::org::ROOT).then(|| group.to_owned()))
}

/// Refuses a change only the root may make.
fn root_only<D: Docs>(d: &D, what: &str) -> R<()> {
    if d.scope() == crate::org::ROOT {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} is managed at {}, not in {:?}",
            crate::org::ROOT,
            d.scope()
        )))
    }
}

/// A user's group, as its document holds it (empty: the root).
fn user_group(doc: &str) -> Option<String> {
    (!doc.is_empty() && doc != crate::org::ROOT).then(|| doc.to_owned())
}

/// An object outside the scope, answered as unknown (existence does not
/// leak through reads and edits).
fn hidden(kind: &'static str, name: &str, context: &str) -> StoreError {
    StoreError::UnknownReference {
        kind,
        name: name.to_owned(),
        context: context.to_owned(),
    }
}

/// A name the batch takes that belongs to another organization group.
fn taken(kind: &str, name: &str) -> StoreError {
    StoreError::Invalid(format!(
        "{kind} {name:?} belongs to another organization group"
    ))
}

static AUDIT_SEQ: AtomicU64 = AtomicU64::new(0);

/// Trust anchors live in the `meta` table under this prefix and their SHA-256.
const TRUST_PREFIX: &str = "trust-anchor\u{1}";
/// Organization groups live in the `meta` table under this prefix and
/// their path.
const ORG_PREFIX: &str = "org-group\u{1}";
/// Leases live in the `meta` table under this prefix and their name.
const LEASE_PREFIX: &str = "lease\u{1}";
/// API tokens live in the `meta` table under this prefix and their name.
const TOKEN_PREFIX: &str = "api-token\u{1}";
/// The tenant's notice stages.
const STAGES_KEY: &str = "notice-stages";
/// Console users, by name.
const CONSOLE_USER_PREFIX: &str = "console-user\u{1}";
/// Console sessions, by the SHA-256 of their cookie.
const SESSION_PREFIX: &str = "console-session\u{1}";

#[allow(private_bounds)] // `Docs` is sealed: the three backends are the crate's own.
impl<D: Docs> DocStore<D> {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn migrate(&mut self) -> R<()> {
        self.tx(|d| {
            let found: i64 = match d.get(Table::Meta, "schema_version")? {
                Some(v) => v
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("schema_version {v:?}")))?,
                None => 0,
            };
            if found > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    found,
                    known: SCHEMA_VERSION,
                });
            }
            // Forward-only steps from `found` to SCHEMA_VERSION; version 1
            // is the tables themselves, created above.
            if (1..2).contains(&found) {
                // 1 -> 2: profile documents without the engine's in-memory
                // fields (crate::schema).
                let rows: Vec<(String, String)> = d
                    .scan(Table::Profiles, "")?
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), profile_to_doc(&profile_from_doc(v)?))))
                    .collect::<R<_>>()?;
                d.put_many(Table::Profiles, &rows)?;
            }
            if (1..3).contains(&found) {
                // 2 -> 3: the pending keys of commands not yet final.
                for (_, doc) in d.scan(Table::Outbox, "")? {
                    let e: OutboxEntry = from_json(&doc)?;
                    if !matches!(e.status, CommandStatus::Acknowledged | CommandStatus::Error) {
                        d.insert_new(Table::Pending, &pending_key(&e), &e.command_uuid)?;
                    }
                }
            }
            if (1..4).contains(&found) {
                // 3 -> 4: planned commands wait for a dispatch.
                for (_, doc) in d.scan(Table::Outbox, "")? {
                    let e: OutboxEntry = from_json(&doc)?;
                    if e.status == CommandStatus::Planned {
                        d.put(
                            Table::Undispatched,
                            &delivery::undispatched_key(&e),
                            &e.command_uuid,
                        )?;
                    }
                }
            }
            if found < SCHEMA_VERSION {
                d.put(Table::Meta, "schema_version", &SCHEMA_VERSION.to_string())?;
            }
            Ok(())
        })
    }

    /// The schema version recorded in the database.
    ///
    /// # Errors
    /// Backend failures.
    pub fn schema_version(&mut self) -> R<i64> {
        let v = self.docs.get(Table::Meta, "schema_version")?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// An assignment edit within a transaction the caller holds.
    /// Edits a profile's assignments; `diff` also computes the devices
    /// gaining and losing it (two loads and plans of the tenant), else
    /// they are left empty.
    fn edit_assignments_in(
        d: &mut D,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        at: DateTime<Utc>,
        actor: &Actor,
        diff: bool,
    ) -> R<AssignmentChange> {
        {
            let (_, rec) = Self::require_profile(d, profile_uuid, "edit_assignments")?;
            let prefix = format!("{}\u{1}", ukey(&rec.uuid));
            let stored: Vec<AssignmentRecord> = d
                .scan(Table::Assignments, &prefix)?
                .iter()
                .map(|(_, v)| from_json(v))
                .collect::<R<_>>()?;
            let side = |inc: bool| -> Vec<TargetName> {
                stored
                    .iter()
                    .filter(|a| a.include == inc)
                    .map(|a| a.target.clone())
                    .collect()
            };
            let (include_before, exclude_before) = (side(true), side(false));
            let (mut include, mut exclude) = (include_before.clone(), exclude_before.clone());
            match edit {
                AssignmentEdit::Add {
                    include: i,
                    exclude: e,
                } => {
                    if i.is_empty() && e.is_empty() {
                        return Err(StoreError::Invalid(
                            "name a target to add (a group, all-users or all-devices)".into(),
                        ));
                    }
                    for (list, new) in [(&mut include, i), (&mut exclude, e)] {
                        for t in new {
                            if !list.contains(t) {
                                list.push(t.clone());
                            }
                        }
                    }
                }
                AssignmentEdit::Remove {
                    include: i,
                    exclude: e,
                } => {
                    if i.is_empty() && e.is_empty() {
                        return Err(StoreError::Invalid("name a target to remove".into()));
                    }
                    for (list, gone, how) in
                        [(&mut include, i, "included"), (&mut exclude, e, "excluded")]
                    {
                        for t in gone {
                            let Some(pos) = list.iter().position(|x| x == t) else {
                                return Err(StoreError::Invalid(format!(
                                    "{t} is not {how} in the assignments of {}",
                                    rec.uuid
                                )));
                            };
                            list.remove(pos);
                        }
                    }
                }
                AssignmentEdit::Replace {
                    include: i,
                    exclude: e,
                } => {
                    include.clone_from(i);
                    exclude.clone_from(e);
                }
                AssignmentEdit::ReplaceFrom {
                    was_include,
                    was_exclude,
                    include: i,
                    exclude: e,
                } => {
                    let same = |a: &[TargetName], b: &[TargetName]| {
                        a.iter().all(|t| b.contains(t)) && b.iter().all(|t| a.contains(t))
                    };
                    if !same(&include_before, was_include) || !same(&exclude_before, was_exclude) {
                        let names = |v: &[TargetName]| {
                            let v: Vec<String> = v.iter().map(ToString::to_string).collect();
                            if v.is_empty() {
                                "nothing".to_owned()
                            } else {
                                v.join(", ")
                            }
                        };
                        return Err(StoreError::Conflict(format!(
                            "the assignments of {} changed since they were read: they now include {} and exclude {}; read them again and redo the edit",
                            rec.uuid,
                            names(&include_before),
                            names(&exclude_before)
                        )));
                    }
                    include.clone_from(i);
                    exclude.clone_from(e);
                }
            }
            let mut uuids = UuidTable::default();
            let mut desired = |d: &mut D| -> R<std::collections::BTreeSet<String>> {
                if !diff {
                    return Ok(std::collections::BTreeSet::new());
                }
                let all = Self::desired_by_device(&Self::load_docs(d)?, at, &mut uuids);
                let hit = uuids.matching(&rec.uuid);
                Ok(all
                    .into_iter()
                    .filter(|(_, set)| set.iter().any(|u| hit.contains(u)))
                    .map(|(udid, _)| udid)
                    .collect())
            };
            let before = desired(d)?;
            Self::set_assignments_in(d, &rec.uuid, &include, &exclude, actor)?;
            let after = desired(d)?;
            Ok(AssignmentChange {
                profile_uuid: rec.uuid.clone(),
                include_before,
                exclude_before,
                include_after: include,
                exclude_after: exclude,
                devices_gaining: after.difference(&before).cloned().collect(),
                devices_losing: before.difference(&after).cloned().collect(),
            })
        }
    }

    /// A plan's commands and stages in one transaction; `seen`, when given,
    /// is the change the plan was made at (rechecked against the devices'
    /// reports when the tenant changed since).
    fn queue_plan(
        &mut self,
        entries: &[OutboxEntry],
        stages: &[(String, i64)],
        at: DateTime<Utc>,
        seen: Option<Option<&str>>,
    ) -> R<(usize, usize)> {
        root_only(&self.docs, "the outbox")?;
        self.tx(|d| {
            let commands = Self::queue_many(d, entries, seen)?;
            let mut logged = 0;
            for (uuid, stage) in stages {
                let key = format!("{}\u{1}{stage}", ukey(uuid));
                logged += usize::from(d.insert_new(Table::Notifications, &key, &to_json(&at))?);
            }
            Ok((commands, logged))
        })
    }

    /// An assignment edit in a transaction that is rolled back: nothing is
    /// written or audited.
    fn rolled_back_edit(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        at: DateTime<Utc>,
        diff: bool,
    ) -> R<AssignmentChange> {
        let actor = Actor {
            name: "preview".into(),
            at,
        };
        self.docs.begin()?;
        let change =
            Self::edit_assignments_in(&mut self.docs, profile_uuid, edit, at, &actor, diff);
        self.docs.rollback();
        change
    }

    fn tx<T>(&mut self, f: impl FnOnce(&mut D) -> R<T>) -> R<T> {
        self.docs.begin()?;
        match f(&mut self.docs) {
            Ok(v) => {
                self.docs.commit()?;
                Ok(v)
            }
            Err(e) => {
                self.docs.rollback();
                Err(e)
            }
        }
    }

    fn audit(
        d: &mut D,
        actor: &Actor,
        action: &str,
        object: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> R<()> {
        let seq = AUDIT_SEQ.fetch_add(1, Ordering::Relaxed);
        // Keys follow the order changes are made in, not the instants the
        // callers give (an answer batch stamped before a change that
        // committed first): a change is stamped at least just after the
        // last one stored, so a reader that saw one key finds every later
        // change after it. PostgreSQL, whose writers run side by side,
        // orders them again as they commit.
        let after_last = d
            .last_key(Table::Audit)?
            .as_deref()
            .and_then(crate::conn::audit_stamp)
            .map_or(i64::MIN, |s| s.saturating_add(1));
        let key = format!(
            "{:020}-{:010}-{seq:012}",
            actor
                .at
                .timestamp_nanos_opt()
                .unwrap_or_default()
                .max(after_last),
            std::process::id()
        );
        let entry = AuditEntry {
            at: actor.at,
            actor: actor.name.clone(),
            action: action.into(),
            object: object.into(),
            before,
            after,
            org_group: (d.scope() != crate::org::ROOT).then(|| d.scope().to_owned()),
        };
        d.put(Table::Audit, &key, &to_json(&entry))
    }

    fn prepare_profile(bytes: &[u8]) -> R<(provkit_policy::ProfileFacts, String)> {
        let parsed = provkit_profile::ProvisioningProfile::from_der(bytes)?;
        let facts = provkit_policy::ProfileFacts::from_profile(parsed.profile());
        Ok((facts, hex(&sha2::Sha256::digest(bytes))))
    }

    fn add_profile_in(
        d: &mut D,
        bytes: &[u8],
        (facts, sha256): (provkit_policy::ProfileFacts, String),
        label: &ProfileLabel,
        actor: &Actor,
    ) -> R<ProfileRecord> {
        let versions = d.scan(Table::Profiles, &format!("{}/", ukey(&facts.uuid)))?;
        let mut newest: Option<ProfileRecord> = None;
        for (_, v) in &versions {
            let rec = profile_from_doc(v)?;
            if !visible(d, rec.org_group.as_ref()) {
                return Err(taken("profile", &rec.uuid));
            }
            if rec.sha256 == sha256 {
                // The same bytes again: a label given anew relabels it.
                if label.is_empty() || *label == rec.label {
                    return Ok(rec);
                }
                return Self::label_version_in(d, rec, label, actor);
            }
            if newest.as_ref().is_none_or(|n| n.version < rec.version) {
                newest = Some(rec);
            }
        }
        // A new version stays where the profile is, and keeps its label
        // unless one is given; a new profile lands in the scope.
        let (last, group, label) = match newest {
            Some(n) if label.is_empty() => (n.version, n.org_group, n.label),
            Some(n) => (n.version, n.org_group, label.clone()),
            None => (0, place(d, None)?, label.clone()),
        };
        let (key, rec) = new_version(facts, last + 1, sha256, group, label, actor);
        d.put(Table::Profiles, &key, &profile_to_doc(&rec))?;
        d.put_bytes(&key, bytes)?;
        let mut after = serde_json::json!({"version": rec.version, "sha256": rec.sha256});
        if !rec.label.is_empty() {
            after["label"] = serde_json::json!(rec.label);
        }
        Self::audit(d, actor, "add-profile", &rec.uuid, None, Some(after))?;
        Ok(rec)
    }

    /// Rewrites one version's label; audited with before and after.
    fn label_version_in(
        d: &mut D,
        mut rec: ProfileRecord,
        label: &ProfileLabel,
        actor: &Actor,
    ) -> R<ProfileRecord> {
        let before = serde_json::json!(rec.label);
        rec.label = label.clone();
        let key = format!("{}/{:010}", ukey(&rec.uuid), rec.version);
        d.put(Table::Profiles, &key, &profile_to_doc(&rec))?;
        let after = serde_json::json!(rec.label);
        Self::audit(
            d,
            actor,
            "label-profile",
            &rec.uuid,
            Some(before),
            Some(after),
        )?;
        Ok(rec)
    }

    fn add_app_in(d: &mut D, app: &AppRecord, actor: &Actor) -> R<()> {
        {
            if let Some(p) = &app.profile_uuid {
                Self::require_profile(d, p, &format!("app {}", app.bundle_id))?;
            }
            let key = app_key(&app.bundle_id, &app.version);
            let stored = d.get(Table::Apps, &key)?;
            let mut app = app.clone();
            app.org_group = match &stored {
                Some(doc) => {
                    let old: AppRecord = from_json(doc)?;
                    if !visible(d, old.org_group.as_ref()) {
                        return Err(taken("app", &format!("{} {}", app.bundle_id, app.version)));
                    }
                    old.org_group
                }
                None => place(d, app.org_group.as_ref())?,
            };
            let app = &app;
            let before = stored
                .map(|s| from_json::<serde_json::Value>(&s))
                .transpose()?;
            d.put(Table::Apps, &key, &to_json(app))?;
            Self::audit(
                d,
                actor,
                "add-app",
                &key.replace('\u{1}', " "),
                before,
                Some(serde_json::to_value(app).unwrap_or_default()),
            )
        }
    }

    fn import_inventory_in(d: &mut D, inv: &Inventory, actor: &Actor) -> R<()> {
        use std::collections::{HashMap, HashSet};
        {
            // Names the batch refers to but does not define must already be stored.
            let batch_users: HashSet<&str> = inv.users.iter().map(String::as_str).collect();
            let batch_devices: HashSet<&str> =
                inv.devices.iter().map(|x| x.udid.as_str()).collect();
            let batch_groups: HashSet<&str> = inv.groups.iter().map(|g| g.name.as_str()).collect();
            let mut stored_users: HashMap<String, bool> = HashMap::new();
            let mut stored_devices: HashMap<String, bool> = HashMap::new();
            let mut stored_groups: HashMap<String, Option<provkit_policy::GroupKind>> =
                HashMap::new();
            let device_users = inv.devices.iter().filter_map(|x| x.user.as_ref());
            let group_users = inv
                .groups
                .iter()
                .filter(|g| g.kind == provkit_policy::GroupKind::User)
                .flat_map(|g| &g.members);
            for u in device_users.chain(group_users).chain(inv.emails.keys()) {
                if !batch_users.contains(u.as_str()) && !stored_users.contains_key(u) {
                    let known = d
                        .get(Table::Users, u)?
                        .is_some_and(|g| visible(d, user_group(&g).as_ref()));
                    stored_users.insert(u.clone(), known);
                }
            }
            for m in inv
                .groups
                .iter()
                .filter(|g| g.kind == provkit_policy::GroupKind::Device)
                .flat_map(|g| &g.members)
            {
                if !batch_devices.contains(m.as_str()) && !stored_devices.contains_key(m) {
                    let known = match d.get(Table::Devices, m)? {
                        Some(doc) => {
                            visible(d, from_json::<DeviceRecord>(&doc)?.org_group.as_ref())
                        }
                        None => false,
                    };
                    stored_devices.insert(m.clone(), known);
                }
            }
            for s in inv.groups.iter().flat_map(|g| &g.subgroups) {
                if !batch_groups.contains(s.as_str()) && !stored_groups.contains_key(s) {
                    let kind = match d.get(Table::Groups, s)? {
                        Some(doc) => {
                            let g = from_json::<GroupRecord>(&doc)?;
                            visible(d, g.org_group.as_ref()).then_some(g.kind)
                        }
                        None => None,
                    };
                    stored_groups.insert(s.clone(), kind);
                }
            }
            validate_inventory(
                inv,
                &|u| stored_users.get(u).copied().unwrap_or(false),
                &|x| stored_devices.get(x).copied().unwrap_or(false),
                &|g| stored_groups.get(g).copied().flatten(),
            )?;
            // Each object lands in its organization group: a stored one
            // stays where it is (it must be visible), a new one lands in
            // the group it names within the scope, else in the scope.
            let mut users: Vec<(String, String)> = Vec::with_capacity(inv.users.len());
            for u in &inv.users {
                let group = match d.get(Table::Users, u)? {
                    Some(doc) if !visible(d, user_group(&doc).as_ref()) => {
                        return Err(taken("user", u));
                    }
                    Some(doc) => user_group(&doc),
                    None => place(d, None)?,
                };
                users.push((u.clone(), group.unwrap_or_default()));
            }
            let mut devices = inv.devices.clone();
            for x in &mut devices {
                x.org_group = place(d, x.org_group.as_ref())?;
            }
            let mut groups = inv.groups.clone();
            for g in &mut groups {
                g.org_group = place(d, g.org_group.as_ref())?;
            }
            d.put_many(Table::Users, &users)?;
            for (u, address) in &inv.emails {
                if address.is_empty() {
                    d.delete(Table::UserEmails, u)?;
                } else {
                    d.put(Table::UserEmails, u, address)?;
                }
            }
            let device_docs: Vec<(String, String)> = devices
                .iter()
                .map(|x| (x.udid.clone(), crate::json::device_record(x)))
                .collect();
            d.put_many(Table::Devices, &device_docs)?;
            d.put_many(Table::Groups, &keyed(&groups, |g| &g.name))?;
            Self::audit(
                d,
                actor,
                "import-inventory",
                "inventory",
                None,
                Some(
                    serde_json::json!({"users": inv.users.len(), "devices": inv.devices.len(), "groups": inv.groups.len()}),
                ),
            )
        }
    }

    fn set_assignments_in(
        d: &mut D,
        profile_uuid: &str,
        include: &[TargetName],
        exclude: &[TargetName],
        actor: &Actor,
    ) -> R<()> {
        {
            let (_, rec) = Self::require_profile(d, profile_uuid, "set_assignments")?;
            if let Some(g) = unknown_group(include.iter().chain(exclude), |g| {
                Ok(match d.get(Table::Groups, g)? {
                    Some(doc) => visible(d, from_json::<GroupRecord>(&doc)?.org_group.as_ref()),
                    None => false,
                })
            })? {
                return Err(StoreError::UnknownReference {
                    kind: "group",
                    name: g.to_owned(),
                    context: format!("assignment of {profile_uuid}"),
                });
            }
            let prefix = format!("{}\u{1}", ukey(&rec.uuid));
            let old = d.scan(Table::Assignments, &prefix)?;
            let before: Vec<AssignmentRecord> =
                old.iter().map(|(_, v)| from_json(v)).collect::<R<_>>()?;
            // A new assignment to everyone, made below the root, would reach
            // outside the scope (one made at the root may stay).
            let new_everyone = include.iter().chain(exclude).any(|t| {
                !matches!(t, TargetName::Group(_)) && !before.iter().any(|b| &b.target == t)
            });
            if new_everyone {
                root_only(d, "assigning to all users or all devices")?;
            }
            for (k, _) in &old {
                d.delete(Table::Assignments, k)?;
            }
            let rows = assignment_rows(&rec.uuid, include, exclude);
            let docs: Vec<(String, String)> =
                rows.iter().map(|(k, a)| (k.clone(), to_json(a))).collect();
            d.put_many(Table::Assignments, &docs)?;
            let after: Vec<AssignmentRecord> = rows.into_iter().map(|(_, a)| a).collect();
            Self::audit(
                d,
                actor,
                "set-assignments",
                &rec.uuid,
                Some(serde_json::to_value(&before).unwrap_or_default()),
                Some(serde_json::to_value(&after).unwrap_or_default()),
            )
        }
    }

    /// Puts into `data` (the tenant as loaded before `inv` was imported)
    /// the rows the import wrote, read back from the store: its users,
    /// devices and groups (an import writes nothing else the tenant holds,
    /// and deletes none of them), so the tenant after an import costs a
    /// read of what it named instead of a second load of everything.
    fn read_back_inventory(d: &mut D, data: &mut Data, inv: &Inventory) -> R<()> {
        data.users.extend(inv.users.iter().cloned());
        let udids: Vec<String> = inv.devices.iter().map(|x| x.udid.clone()).collect();
        for (k, doc) in d.get_many(Table::Devices, &udids)? {
            data.devices
                .insert(k, crate::json::read_device_record(&doc)?);
        }
        let names: Vec<String> = inv.groups.iter().map(|g| g.name.clone()).collect();
        for (k, doc) in d.get_many(Table::Groups, &names)? {
            data.groups.insert(k, from_json(&doc)?);
        }
        Ok(())
    }

    /// The batch as it will be written: stored groups and devices it names
    /// merged with it (unless replaced), with what changes.
    fn merge_in(d: &mut D, inv: &Inventory, replace: &Replace) -> R<(Inventory, InventoryChange)> {
        let mut change = InventoryChange::default();
        let mut out = inv.clone();
        for u in &inv.users {
            match d.get(Table::Users, u)? {
                None => change.users_added.push(u.clone()),
                Some(doc) if !visible(d, user_group(&doc).as_ref()) => {
                    return Err(taken("user", u));
                }
                Some(_) => {}
            }
        }
        for dev in &mut out.devices {
            let Some(doc) = d.get(Table::Devices, &dev.udid)? else {
                change.devices_added.push(dev.udid.clone());
                continue;
            };
            let stored: DeviceRecord = from_json(&doc)?;
            if !visible(d, stored.org_group.as_ref()) {
                return Err(taken("device", &dev.udid));
            }
            if dev.org_group.is_none() {
                dev.org_group.clone_from(&stored.org_group);
            }
            if !matches!(replace, Replace::Batch) {
                if dev.enrollment_id.is_none() {
                    dev.enrollment_id.clone_from(&stored.enrollment_id);
                }
                dev.user = dev.user.take().or_else(|| stored.user.clone());
                for a in &stored.apps {
                    if !dev.apps.contains(a) {
                        dev.apps.push(a.clone());
                    }
                }
                if dev.reported.is_empty() {
                    dev.reported.clone_from(&stored.reported);
                }
            }
            if *dev != stored {
                change.devices_updated.push(dev.udid.clone());
            }
        }
        for g in &mut out.groups {
            let stored: Option<GroupRecord> = match d.get(Table::Groups, &g.name)? {
                Some(doc) => Some(from_json(&doc)?),
                None => None,
            };
            let mut c = GroupChange {
                name: g.name.clone(),
                created: stored.is_none(),
                ..GroupChange::default()
            };
            if let Some(stored) = stored {
                if !visible(d, stored.org_group.as_ref()) {
                    return Err(taken("group", &g.name));
                }
                if g.org_group.is_none() {
                    g.org_group.clone_from(&stored.org_group);
                }
                if stored.kind != g.kind {
                    return Err(StoreError::Invalid(format!(
                        "group {:?} is a {} group; the batch defines it as a {} group",
                        g.name,
                        crate::records::kind_word(stored.kind),
                        crate::records::kind_word(g.kind)
                    )));
                }
                let replaced = match replace {
                    Replace::Nothing => false,
                    Replace::Batch => true,
                    Replace::Groups(names) => names.contains(&g.name),
                };
                let merge =
                    |stored: &[String], batch: &mut Vec<String>| -> (Vec<String>, Vec<String>) {
                        let added: Vec<String> = batch
                            .iter()
                            .filter(|m| !stored.contains(m))
                            .cloned()
                            .collect();
                        let removed: Vec<String> = if replaced {
                            stored
                                .iter()
                                .filter(|m| !batch.contains(m))
                                .cloned()
                                .collect()
                        } else {
                            let mut all = stored.to_vec();
                            all.extend(added.iter().cloned());
                            *batch = all;
                            Vec::new()
                        };
                        (added, removed)
                    };
                (c.members_added, c.members_removed) = merge(&stored.members, &mut g.members);
                (c.subgroups_added, c.subgroups_removed) =
                    merge(&stored.subgroups, &mut g.subgroups);
            } else {
                c.members_added.clone_from(&g.members);
                c.subgroups_added.clone_from(&g.subgroups);
            }
            let changed = c.created
                || !c.members_added.is_empty()
                || !c.members_removed.is_empty()
                || !c.subgroups_added.is_empty()
                || !c.subgroups_removed.is_empty();
            if changed {
                change.groups.push(c);
            }
        }
        Ok((out, change))
    }

    /// Each device's desired profile UUIDs at `at`, by UDID.
    /// Each device's desired profiles at `at`, as sorted numbers from
    /// `uuids`, in the tenant's device order.
    fn desired_by_device(data: &Data, at: DateTime<Utc>, uuids: &mut UuidTable) -> Desired {
        let engine = provkit_policy::Engine::new(data.to_tenant(), at);
        let t = engine.tenant();
        let ids: Vec<u32> = t.profiles.iter().map(|p| uuids.id(&p.uuid)).collect();
        t.devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let id = provkit_policy::DeviceId(u32::try_from(i).unwrap_or(u32::MAX));
                let mut set: Vec<u32> = engine.desired(id).iter().map(|p| ids[p.index()]).collect();
                set.sort_unstable();
                set.dedup();
                (d.udid.as_str().to_owned(), set)
            })
            .collect()
    }

    /// Queues commands, each unless it is in the outbox already or the
    /// same command (device, request, profile) is still pending under
    /// another UUID (an earlier plan's, or an earlier one of `entries`): a
    /// re-plan at another instant then queues nothing twice. With `seen`
    /// (a plan made at that change, [`Store::enqueue_plan_since`]) and the
    /// tenant changed since, an install or removal its device's report has
    /// settled meanwhile is left out. A bounded chunk at a time inside the
    /// caller's transaction: a first plan of a large tenant queues millions
    /// of commands, and the keys, sets and documents made for them at once
    /// outweighed the plan itself. A later chunk sees what an earlier one
    /// wrote, so duplicates across chunks are skipped as within one. A few
    /// statements a chunk. Returns how many were queued.
    fn queue_many(d: &mut D, entries: &[OutboxEntry], seen: Option<Option<&str>>) -> R<usize> {
        const CHUNK: usize = 65_536;
        let mut queued = 0;
        let mut recheck = false;
        for chunk in entries.chunks(CHUNK) {
            queued += Self::queue_chunk(d, chunk, seen, &mut recheck)?;
        }
        Ok(queued)
    }

    /// Queues each command not already stored (by CommandUUID), nor pending
    /// for the same device, request and profile, nor waiting out its
    /// backoff after failing ([`delivery::retry_wait`]); when the tenant
    /// changed since `seen` (`recheck` set, and kept for later chunks),
    /// leaves out what the devices' reports settle. Returns how many were
    /// queued.
    fn queue_chunk(
        d: &mut D,
        entries: &[OutboxEntry],
        seen: Option<Option<&str>>,
        recheck: &mut bool,
    ) -> R<usize> {
        // The pending commands first (locked on PostgreSQL, whose
        // statements each see what committed before them), the last change
        // after: an answer that took a command out of pending committed
        // before this read, so its change is seen next and the reports are
        // checked. Read the other way round, an answer committing between
        // the two reads left its install unchecked and no longer pending,
        // and it was sent again.
        let keys: Vec<String> = entries.iter().map(pending_key).collect();
        let pending = d.get_many(Table::Pending, &keys)?;
        if let Some(seen) = seen
            && !*recheck
        {
            *recheck = d.last_key(Table::Audit)?.as_deref() != seen;
        }
        let settled = if *recheck {
            Self::settled_by_reports(d, entries)?
        } else {
            std::collections::HashSet::new()
        };
        let waiting_out = delivery::held_back(d, entries)?;
        let uuids: Vec<String> = entries.iter().map(|e| e.command_uuid.clone()).collect();
        let stored = d.get_many(Table::Outbox, &uuids)?;
        let (mut seen_uuid, mut seen_key) = (
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
        );
        let (mut rows, mut held, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        let mut sent: Vec<&OutboxEntry> = Vec::new();
        for (e, key) in entries.iter().zip(keys) {
            if stored.contains_key(&e.command_uuid)
                || settled.contains(&e.command_uuid)
                || waiting_out.contains(&e.command_uuid)
                || !seen_uuid.insert(e.command_uuid.clone())
            {
                continue;
            }
            let final_state =
                matches!(e.status, CommandStatus::Acknowledged | CommandStatus::Error);
            if !final_state {
                if pending.contains_key(&key) || !seen_key.insert(key.clone()) {
                    continue;
                }
                held.push((key, e.command_uuid.clone()));
                waiting.push((delivery::undispatched_key(e), e.command_uuid.clone()));
            }
            rows.push((e.command_uuid.clone(), crate::json::outbox_entry(e)));
            if e.status == CommandStatus::Sent {
                sent.push(e);
            }
        }
        d.put_many(Table::Pending, &held)?;
        d.put_many(Table::Undispatched, &waiting)?;
        d.put_many(Table::Outbox, &rows)?;
        delivery::note_sent(d, sent)?;
        Ok(rows.len())
    }

    /// The command UUIDs among `entries` that their device's current report
    /// makes needless: an install of a profile it holds, a removal of one
    /// it does not hold managed (the planner's own rule).
    fn settled_by_reports(
        d: &mut D,
        entries: &[OutboxEntry],
    ) -> R<std::collections::HashSet<String>> {
        let mut udids: Vec<String> = entries.iter().map(|e| e.udid.clone()).collect();
        udids.sort();
        udids.dedup();
        let mut devices = std::collections::HashMap::new();
        for (k, doc) in d.get_many(Table::Devices, &udids)? {
            devices.insert(k, crate::json::read_device_record(&doc)?);
        }
        let mut out = std::collections::HashSet::new();
        for e in entries {
            let Some(dev) = devices.get(&e.udid) else {
                continue;
            };
            let holds = |managed_only: bool| {
                dev.reported.iter().any(|r| {
                    r.uuid.eq_ignore_ascii_case(&e.profile_uuid) && (r.managed || !managed_only)
                })
            };
            let needless = match e.request_type.as_str() {
                "InstallProvisioningProfile" => holds(false),
                "RemoveProvisioningProfile" => !holds(true),
                _ => false,
            };
            if needless {
                out.insert(e.command_uuid.clone());
            }
        }
        Ok(out)
    }

    /// [`Store::acknowledge_commands`] inside a transaction. Every pending
    /// command is taken [`ACK_CHUNK`] pending keys at a time, in key order
    /// (so by device), each chunk read, settled and written before the
    /// next is read: what is held stays the same at any queue size, and
    /// the rows and devices a chunk touches are neighbours.
    fn acknowledge_in(
        d: &mut D,
        which: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> R<crate::Acknowledgement> {
        use std::collections::HashSet;
        let mut done = AckProgress::default();
        if let Some(ids) = which {
            // The commands' keys as asked (an exact key first, then its
            // upper-case form); an unknown one and nothing is written.
            let mut docs = d.get_many_at(Table::Outbox, ids)?;
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| !docs.contains_key(*id))
                .map(|id| ukey(id))
                .collect();
            docs.extend(d.get_many_at(Table::Outbox, &missing)?);
            let (mut keys, mut unknown, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
            for id in ids {
                let key = if docs.contains_key(id) {
                    id.clone()
                } else if docs.contains_key(&ukey(id)) {
                    ukey(id)
                } else {
                    unknown.push(id.clone());
                    continue;
                };
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
            }
            if !unknown.is_empty() {
                return Ok(crate::Acknowledgement {
                    unknown,
                    ..Default::default()
                });
            }
            Self::acknowledge_keys(d, &keys, &docs, at, &mut done, false)?;
        } else {
            let end = crate::conn::prefix_end("");
            let mut last: Option<String> = None;
            loop {
                // From the last key handled (kept when its command was not
                // pending), so each round moves on by at least one key.
                let rows = d.range(
                    Table::Pending,
                    last.as_deref().unwrap_or(""),
                    &end,
                    ACK_CHUNK,
                )?;
                let Some((tail, _)) = rows.last() else { break };
                let tail = tail.clone();
                let mut keys: Vec<String> = rows
                    .into_iter()
                    .filter(|(k, _)| last.as_ref() != Some(k))
                    .map(|(_, id)| id)
                    .collect();
                if keys.is_empty() {
                    break;
                }
                let mut seen = HashSet::new();
                keys.retain(|id| seen.insert(id.clone()));
                let docs = d.get_many_at(Table::Outbox, &keys)?;
                Self::acknowledge_keys(d, &keys, &docs, at, &mut done, true)?;
                last = Some(tail);
            }
        }
        Ok(crate::Acknowledgement {
            commands: done.commands,
            devices: done.devices.len(),
            unknown: Vec::new(),
        })
    }

    /// Acknowledges the commands among `keys` (their rows in `docs`) that
    /// are still pending: each row marked acknowledged, its pending keys
    /// settled, and its device's reported profiles updated. `runs`: the
    /// commands are every pending one of a stretch of devices, so their
    /// keys lie close together in each index ([`Self::settle_all_runs`]).
    fn acknowledge_keys(
        d: &mut D,
        keys: &[String],
        docs: &std::collections::HashMap<String, (Option<i64>, String)>,
        at: DateTime<Utc>,
        done: &mut AckProgress,
        runs: bool,
    ) -> R<()> {
        use std::collections::{HashMap, HashSet};
        let mut entries = Vec::with_capacity(keys.len());
        for k in keys {
            let Some((row, doc)) = docs.get(k) else {
                continue;
            };
            let e = crate::json::read_outbox_entry(doc)?;
            if matches!(
                e.status,
                CommandStatus::Planned | CommandStatus::Sent | CommandStatus::NotNow
            ) {
                entries.push((*row, e));
            }
        }
        // Devices in key order: neighbours on disk are read and written
        // together (in hash order, a large batch touched its pages at
        // random, 38 µs a command instead of 26 for a million).
        let mut udids: Vec<String> = entries.iter().map(|(_, e)| e.udid.clone()).collect();
        udids.sort_unstable();
        udids.dedup();
        let mut devices: HashMap<String, (Option<i64>, crate::records::DeviceRecord)> =
            HashMap::with_capacity(udids.len());
        for (udid, (row, doc)) in d.get_many_at(Table::Devices, &udids)? {
            devices.insert(udid, (row, crate::json::read_device_record(&doc)?));
        }
        let mut changed = HashSet::with_capacity(udids.len());
        let mut rows = Vec::with_capacity(entries.len());
        let mut acked = Vec::with_capacity(entries.len());
        for (row, mut e) in entries {
            let Some((_, dev)) = devices.get_mut(&e.udid) else {
                continue;
            };
            let uuid = ukey(&e.profile_uuid);
            let held = match done.expiry.get(&uuid) {
                Some(found) => found.clone(),
                None => {
                    let found = Self::latest_profile(d, &uuid)?
                        .map(|(_, rec)| (rec.facts.uuid, rec.facts.expires));
                    done.expiry.insert(uuid, found.clone());
                    found
                }
            };
            delivery::hold_after_ack(&mut dev.reported, &e, held);
            changed.insert(e.udid.clone());
            e.status = CommandStatus::Acknowledged;
            e.error_chain = None;
            e.updated_at = at;
            rows.push((row, e.command_uuid.clone(), crate::json::outbox_entry(&e)));
            acked.push(e);
        }
        Self::settle_all_runs(d, &acked, runs)?;
        done.commands += rows.len();
        d.put_many_at(Table::Outbox, rows)?;
        let device_rows: Vec<(Option<i64>, String, String)> = udids
            .into_iter()
            .filter(|u| changed.contains(u))
            .filter_map(|u| {
                let (row, dev) = devices.get(&u)?;
                Some((*row, u, crate::json::device_record(dev)))
            })
            .collect();
        d.put_many_at(Table::Devices, device_rows)?;
        // Only devices that were read are marked changed.
        done.devices.extend(changed);
        Ok(())
    }

    /// Records what a row's new status means beyond the row: an error
    /// counts toward its backoff, a send enters the sent index, and a
    /// final state (acknowledged, or an error) stops holding its pending
    /// and undispatched keys.
    fn settle_in(d: &mut D, e: &OutboxEntry) -> R<()> {
        Self::settle_all(d, std::slice::from_ref(e))
    }

    /// [`Self::settle_in`] for many rows, each table written in one batch.
    fn settle_all(d: &mut D, rows: &[OutboxEntry]) -> R<()> {
        Self::settle_all_runs(d, rows, false)
    }

    /// [`Self::settle_all`]; with `runs`, the rows are every pending command
    /// of a stretch of devices, so their pending keys are one run of that
    /// index and their undispatched keys one run per request and profile,
    /// each deleted by [`Docs::delete_run_if`] (the same result, fewer
    /// searches).
    fn settle_all_runs(d: &mut D, rows: &[OutboxEntry], runs: bool) -> R<()> {
        delivery::note_failures(d, rows)?;
        delivery::note_sent(d, rows)?;
        let settled = || {
            rows.iter()
                .filter(|e| matches!(e.status, CommandStatus::Acknowledged | CommandStatus::Error))
        };
        let pending: Vec<(String, &str)> = settled()
            .map(|e| (pending_key(e), e.command_uuid.as_str()))
            .collect();
        let mut undispatched: Vec<(String, &str)> = settled()
            .map(|e| (delivery::undispatched_key(e), e.command_uuid.as_str()))
            .collect();
        if !runs {
            d.delete_many_if(Table::Pending, &pending)?;
            return d.delete_many_if(Table::Undispatched, &undispatched);
        }
        d.delete_run_if(Table::Pending, &pending)?;
        // Undispatched keys lead with the request and profile: sorted, one
        // run each.
        undispatched.sort_unstable();
        fn group(k: &str) -> Option<&str> {
            k.rsplit_once('\u{1}').map(|(g, _)| g)
        }
        for run in undispatched.chunk_by(|a, b| group(&a.0) == group(&b.0)) {
            d.delete_run_if(Table::Undispatched, run)?;
        }
        Ok(())
    }

    /// The whole tenant as one snapshot: the tables are read in one read
    /// transaction, so a plan never sees half of a change (a renewal's
    /// assignments moved to a successor its profile scan did not see would
    /// make every device drop the profile).
    fn load(&mut self) -> R<Data> {
        self.docs.begin_read()?;
        let data = Self::load_docs(&mut self.docs);
        self.docs.end_read();
        data
    }

    /// Every version of every profile, by UUID (upper case), oldest first.
    fn profile_versions_all(d: &mut D) -> R<BTreeMap<String, Vec<ProfileRecord>>> {
        use rayon::prelude::*;
        let rows = d.scan(Table::Profiles, "")?;
        let profiles: Vec<ProfileRecord> = rows
            .par_iter()
            .with_min_len(1024)
            .map(|(_, v)| profile_from_doc(v))
            .collect::<R<_>>()?;
        let mut out: BTreeMap<String, Vec<ProfileRecord>> = BTreeMap::new();
        for rec in profiles {
            out.entry(ukey(&rec.uuid)).or_default().push(rec);
        }
        Ok(out)
    }

    fn load_docs(d: &mut D) -> R<Data> {
        use rayon::prelude::*;
        /// Decodes documents on both cores, each with `read`.
        fn decode<T: Send>(
            rows: &[(String, String)],
            read: impl Fn(&str) -> R<T> + Sync,
        ) -> R<Vec<T>> {
            rows.par_iter()
                .with_min_len(1024)
                .map(|(_, v)| read(v))
                .collect()
        }
        let mut data = Data {
            profiles: Self::profile_versions_all(d)?,
            ..Data::default()
        };
        data.apps = decode(&d.scan(Table::Apps, "")?, from_json::<AppRecord>)?
            .into_iter()
            .map(|a| ((a.bundle_id.clone(), a.version.clone()), a))
            .collect();
        data.users = d
            .scan(Table::Users, "")?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // Rows come ordered by key, so the maps are built in one pass.
        let rows = d.scan(Table::Devices, "")?;
        let devices = decode(&rows, crate::json::read_device_record)?;
        data.devices = rows.into_iter().map(|(k, _)| k).zip(devices).collect();
        let rows = d.scan(Table::Groups, "")?;
        let groups = decode(&rows, from_json::<GroupRecord>)?;
        data.groups = rows.into_iter().map(|(k, _)| k).zip(groups).collect();
        data.assignments = decode(
            &d.scan(Table::Assignments, "")?,
            from_json::<AssignmentRecord>,
        )?
        .into_iter()
        .collect();
        data.config = d
            .get(Table::Meta, STAGES_KEY)?
            .map(|v| from_json(&v))
            .transpose()?;
        if d.scope() != crate::org::ROOT {
            Self::narrow(d, &mut data)?;
        }
        Ok(data)
    }

    /// What the connection's scope sees of `data`: its profiles (and their
    /// assignments), apps, users, devices and groups. References to what
    /// lies outside (a device's user, a group member) drop out when the
    /// engine's snapshot is built.
    fn narrow(d: &mut D, data: &mut Data) -> R<()> {
        data.profiles.retain(|_, versions| {
            versions
                .last()
                .is_some_and(|p| visible(d, p.org_group.as_ref()))
        });
        data.apps.retain(|_, a| visible(d, a.org_group.as_ref()));
        let users: BTreeMap<String, String> = d.scan(Table::Users, "")?.into_iter().collect();
        data.users.retain(|u| {
            users
                .get(u)
                .is_some_and(|g| visible(d, user_group(g).as_ref()))
        });
        data.devices.retain(|_, x| visible(d, x.org_group.as_ref()));
        data.groups.retain(|_, g| visible(d, g.org_group.as_ref()));
        let profiles = &data.profiles;
        data.assignments
            .retain(|a| profiles.contains_key(&ukey(&a.profile_uuid)));
        Ok(())
    }

    fn scan_docs<T: DeserializeOwned>(&mut self, table: Table, prefix: &str) -> R<Vec<T>> {
        self.docs
            .scan(table, prefix)?
            .iter()
            .map(|(_, v)| from_json(v))
            .collect()
    }

    /// The latest version of a profile visible from the scope.
    fn latest_profile(d: &mut D, uuid: &str) -> R<Option<(String, ProfileRecord)>> {
        let versions = d.scan(Table::Profiles, &format!("{}/", ukey(uuid)))?;
        match versions.last() {
            Some((k, v)) => {
                let rec = profile_from_doc(v)?;
                Ok(visible(d, rec.org_group.as_ref()).then(|| (k.clone(), rec)))
            }
            None => Ok(None),
        }
    }

    /// The stored record `key` of `table`, or an unknown-reference error
    /// naming it as a `kind`.
    fn require<T: DeserializeOwned>(
        d: &mut D,
        table: Table,
        key: &str,
        kind: &'static str,
        context: &str,
    ) -> R<T> {
        let doc = d
            .get(table, key)?
            .ok_or_else(|| StoreError::UnknownReference {
                kind,
                name: key.to_owned(),
                context: context.to_owned(),
            })?;
        from_json(&doc)
    }

    fn require_profile(d: &mut D, uuid: &str, context: &str) -> R<(String, ProfileRecord)> {
        Self::latest_profile(d, uuid)?.ok_or_else(|| StoreError::UnknownReference {
            kind: "profile",
            name: uuid.to_owned(),
            context: context.to_owned(),
        })
    }
}

#[allow(private_bounds)]
impl<D: Docs> Store for DocStore<D> {
    fn add_labeled_profile(
        &mut self,
        bytes: &[u8],
        label: &ProfileLabel,
        untrusted: Option<&[String]>,
        actor: &Actor,
    ) -> R<ProfileRecord> {
        let label = label.validate()?;
        let prepared = Self::prepare_profile(bytes)?;
        self.tx(|d| {
            let rec = Self::add_profile_in(d, bytes, prepared, &label, actor)?;
            let Some(findings) = untrusted else {
                return Ok(rec);
            };
            Self::audit(
                d,
                actor,
                "allow-untrusted",
                &rec.uuid,
                None,
                Some(serde_json::json!({"version": rec.version, "findings": findings})),
            )?;
            Ok(rec)
        })
    }

    fn label_profile(
        &mut self,
        uuid: &str,
        label: &ProfileLabel,
        actor: &Actor,
    ) -> R<ProfileRecord> {
        let label = label.validate()?;
        self.tx(|d| {
            let mut newest: Option<ProfileRecord> = None;
            for (_, v) in d.scan(Table::Profiles, &format!("{}/", ukey(uuid)))? {
                let rec = profile_from_doc(&v)?;
                if visible(d, rec.org_group.as_ref())
                    && newest.as_ref().is_none_or(|n| n.version < rec.version)
                {
                    newest = Some(rec);
                }
            }
            let rec = newest.ok_or_else(|| hidden("profile", uuid, "label"))?;
            if rec.label == label {
                return Ok(rec);
            }
            Self::label_version_in(d, rec, &label, actor)
        })
    }

    fn add_trust_anchor(&mut self, der: &[u8], actor: &Actor) -> R<TrustAnchorRecord> {
        root_only(&self.docs, "trust anchors")?;
        let cert = provkit_profile::Certificate::from_der(der)
            .map_err(|e| StoreError::Invalid(format!("not a certificate: {e}")))?;
        let sha256 = hex(&cert.sha256_fingerprint());
        let key = format!("{TRUST_PREFIX}{sha256}");
        self.tx(|d| {
            if let Some(doc) = d.get(Table::Meta, &key)? {
                return from_json(&doc);
            }
            let rec = TrustAnchorRecord {
                sha256: sha256.clone(),
                subject: cert.subject_cn().map(str::to_owned),
                not_after: cert.not_after(),
                der: der.to_vec(),
                added_by: actor.name.clone(),
                added_at: actor.at,
            };
            d.put(Table::Meta, &key, &to_json(&rec))?;
            Self::audit(
                d,
                actor,
                "trust-add",
                &sha256,
                None,
                Some(serde_json::json!({"subject": rec.subject, "not_after": rec.not_after})),
            )?;
            Ok(rec)
        })
    }

    fn trust_anchors(&mut self) -> R<Vec<TrustAnchorRecord>> {
        self.scan_docs(Table::Meta, TRUST_PREFIX)
    }

    fn remove_trust_anchor(&mut self, sha256: &str, actor: &Actor) -> R<TrustAnchorRecord> {
        root_only(&self.docs, "trust anchors")?;
        let want = sha256.to_ascii_lowercase();
        self.tx(|d| {
            let rows = if want.len() >= 8 {
                d.scan(Table::Meta, &format!("{TRUST_PREFIX}{want}"))?
            } else {
                Vec::new()
            };
            let [(key, doc)] = rows.as_slice() else {
                return Err(StoreError::UnknownReference {
                    kind: "trust anchor",
                    name: sha256.to_owned(),
                    context: if rows.is_empty() {
                        "trust remove (give the SHA-256 or a unique prefix of 8 or more digits)"
                            .into()
                    } else {
                        format!("trust remove: {} anchors match", rows.len())
                    },
                });
            };
            let rec: TrustAnchorRecord = from_json(doc)?;
            d.delete(Table::Meta, key)?;
            Self::audit(
                d,
                actor,
                "trust-remove",
                &rec.sha256,
                Some(serde_json::json!({"subject": rec.subject})),
                None,
            )?;
            Ok(rec)
        })
    }

    fn set_scope(&mut self, org_group: &str) {
        self.docs.set_scope(org_group);
    }

    fn scope(&self) -> &str {
        self.docs.scope()
    }

    fn add_org_group(&mut self, path: &str, actor: &Actor) -> R<Vec<String>> {
        crate::org::validate(path)?;
        self.tx(|d| {
            if !crate::org::within(d.scope(), path) {
                return Err(StoreError::Invalid(format!(
                    "organization group {path:?} lies outside {:?}",
                    d.scope()
                )));
            }
            let mut created = Vec::new();
            let mut prefix = String::new();
            for name in path.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(name);
                if prefix == crate::org::ROOT {
                    continue;
                }
                let rec = OrgGroupRecord {
                    path: prefix.clone(),
                    created_by: actor.name.clone(),
                    created_at: actor.at,
                };
                if d.insert_new(
                    Table::Meta,
                    &format!("{ORG_PREFIX}{prefix}"),
                    &to_json(&rec),
                )? {
                    created.push(prefix.clone());
                }
            }
            for p in &created {
                Self::audit(d, actor, "org-group-create", p, None, None)?;
            }
            Ok(created)
        })
    }

    fn org_groups(&mut self) -> R<Vec<OrgGroupRecord>> {
        let scope = self.docs.scope().to_owned();
        let mut all: Vec<OrgGroupRecord> = self.scan_docs(Table::Meta, ORG_PREFIX)?;
        all.retain(|g| crate::org::within(&scope, &g.path));
        if !all.iter().any(|g| g.path == scope) {
            all.insert(
                0,
                OrgGroupRecord {
                    path: scope.clone(),
                    created_by: String::new(),
                    created_at: DateTime::UNIX_EPOCH,
                },
            );
        }
        all.sort_by(|a, b| (a.path != scope, &a.path).cmp(&(b.path != scope, &b.path)));
        Ok(all)
    }

    fn lease(
        &mut self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> R<LeaseRecord> {
        let key = format!("{LEASE_PREFIX}{name}");
        let mine = LeaseRecord {
            holder: holder.to_owned(),
            until,
        };
        self.tx(|d| {
            // A first lease: of two racing inserts one lands, the other
            // reads the winner's row below (locked for the rest of the
            // transaction on PostgreSQL, the whole file on SQLite).
            if d.insert_new(Table::Meta, &key, &to_json(&mine))? {
                return Ok(mine);
            }
            let doc = d
                .get(Table::Meta, &key)?
                .ok_or_else(|| StoreError::Corrupt(format!("lease {name} vanished")))?;
            let current: LeaseRecord = from_json(&doc)?;
            if current.holder == holder || current.until <= now {
                d.put(Table::Meta, &key, &to_json(&mine))?;
                Ok(mine)
            } else {
                Ok(current)
            }
        })
    }

    fn last_change(&mut self) -> R<Option<String>> {
        self.docs.last_key(Table::Audit)
    }

    fn changes_since(&mut self, change: Option<&str>, limit: usize) -> R<Option<Vec<AuditEntry>>> {
        // Audit keys are digits and dashes: '~' sorts after every one. At
        // most the row of `change` itself and one past the limit are read.
        let rows = self.docs.range(
            Table::Audit,
            change.unwrap_or(""),
            "~",
            limit.saturating_add(2),
        )?;
        let after: Vec<&String> = rows
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != change)
            .map(|(_, v)| v)
            .collect();
        if after.len() > limit {
            return Ok(None);
        }
        after
            .into_iter()
            .map(|v| from_json(v))
            .collect::<R<Vec<AuditEntry>>>()
            .map(Some)
    }

    fn add_token(&mut self, token: &TokenRecord, actor: &Actor) -> R<()> {
        if token.name.trim().is_empty() || token.name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "token name {:?}: give a non-empty name without control characters",
                token.name
            )));
        }
        crate::org::validate(&token.org_group)?;
        let key = format!("{TOKEN_PREFIX}{}", token.name);
        self.tx(|d| {
            if !crate::org::within(d.scope(), &token.org_group) {
                return Err(StoreError::Invalid(format!(
                    "a token for {:?} cannot be made from {:?}",
                    token.org_group,
                    d.scope()
                )));
            }
            if !d.insert_new(Table::Meta, &key, &to_json(token))? {
                return Err(StoreError::Invalid(format!(
                    "a token named {:?} exists (names are never reused)",
                    token.name
                )));
            }
            Self::audit(
                d,
                actor,
                "token-create",
                &token.name,
                None,
                Some(serde_json::json!({"role": token.role, "org_group": token.org_group})),
            )
        })
    }

    fn tokens(&mut self) -> R<Vec<TokenRecord>> {
        let mut all: Vec<TokenRecord> = self.scan_docs(Table::Meta, TOKEN_PREFIX)?;
        let scope = self.docs.scope();
        all.retain(|t| crate::org::within(scope, &t.org_group));
        Ok(all)
    }

    fn revoke_token(&mut self, name: &str, actor: &Actor) -> R<TokenRecord> {
        let key = format!("{TOKEN_PREFIX}{name}");
        self.tx(|d| {
            let doc = d
                .get(Table::Meta, &key)?
                .ok_or_else(|| StoreError::UnknownReference {
                    kind: "token",
                    name: name.to_owned(),
                    context: "token revoke".into(),
                })?;
            let mut rec: TokenRecord = from_json(&doc)?;
            if !crate::org::within(d.scope(), &rec.org_group) {
                return Err(hidden("token", name, "token revoke"));
            }
            if rec.revoked_at.is_some() {
                return Ok(rec);
            }
            rec.revoked_at = Some(actor.at);
            d.put(Table::Meta, &key, &to_json(&rec))?;
            Self::audit(d, actor, "token-revoke", name, None, None)?;
            Ok(rec)
        })
    }

    fn profiles(&mut self) -> R<Vec<ProfileRecord>> {
        // The profile table alone, not the whole tenant.
        let d = &mut self.docs;
        let mut out = Vec::new();
        for mut versions in Self::profile_versions_all(d)?.into_values() {
            if let Some(latest) = versions.pop()
                && visible(d, latest.org_group.as_ref())
            {
                out.push(latest);
            }
        }
        Ok(out)
    }

    fn profile_versions(&mut self, uuid: &str) -> R<Vec<ProfileRecord>> {
        let all: Vec<ProfileRecord> = self
            .docs
            .scan(Table::Profiles, &format!("{}/", ukey(uuid)))?
            .iter()
            .map(|(_, v)| profile_from_doc(v))
            .collect::<R<_>>()?;
        let shown = all
            .last()
            .is_some_and(|p| visible(&self.docs, p.org_group.as_ref()));
        Ok(if shown { all } else { Vec::new() })
    }

    fn profile_bytes(&mut self, uuid: &str) -> R<Vec<u8>> {
        let d = &mut self.docs;
        let (key, _) = Self::require_profile(d, uuid, "profile_bytes")?;
        d.get_bytes(&key)?
            .ok_or_else(|| StoreError::Corrupt(format!("no bytes for {key}")))
    }

    fn add_app(&mut self, app: &AppRecord, actor: &Actor) -> R<()> {
        self.tx(|d| Self::add_app_in(d, app, actor))
    }

    fn apps(&mut self) -> R<Vec<AppRecord>> {
        let mut all: Vec<AppRecord> = self.scan_docs(Table::Apps, "")?;
        all.retain(|a| visible(&self.docs, a.org_group.as_ref()));
        Ok(all)
    }

    fn import_inventory(&mut self, inv: &Inventory, actor: &Actor) -> R<()> {
        self.tx(|d| {
            let (merged, _) = Self::merge_in(d, inv, &Replace::Nothing)?;
            Self::import_inventory_in(d, &merged, actor)
        })
    }

    fn apply_inventory(
        &mut self,
        inv: &Inventory,
        replace: &Replace,
        dry_run: bool,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> R<InventoryChange> {
        self.docs.begin()?;
        let result = (|| {
            let d = &mut self.docs;
            let mut uuids = UuidTable::default();
            let mut data = Self::load_docs(d)?;
            let before: std::collections::HashMap<String, Vec<u32>> =
                Self::desired_by_device(&data, at, &mut uuids)
                    .into_iter()
                    .collect();
            let (merged, mut change) = Self::merge_in(d, inv, replace)?;
            Self::import_inventory_in(d, &merged, actor)?;
            // The tenant after the import: what it wrote read back into the
            // tenant read before (at the root; below it, whose visibility
            // a written row changes is the load's to say, so it loads).
            if d.scope() == crate::org::ROOT {
                Self::read_back_inventory(d, &mut data, &merged)?;
            } else {
                data = Self::load_docs(d)?;
            }
            let after = Self::desired_by_device(&data, at, &mut uuids);
            for (udid, now) in after {
                let was = before.get(&udid).map_or(&[][..], Vec::as_slice);
                if was != now.as_slice() {
                    let names = |ids: Vec<u32>| -> Vec<String> {
                        let mut v: Vec<String> =
                            ids.into_iter().map(|i| uuids.name(i).to_owned()).collect();
                        v.sort();
                        v
                    };
                    let gained = now.iter().filter(|p| !was.contains(p)).copied().collect();
                    let lost = was.iter().filter(|p| !now.contains(p)).copied().collect();
                    change.desired.push(DesiredChange {
                        udid,
                        gained: names(gained),
                        lost: names(lost),
                    });
                }
            }
            change.desired.sort_by(|a, b| a.udid.cmp(&b.udid));
            Ok(change)
        })();
        match result {
            Ok(mut change) if !dry_run => {
                self.docs.commit()?;
                change.written = true;
                Ok(change)
            }
            other => {
                self.docs.rollback();
                other
            }
        }
    }

    fn add_member(&mut self, group: &str, member: &str, actor: &Actor) -> R<()> {
        self.tx(|d| {
            let mut g: GroupRecord = Self::require(d, Table::Groups, group, "group", "add_member")?;
            if !visible(d, g.org_group.as_ref()) {
                return Err(hidden("group", group, "add_member"));
            }
            let before = g.clone();
            let (table, kind) = match g.kind {
                provkit_policy::GroupKind::User => (Table::Users, "user"),
                provkit_policy::GroupKind::Device => (Table::Devices, "device"),
            };
            let member_group = |table: Table, doc: &str| -> R<Option<String>> {
                Ok(match table {
                    Table::Users => user_group(doc),
                    Table::Devices => from_json::<DeviceRecord>(doc)?.org_group,
                    _ => from_json::<GroupRecord>(doc)?.org_group,
                })
            };
            if let Some(doc) = d.get(table, member)?
                && !visible(d, member_group(table, &doc)?.as_ref())
            {
                return Err(hidden(kind, member, &format!("group {group}")));
            }
            if let Some(doc) = d.get(Table::Groups, member)?
                && !visible(d, member_group(Table::Groups, &doc)?.as_ref())
            {
                return Err(hidden("group", member, &format!("group {group}")));
            }
            if d.get(table, member)?.is_some() {
                if !g.members.iter().any(|m| m == member) {
                    g.members.push(member.to_owned());
                }
            } else if let Some(sub) = d.get(Table::Groups, member)? {
                let s: GroupRecord = from_json(&sub)?;
                if s.kind != g.kind {
                    return Err(StoreError::Invalid(format!(
                        "group {group} cannot contain group {member} of another kind"
                    )));
                }
                if !g.subgroups.iter().any(|m| m == member) {
                    g.subgroups.push(member.to_owned());
                }
            } else {
                return Err(StoreError::UnknownReference {
                    kind,
                    name: member.to_owned(),
                    context: format!("group {group}"),
                });
            }
            d.put(Table::Groups, group, &to_json(&g))?;
            Self::audit(
                d,
                actor,
                "add-member",
                group,
                Some(serde_json::to_value(&before).unwrap_or_default()),
                Some(serde_json::to_value(&g).unwrap_or_default()),
            )
        })
    }

    fn remove(&mut self, what: &Removal, actor: &Actor) -> R<Vec<String>> {
        let unknown = |kind: &'static str, name: &str| StoreError::UnknownReference {
            kind,
            name: name.to_owned(),
            context: "remove".into(),
        };
        self.tx(|d| {
            let (table, key, kind, name) = match what {
                Removal::App { bundle_id, version } => (
                    Table::Apps,
                    app_key(bundle_id, version),
                    "app",
                    format!("{bundle_id} {version}"),
                ),
                Removal::Device(u) => (Table::Devices, u.clone(), "device", u.clone()),
                Removal::User(u) => (Table::Users, u.clone(), "user", u.clone()),
                Removal::Group(g) => (Table::Groups, g.clone(), "group", g.clone()),
            };
            let Some(before) = d.get(table, &key)? else {
                return Err(unknown(kind, &name));
            };
            let group = match what {
                Removal::User(_) => user_group(&before),
                Removal::App { .. } => from_json::<AppRecord>(&before)?.org_group,
                Removal::Device(_) => from_json::<DeviceRecord>(&before)?.org_group,
                Removal::Group(_) => from_json::<GroupRecord>(&before)?.org_group,
            };
            if !visible(d, group.as_ref()) {
                return Err(unknown(kind, &name));
            }
            match what {
                Removal::User(u) => {
                    // The devices streamed as stored, and only those whose
                    // document holds the name as a JSON string decoded
                    // (before: every device held and decoded, and one that
                    // did not decode was passed over).
                    let mut users: Vec<String> = Vec::new();
                    each_naming(d, Table::Devices, u, &mut |dev: DeviceRecord| {
                        if dev.user.as_deref() == Some(u.as_str()) {
                            users.push(dev.udid);
                        }
                    })?;
                    users.sort_unstable();
                    if !users.is_empty() {
                        return Err(StoreError::Invalid(format!(
                            "user {u} is the primary user of {}: remove or reassign those devices first",
                            users.join(", ")
                        )));
                    }
                }
                Removal::Group(g) => {
                    // As for users: only assignments whose document holds
                    // the name are decoded, and one of those that does not
                    // decode fails the removal (it was passed over).
                    let target = TargetName::Group(g.clone());
                    let mut profiles: Vec<String> = Vec::new();
                    each_naming(d, Table::Assignments, g, &mut |a: AssignmentRecord| {
                        if a.target == target {
                            profiles.push(a.profile_uuid);
                        }
                    })?;
                    profiles.sort_unstable();
                    profiles.dedup();
                    if !profiles.is_empty() {
                        return Err(StoreError::Invalid(format!(
                            "group {g} is assigned profile(s) {}: unassign it first",
                            profiles.join(", ")
                        )));
                    }
                }
                Removal::App { .. } | Removal::Device(_) => {}
            }
            // Out of every group that lists it. The groups are streamed as
            // stored and only those whose document holds the name as a JSON
            // string are decoded (before: every group held and decoded, 100k
            // of them beside a million devices); a group's key is its name.
            let mut touched = Vec::new();
            if !matches!(what, Removal::App { .. }) {
                let mut rows = Vec::new();
                each_naming(d, Table::Groups, &name, &mut |mut g: GroupRecord| {
                    let before = (g.members.len(), g.subgroups.len());
                    match what {
                        Removal::Group(n) => g.subgroups.retain(|s| s != n),
                        Removal::Device(n) | Removal::User(n) => g.members.retain(|m| m != n),
                        Removal::App { .. } => {}
                    }
                    if (g.members.len(), g.subgroups.len()) != before {
                        rows.push((g.name.clone(), to_json(&g)));
                    }
                })?;
                // In key order, as the scan gave them.
                rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                touched = rows.iter().map(|(k, _)| k.clone()).collect();
                d.put_many(Table::Groups, &rows)?;
            }
            d.delete(table, &key)?;
            if let Removal::User(u) = what {
                d.delete(Table::UserEmails, u)?;
            }
            Self::audit(
                d,
                actor,
                &format!("remove-{kind}"),
                &name,
                serde_json::from_str(&before).ok(),
                Some(serde_json::json!({"out_of_groups": touched})),
            )?;
            Ok(touched)
        })
    }

    fn devices_of(&mut self, udids: &[String]) -> R<Vec<DeviceRecord>> {
        let mut docs = self.docs.get_many(Table::Devices, udids)?;
        let mut out = Vec::with_capacity(docs.len());
        for u in udids {
            if let Some(doc) = docs.remove(u) {
                let dev: DeviceRecord = from_json(&doc)?;
                if visible(&self.docs, dev.org_group.as_ref()) {
                    out.push(dev);
                }
            }
        }
        Ok(out)
    }

    fn inventory(&mut self) -> R<Inventory> {
        let d = &mut self.docs;
        let users: Vec<String> = d
            .scan(Table::Users, "")?
            .into_iter()
            .filter(|(_, g)| visible(d, user_group(g).as_ref()))
            .map(|(k, _)| k)
            .collect();
        let shown: std::collections::HashSet<&str> = users.iter().map(String::as_str).collect();
        let emails = d
            .scan(Table::UserEmails, "")?
            .into_iter()
            .filter(|(u, _)| shown.contains(u.as_str()))
            .collect();
        let mut devices: Vec<DeviceRecord> = self.scan_docs(Table::Devices, "")?;
        devices.retain(|x| visible(&self.docs, x.org_group.as_ref()));
        Ok(Inventory {
            users,
            devices,
            groups: self.groups()?,
            emails,
        })
    }

    fn device_udids(&mut self) -> R<Vec<String>> {
        /// The part of a device document the list needs.
        #[derive(serde::Deserialize)]
        struct Head {
            udid: String,
            #[serde(default)]
            org_group: Option<String>,
        }
        let scope = self.docs.scope().to_owned();
        let mut out = Vec::new();
        self.docs.each_doc(Table::Devices, &mut |doc| {
            let h: Head = from_json(doc)?;
            if crate::org::within(&scope, crate::org::of(h.org_group.as_ref())) {
                out.push(h.udid);
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn user_emails(&mut self, users: &[String]) -> R<Vec<(String, String)>> {
        let d = &mut self.docs;
        let mut out = Vec::new();
        for u in users {
            let Some(group) = d.get(Table::Users, u)? else {
                continue;
            };
            if !visible(d, user_group(&group).as_ref()) {
                continue;
            }
            if let Some(address) = d.get(Table::UserEmails, u)? {
                out.push((u.clone(), address));
            }
        }
        Ok(out)
    }

    fn groups(&mut self) -> R<Vec<GroupRecord>> {
        let mut all: Vec<GroupRecord> = self.scan_docs(Table::Groups, "")?;
        all.retain(|g| visible(&self.docs, g.org_group.as_ref()));
        Ok(all)
    }

    fn set_assignments(
        &mut self,
        profile_uuid: &str,
        include: &[TargetName],
        exclude: &[TargetName],
        actor: &Actor,
    ) -> R<()> {
        self.tx(|d| Self::set_assignments_in(d, profile_uuid, include, exclude, actor))
    }

    fn profile_assignments(&mut self, profile_uuid: &str) -> R<Vec<AssignmentRecord>> {
        let (_, rec) = Self::require_profile(&mut self.docs, profile_uuid, "profile_assignments")?;
        let prefix = format!("{}\u{1}", ukey(&rec.uuid));
        self.docs
            .scan(Table::Assignments, &prefix)?
            .iter()
            .map(|(_, v)| from_json(v))
            .collect()
    }

    fn assignments(&mut self) -> R<Vec<AssignmentRecord>> {
        let mut all: Vec<AssignmentRecord> = self.scan_docs(Table::Assignments, "")?;
        if self.docs.scope() != crate::org::ROOT {
            let d = &mut self.docs;
            let mut seen: BTreeMap<String, bool> = BTreeMap::new();
            let mut keep = Vec::with_capacity(all.len());
            for a in all {
                let key = ukey(&a.profile_uuid);
                let ok = match seen.get(&key) {
                    Some(ok) => *ok,
                    None => {
                        let ok = Self::latest_profile(d, &a.profile_uuid)?.is_some();
                        seen.insert(key, ok);
                        ok
                    }
                };
                if ok {
                    keep.push(a);
                }
            }
            all = keep;
        }
        Ok(all)
    }

    fn edit_assignments(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> R<AssignmentChange> {
        self.tx(|d| Self::edit_assignments_in(d, profile_uuid, edit, at, actor, true))
    }

    fn set_notice_stages(&mut self, stages: &provkit_policy::Config, actor: &Actor) -> R<()> {
        let bad = |why: String| Err(StoreError::Invalid(why));
        if stages.admin_thresholds_days.is_empty() {
            return bad("give at least one admin stage".into());
        }
        let in_range = |d: i64| (0..=3650).contains(&d);
        if let Some(d) = stages
            .admin_thresholds_days
            .iter()
            .chain([&stages.user_notice_days])
            .find(|d| !in_range(**d))
        {
            return bad(format!("stage {d}: give 0 to 3650 days"));
        }
        let mut sorted = stages.admin_thresholds_days.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        sorted.dedup();
        if sorted.len() != stages.admin_thresholds_days.len() {
            return bad("each admin stage once".into());
        }
        let mut stored = stages.clone();
        stored.admin_thresholds_days = sorted;
        self.tx(|d| {
            if d.scope() != crate::org::ROOT {
                return Err(StoreError::Invalid(format!(
                    "notice stages are the tenant's: set them at {}, not in {:?}",
                    crate::org::ROOT,
                    d.scope()
                )));
            }
            let before: provkit_policy::Config = d
                .get(Table::Meta, STAGES_KEY)?
                .map(|v| from_json(&v))
                .transpose()?
                .unwrap_or_default();
            d.put(Table::Meta, STAGES_KEY, &to_json(&stored))?;
            Self::audit(
                d,
                actor,
                "notice-stages",
                crate::org::ROOT,
                Some(serde_json::to_value(&before).unwrap_or_default()),
                Some(serde_json::to_value(&stored).unwrap_or_default()),
            )
        })
    }

    fn preview_assignments(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        at: DateTime<Utc>,
    ) -> R<AssignmentChange> {
        self.rolled_back_edit(profile_uuid, edit, at, true)
    }

    fn edit_assignment_targets(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        actor: &Actor,
    ) -> R<AssignmentChange> {
        self.tx(|d| Self::edit_assignments_in(d, profile_uuid, edit, actor.at, actor, false))
    }

    fn check_assignment_edit(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        at: DateTime<Utc>,
    ) -> R<AssignmentChange> {
        self.rolled_back_edit(profile_uuid, edit, at, false)
    }

    fn add_console_user(&mut self, user: &crate::ConsoleUser, actor: &Actor) -> R<()> {
        if user.name.trim().is_empty() || user.name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "console user {:?}: give a non-empty name without control characters",
                user.name
            )));
        }
        crate::org::validate(&user.org_group)?;
        let key = format!("{CONSOLE_USER_PREFIX}{}", user.name);
        self.tx(|d| {
            if !crate::org::within(d.scope(), &user.org_group) {
                return Err(StoreError::Invalid(format!(
                    "a console user in {:?} cannot be made from {:?}",
                    user.org_group,
                    d.scope()
                )));
            }
            let known: Vec<String> = d
                .scan(Table::Meta, ORG_PREFIX)?
                .into_iter()
                .map(|(k, _)| k[ORG_PREFIX.len()..].to_owned())
                .collect();
            if user.org_group != crate::org::ROOT && !known.contains(&user.org_group) {
                return Err(StoreError::UnknownReference {
                    kind: "organization group",
                    name: user.org_group.clone(),
                    context: "console-user create".into(),
                });
            }
            if !d.insert_new(Table::Meta, &key, &to_json(user))? {
                return Err(StoreError::Invalid(format!(
                    "a console user named {:?} exists",
                    user.name
                )));
            }
            Self::audit(
                d,
                actor,
                "console-user-create",
                &user.name,
                None,
                Some(serde_json::json!({"role": user.role, "org_group": user.org_group})),
            )
        })
    }

    fn console_users(&mut self) -> R<Vec<crate::ConsoleUser>> {
        let mut all: Vec<crate::ConsoleUser> = self.scan_docs(Table::Meta, CONSOLE_USER_PREFIX)?;
        let scope = self.docs.scope();
        all.retain(|u| crate::org::within(scope, &u.org_group));
        Ok(all)
    }

    fn remove_console_user(&mut self, name: &str, actor: &Actor) -> R<crate::ConsoleUser> {
        let key = format!("{CONSOLE_USER_PREFIX}{name}");
        self.tx(|d| {
            let gone = || hidden("console user", name, "console-user remove");
            let doc = d.get(Table::Meta, &key)?.ok_or_else(gone)?;
            let user: crate::ConsoleUser = from_json(&doc)?;
            if !crate::org::within(d.scope(), &user.org_group) {
                return Err(gone());
            }
            d.delete(Table::Meta, &key)?;
            for (k, v) in d.scan(Table::Meta, SESSION_PREFIX)? {
                let s: crate::Session = from_json(&v)?;
                if s.user == user.name {
                    d.delete(Table::Meta, &k)?;
                }
            }
            Self::audit(d, actor, "console-user-remove", name, None, None)?;
            Ok(user)
        })
    }

    fn put_session(&mut self, session: &crate::Session) -> R<()> {
        let key = format!("{SESSION_PREFIX}{}", session.id_sha256);
        self.tx(|d| d.put(Table::Meta, &key, &to_json(session)))
    }

    fn session(&mut self, id_sha256: &str) -> R<Option<crate::Session>> {
        let key = format!("{SESSION_PREFIX}{id_sha256}");
        self.docs
            .get(Table::Meta, &key)?
            .map(|v| from_json(&v))
            .transpose()
    }

    fn purge_sessions(&mut self, at: DateTime<Utc>) -> R<usize> {
        self.tx(|d| {
            let mut gone = 0;
            for (k, v) in d.scan(Table::Meta, SESSION_PREFIX)? {
                let s: crate::Session = from_json(&v)?;
                if s.expires_at <= at {
                    d.delete(Table::Meta, &k)?;
                    gone += 1;
                }
            }
            Ok(gone)
        })
    }

    fn end_session(&mut self, id_sha256: &str) -> R<()> {
        let key = format!("{SESSION_PREFIX}{id_sha256}");
        self.tx(|d| d.delete(Table::Meta, &key).map(|_| ()))
    }

    fn renew(
        &mut self,
        old_uuid: &str,
        successor: &[u8],
        untrusted: Option<&[String]>,
        actor: &Actor,
    ) -> R<ProfileRecord> {
        let prepared = Self::prepare_profile(successor)?;
        self.tx(|d| {
            let (old_key, mut old) = Self::require_profile(d, old_uuid, "renew")?;
            let mut new =
                Self::add_profile_in(d, successor, prepared, &ProfileLabel::default(), actor)?;
            if let Some(findings) = untrusted {
                let after = serde_json::json!({"version": new.version, "findings": findings});
                Self::audit(d, actor, "allow-untrusted", &new.uuid, None, Some(after))?;
            }
            // The admin's name and description go on with the successor
            // unless it came with its own.
            if new.label.is_empty() && !old.label.is_empty() {
                new = Self::label_version_in(d, new, &old.label, actor)?;
            }
            old.successor = Some(new.uuid.clone());
            d.put(Table::Profiles, &old_key, &profile_to_doc(&old))?;
            for (k, v) in d.scan(Table::Apps, "")? {
                let mut a: AppRecord = from_json(&v)?;
                if a.profile_uuid
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(&old.uuid))
                {
                    a.profile_uuid = Some(new.uuid.clone());
                    d.put(Table::Apps, &k, &to_json(&a))?;
                }
            }
            let prefix = format!("{}\u{1}", ukey(&old.uuid));
            for (k, v) in d.scan(Table::Assignments, &prefix)? {
                let mut a: AssignmentRecord = from_json(&v)?;
                d.delete(Table::Assignments, &k)?;
                a.profile_uuid = new.uuid.clone();
                let nk = format!(
                    "{}\u{1}{}\u{1}{}",
                    ukey(&new.uuid),
                    a.target.as_key(),
                    a.include
                );
                d.put(Table::Assignments, &nk, &to_json(&a))?;
            }
            Self::audit(
                d,
                actor,
                "renew",
                &old.uuid,
                None,
                Some(serde_json::json!({"successor": new.uuid})),
            )?;
            Ok(new)
        })
    }

    fn retire_profile(&mut self, uuid: &str, actor: &Actor) -> R<()> {
        self.tx(|d| {
            let (key, mut rec) = Self::require_profile(d, uuid, "retire_profile")?;
            rec.retired = true;
            d.put(Table::Profiles, &key, &profile_to_doc(&rec))?;
            Self::audit(d, actor, "delete-profile", &rec.uuid, None, None)
        })
    }

    fn record_device_report(&mut self, udid: &str, reported: &[ReportedProfile]) -> R<()> {
        root_only(&self.docs, "device results")?;
        self.tx(|d| {
            let mut dev: crate::records::DeviceRecord =
                Self::require(d, Table::Devices, udid, "device", "device report")?;
            dev.reported = reported.to_vec();
            d.put(Table::Devices, udid, &crate::json::device_record(&dev))
        })
    }

    fn enqueue(&mut self, entries: &[OutboxEntry]) -> R<()> {
        root_only(&self.docs, "the outbox")?;
        self.tx(|d| Self::queue_many(d, entries, None).map(drop))
    }

    fn enqueue_plan(
        &mut self,
        entries: &[OutboxEntry],
        stages: &[(String, i64)],
        at: DateTime<Utc>,
    ) -> R<(usize, usize)> {
        self.queue_plan(entries, stages, at, None)
    }

    fn enqueue_plan_since(
        &mut self,
        entries: &[OutboxEntry],
        stages: &[(String, i64)],
        at: DateTime<Utc>,
        seen: Option<&str>,
    ) -> R<(usize, usize)> {
        self.queue_plan(entries, stages, at, Some(seen))
    }

    fn outbox(&mut self) -> R<Vec<OutboxEntry>> {
        use rayon::prelude::*;
        // Millions of rows on a large tenant: parsed on every core.
        let docs = self.docs.scan(Table::Outbox, "")?;
        let mut all: Vec<OutboxEntry> = docs
            .par_iter()
            .map(|(_, v)| crate::json::read_outbox_entry(v))
            .collect::<R<_>>()?;
        drop(docs);
        if self.docs.scope() != crate::org::ROOT {
            let devices: std::collections::BTreeSet<String> = self
                .inventory()?
                .devices
                .into_iter()
                .map(|x| x.udid)
                .collect();
            all.retain(|e| devices.contains(&e.udid));
        }
        Ok(all)
    }

    fn each_command(&mut self, f: &mut dyn FnMut(crate::CommandRow<'_>)) -> R<()> {
        let visible: Option<std::collections::HashSet<String>> =
            if self.docs.scope() == crate::org::ROOT {
                None
            } else {
                Some(
                    self.inventory()?
                        .devices
                        .into_iter()
                        .map(|x| x.udid)
                        .collect(),
                )
            };
        self.docs.each_doc_stored(Table::Outbox, &mut |doc| {
            let row: crate::CommandRow<'_> = serde_json::from_str(doc)
                .map_err(|e| StoreError::Corrupt(format!("an outbox row: {e}")))?;
            if visible
                .as_ref()
                .is_none_or(|v| v.contains(row.udid.as_ref()))
            {
                f(row);
            }
            Ok(())
        })
    }

    fn record_results(
        &mut self,
        results: &[crate::CommandResult],
        reports: &[(String, Vec<ReportedProfile>)],
        at: DateTime<Utc>,
    ) -> R<()> {
        root_only(&self.docs, "device results")?;
        self.tx(|d| {
            let mut rows = Vec::with_capacity(results.len());
            for r in results {
                let doc = d.get(Table::Outbox, &r.command_uuid)?.ok_or_else(|| {
                    StoreError::UnknownReference {
                        kind: "command",
                        name: r.command_uuid.clone(),
                        context: "record_results".into(),
                    }
                })?;
                let mut e = crate::json::read_outbox_entry(&doc)?;
                if r.status == CommandStatus::NotNow {
                    e.retries += 1;
                }
                e.status = r.status;
                e.error_chain.clone_from(&r.error_chain);
                e.updated_at = at;
                Self::settle_in(d, &e)?;
                rows.push((r.command_uuid.clone(), crate::json::outbox_entry(&e)));
            }
            d.put_many(Table::Outbox, &rows)?;
            let mut devices = Vec::with_capacity(reports.len());
            for (udid, reported) in reports {
                let mut dev: crate::records::DeviceRecord =
                    Self::require(d, Table::Devices, udid, "device", "device report")?;
                dev.reported.clone_from(reported);
                devices.push((udid.clone(), crate::json::device_record(&dev)));
            }
            d.put_many(Table::Devices, &devices)
        })
    }

    fn acknowledge_commands(
        &mut self,
        which: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> R<crate::Acknowledgement> {
        root_only(&self.docs, "device results")?;
        self.tx(|d| Self::acknowledge_in(d, which, at))
    }

    fn record_result(
        &mut self,
        command_uuid: &str,
        status: CommandStatus,
        error_chain: Option<&str>,
        at: DateTime<Utc>,
    ) -> R<()> {
        root_only(&self.docs, "device results")?;
        self.tx(|d| {
            let doc = d.get(Table::Outbox, command_uuid)?.ok_or_else(|| {
                StoreError::UnknownReference {
                    kind: "command",
                    name: command_uuid.to_owned(),
                    context: "record_result".into(),
                }
            })?;
            let mut e = crate::json::read_outbox_entry(&doc)?;
            if status == CommandStatus::NotNow {
                e.retries += 1;
            }
            e.status = status;
            e.error_chain = error_chain.map(str::to_owned);
            e.updated_at = at;
            Self::settle_in(d, &e)?;
            d.put(Table::Outbox, command_uuid, &crate::json::outbox_entry(&e))
        })
    }

    fn add_mdm_connection(&mut self, c: &crate::MdmConnection, actor: &Actor) -> R<()> {
        self.tx(|d| Self::add_mdm_connection_in(d, c, actor))
    }

    fn mdm_connections(&mut self) -> R<Vec<crate::MdmConnection>> {
        Self::mdm_connections_in(&mut self.docs)
    }

    fn remove_mdm_connection(&mut self, name: &str, actor: &Actor) -> R<crate::MdmConnection> {
        self.tx(|d| Self::remove_mdm_connection_in(d, name, actor))
    }

    fn prepare_dispatches(&mut self, at: DateTime<Utc>, max_batch: usize) -> R<usize> {
        self.tx(|d| Self::prepare_dispatches_in(d, at, max_batch))
    }

    fn dispatch_command(
        &mut self,
        request_type: &str,
        udids: &[String],
        at: DateTime<Utc>,
        max_batch: usize,
    ) -> R<Vec<String>> {
        self.tx(|d| Self::dispatch_command_in(d, request_type, udids, at, max_batch, &[]))
    }

    fn claim_dispatches(
        &mut self,
        at: DateTime<Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> R<Vec<crate::Claimed>> {
        self.tx(|d| Self::claim_dispatches_in(d, at, lease, limit))
    }

    fn settle_dispatch(
        &mut self,
        command_uuid: &str,
        outcomes: &[(String, crate::SendOutcome)],
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> R<()> {
        self.tx(|d| Self::settle_dispatch_in(d, command_uuid, outcomes, retry_at, at))
    }

    fn dispatches(&mut self) -> R<Vec<crate::Dispatch>> {
        root_only(&self.docs, "delivery")?;
        Self::dispatches_in(&mut self.docs)
    }

    fn receive_event(&mut self, id: &str, body: &str, at: DateTime<Utc>) -> R<bool> {
        let fresh =
            self.tx(|d| Self::receive_events_in(d, &[(id.to_owned(), body.to_owned())], at))?;
        Ok(fresh.first().copied().unwrap_or(false))
    }

    fn unanswered(&mut self, after: DateTime<Utc>, until: DateTime<Utc>) -> R<Vec<String>> {
        self.tx(|d| Self::unanswered_in(d, after, until))
    }

    fn receive_events(&mut self, events: &[(String, String)], at: DateTime<Utc>) -> R<Vec<bool>> {
        self.tx(|d| Self::receive_events_in(d, events, at))
    }

    fn take_events(
        &mut self,
        at: DateTime<Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> R<Vec<(String, String)>> {
        self.tx(|d| Self::take_events_in(d, at, lease, limit))
    }

    fn record_answers(
        &mut self,
        events: &[String],
        answers: &[crate::DeviceAnswer],
        at: DateTime<Utc>,
    ) -> R<crate::AnswerCounts> {
        self.tx(|d| Self::record_answers_in(d, events, answers, at))
    }

    fn add_channel(&mut self, c: &crate::Channel, actor: &Actor) -> R<()> {
        self.tx(|d| Self::add_channel_in(d, c, actor))
    }

    fn channels(&mut self) -> R<Vec<crate::Channel>> {
        Self::channels_in(&mut self.docs)
    }

    fn set_channel_template(&mut self, name: &str, template: Option<&str>, actor: &Actor) -> R<()> {
        self.tx(|d| Self::set_channel_template_in(d, name, template, actor))
    }

    fn set_notify_settings(
        &mut self,
        profile_uuid: &str,
        settings: &crate::NotifySettings,
        actor: &Actor,
    ) -> R<()> {
        self.tx(|d| Self::set_notify_settings_in(d, profile_uuid, settings, actor))
    }

    fn notify_settings(&mut self) -> R<Vec<(String, crate::NotifySettings)>> {
        Self::notify_settings_in(&mut self.docs)
    }

    fn set_app_notify_settings(
        &mut self,
        bundle_id: &str,
        settings: &crate::NotifySettings,
        actor: &Actor,
    ) -> R<()> {
        self.tx(|d| Self::set_app_notify_settings_in(d, bundle_id, settings, actor))
    }

    fn app_notify_settings(&mut self) -> R<Vec<(String, crate::NotifySettings)>> {
        Self::app_notify_settings_in(&mut self.docs)
    }

    fn remove_channel(&mut self, name: &str, actor: &Actor) -> R<crate::Channel> {
        self.tx(|d| Self::remove_channel_in(d, name, actor))
    }

    fn queue_notices(&mut self, notices: &[crate::Notice], at: DateTime<Utc>) -> R<usize> {
        self.tx(|d| Self::queue_notices_in(d, notices, at))
    }

    fn claim_notices(
        &mut self,
        at: DateTime<Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> R<Vec<crate::ClaimedNotice>> {
        self.tx(|d| Self::claim_notices_in(d, at, lease, limit))
    }

    fn settle_notice(
        &mut self,
        n: &crate::NoticeDelivery,
        outcome: Result<(), String>,
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> R<()> {
        self.tx(|d| Self::settle_notice_in(d, n, outcome, retry_at, at))
    }

    fn notices(&mut self) -> R<Vec<crate::NoticeDelivery>> {
        Self::notices_in(&mut self.docs)
    }

    fn mark_notified(&mut self, profile_uuid: &str, stage: i64, at: DateTime<Utc>) -> R<bool> {
        root_only(&self.docs, "notifications")?;
        let key = format!("{}\u{1}{stage}", ukey(profile_uuid));
        self.tx(|d| d.insert_new(Table::Notifications, &key, &to_json(&at)))
    }

    fn audit_log(&mut self) -> R<Vec<AuditEntry>> {
        let mut all: Vec<AuditEntry> = self.scan_docs(Table::Audit, "")?;
        all.retain(|e| visible(&self.docs, e.org_group.as_ref()));
        Ok(all)
    }

    fn import_batch(&mut self, batch: &ImportBatch, actor: &Actor) -> R<()> {
        root_only(&self.docs, "bulk import")?;
        use std::collections::{HashMap, HashSet};
        // Parse every profile first: a bad one refuses the batch before any write.
        let prepared: Vec<_> = batch
            .profiles
            .iter()
            .map(|b| Self::prepare_profile(b))
            .collect::<R<_>>()?;
        self.tx(|d| {
            // Profiles: versions from one scan, rows written in bulk.
            let mut versions: HashMap<String, (i64, HashSet<String>)> = HashMap::new();
            for (_, v) in d.scan(Table::Profiles, "")? {
                let rec = profile_from_doc(&v)?;
                let e = versions.entry(ukey(&rec.uuid)).or_default();
                e.0 = e.0.max(rec.version);
                e.1.insert(rec.sha256);
            }
            let mut rows = Vec::new();
            let mut blobs = Vec::new();
            for (bytes, (facts, sha256)) in batch.profiles.iter().zip(prepared) {
                let e = versions.entry(ukey(&facts.uuid)).or_default();
                if !e.1.insert(sha256.clone()) {
                    continue;
                }
                e.0 += 1;
                let (key, rec) =
                    new_version(facts, e.0, sha256, None, ProfileLabel::default(), actor);
                rows.push((key.clone(), profile_to_doc(&rec)));
                blobs.push((key, bytes.as_slice()));
            }
            d.put_many(Table::Profiles, &rows)?;
            d.put_bytes_many(&blobs)?;
            Self::import_inventory_in(d, &batch.inventory, actor)?;
            // Apps: their profiles must exist (stored or in this batch).
            let mut rows = Vec::with_capacity(batch.apps.len());
            for app in &batch.apps {
                if let Some(p) = &app.profile_uuid
                    && !versions.contains_key(&ukey(p))
                {
                    return Err(StoreError::UnknownReference {
                        kind: "profile",
                        name: p.clone(),
                        context: format!("app {}", app.bundle_id),
                    });
                }
                rows.push((app_key(&app.bundle_id, &app.version), to_json(app)));
            }
            d.put_many(Table::Apps, &rows)?;
            // Assignments replace those of the same profiles; groups must exist.
            let mut groups: HashSet<String> = d
                .scan(Table::Groups, "")?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            groups.extend(batch.inventory.groups.iter().map(|g| g.name.clone()));
            let replaced: HashSet<String> = batch
                .assignments
                .iter()
                .map(|(u, _, _)| format!("{}\u{1}", ukey(u)))
                .collect();
            for (k, _) in d.scan(Table::Assignments, "")? {
                if let Some(i) = k.find('\u{1}')
                    && replaced.contains(&k[..=i])
                {
                    d.delete(Table::Assignments, &k)?;
                }
            }
            let mut rows = Vec::new();
            for (uuid, include, exclude) in &batch.assignments {
                if !versions.contains_key(&ukey(uuid)) {
                    return Err(StoreError::UnknownReference {
                        kind: "profile",
                        name: uuid.clone(),
                        context: "assignment".into(),
                    });
                }
                if let Some(g) =
                    unknown_group(include.iter().chain(exclude), |g| Ok(groups.contains(g)))?
                {
                    return Err(StoreError::UnknownReference {
                        kind: "group",
                        name: g.to_owned(),
                        context: format!("assignment of {uuid}"),
                    });
                }
                rows.extend(
                    assignment_rows(uuid, include, exclude)
                        .into_iter()
                        .map(|(k, a)| (k, to_json(&a))),
                );
            }
            d.put_many(Table::Assignments, &rows)?;
            let after = serde_json::json!({
                "profiles": batch.profiles.len(), "users": batch.inventory.users.len(),
                "devices": batch.inventory.devices.len(), "groups": batch.inventory.groups.len(),
                "apps": batch.apps.len(), "assignments": batch.assignments.len(),
            });
            Self::audit(d, actor, "import-batch", "batch", None, Some(after))
        })
    }

    fn load_tenant(&mut self) -> R<provkit_policy::Tenant> {
        Ok(self.load()?.to_tenant())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The index keys are the text `format!` and [`ukey`] made before,
        /// for any parts (non-ASCII and U+0001 included).
        #[test]
        fn index_keys_are_the_formatted_text(
            a in "\\PC{0,40}", b in "[\\x01a-zA-Zé]{0,40}", c in "\\PC{0,40}", upper in 0usize..3,
        ) {
            let u = |i: usize, p: &str| if i == upper { ukey(p) } else { p.to_owned() };
            let want = format!("{}\u{1}{}\u{1}{}", u(0, &a), u(1, &b), u(2, &c));
            prop_assert_eq!(index_key([&a, &b, &c], upper), want);
        }
    }
}

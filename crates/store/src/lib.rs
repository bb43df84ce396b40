//! Storage for provkit: everything the engine and the frontends keep,
//! behind the [`Store`] trait, with three backends that pass one
//! conformance suite: [`SqliteStore`] (the embedded default, one file, WAL),
//! [`PostgresStore`] (for scale) and [`MemoryStore`] (tests and embedding).
//!
//! Kept: profiles as signed bytes with their extracted facts and versions
//! (the same UUID with other bytes is a new version), renewal links, apps
//! with their verification report, users, devices, nested groups,
//! assignments, a command outbox with device results, a notification log
//! (a stage is never sent twice) and an audit log of admin changes.
//! Every operation is all-or-nothing; bad input writes nothing.
//!
//! ```
//! use provkit_store::{MemoryStore, Store, Actor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store = MemoryStore::default();
//! let actor = Actor { name: "admin".into(), at: chrono::DateTime::UNIX_EPOCH };
//! store.import_inventory(&serde_json::from_str(r#"{"users": ["alice"]}"#)?, &actor)?;
//! let tenant = store.load_tenant()?;
//! assert_eq!(tenant.users.len(), 1);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod console;
mod csv;
mod data;
mod doc_store;
mod error;
mod export;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod instant;
mod json;
mod mdm;
mod notify;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod open;
pub mod org;
mod records;
mod schema;

pub use console::{ConsoleUser, Session};
pub use data::resolve_assignments;
pub use doc_store::{DocStore, MemoryStore, SCHEMA_VERSION};
pub use error::StoreError;
#[cfg(feature = "fixtures")]
pub use export::sign_profiles;
pub use export::{TenantRecords, import_tenant, records_of};
pub use mdm::{
    AnswerCounts, Claimed, ConnectionStatus, DeviceAnswer, Dispatch, DispatchTarget, MdmConnection,
    MdmKind, SendOutcome, TargetState,
};
pub use notify::{Channel, ChannelKind, ClaimedNotice, Notice, NoticeDelivery, NotifySettings};
#[cfg(feature = "postgres")]
pub use open::PostgresStore;
#[cfg(feature = "sqlite")]
pub use open::{Access, SqliteStore};
pub use records::{
    Actor, AppRecord, AssignmentChange, AssignmentEdit, AssignmentRecord, AuditEntry, CommandRow,
    CommandStatus, DesiredChange, DeviceRecord, GroupChange, GroupRecord, InstalledApp, Inventory,
    InventoryChange, LeaseRecord, OrgGroupRecord, OutboxEntry, ProfileLabel, ProfileRecord,
    Removal, Replace, ReportedProfile, TargetName, TokenRecord, TrustAnchorRecord,
};

use chrono::{DateTime, Utc};

/// The most devices in one dispatch the store makes on its own (a
/// `ValidateApplications` after a renewal).
pub const MAX_DISPATCH: usize = 200;

/// Everything [`Store::import_batch`] takes at once.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    /// Signed profile files.
    pub profiles: Vec<Vec<u8>>,
    /// Users, devices, groups.
    pub inventory: Inventory,
    /// Apps.
    pub apps: Vec<AppRecord>,
    /// Per profile UUID: include and exclude targets.
    pub assignments: Vec<(String, Vec<TargetName>, Vec<TargetName>)>,
}

/// What [`Store::acknowledge_commands`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acknowledgement {
    /// Commands acknowledged.
    pub commands: usize,
    /// Devices whose reported profiles changed.
    pub devices: usize,
    /// Command UUIDs asked for that the outbox does not hold (when any is,
    /// nothing was written).
    pub unknown: Vec<String>,
}

/// One command's outcome, for [`Store::record_results`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// The outbox row.
    pub command_uuid: String,
    /// Its new status.
    pub status: CommandStatus,
    /// The device's error chain, when it failed.
    pub error_chain: Option<String>,
}

/// What every backend provides. All methods are all-or-nothing.
pub trait Store {
    /// Stores a profile's signed bytes. Identical bytes return the existing
    /// record; the same UUID with other bytes becomes a new version.
    ///
    /// # Errors
    /// [`StoreError::Profile`] when the bytes do not parse (nothing is written).
    fn add_profile(&mut self, bytes: &[u8], actor: &Actor) -> Result<ProfileRecord, StoreError> {
        self.add_labeled_profile(bytes, &ProfileLabel::default(), None, actor)
    }

    /// Stores a profile that failed its trust or integrity checks because
    /// the admin overrode the refusal: the same as [`Store::add_profile`],
    /// with an `allow-untrusted` audit entry naming `findings`, in one
    /// transaction.
    ///
    /// # Errors
    /// As [`Store::add_profile`].
    fn add_untrusted_profile(
        &mut self,
        bytes: &[u8],
        findings: &[String],
        actor: &Actor,
    ) -> Result<ProfileRecord, StoreError> {
        self.add_labeled_profile(bytes, &ProfileLabel::default(), Some(findings), actor)
    }

    /// [`Store::add_profile`] with the admin's name and description, and,
    /// when `untrusted` names findings, the override of
    /// [`Store::add_untrusted_profile`]; one transaction. A new version
    /// without a label keeps the previous version's; identical bytes with
    /// another label are relabelled (audited `label-profile`).
    ///
    /// # Errors
    /// As [`Store::add_profile`]; [`StoreError::Invalid`] for a label
    /// [`ProfileLabel::validate`] refuses.
    fn add_labeled_profile(
        &mut self,
        bytes: &[u8],
        label: &ProfileLabel,
        untrusted: Option<&[String]>,
        actor: &Actor,
    ) -> Result<ProfileRecord, StoreError>;

    /// Sets the admin's name and description of a profile's newest version
    /// (empty fields clear them); audited with before and after.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for a profile the scope does not
    /// see; [`StoreError::Invalid`] as [`ProfileLabel::validate`].
    fn label_profile(
        &mut self,
        uuid: &str,
        label: &ProfileLabel,
        actor: &Actor,
    ) -> Result<ProfileRecord, StoreError>;

    /// Adds a trust anchor (a DER certificate); audited. Adding one that is
    /// there returns it unchanged.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the bytes are not a certificate.
    fn add_trust_anchor(
        &mut self,
        der: &[u8],
        actor: &Actor,
    ) -> Result<TrustAnchorRecord, StoreError>;

    /// The tenant's trust anchors (Apple's roots are not listed).
    ///
    /// # Errors
    /// Backend failures.
    fn trust_anchors(&mut self) -> Result<Vec<TrustAnchorRecord>, StoreError>;

    /// Removes a trust anchor by its SHA-256 (hex, a unique prefix of at
    /// least 8 digits); audited; returns what was removed.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] when no anchor (or more than one)
    /// matches.
    fn remove_trust_anchor(
        &mut self,
        sha256: &str,
        actor: &Actor,
    ) -> Result<TrustAnchorRecord, StoreError>;

    /// Acts within the organization group `org_group` from now on: reads
    /// see that group and its descendants only, new objects land in it,
    /// and changes to anything outside it are refused as unknown. The
    /// root (`Global`) sees everything; a new connection starts there.
    fn set_scope(&mut self, org_group: &str);

    /// The organization group this connection acts within.
    fn scope(&self) -> &str;

    /// Creates an organization group and any missing parents (each within
    /// the scope); audited. Returns the paths created (none when it exists).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a path that is not valid or lies outside
    /// the scope.
    fn add_org_group(&mut self, path: &str, actor: &Actor) -> Result<Vec<String>, StoreError>;

    /// The organization groups within the scope, the scope first, by path.
    ///
    /// # Errors
    /// Backend failures.
    fn org_groups(&mut self) -> Result<Vec<OrgGroupRecord>, StoreError>;

    /// Adds an API token record (its hash, never the token); audited.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when a token of that name exists (revoked
    /// ones too: names are never reused, so the audit log stays
    /// unambiguous), or the name is empty.
    fn add_token(&mut self, token: &TokenRecord, actor: &Actor) -> Result<(), StoreError>;

    /// Every API token record, revoked ones included, by name.
    ///
    /// # Errors
    /// Backend failures.
    fn tokens(&mut self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes an API token by name at `actor.at`; audited. Revoking a
    /// revoked token returns it unchanged.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown name.
    fn revoke_token(&mut self, name: &str, actor: &Actor) -> Result<TokenRecord, StoreError>;

    /// Takes or renews the lease `name` for `holder` until `until`, when it
    /// is free, expired at `now`, or held by `holder` already; returns the
    /// lease as it stands after the call (held by `holder` exactly when the
    /// call won it). One transaction: of several processes racing for a
    /// free lease, one wins.
    ///
    /// # Errors
    /// Backend failures.
    fn lease(
        &mut self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<LeaseRecord, StoreError>;

    /// The key of the newest audit entry: it changes whenever any process
    /// changes the tenant, so a scheduler can tell that it must re-plan.
    ///
    /// # Errors
    /// Backend failures.
    fn last_change(&mut self) -> Result<Option<String>, StoreError>;

    /// The audited changes after `change` (a [`Store::last_change`] key;
    /// `None`: every change), oldest first, in every organization group,
    /// or `None` when there are more than `limit` of them.
    ///
    /// # Errors
    /// Backend failures.
    fn changes_since(
        &mut self,
        change: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<AuditEntry>>, StoreError>;

    /// The latest version of every profile, by UUID.
    ///
    /// # Errors
    /// Backend failures.
    fn profiles(&mut self) -> Result<Vec<ProfileRecord>, StoreError>;

    /// Every version of one profile, oldest first.
    ///
    /// # Errors
    /// Backend failures.
    fn profile_versions(&mut self, uuid: &str) -> Result<Vec<ProfileRecord>, StoreError>;

    /// The signed bytes of a profile's latest version.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown UUID.
    fn profile_bytes(&mut self, uuid: &str) -> Result<Vec<u8>, StoreError>;

    /// Stores an app (replacing the same bundle id and version).
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] when its profile is unknown.
    fn add_app(&mut self, app: &AppRecord, actor: &Actor) -> Result<(), StoreError>;

    /// Every app.
    ///
    /// # Errors
    /// Backend failures.
    fn apps(&mut self) -> Result<Vec<AppRecord>, StoreError>;

    /// Imports users, devices and groups in one batch, merging into what is
    /// stored (as [`Store::apply_inventory`] with [`Replace::Nothing`]).
    ///
    /// # Errors
    /// As [`Store::apply_inventory`].
    fn import_inventory(&mut self, inventory: &Inventory, actor: &Actor) -> Result<(), StoreError>;

    /// Imports an inventory batch in one transaction: validated whole
    /// first (duplicates, empty or reserved names, unknown platforms, a
    /// group whose kind differs from the stored one, unknown references),
    /// then merged into what is stored, or replacing what `replace` says.
    /// Returns every change, with the devices whose desired profiles change
    /// at `at`; with `dry_run` nothing is written.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] or [`StoreError::UnknownReference`] naming
    /// the first problem (nothing is written).
    fn apply_inventory(
        &mut self,
        inventory: &Inventory,
        replace: &Replace,
        dry_run: bool,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<InventoryChange, StoreError>;

    /// The stored inventory exactly as imported (users, devices with every
    /// installed app and report, groups), sorted by name: what
    /// [`Store::apply_inventory`] reads back to the same records.
    ///
    /// # Errors
    /// Backend failures or a corrupt record.
    fn inventory(&mut self) -> Result<Inventory, StoreError>;

    /// The UDID of every device the scope sees, in UDID order, read row by
    /// row: nothing else of the devices is decoded or held (a daily
    /// re-listing of a million devices needs their names, not their apps).
    ///
    /// # Errors
    /// Backend failures or a corrupt record.
    fn device_udids(&mut self) -> Result<Vec<String>, StoreError>;

    /// The email addresses of these users the scope sees and the inventory
    /// knows an address for, as (user, address); for the device users'
    /// notices.
    ///
    /// # Errors
    /// Backend failures.
    fn user_emails(&mut self, users: &[String]) -> Result<Vec<(String, String)>, StoreError>;

    /// The stored records of these devices that the scope sees, by key
    /// (absent and hidden ones are left out), in the order asked.
    ///
    /// # Errors
    /// Backend failures or a corrupt record.
    fn devices_of(&mut self, udids: &[String]) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Removes an app, a device, a user or a group in one transaction,
    /// taking it out of every group that lists it; audited. Returns the
    /// groups it was taken out of.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] when it does not exist;
    /// [`StoreError::Invalid`] naming what still refers to it (a device's
    /// primary user, an assignment to a group), with nothing written.
    fn remove(&mut self, what: &Removal, actor: &Actor) -> Result<Vec<String>, StoreError>;

    /// Adds a member (user name, UDID or group name) to a group.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown group or member.
    fn add_member(&mut self, group: &str, member: &str, actor: &Actor) -> Result<(), StoreError>;

    /// Every group.
    ///
    /// # Errors
    /// Backend failures.
    fn groups(&mut self) -> Result<Vec<GroupRecord>, StoreError>;

    /// Replaces a profile's assignments.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown profile or group.
    fn set_assignments(
        &mut self,
        profile_uuid: &str,
        include: &[TargetName],
        exclude: &[TargetName],
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// Every assignment.
    ///
    /// # Errors
    /// Backend failures.
    fn assignments(&mut self) -> Result<Vec<AssignmentRecord>, StoreError>;

    /// One profile's assignments, as stored now (include first as written).
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for a profile unknown here.
    fn profile_assignments(
        &mut self,
        profile_uuid: &str,
    ) -> Result<Vec<AssignmentRecord>, StoreError>;

    /// Adds, removes or replaces a profile's assignment targets in one
    /// transaction; returns the targets before and after and the devices
    /// that gain or lose the profile at `at`.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown profile or group;
    /// [`StoreError::Invalid`] for an empty add or remove, or for removing
    /// a target that is not assigned (nothing is written).
    fn edit_assignments(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<AssignmentChange, StoreError>;

    /// Stores `successor` (as [`Store::add_labeled_profile`] without a
    /// label, with the override's audit entry when `untrusted` names
    /// findings) and records that it renews `old_uuid`: apps and
    /// assignments move to it, and so does the admin's label when it has
    /// none of its own. One transaction, so no reader ever sees the
    /// successor stored but not yet in use, or assignments pointing at a
    /// profile that is not there.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown `old_uuid`;
    /// [`StoreError::Profile`] when `successor` does not parse (nothing is
    /// written).
    fn renew(
        &mut self,
        old_uuid: &str,
        successor: &[u8],
        untrusted: Option<&[String]>,
        actor: &Actor,
    ) -> Result<ProfileRecord, StoreError>;

    /// Marks a profile deleted.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown UUID.
    fn retire_profile(&mut self, uuid: &str, actor: &Actor) -> Result<(), StoreError>;

    /// Replaces what a device reports holding (ProvisioningProfileList).
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown device.
    fn record_device_report(
        &mut self,
        udid: &str,
        reported: &[ReportedProfile],
    ) -> Result<(), StoreError>;

    /// Adds commands to the outbox (existing command UUIDs, commands
    /// whose device, request and profile are still pending, and commands
    /// waiting out their backoff after failing, are left alone).
    ///
    /// # Errors
    /// Backend failures.
    fn enqueue(&mut self, entries: &[OutboxEntry]) -> Result<(), StoreError>;

    /// Queues a plan's commands and logs its notification stages
    /// (profile UUID, stage in days) in one transaction; commands already
    /// queued, commands whose device, request and profile are still pending
    /// under another UUID (an earlier plan's), and stages already logged
    /// are left alone. A command that failed (a device's `Error`, or the
    /// MDM server's refusal) goes again with the next plan after its first
    /// failure; after two or more in a row it waits one minute, doubling up
    /// to a day, counted from its entry's `created_at`, so a device that
    /// keeps refusing is not sent a command at every change. Returns how
    /// many commands and stages were new.
    ///
    /// # Errors
    /// Backend failures (nothing is written).
    fn enqueue_plan(
        &mut self,
        entries: &[OutboxEntry],
        stages: &[(String, i64)],
        at: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError>;

    /// [`Store::enqueue_plan`] for a plan computed from the tenant as it
    /// was at the change `seen` ([`Store::last_change`] read before the
    /// plan loaded the tenant). When the tenant changed since (device
    /// answers processed meanwhile, say), each install and removal is
    /// checked against what its device reports now, as the planner would:
    /// an install of a profile the device now holds, or a removal of one it
    /// no longer holds (managed), is left out, so a plan that was already
    /// stale when it was queued sends nothing that was settled meanwhile.
    ///
    /// # Errors
    /// Backend failures (nothing is written).
    fn enqueue_plan_since(
        &mut self,
        entries: &[OutboxEntry],
        stages: &[(String, i64)],
        at: DateTime<Utc>,
        seen: Option<&str>,
    ) -> Result<(usize, usize), StoreError>;

    /// The outbox, by command UUID.
    ///
    /// # Errors
    /// Backend failures.
    fn outbox(&mut self) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Every command of the outbox the scope sees, handed to `f` one at a
    /// time as borrowed views of the stored rows, in the order the backend
    /// keeps them (not sorted: a sorted walk of a 9.8M-row SQLite outbox
    /// took 63 s, the stored order 5.5 s): what [`Store::outbox`] returns
    /// without holding the whole outbox (millions of rows on a large
    /// tenant) or copying its strings.
    ///
    /// # Errors
    /// Backend failures; a stored row that does not decode.
    fn each_command(&mut self, f: &mut dyn FnMut(CommandRow<'_>)) -> Result<(), StoreError>;

    /// Records a status change or a device's answer. NotNow counts a retry.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown command.
    fn record_result(
        &mut self,
        command_uuid: &str,
        status: CommandStatus,
        error_chain: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records many results and the device reports they lead to, in one
    /// transaction: each command's new status (NotNow counts a retry), then
    /// each device's reported profiles replaced. The cost per command does
    /// not grow with the queue.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown command or device
    /// (nothing is written).
    fn record_results(
        &mut self,
        results: &[CommandResult],
        reports: &[(String, Vec<ReportedProfile>)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Acknowledges pending commands as their devices would, in one
    /// transaction: each becomes `Acknowledged`, and its device's reported
    /// profiles change as the command says (an install adds the profile with
    /// its expiry, a removal takes it away). `None` takes every pending
    /// command, read from the pending index; `Some(ids)` those commands
    /// (UUIDs compared without regard to case), skipping any already
    /// answered. Commands of devices no longer in the inventory are left as
    /// they are. The cost per command does not grow with the queue: every
    /// row is read and written by its key.
    ///
    /// # Errors
    /// Backend failures. Unknown UUIDs are not an error: they are listed in
    /// the answer, and nothing is written.
    fn acknowledge_commands(
        &mut self,
        which: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> Result<Acknowledgement, StoreError>;

    /// Adds an MDM connection serving an organization group within the
    /// scope (and the groups below it that have none); one per group;
    /// audited without its keys.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a name in use, a group served already,
    /// a URL that is not http(s) or an empty key;
    /// [`StoreError::UnknownReference`] for a group outside the scope.
    fn add_mdm_connection(&mut self, c: &MdmConnection, actor: &Actor) -> Result<(), StoreError>;

    /// The MDM connections of the scope and the groups below it (with
    /// their keys: the caller decides what it shows).
    ///
    /// # Errors
    /// Backend failures.
    fn mdm_connections(&mut self) -> Result<Vec<MdmConnection>, StoreError>;

    /// Removes an MDM connection; audited.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for one the scope does not see.
    fn remove_mdm_connection(
        &mut self,
        name: &str,
        actor: &Actor,
    ) -> Result<MdmConnection, StoreError>;

    /// Groups planned commands whose device an MDM connection serves into
    /// dispatches (identical commands together, up to `max_batch` devices
    /// for NanoMDM, one for MicroMDM), due at `at`; one transaction.
    /// Returns how many commands went into dispatches; the others wait for
    /// a connection.
    ///
    /// # Errors
    /// Backend failures; [`StoreError::Invalid`] outside the root.
    fn prepare_dispatches(
        &mut self,
        at: DateTime<Utc>,
        max_batch: usize,
    ) -> Result<usize, StoreError>;

    /// Dispatches a command of the delivery's own (`ProvisioningProfileList`,
    /// `ValidateApplications`) to devices; returns the CommandUUIDs made.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown device.
    fn dispatch_command(
        &mut self,
        request_type: &str,
        udids: &[String],
        at: DateTime<Utc>,
        max_batch: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Claims up to `limit` dispatches due at `at`: each becomes due again
    /// at `at + lease` unless settled before (a sender that dies leaves
    /// them to another). On PostgreSQL, rows another claimer holds are
    /// skipped, so no dispatch is handed out twice at once.
    ///
    /// # Errors
    /// Backend failures.
    fn claim_dispatches(
        &mut self,
        at: DateTime<Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Records what a send came to, per enrollment id: queued devices'
    /// commands become sent, refused ones fail with the reason, the rest
    /// are due again at `retry_at` (under a new CommandUUID when part of
    /// the call went through).
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown dispatch.
    fn settle_dispatch(
        &mut self,
        command_uuid: &str,
        outcomes: &[(String, SendOutcome)],
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every dispatch.
    ///
    /// # Errors
    /// Backend failures.
    fn dispatches(&mut self) -> Result<Vec<Dispatch>, StoreError>;

    /// Keeps a webhook event to process; false when its id was received
    /// already (nothing changes).
    ///
    /// # Errors
    /// Backend failures.
    fn receive_event(
        &mut self,
        id: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The devices (UDIDs, sorted) with a command sent in `(after, until]`
    /// and still `Sent` since, found through an index of sent commands by
    /// time, not by reading the outbox. Windows move on: what was sent
    /// before `after` is forgotten by this call (ask for the next window
    /// from where the last one ended).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] below the root organization group; backend
    /// failures.
    fn unanswered(
        &mut self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError>;

    /// [`Store::receive_event`] for many events in one transaction (a
    /// receiver commits a group of webhook deliveries at once); per event,
    /// whether it was new.
    ///
    /// # Errors
    /// Backend failures (nothing is kept).
    fn receive_events(
        &mut self,
        events: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError>;

    /// Claims up to `limit` events not yet processed (each due again at
    /// `at + lease` unless recorded before): (handle, body), the handle
    /// what [`Store::record_answers`] takes to mark it processed.
    ///
    /// # Errors
    /// Backend failures.
    fn take_events(
        &mut self,
        at: DateTime<Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Applies devices' answers and marks `events` (handles from
    /// [`Store::take_events`]) processed, in one
    /// transaction: a command's status (a final one stays final; NotNow
    /// counts a retry), what an acknowledged install or removal changes in
    /// the device's list, and a `ProvisioningProfileList` answer as the
    /// device's list from now on. Audited once (`device-results`) when
    /// anything changed.
    ///
    /// # Errors
    /// Backend failures.
    fn record_answers(
        &mut self,
        events: &[String],
        answers: &[DeviceAnswer],
        at: DateTime<Utc>,
    ) -> Result<AnswerCounts, StoreError>;

    /// Adds a notification channel for an organization group within the
    /// scope; audited without its secret.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a name in use or a URL that does not
    /// suit the kind; [`StoreError::UnknownReference`] for a group outside
    /// the scope.
    fn add_channel(&mut self, c: &Channel, actor: &Actor) -> Result<(), StoreError>;

    /// The channels of the scope and below (with their secrets: the caller
    /// decides what it shows).
    ///
    /// # Errors
    /// Backend failures.
    fn channels(&mut self) -> Result<Vec<Channel>, StoreError>;

    /// Sets or clears a channel's message template; audited.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for a channel the scope does not see.
    fn set_channel_template(
        &mut self,
        name: &str,
        template: Option<&str>,
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// Sets a profile's own notification settings (the default settings
    /// clear them); audited with before and after.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for a profile the scope does not
    /// see; [`StoreError::Invalid`] for stages outside 0 to 3,650 days or
    /// a user stage (an app's setting).
    fn set_notify_settings(
        &mut self,
        profile_uuid: &str,
        settings: &NotifySettings,
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// Every profile's own notification settings, by UUID (upper case).
    ///
    /// # Errors
    /// Backend failures.
    fn notify_settings(&mut self) -> Result<Vec<(String, NotifySettings)>, StoreError>;

    /// Sets an app's own notification settings (every version of the
    /// bundle; the default settings clear them): `off` silences its device
    /// users' notices and takes it out of its profiles' messages, `stages`
    /// are the admin stages of the profiles it uses (a profile's own
    /// settings come first), `user_stage` its device users' stage. Audited
    /// with before and after.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an app the scope does not see;
    /// [`StoreError::Invalid`] for stages outside 0 to 3,650 days.
    fn set_app_notify_settings(
        &mut self,
        bundle_id: &str,
        settings: &NotifySettings,
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// Every app's own notification settings, by bundle identifier.
    ///
    /// # Errors
    /// Backend failures.
    fn app_notify_settings(&mut self) -> Result<Vec<(String, NotifySettings)>, StoreError>;

    /// Removes a channel; audited.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for one the scope does not see.
    fn remove_channel(&mut self, name: &str, actor: &Actor) -> Result<Channel, StoreError>;

    /// Makes one message per notice and channel reaching the notice's
    /// group, unless made before (each (item, stage, channel) once, across
    /// calls, restarts and processes); returns how many were made.
    ///
    /// # Errors
    /// Backend failures.
    fn queue_notices(&mut self, notices: &[Notice], at: DateTime<Utc>)
    -> Result<usize, StoreError>;

    /// Claims up to `limit` messages due at `at`, each due again at `at +
    /// lease` unless settled (skipping rows another claimer holds).
    ///
    /// # Errors
    /// Backend failures.
    fn claim_notices(
        &mut self,
        at: DateTime<Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedNotice>, StoreError>;

    /// Records a send: sent, or failed (due again at `retry_at`, the
    /// failure audited as `notify-failed`).
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for an unknown message.
    fn settle_notice(
        &mut self,
        n: &NoticeDelivery,
        outcome: Result<(), String>,
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every message, sent or not.
    ///
    /// # Errors
    /// Backend failures.
    fn notices(&mut self) -> Result<Vec<NoticeDelivery>, StoreError>;

    /// Records that a stage was notified for a profile; false when it already was.
    ///
    /// # Errors
    /// Backend failures.
    fn mark_notified(
        &mut self,
        profile_uuid: &str,
        stage: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The audit log, oldest first.
    ///
    /// # Errors
    /// Backend failures.
    fn audit_log(&mut self) -> Result<Vec<AuditEntry>, StoreError>;

    /// Imports profiles, inventory, apps and assignments in one transaction:
    /// all of it, or (on any refusal) none of it.
    ///
    /// # Errors
    /// The first refusal: a profile that does not parse, an unknown name.
    fn import_batch(&mut self, batch: &ImportBatch, actor: &Actor) -> Result<(), StoreError>;

    /// The engine's input snapshot.
    ///
    /// # Errors
    /// Backend failures or a corrupt record.
    fn load_tenant(&mut self) -> Result<provkit_policy::Tenant, StoreError>;

    /// Sets the tenant's notice stages (admin stages, the device-user
    /// notice), which [`Store::load_tenant`] gives the engine from then on;
    /// audited with before and after. Only at the root group.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for no admin stage, a stage outside 0 to
    /// 3650 days, a stage given twice, or a scope below the root.
    fn set_notice_stages(
        &mut self,
        stages: &provkit_policy::Config,
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// [`Store::preview_assignments`] without the devices (left empty):
    /// the edit checked and its targets before and after, in a transaction
    /// that is rolled back, without loading or planning the tenant (for a
    /// caller that computes the devices from an engine it holds).
    ///
    /// # Errors
    /// As [`Store::edit_assignments`].
    fn check_assignment_edit(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        at: DateTime<Utc>,
    ) -> Result<AssignmentChange, StoreError>;

    /// [`Store::edit_assignments`] without the devices (left empty): the
    /// edit checked, written and audited in one transaction, returning the
    /// targets before and after, without loading or planning the tenant
    /// (for a caller that computes the devices from an engine it holds).
    ///
    /// # Errors
    /// As [`Store::edit_assignments`].
    fn edit_assignment_targets(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        actor: &Actor,
    ) -> Result<AssignmentChange, StoreError>;

    /// What [`Store::edit_assignments`] would change, computed in a
    /// transaction that is rolled back: nothing is written or audited.
    ///
    /// # Errors
    /// As [`Store::edit_assignments`].
    fn preview_assignments(
        &mut self,
        profile_uuid: &str,
        edit: &AssignmentEdit,
        at: DateTime<Utc>,
    ) -> Result<AssignmentChange, StoreError>;

    /// Adds a console user (its password hash); audited.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when a user of that name exists, the name is
    /// empty, or its group lies outside the scope.
    fn add_console_user(&mut self, user: &ConsoleUser, actor: &Actor) -> Result<(), StoreError>;

    /// The console users within the scope, by name.
    ///
    /// # Errors
    /// Backend failures.
    fn console_users(&mut self) -> Result<Vec<ConsoleUser>, StoreError>;

    /// Removes a console user and ends its sessions; audited.
    ///
    /// # Errors
    /// [`StoreError::UnknownReference`] for a name unknown within the scope.
    fn remove_console_user(&mut self, name: &str, actor: &Actor)
    -> Result<ConsoleUser, StoreError>;

    /// Stores a session (a new one, or one whose group changed). Not
    /// audited: signing in is not a change to the tenant.
    ///
    /// # Errors
    /// Backend failures.
    fn put_session(&mut self, session: &Session) -> Result<(), StoreError>;

    /// The session whose cookie hashes to `id_sha256`, whatever the scope.
    ///
    /// # Errors
    /// Backend failures.
    fn session(&mut self, id_sha256: &str) -> Result<Option<Session>, StoreError>;

    /// Removes every session that expired before `at`; returns how many.
    ///
    /// # Errors
    /// Backend failures.
    fn purge_sessions(&mut self, at: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Ends a session (signing out); ending an unknown one does nothing.
    ///
    /// # Errors
    /// Backend failures.
    fn end_session(&mut self, id_sha256: &str) -> Result<(), StoreError>;
}

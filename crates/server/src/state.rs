//! What every handler shares: a pool of store connections (the stores are
//! synchronous, so every call runs on the blocking pool, never on the async
//! executor), the clock, and the limits.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use provkit_store::{Store, StoreError};

use crate::problem::Problem;

/// Opens one store connection.
pub type Opener = dyn Fn() -> Result<Box<dyn Store + Send>, StoreError> + Send + Sync;

/// A fixed set of store connections, handed out one at a time.
pub struct StorePool {
    idle: Mutex<Vec<Box<dyn Store + Send>>>,
    returned: Condvar,
}

impl std::fmt::Debug for StorePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorePool").finish_non_exhaustive()
    }
}

impl StorePool {
    /// `size` connections from `open` (at least one).
    ///
    /// # Errors
    /// The first connection that does not open.
    pub fn open(open: &Opener, size: usize) -> Result<Self, StoreError> {
        let idle = (0..size.max(1))
            .map(|_| open())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StorePool {
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }

    /// A pool over one store (the memory store, in tests and embedding).
    pub fn single(store: Box<dyn Store + Send>) -> Self {
        StorePool {
            idle: Mutex::new(vec![store]),
            returned: Condvar::new(),
        }
    }

    /// Runs `f` with a connection, waiting for one to be free. Blocking:
    /// call it from the blocking pool.
    fn with<T>(&self, f: impl FnOnce(&mut dyn Store) -> T) -> T {
        let asked = std::time::Instant::now();
        let store = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(s) = idle.pop() {
                    break s;
                }
                idle = self
                    .returned
                    .wait(idle)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        if asked.elapsed() >= std::time::Duration::from_millis(50) {
            tracing::debug!(
                waited_ms = asked.elapsed().as_millis(),
                "waited for a store connection"
            );
        }
        // The connection goes back even when `f` panics.
        struct Back<'a>(&'a StorePool, Option<Box<dyn Store + Send>>);
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                if let Some(s) = self.1.take() {
                    self.0
                        .idle
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(s);
                    self.0.returned.notify_one();
                }
            }
        }
        let mut back = Back(self, Some(store));
        match back.1.as_deref_mut() {
            Some(s) => f(s),
            None => unreachable!("the connection is held until the guard drops"),
        }
    }
}

impl Drop for StorePool {
    /// Connections close on a thread of their own: a store may own a
    /// runtime (the PostgreSQL client does), which must not be dropped on an
    /// async worker.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

/// The clock: the one place the server reads the time.
pub type Clock = dyn Fn() -> DateTime<Utc> + Send + Sync;

/// The engine over the tenant as an organization group sees it, built once
/// per change and per minute and shared by every read until then.
pub(crate) struct Snapshot {
    /// The tenant's last change when it was built.
    change: Option<String>,
    /// The minute (Unix time / 60) it was built in.
    minute: i64,
    /// The instant its engine was built at (what a page that lags shows).
    pub(crate) as_of: DateTime<Utc>,
    /// How long building it took (with its holders and report).
    cost: std::time::Duration,
    pub(crate) engine: Arc<provkit_policy::Engine>,
    /// Every profile summarised, in the tenant's order.
    pub(crate) summaries: Vec<provkit_service::catalog::ProfileSummary>,
    /// Indexes into `summaries`, soonest expiry first.
    pub(crate) by_expiry: Vec<usize>,
    /// Devices by UDID and profiles by UUID (reading the outbox needs
    /// them too).
    pub(crate) keys: Arc<provkit_service::catalog::TenantKeys>,
    /// The outbox indexed by device and profile (see [`AppState::commands`]):
    /// one cell shared with every snapshot made from this one (they share
    /// its keys, so the same index serves them all, and a reading under
    /// way fills it for all).
    commands: Arc<tokio::sync::Mutex<Option<Commands>>>,
    /// A background rebuild of `commands` is under way (shared likewise).
    rebuilding: Arc<std::sync::atomic::AtomicBool>,
    /// Per profile, the devices that want or hold it (made with the
    /// snapshot; shared with the snapshots derived from this one).
    holders: Arc<provkit_service::catalog::Holders>,
    /// What dies within 60 days (made and shared likewise).
    expiry60: Arc<provkit_service::expiry::ExpiryReport>,
}

/// Audited actions that change nothing the engine, the summaries' facts or
/// the outbox index hold (the notice stages are in the engine's tenant, so
/// `notice-stages` is not one): after only these, a snapshot is derived from the
/// last one (the labels read again) instead of built anew.
const ENGINE_NEUTRAL: [&str; 12] = [
    "label-profile",
    "token-create",
    "token-revoke",
    "console-user-create",
    "console-user-remove",
    "mdm-add",
    "mdm-remove",
    "notify-add",
    "notify-remove",
    "notify-template",
    "notify-settings",
    "notify-failed",
];

/// What dies within 60 days, every kind, as `engine` sees it (a snapshot's
/// dashboard report).
fn expiry60_of(engine: &provkit_policy::Engine) -> provkit_service::expiry::ExpiryReport {
    let all = provkit_service::expiry::ExpiryFilter::default();
    provkit_service::expiry::report_with(engine, 60, &all)
}

/// The newest label of every profile `changes` relabelled, as (UUID
/// upper-cased, label), each profile once.
fn new_labels(
    store: &mut dyn Store,
    changes: &[provkit_store::AuditEntry],
) -> Result<Vec<(String, provkit_store::ProfileLabel)>, StoreError> {
    let mut labels: Vec<(String, provkit_store::ProfileLabel)> = Vec::new();
    for e in changes.iter().filter(|e| e.action == "label-profile") {
        let uuid = e.object.to_ascii_uppercase();
        if labels.iter().any(|(u, _)| *u == uuid) {
            continue;
        }
        let newest = store.profile_versions(&uuid)?.pop();
        labels.push((uuid, newest.map(|r| r.label).unwrap_or_default()));
    }
    Ok(labels)
}

/// Sets the label of every summary `labels` names (see [`new_labels`]).
fn relabel(
    summaries: &mut [provkit_service::catalog::ProfileSummary],
    labels: &[(String, provkit_store::ProfileLabel)],
) {
    for (uuid, label) in labels {
        for s in summaries
            .iter_mut()
            .filter(|s| s.uuid.eq_ignore_ascii_case(uuid))
        {
            s.label.clone_from(label);
        }
    }
}

/// How long a page waits at least for the first reading of the outbox it
/// started before it says it is loading (see [`AppState::page_commands`]).
const FIRST_READING_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// More changes than this since the last snapshot: build anew without
/// reading what they were.
const DERIVE_LIMIT: usize = 64;

impl Snapshot {
    /// A snapshot holding what this one holds but `summaries` (the parts
    /// shared, its outbox index's cell too), for a successor to change
    /// some of. Never waits: an outbox reading under way goes on for both.
    fn successor(&self, summaries: Vec<provkit_service::catalog::ProfileSummary>) -> Snapshot {
        Snapshot {
            change: self.change.clone(),
            minute: self.minute,
            as_of: self.as_of,
            cost: self.cost,
            engine: Arc::clone(&self.engine),
            summaries,
            by_expiry: self.by_expiry.clone(),
            keys: Arc::clone(&self.keys),
            commands: Arc::clone(&self.commands),
            rebuilding: Arc::clone(&self.rebuilding),
            holders: Arc::clone(&self.holders),
            expiry60: Arc::clone(&self.expiry60),
        }
    }

    /// Per profile, the devices that want or hold it.
    pub(crate) fn holders(&self) -> &provkit_service::catalog::Holders {
        &self.holders
    }

    /// What dies within 60 days, every kind (the dashboard's report).
    pub(crate) fn expiry60(&self) -> &provkit_service::expiry::ExpiryReport {
        &self.expiry60
    }
}

/// An index of the outbox, when it was read and how long that took.
#[derive(Clone)]
struct Commands {
    index: Arc<provkit_service::catalog::CommandIndex>,
    read_at: std::time::Instant,
    cost: std::time::Duration,
}

/// The outbox index `commands` holds, waiting for a reading under way.
async fn index_of(commands: &tokio::sync::Mutex<Option<Commands>>) -> Option<Commands> {
    if let Ok(held) = commands.try_lock() {
        return held.clone();
    }
    let started = std::time::Instant::now();
    let held = commands.lock().await.clone();
    tracing::debug!(
        waited_ms = started.elapsed().as_millis(),
        "waited for the outbox reading under way"
    );
    held
}

/// An outbox read faster than this is read again for every request that
/// needs it: small tenants see every answer at once.
const CHEAP_INDEX: std::time::Duration = std::time::Duration::from_millis(20);

/// An index of fewer commands than this is read again for every request
/// however long the read took: a busy machine can make a small outbox's
/// read slow, and its answers must still show at once.
const SMALL_INDEX: usize = 10_000;

impl Commands {
    /// Worth keeping across requests and snapshots: slow to read, and
    /// large.
    fn costly(&self) -> bool {
        self.cost >= CHEAP_INDEX && self.index.len() >= SMALL_INDEX
    }
}

/// How many organization groups' snapshots are kept at once.
const SNAPSHOTS: usize = 4;

/// The snapshots, by organization group, and the lock that lets one build
/// at a time.
#[derive(Default)]
pub(crate) struct Snapshots {
    by_scope: Mutex<Vec<(String, Arc<Snapshot>)>>,
    building: Arc<tokio::sync::Mutex<()>>,
}

/// The webhook keys as last read: when, and (kind, key) per connection
/// that has one.
pub(crate) type WebhookKeys =
    Mutex<Option<(std::time::Instant, Vec<(provkit_store::MdmKind, String)>)>>;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub(crate) pool: Arc<StorePool>,
    pub(crate) clock: Arc<Clock>,
    pub(crate) limits: crate::Limits,
    pub(crate) snapshots: Arc<Snapshots>,
    /// Wakes the delivery worker (a webhook event arrived).
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// The connections' webhook keys by kind, and when they were read.
    pub(crate) webhook_keys: Arc<WebhookKeys>,
    /// The webhook receivers' group commit, started with the first event.
    pub(crate) inbox: Arc<std::sync::OnceLock<crate::api::mdm::InboxWriter>>,
    /// Console cookies carry `Secure` (the server speaks TLS).
    pub(crate) secure_cookies: bool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `pool` with the system clock.
    pub fn new(pool: StorePool, limits: crate::Limits) -> Self {
        AppState {
            pool: Arc::new(pool),
            clock: Arc::new(Utc::now),
            limits,
            snapshots: Arc::new(Snapshots::default()),
            wake: Arc::new(tokio::sync::Notify::new()),
            inbox: Arc::new(std::sync::OnceLock::new()),
            webhook_keys: Arc::new(Mutex::new(None)),
            secure_cookies: false,
        }
    }

    /// The same state with console cookies marked `Secure`: set it when
    /// the server speaks TLS.
    #[must_use]
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// The same state reading time from `clock` (tests drive time).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the state's clock.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The engine as the organization group `scope` sees the tenant now:
    /// the cached one while the tenant has not changed (no audited write by
    /// any process) and the minute is the same, else built anew (one build
    /// at a time; the others wait for it and share it). When only the
    /// minute has turned, the last one is answered while a new one is built
    /// in the background, so a read never waits for the clock. After
    /// changes that leave the engine as it was (labels, tokens, console
    /// users, settings: [`ENGINE_NEUTRAL`]) a snapshot is derived from the
    /// last one at once; after any other change every read waits for the
    /// new one.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn snapshot(&self, scope: &str) -> Result<Arc<Snapshot>, Problem> {
        Ok(self.snapshot_for(scope, None).await?.0)
    }

    /// [`AppState::snapshot`] for a console page: after a change that needs
    /// a new build, on a tenant whose last build took longer than
    /// [`crate::Limits::console_build_wait`], the last snapshot answers while the new one is
    /// built in the background, and the page says it lags (`console`
    /// carries the instant it shows). Small tenants wait as before.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn page_snapshot(
        &self,
        console: &crate::console::Console,
    ) -> Result<Arc<Snapshot>, Problem> {
        self.page_snapshot_having(console, |_| true).await
    }

    /// [`AppState::page_snapshot`] for a page about one object: a lagging
    /// snapshot in which `has` does not find it (made by the change the
    /// snapshot lags behind) is not answered; the page waits for the new
    /// one.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn page_snapshot_having(
        &self,
        console: &crate::console::Console,
        has: impl Fn(&Snapshot) -> bool,
    ) -> Result<Arc<Snapshot>, Problem> {
        let deadline = Some(self.page_deadline(console));
        let (snap, lags) = self.snapshot_for(console.scope(), deadline).await?;
        if !lags {
            return Ok(snap);
        }
        if !has(&snap) {
            return self.snapshot(console.scope()).await;
        }
        console.lags_at(snap.as_of, snap.cost);
        Ok(snap)
    }

    /// Until when a console page waits for a build or a first outbox
    /// reading under way before it says it is loading:
    /// [`crate::Limits::console_build_wait`] after the request came, for
    /// every wait of the page together.
    fn page_deadline(&self, console: &crate::console::Console) -> tokio::time::Instant {
        console.asked + self.limits.console_build_wait
    }

    /// The scope's snapshot and whether it lags behind the tenant's last
    /// change (only for a console page, which waits for a build under way
    /// until its `deadline`).
    async fn snapshot_for(
        &self,
        scope: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(Arc<Snapshot>, bool), Problem> {
        let now = self.now();
        let minute = now.timestamp().div_euclid(60);
        let change = self.run(scope, |store| Ok(store.last_change()?)).await?;
        if let Some(last) = self.kept(scope) {
            if last.change == change {
                if last.minute != minute {
                    // Only the minute turned: move the last snapshot to
                    // now unless a build is under way.
                    self.advance_in_background(scope, &last, minute, now);
                }
                return Ok((last, false));
            }
            let since = last.change.clone();
            let neutral = self
                .run(scope, move |store| {
                    match store.changes_since(since.as_deref(), DERIVE_LIMIT)? {
                        Some(changes)
                            if changes
                                .iter()
                                .all(|e| ENGINE_NEUTRAL.contains(&e.action.as_str())) =>
                        {
                            Ok(Some(new_labels(store, &changes)?))
                        }
                        _ => Ok(None),
                    }
                })
                .await?;
            if let Some(labels) = neutral {
                return Ok((self.derive(scope, &last, change, &labels), false));
            }
            if deadline.is_some() && last.cost > self.limits.console_build_wait {
                self.build_in_background(scope, change, minute, now);
                return Ok((last, true));
            }
        }
        // A console page waits a bounded time for a build under way (the
        // first reading of a large tenant) and then says it is loading.
        let _building = if let Some(deadline) = deadline {
            tokio::time::timeout_at(deadline, self.snapshots.building.lock())
                .await
                .map_err(|_| {
                    tracing::debug!("a snapshot is being built: loading");
                    Problem::loading()
                })?
        } else {
            self.snapshots.building.lock().await
        };
        if let Some(snap) = self
            .kept(scope)
            .filter(|s| s.change == change && s.minute == minute)
        {
            return Ok((snap, false));
        }
        Ok((self.build(scope, change, minute, now).await?, false))
    }

    /// The snapshot kept for `scope`, whatever change it was built at.
    fn kept(&self, scope: &str) -> Option<Arc<Snapshot>> {
        self.snapshots
            .by_scope
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(s, _)| s == scope)
            .map(|(_, snap)| Arc::clone(snap))
    }

    /// Keeps `snap` as the snapshot of `scope` (the oldest scope's is let
    /// go past [`SNAPSHOTS`]).
    fn keep(&self, scope: &str, snap: &Arc<Snapshot>) {
        let mut all = self
            .snapshots
            .by_scope
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        all.retain(|(s, _)| s != scope);
        all.push((scope.to_owned(), Arc::clone(snap)));
        if all.len() > SNAPSHOTS {
            all.remove(0);
        }
    }

    /// Builds the snapshot of `scope` at `change` on a task of its own,
    /// unless a build is under way.
    fn build_in_background(
        &self,
        scope: &str,
        change: Option<String>,
        minute: i64,
        now: DateTime<Utc>,
    ) {
        if let Ok(guard) = Arc::clone(&self.snapshots.building).try_lock_owned() {
            let (state, scope) = (self.clone(), scope.to_owned());
            tokio::spawn(async move {
                let _building = guard;
                if let Err(p) = state.build(&scope, change, minute, now).await {
                    tracing::warn!(detail = %p.detail, "rebuilding a snapshot failed");
                }
            });
        }
    }

    /// Moves `last` to `now` on a task of its own, unless a build is under
    /// way: the engine is advanced (only the devices that want a profile
    /// expiring in between are planned again, see
    /// [`provkit_policy::Engine::advance`]), the summaries' days left set
    /// again and the 60-day report made again; the tenant, keys, holders
    /// and outbox index are shared with `last`. At 1M devices this is a fraction of a
    /// build, which once ran every minute on both cores.
    fn advance_in_background(
        &self,
        scope: &str,
        last: &Arc<Snapshot>,
        minute: i64,
        now: DateTime<Utc>,
    ) {
        let Ok(guard) = Arc::clone(&self.snapshots.building).try_lock_owned() else {
            return;
        };
        let (state, scope, last) = (self.clone(), scope.to_owned(), Arc::clone(last));
        tokio::spawn(async move {
            let _building = guard;
            if let Err(p) = state.advance(&scope, &last, minute, now).await {
                tracing::warn!(detail = %p.detail, "moving a snapshot to the new minute failed");
            }
        });
    }

    /// [`AppState::advance_in_background`]'s work (the caller holds the
    /// building lock).
    async fn advance(
        &self,
        scope: &str,
        last: &Arc<Snapshot>,
        minute: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Problem> {
        let started = std::time::Instant::now();
        let mut engine = (*last.engine).clone();
        let mut summaries = last.summaries.clone();
        let (engine, summaries, expiry60) = self
            .compute(move || {
                engine.advance(now);
                provkit_service::catalog::retime_summaries(&mut summaries, now);
                let report = expiry60_of(&engine);
                Ok((engine, summaries, report))
            })
            .await?;
        let snap = Arc::new(Snapshot {
            minute,
            as_of: now,
            engine: Arc::new(engine),
            expiry60: Arc::new(expiry60),
            ..last.successor(summaries)
        });
        // A snapshot derived meanwhile (after an engine-neutral change) is
        // newer: keep it.
        if self.kept(scope).is_some_and(|k| Arc::ptr_eq(&k, last)) {
            self.keep(scope, &snap);
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis(),
            "snapshot moved to the new minute"
        );
        Ok(())
    }

    /// A snapshot at `change` made from `last` after engine-neutral
    /// changes: the same engine, keys, outbox index and reports, with the
    /// `labels` read again ([`new_labels`]).
    fn derive(
        &self,
        scope: &str,
        last: &Arc<Snapshot>,
        change: Option<String>,
        labels: &[(String, provkit_store::ProfileLabel)],
    ) -> Arc<Snapshot> {
        let mut summaries = last.summaries.clone();
        relabel(&mut summaries, labels);
        let snap = Arc::new(Snapshot {
            change,
            ..last.successor(summaries)
        });
        self.keep(scope, &snap);
        snap
    }

    /// When every change since `last` edited assignments or left the engine
    /// as it was ([`ENGINE_NEUTRAL`]), the snapshot at `change` made from
    /// `last` instead of a build: the assignments read again and given to a
    /// clone of its engine ([`provkit_policy::Engine::set_assignments`]
    /// plans again only the devices the edited assignments reach), moved to
    /// `now`; the summaries, holders and 60-day report made again, the
    /// labels of relabelled profiles read again; tenant, keys, expiry order
    /// and outbox index shared. At 1M devices this is a fraction of a build
    /// (which reads the whole tenant from the store). `None` when another
    /// change needs a build.
    async fn reassigned(
        &self,
        scope: &str,
        last: &Arc<Snapshot>,
        change: Option<String>,
        minute: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Snapshot>>, Problem> {
        let started = std::time::Instant::now();
        let since = last.change.clone();
        let read = self
            .run(scope, move |store| {
                let Some(changes) = store.changes_since(since.as_deref(), DERIVE_LIMIT)? else {
                    return Ok(None);
                };
                let reassignable = |a: &str| a == "set-assignments" || ENGINE_NEUTRAL.contains(&a);
                if !changes.iter().any(|e| e.action == "set-assignments")
                    || !changes.iter().all(|e| reassignable(&e.action))
                {
                    return Ok(None);
                }
                Ok(Some((store.assignments()?, new_labels(store, &changes)?)))
            })
            .await?;
        let Some((records, labels)) = read else {
            return Ok(None);
        };
        let mut engine = (*last.engine).clone();
        let old = Arc::clone(last);
        let made = self
            .compute(move || {
                let list = provkit_store::resolve_assignments(engine.tenant(), &records);
                if engine.set_assignments(list).is_err() {
                    // An id the engine does not know: the tenant changed
                    // otherwise, so build.
                    return Ok(None);
                }
                engine.advance(now);
                let mut summaries = provkit_service::catalog::summaries_of(&engine);
                for (s, o) in summaries.iter_mut().zip(&old.summaries) {
                    s.label.clone_from(&o.label);
                }
                relabel(&mut summaries, &labels);
                let holders = provkit_service::catalog::Holders::build(&engine);
                let report = expiry60_of(&engine);
                Ok(Some((engine, summaries, holders, report)))
            })
            .await?;
        let Some((engine, summaries, holders, expiry60)) = made else {
            return Ok(None);
        };
        let snap = Arc::new(Snapshot {
            change,
            minute,
            as_of: now,
            engine: Arc::new(engine),
            holders: Arc::new(holders),
            expiry60: Arc::new(expiry60),
            ..last.successor(summaries)
        });
        self.keep(scope, &snap);
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis(),
            "snapshot made from the last one after assignment edits"
        );
        Ok(Some(snap))
    }

    /// Builds and keeps the snapshot of `scope` (the caller holds the
    /// building lock); after assignment edits only, made from the last one
    /// ([`AppState::reassigned`]).
    async fn build(
        &self,
        scope: &str,
        change: Option<String>,
        minute: i64,
        now: DateTime<Utc>,
    ) -> Result<Arc<Snapshot>, Problem> {
        if let Some(last) = self.kept(scope)
            && let Some(snap) = self
                .reassigned(scope, &last, change.clone(), minute, now)
                .await?
        {
            return Ok(snap);
        }
        // The last snapshot's outbox index, when it was costly to read, goes
        // on with this one (moved to its ids) instead of being read again.
        let carried = match &self.kept(scope) {
            Some(p) => index_of(&p.commands)
                .await
                .filter(Commands::costly)
                .map(|c| (Arc::clone(&p.engine), c)),
            None => None,
        };
        let started = std::time::Instant::now();
        let (engine, keys, commands, summaries, by_expiry) = self
            .run(scope, move |store| {
                let engine = provkit_policy::Engine::new(store.load_tenant()?, now);
                let keys = provkit_service::catalog::TenantKeys::new(&engine);
                let commands = carried.map(|(old, c)| Commands {
                    index: Arc::new(c.index.remap_keyed(&old, &keys)),
                    ..c
                });
                let mut summaries = provkit_service::catalog::summaries_of(&engine);
                provkit_service::catalog::label_summaries(&mut summaries, &store.profiles()?);
                let mut by_expiry: Vec<usize> = (0..summaries.len()).collect();
                by_expiry.sort_by(|&a, &b| {
                    let (a, b) = (&summaries[a], &summaries[b]);
                    a.expires.cmp(&b.expires).then(a.uuid.cmp(&b.uuid))
                });
                Ok((engine, keys, commands, summaries, by_expiry))
            })
            .await?;
        // What most pages ask for first, made off the store's connections
        // before any page waits for it.
        let (engine, holders, expiry60) = self
            .compute(move || {
                let holders = provkit_service::catalog::Holders::build(&engine);
                let report = expiry60_of(&engine);
                Ok((engine, holders, report))
            })
            .await?;
        let snap = Arc::new(Snapshot {
            change,
            minute,
            as_of: now,
            cost: started.elapsed(),
            engine: Arc::new(engine),
            summaries,
            by_expiry,
            keys: Arc::new(keys),
            commands: Arc::new(tokio::sync::Mutex::new(commands)),
            rebuilding: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            holders: Arc::new(holders),
            expiry60: Arc::new(expiry60),
        });
        self.keep(scope, &snap);
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis(),
            scope,
            "snapshot built"
        );
        Ok(snap)
    }

    /// The outbox of `snap`'s tenant indexed by device and profile. When
    /// reading the outbox is cheap (under 20 ms) it is read for every
    /// request, so answers show at once; else the last index is answered
    /// while it is younger than ten times its cost (at least 15 s) and
    /// re-read in the background after that, so a page never waits for
    /// the outbox of a large tenant twice and the reading takes at most a
    /// tenth of a core.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn commands(
        &self,
        scope: &str,
        snap: &Arc<Snapshot>,
    ) -> Result<Arc<provkit_service::catalog::CommandIndex>, Problem> {
        self.commands_within(scope, snap, None).await
    }

    /// [`AppState::commands`] for a console page: while the outbox is read
    /// for the first time (by this request or another), the page waits
    /// until its deadline ([`AppState::page_deadline`], shared with its
    /// wait for a build; a reading it started itself at least half a
    /// second) and then says it is loading; the reading goes on in the
    /// background.
    ///
    /// # Errors
    /// Store failures; [`Problem::loading`].
    pub(crate) async fn page_commands(
        &self,
        console: &crate::console::Console,
        snap: &Arc<Snapshot>,
    ) -> Result<Arc<provkit_service::catalog::CommandIndex>, Problem> {
        let deadline = Some(self.page_deadline(console));
        self.commands_within(console.scope(), snap, deadline).await
    }

    async fn commands_within(
        &self,
        scope: &str,
        snap: &Arc<Snapshot>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Arc<provkit_service::catalog::CommandIndex>, Problem> {
        use std::sync::atomic::Ordering;
        let mut held = match deadline {
            Some(d) => tokio::time::timeout_at(d, snap.commands.lock())
                .await
                .map_err(|_| {
                    tracing::debug!("the outbox is being read: loading");
                    Problem::loading()
                })?,
            None => snap.commands.lock().await,
        };
        if let Some(c) = held.as_ref().filter(|c| c.costly()) {
            let ttl = (c.cost * 10).max(std::time::Duration::from_secs(15));
            if c.read_at.elapsed() >= ttl && !snap.rebuilding.swap(true, Ordering::AcqRel) {
                let (state, scope, snap) = (self.clone(), scope.to_owned(), Arc::clone(snap));
                tokio::spawn(async move {
                    match state.read_commands(&scope, &snap).await {
                        Ok(fresh) => *snap.commands.lock().await = Some(fresh),
                        Err(p) => {
                            tracing::warn!(detail = %p.detail, "re-reading the outbox failed")
                        }
                    }
                    snap.rebuilding.store(false, Ordering::Release);
                });
            }
            return Ok(Arc::clone(&c.index));
        }
        if let Some(d) = deadline
            && held.is_none()
        {
            // The first reading (about 20 s at 1M devices with the plan
            // queued): on a task of its own, so the page can stop waiting.
            drop(held);
            let (state, scope, snap) = (self.clone(), scope.to_owned(), Arc::clone(snap));
            let reading = tokio::spawn(async move {
                let mut held = snap.commands.lock().await;
                match held.as_ref() {
                    Some(c) => Ok(Arc::clone(&c.index)),
                    None => state.read_into(&scope, &snap, &mut held).await,
                }
            });
            // At least half a second, so a small outbox is read at once
            // even when pages are told not to wait for builds.
            let d = d.max(tokio::time::Instant::now() + FIRST_READING_WAIT);
            return match tokio::time::timeout_at(d, reading).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "reading the outbox failed");
                    Err(Problem::failed())
                }
                Err(_) => Err(Problem::loading()),
            };
        }
        self.read_into(scope, snap, &mut held).await
    }

    /// Reads `snap`'s outbox index into `held` (its lock, held) and
    /// answers it.
    async fn read_into(
        &self,
        scope: &str,
        snap: &Arc<Snapshot>,
        held: &mut Option<Commands>,
    ) -> Result<Arc<provkit_service::catalog::CommandIndex>, Problem> {
        let fresh = self.read_commands(scope, snap).await?;
        let index = Arc::clone(&fresh.index);
        *held = Some(fresh);
        Ok(index)
    }

    async fn read_commands(&self, scope: &str, snap: &Arc<Snapshot>) -> Result<Commands, Problem> {
        let s = Arc::clone(snap);
        let started = std::time::Instant::now();
        let index = self
            .run(scope, move |store| {
                Ok(provkit_service::catalog::CommandIndex::read_keyed(
                    &s.keys, store,
                )?)
            })
            .await?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis(),
            commands = index.len(),
            "outbox read"
        );
        Ok(Commands {
            index: Arc::new(index),
            read_at: std::time::Instant::now(),
            cost: started.elapsed(),
        })
    }

    /// Reads the tenant as the root group sees it, and its outbox, before
    /// anyone asks (`run` starts it with the server): the first pages then
    /// wait for less, and say they are loading instead of hanging while it
    /// runs.
    pub(crate) async fn warm_up(&self) {
        let root = provkit_store::org::ROOT;
        let started = std::time::Instant::now();
        let warmed = match self.snapshot(root).await {
            Ok(snap) => self.commands(root, &snap).await.map(|_| ()),
            Err(p) => Err(p),
        };
        match warmed {
            Ok(()) => tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                "the tenant and its outbox are read"
            ),
            Err(p) => tracing::warn!(detail = %p.detail, "reading the tenant at start failed"),
        }
    }

    /// Runs CPU work on the blocking pool, off the async workers.
    ///
    /// # Errors
    /// A 500 problem when the task panicked.
    pub(crate) async fn compute<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "compute task failed");
            Err(Problem::failed())
        })
    }

    /// Runs a store operation on the blocking pool, on a connection acting
    /// within the organization group `scope` (every call names one, so no
    /// request runs in another's).
    ///
    /// # Errors
    /// What `f` returns, or a 500 problem when the task panicked.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        scope: &str,
        f: impl FnOnce(&mut dyn Store) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        let pool = Arc::clone(&self.pool);
        let scope = scope.to_owned();
        tokio::task::spawn_blocking(move || {
            pool.with(|store| {
                store.set_scope(&scope);
                f(store)
            })
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "store task failed");
            Err(Problem::failed())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse as _;

    fn state(wait: std::time::Duration) -> AppState {
        let open: Box<Opener> = Box::new(|| {
            Ok(Box::new(provkit_store::MemoryStore::default()) as Box<dyn Store + Send>)
        });
        let limits = crate::Limits {
            console_build_wait: wait,
            ..crate::Limits::default()
        };
        AppState::new(StorePool::open(&*open, 1).expect("pool"), limits)
    }

    /// Stores, as `actor` at `at`, an unlabelled profile `uuid` for all
    /// devices signed by `ca`, made 300 days before `at`, expiring at
    /// `expires`.
    fn store_profile(
        store: &mut dyn Store,
        ca: &provkit_profile::fixtures::TestCa,
        uuid: &str,
        at: DateTime<Utc>,
        expires: DateTime<Utc>,
        actor: &provkit_store::Actor,
    ) -> Result<(), Problem> {
        use provkit_profile::fixtures::{ProfileSpec, signed_profile};
        let bytes = signed_profile(
            ca,
            &ProfileSpec {
                creation: at - chrono::TimeDelta::days(300),
                expiration: expires,
                ..ProfileSpec::for_all_devices(uuid)
            },
        );
        let verifier = provkit_service::trust::tenant_verifier(store)?;
        provkit_service::trust::store_labeled_profile(
            store,
            &bytes,
            &provkit_store::ProfileLabel::default(),
            &verifier,
            at,
            actor,
            false,
        )?;
        Ok(())
    }

    /// A page's deadline 50 ms from now.
    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + std::time::Duration::from_millis(50)
    }

    /// A state over an empty memory store whose clock reads the returned
    /// cell, set to the returned instant (2026-12-06 12:00 UTC).
    fn clocked_state() -> (
        AppState,
        Arc<std::sync::Mutex<DateTime<Utc>>>,
        DateTime<Utc>,
    ) {
        use chrono::TimeZone as _;
        let start = Utc
            .with_ymd_and_hms(2026, 12, 6, 12, 0, 0)
            .single()
            .expect("date");
        let clock = Arc::new(std::sync::Mutex::new(start));
        let c = Arc::clone(&clock);
        let state = state(std::time::Duration::from_secs(1))
            .with_clock(Arc::new(move || *c.lock().expect("clock")));
        (state, clock, start)
    }

    /// regression guard for the first console pages of a process hanging
    /// while the tenant was first read (80 s at 1M devices with the plan
    /// queued): a page waits a bounded time for a build or an outbox
    /// reading under way and then says it is loading (503, reloading
    /// itself); the API waits.
    #[tokio::test]
    async fn a_first_page_hung_while_the_tenant_was_first_read() {
        let wait = std::time::Duration::from_millis(50);
        let state = state(wait);
        let root = provkit_store::org::ROOT;
        // A build under way holds the lock, as the warm-up does.
        let held = state.snapshots.building.lock().await;
        let p = state
            .snapshot_for(root, Some(soon()))
            .await
            .err()
            .expect("loading");
        assert_eq!((p.status.as_u16(), p.code), (503, "loading"));
        let api = {
            let state = state.clone();
            tokio::spawn(async move { state.snapshot(root).await.map(|_| ()) })
        };
        tokio::time::sleep(wait * 2).await;
        assert!(!api.is_finished(), "the API waits for the build");
        drop(held);
        api.await.expect("joined").expect("the API's snapshot");
        let (snap, lags) = state.snapshot_for(root, Some(soon())).await.expect("kept");
        assert!(!lags);
        // An outbox reading under way likewise.
        let held = snap.commands.lock().await;
        let p = state
            .commands_within(root, &snap, Some(soon()))
            .await
            .expect_err("loading");
        assert_eq!(p.code, "loading");
        drop(held);
        let index = state.commands_within(root, &snap, Some(soon())).await;
        assert_eq!(index.expect("read").len(), 0);
        // The page a browser gets reloads itself.
        let page = crate::console::Failure::from(Problem::loading()).into_response();
        assert_eq!(page.status().as_u16(), 503);
        assert_eq!(
            page.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"2"[..])
        );
        let body = axum::body::to_bytes(page.into_body(), usize::MAX)
            .await
            .expect("body");
        let html = String::from_utf8_lossy(&body);
        assert!(
            html.contains(r#"<meta http-equiv="refresh" content="2">"#),
            "{html}"
        );
    }

    /// regression guard for the first console page after a start waiting
    /// for the whole outbox to be read (130.8 s at 1M devices with the
    /// plan queued, `console_pages`, no "Loading" page): the page that
    /// starts the first reading waits at most its bound, says it is
    /// loading, and the reading goes on; the next page gets the index.
    #[tokio::test]
    async fn the_first_outbox_reading_held_the_page() {
        let state = state(std::time::Duration::from_secs(1));
        let root = provkit_store::org::ROOT;
        let snap = state.snapshot(root).await.expect("snapshot");
        // The pool's one connection held, so the reading takes as long as
        // the test wants.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let state = state.clone();
            tokio::spawn(async move {
                state
                    .run(root, move |_| {
                        let _ = held.recv();
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let page = state.commands_within(root, &snap, Some(soon()));
        let p = tokio::time::timeout(std::time::Duration::from_secs(2), page)
            .await
            .expect("the page waited for the whole reading")
            .expect_err("loading");
        assert_eq!((p.status.as_u16(), p.code), (503, "loading"));
        release.send(()).expect("release");
        blocker.await.expect("joined").expect("blocker");
        let mut read = None;
        for _ in 0..200 {
            match state.commands_within(root, &snap, Some(soon())).await {
                Ok(index) => {
                    read = Some(index);
                    break;
                }
                Err(p) => assert_eq!(p.code, "loading"),
            }
        }
        assert_eq!(read.expect("read in the background").len(), 0);
        assert!(snap.commands.lock().await.is_some(), "kept for the next");
    }

    /// regression guard for a snapshot moved to the new minute while the
    /// outbox was first read (92.6 s at 1M devices with the plan queued,
    /// `console_pages`): the move copied the outbox index, so it waited
    /// for the whole reading while holding the build lock, and a change
    /// made meanwhile was built only after it. The snapshots made from
    /// one share its index's cell: the move does not wait, and the reading
    /// under way fills the index for both.
    #[tokio::test]
    async fn moving_to_the_new_minute_waited_for_the_outbox_reading() {
        let (state, clock, start) = clocked_state();
        let root = provkit_store::org::ROOT;
        let snap = state.snapshot(root).await.expect("snapshot");
        let reading = snap.commands.lock().await;
        *clock.lock().expect("clock") = start + chrono::TimeDelta::seconds(61);
        let later = state.now();
        let minute = later.timestamp().div_euclid(60);
        let moved = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            state.advance(root, &snap, minute, later),
        )
        .await
        .expect("the move waited for the reading");
        moved.expect("moved");
        let next = state.kept(root).expect("kept");
        assert!(!Arc::ptr_eq(&next, &snap) && next.minute == minute);
        drop(reading);
        let index = state.commands(root, &snap).await.expect("read");
        let shared = next.commands.lock().await;
        assert!(
            shared
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(&c.index, &index)),
            "one reading for both"
        );
    }

    /// regression guard for the once-a-minute rebuild of the whole tenant
    /// (about 7 s of both cores at 1M devices, and pages that met it were
    /// slow): when only the minute turns, the last snapshot is moved to the
    /// new instant, the tenant's keys, holders and outbox index shared,
    /// and it plans exactly as a snapshot built at that instant: a profile
    /// that expired in between is no longer to be installed.
    #[tokio::test]
    async fn the_minute_rebuilt_the_whole_tenant() {
        use provkit_profile::fixtures::TestCa;
        let (state, clock, start) = clocked_state();
        let root = provkit_store::org::ROOT;
        let ca = TestCa::rsa();
        let uuid = "5A1E0000-0000-4000-8000-000000000001";
        let expires = start + chrono::TimeDelta::seconds(90);
        state
            .run(root, move |store| {
                let actor = provkit_store::Actor {
                    name: "test".into(),
                    at: start,
                };
                provkit_service::trust::add_anchor(store, ca.root.cert.der(), &actor)?;
                store_profile(store, &ca, uuid, start, expires, &actor)?;
                let inventory: provkit_store::Inventory = serde_json::from_str(
                    r#"{"users": ["ann"], "devices": [{"udid": "DEV-1", "user": "ann"}]}"#,
                )
                .expect("inventory");
                store.import_inventory(&inventory, &actor)?;
                store.set_assignments(
                    uuid,
                    &[provkit_store::TargetName::AllDevices],
                    &[],
                    &actor,
                )?;
                Ok(())
            })
            .await
            .expect("tenant");
        let first = state.snapshot(root).await.expect("first");
        assert_eq!(first.engine.plan().command_count(), 1, "the install");
        // Two minutes on: the profile expired at the 90th second.
        let later = start + chrono::TimeDelta::seconds(125);
        *clock.lock().expect("clock") = later;
        let answered = state.snapshot(root).await.expect("answered");
        assert!(
            Arc::ptr_eq(&answered, &first),
            "answered at once from the last one"
        );
        let mut moved = first.clone();
        for _ in 0..500 {
            moved = state.snapshot(root).await.expect("moved");
            if moved.as_of == later {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(moved.as_of, later, "moved to the new minute");
        assert_eq!(moved.engine.at(), later);
        assert!(Arc::ptr_eq(&moved.keys, &first.keys), "not rebuilt");
        assert!(Arc::ptr_eq(&moved.holders, &first.holders), "not rebuilt");
        let tenant = state
            .run(root, |store| Ok(store.load_tenant()?))
            .await
            .expect("tenant");
        let built = provkit_policy::Engine::new(tenant, later);
        assert_eq!(moved.engine.plan(), built.plan());
        assert_eq!(
            moved.engine.plan().command_count(),
            0,
            "expired: no install"
        );
        let days = |s: &Snapshot| s.summaries.iter().map(|p| p.days_left).collect::<Vec<_>>();
        assert_eq!(days(&moved), vec![-1]);
        assert_eq!(days(&first), vec![0]);
        // The first snapshot is as it was.
        assert_eq!(first.engine.plan().command_count(), 1);
    }

    /// regression guard for the whole tenant read and planned again after
    /// every assignment edit (about 8 s at 1M devices, the console showing
    /// the last snapshot meanwhile): after edits of assignments (and
    /// labels) only, the snapshot is made from the last one, sharing its
    /// keys, and equals one built anew: plan, summaries with their labels,
    /// holders and the 60-day report. Any other change still builds.
    #[tokio::test]
    async fn an_assignment_edit_rebuilt_the_whole_tenant() {
        use provkit_profile::fixtures::TestCa;
        use provkit_store::TargetName;
        let (state, clock, start) = clocked_state();
        let root = provkit_store::org::ROOT;
        let ca = TestCa::rsa();
        let uuids = [
            "A5516000-0000-4000-8000-000000000001",
            "A5516000-0000-4000-8000-000000000002",
        ];
        let actor = provkit_store::Actor {
            name: "test".into(),
            at: start,
        };
        let a = actor.clone();
        state
            .run(root, move |store| {
                provkit_service::trust::add_anchor(store, ca.root.cert.der(), &a)?;
                for (i, uuid) in uuids.iter().enumerate() {
                    let expires = start + chrono::TimeDelta::days(20 + 30 * i as i64);
                    store_profile(store, &ca, uuid, start, expires, &a)?;
                }
                let inventory: provkit_store::Inventory = serde_json::from_str(
                    r#"{"users": ["ann", "bob"],
                        "devices": [{"udid": "DEV-1", "user": "ann"}, {"udid": "DEV-2", "user": "bob"}],
                        "groups": [{"name": "Executives", "kind": "user", "members": ["bob"]},
                                   {"name": "Phones", "kind": "device", "members": ["DEV-1"]}]}"#,
                )
                .expect("inventory");
                store.import_inventory(&inventory, &a)?;
                store.set_assignments(uuids[0], &[TargetName::AllUsers], &[], &a)?;
                Ok(())
            })
            .await
            .expect("tenant");
        let first = state.snapshot(root).await.expect("first");
        assert_eq!(first.engine.plan().command_count(), 2, "both devices");

        // All users but the executives, the second profile to the phones,
        // and a label: assignments and labels only.
        let a = actor.clone();
        state
            .run(root, move |store| {
                store.set_assignments(
                    uuids[0],
                    &[TargetName::AllUsers],
                    &[TargetName::Group("Executives".into())],
                    &a,
                )?;
                store.set_assignments(uuids[1], &[TargetName::Group("Phones".into())], &[], &a)?;
                let label = provkit_store::ProfileLabel {
                    name: Some("Field app".into()),
                    description: None,
                };
                store.label_profile(uuids[1], &label, &a)?;
                Ok(())
            })
            .await
            .expect("edits");
        let later = start + chrono::TimeDelta::minutes(3);
        *clock.lock().expect("clock") = later;
        let second = state.snapshot(root).await.expect("second");
        assert!(
            Arc::ptr_eq(&second.keys, &first.keys),
            "made from the last snapshot, not built"
        );
        let (tenant, records) = state
            .run(root, |store| Ok((store.load_tenant()?, store.profiles()?)))
            .await
            .expect("tenant");
        let built = provkit_policy::Engine::new(tenant, later);
        assert_eq!(second.engine.tenant(), built.tenant());
        assert_eq!(second.engine.plan(), built.plan());
        assert_eq!(second.as_of, later);
        let mut summaries = provkit_service::catalog::summaries_of(&built);
        provkit_service::catalog::label_summaries(&mut summaries, &records);
        assert_eq!(second.summaries, summaries);
        assert_eq!(second.summaries[1].label.name.as_deref(), Some("Field app"));
        assert_eq!(
            *second.holders,
            provkit_service::catalog::Holders::build(&built)
        );
        assert_eq!(*second.expiry60, expiry60_of(&built));
        // bob's device lost the first profile: two installs, both on DEV-1.
        let dev2 = provkit_policy::DeviceId(1);
        assert_eq!(built.tenant().devices[1].udid, "DEV-2");
        assert!(second.engine.desired(dev2).is_empty());
        assert_eq!(second.engine.plan().command_count(), 2);
        // The first snapshot is as it was.
        assert_eq!(first.engine.plan().command_count(), 2);
        assert!(!first.engine.desired(dev2).is_empty());

        // A membership change is not an assignment edit: built anew.
        let a = actor.clone();
        state
            .run(root, move |store| {
                store.add_member("Executives", "ann", &a)?;
                Ok(())
            })
            .await
            .expect("member");
        let third = state.snapshot(root).await.expect("third");
        assert!(!Arc::ptr_eq(&third.keys, &second.keys), "built anew");
        assert!(third.engine.plan().command_count() < 2);
    }
}

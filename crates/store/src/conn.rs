//! The backends' common ground: ordered document tables, one row per entity
//! (key → JSON document), profile bytes beside them, and transactions.
//! [`crate::doc_store`] puts all of the store's logic on top of this once;
//! each real backend is its own file (`conn/sqlite.rs`, `conn/postgres.rs`).

use std::collections::BTreeMap;

use crate::error::StoreError;

/// The tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Table {
    Meta,
    Profiles,
    Apps,
    Users,
    Devices,
    Groups,
    Assignments,
    Outbox,
    Notifications,
    Audit,
    /// Commands not yet final, by (device, request, profile): the key that
    /// keeps a re-plan from queueing the same command twice.
    Pending,
    /// Commands planned and not yet handed to an MDM dispatch, by
    /// (request, profile, device).
    Undispatched,
    /// Calls to an MDM server: one CommandUUID for one or more devices.
    Dispatches,
    /// Dispatches to send, by (due instant, CommandUUID).
    DispatchDue,
    /// Webhook events received, by event id.
    Inbox,
    /// Webhook events not yet processed, by (arrival, event id).
    InboxDue,
    /// Notification messages, one per (item, stage, channel).
    NoticeOut,
    /// Messages to send, by (due instant, key).
    NoticeDue,
    /// Users' email addresses, by user name.
    UserEmails,
    /// Commands that failed, by (device, request, profile): how many times
    /// in a row and when last, so a re-plan backs off instead of sending a
    /// failing command again at every change.
    Failures,
    /// Commands as they were sent, by (instant sent, CommandUUID): how the
    /// reconciler finds the ones left unanswered without reading the outbox.
    Sent,
}

// The names and the list are for the SQL backends' schemas.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
impl Table {
    pub(crate) const ALL: [Table; 21] = [
        Table::Meta,
        Table::Profiles,
        Table::Apps,
        Table::Users,
        Table::Devices,
        Table::Groups,
        Table::Assignments,
        Table::Outbox,
        Table::Notifications,
        Table::Audit,
        Table::Pending,
        Table::Undispatched,
        Table::Dispatches,
        Table::DispatchDue,
        Table::Inbox,
        Table::InboxDue,
        Table::NoticeOut,
        Table::NoticeDue,
        Table::UserEmails,
        Table::Failures,
        Table::Sent,
    ];

    /// Whether the table only indexes other rows: each document a short
    /// id (a CommandUUID, an event or message key) or a small counter, read
    /// and deleted by key far more than scanned. SQLite keeps these
    /// clustered on their keys (`WITHOUT ROWID`).
    pub(crate) fn is_index(self) -> bool {
        matches!(
            self,
            Table::Pending
                | Table::Undispatched
                | Table::DispatchDue
                | Table::InboxDue
                | Table::NoticeDue
                | Table::Failures
                | Table::Sent
        )
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Profiles => "profiles",
            Table::Apps => "apps",
            Table::Users => "users",
            Table::Devices => "devices",
            Table::Groups => "groups",
            Table::Assignments => "assignments",
            Table::Outbox => "outbox",
            Table::Notifications => "notifications",
            Table::Audit => "audit",
            Table::Pending => "outbox_pending",
            Table::Undispatched => "outbox_undispatched",
            Table::Dispatches => "dispatches",
            Table::DispatchDue => "dispatch_due",
            Table::Inbox => "inbox",
            Table::InboxDue => "inbox_due",
            Table::NoticeOut => "notice_out",
            Table::NoticeDue => "notice_due",
            Table::UserEmails => "user_emails",
            Table::Failures => "outbox_failures",
            Table::Sent => "outbox_sent",
        }
    }
}

type R<T> = Result<T, StoreError>;

/// A connection's organization group: its own, or the root when unset.
pub(crate) fn scope_or_root(scope: &str) -> &str {
    if scope.is_empty() {
        crate::org::ROOT
    } else {
        scope
    }
}

/// The instant an audit key is stamped with (nanoseconds since the epoch,
/// its first 20 characters).
pub(crate) fn audit_stamp(key: &str) -> Option<i64> {
    key.get(..20)?.parse().ok()
}

/// Ordered document tables with transactions.
pub(crate) trait Docs {
    /// The organization group the connection acts within.
    fn scope(&self) -> &str;
    fn set_scope(&mut self, scope: &str);
    /// Starts a transaction that takes the write lock at once.
    fn begin(&mut self) -> R<()>;
    fn commit(&mut self) -> R<()>;
    fn rollback(&mut self);
    /// Starts a transaction that only reads, so that reads spanning several
    /// tables see one consistent state (memory: nothing to do, it has one
    /// user at a time).
    fn begin_read(&mut self) -> R<()> {
        Ok(())
    }
    /// Ends [`Docs::begin_read`]'s transaction.
    fn end_read(&mut self) {}
    /// Reads a document, locking it until the transaction ends.
    fn get(&mut self, table: Table, key: &str) -> R<Option<String>>;
    fn put(&mut self, table: Table, key: &str, doc: &str) -> R<()>;
    /// Inserts many rows, replacing existing keys.
    fn put_many(&mut self, table: Table, rows: &[(String, String)]) -> R<()>;
    /// Inserts unless the key exists; true when inserted.
    fn insert_new(&mut self, table: Table, key: &str, doc: &str) -> R<bool>;
    fn delete(&mut self, table: Table, key: &str) -> R<()>;
    /// Deletes `key` if its document is exactly `doc`.
    fn delete_if(&mut self, table: Table, key: &str, doc: &str) -> R<()> {
        if self.get(table, key)?.as_deref() == Some(doc) {
            self.delete(table, key)?;
        }
        Ok(())
    }
    /// [`Docs::delete_if`] for each `(key, doc)` of `rows`.
    fn delete_many_if(&mut self, table: Table, rows: &[(String, &str)]) -> R<()> {
        for (k, doc) in rows {
            self.delete_if(table, k, doc)?;
        }
        Ok(())
    }
    /// [`Docs::delete_many_if`] for rows whose keys lie close together in
    /// `table` (a run: few other keys between the lowest and the highest),
    /// with the same result. SQLite reads the run's stretch of the table
    /// once and, when it holds only rows given, deletes it in one statement;
    /// here, and when the stretch holds other rows, row by row.
    fn delete_run_if(&mut self, table: Table, rows: &[(String, &str)]) -> R<()> {
        self.delete_many_if(table, rows)
    }
    /// The documents of `keys` that exist, locked as [`Docs::get`] locks.
    fn get_many(
        &mut self,
        table: Table,
        keys: &[String],
    ) -> R<std::collections::HashMap<String, String>> {
        let mut out = std::collections::HashMap::with_capacity(keys.len());
        for k in keys {
            if let Some(v) = self.get(table, k)? {
                out.insert(k.clone(), v);
            }
        }
        Ok(out)
    }
    /// [`Docs::get_many`], each document with where the backend keeps it
    /// (SQLite: the row's rowid; `None` elsewhere), for
    /// [`Docs::put_many_at`] to write it back without finding the key again.
    fn get_many_at(
        &mut self,
        table: Table,
        keys: &[String],
    ) -> R<std::collections::HashMap<String, (Option<i64>, String)>> {
        Ok(self
            .get_many(table, keys)?
            .into_iter()
            .map(|(k, v)| (k, (None, v)))
            .collect())
    }
    /// [`Docs::put_many`] for rows read by [`Docs::get_many_at`] in this
    /// transaction: `(where, key, doc)`. A row no longer where it was read
    /// (or with no place) is written by its key, so the result is always
    /// that of `put_many`.
    fn put_many_at(&mut self, table: Table, rows: Vec<(Option<i64>, String, String)>) -> R<()> {
        let rows: Vec<(String, String)> = rows.into_iter().map(|(_, k, v)| (k, v)).collect();
        self.put_many(table, &rows)
    }
    /// Deletes every key of `keys` (absent ones are fine).
    fn delete_many(&mut self, table: Table, keys: &[String]) -> R<()> {
        for k in keys {
            self.delete(table, k)?;
        }
        Ok(())
    }
    /// Every row whose key starts with `prefix`, ordered by key.
    fn scan(&mut self, table: Table, prefix: &str) -> R<Vec<(String, String)>> {
        self.range(table, prefix, &prefix_end(prefix), usize::MAX)
    }
    /// The first `limit` (key, document) pairs with `start <= key < end`,
    /// ordered by key (no row locks).
    fn range(
        &mut self,
        table: Table,
        start: &str,
        end: &str,
        limit: usize,
    ) -> R<Vec<(String, String)>>;
    /// Every document of a table in key order, handed to `f` one at a
    /// time as the backend reads them (SQLite: straight from its cursor;
    /// PostgreSQL: as the rows arrive; nothing collected).
    fn each_doc(&mut self, table: Table, f: &mut dyn FnMut(&str) -> R<()>) -> R<()> {
        for (_, doc) in self.scan(table, "")? {
            f(&doc)?;
        }
        Ok(())
    }
    /// Every document of a table in the order the backend keeps them (not
    /// sorted: SQLite walks the table itself instead of the key index and
    /// a row lookup per key, 5.5 s against 63 s for a 9.8M-row outbox),
    /// handed to `f` one at a time as [`Docs::each_doc`] does.
    fn each_doc_stored(&mut self, table: Table, f: &mut dyn FnMut(&str) -> R<()>) -> R<()> {
        self.each_doc(table, f)
    }
    /// Up to `limit` rows with keys below `end`, ordered by key, locked
    /// until the transaction ends; rows another transaction holds are
    /// skipped (PostgreSQL's `FOR UPDATE SKIP LOCKED`; SQLite and memory
    /// have one writer at a time).
    fn claim_below(&mut self, table: Table, end: &str, limit: usize) -> R<Vec<(String, String)>>;
    /// The greatest key of a table.
    fn last_key(&mut self, table: Table) -> R<Option<String>>;
    fn get_bytes(&mut self, key: &str) -> R<Option<Vec<u8>>>;
    fn put_bytes(&mut self, key: &str, bytes: &[u8]) -> R<()>;
    fn put_bytes_many(&mut self, rows: &[(String, &[u8])]) -> R<()> {
        for (k, b) in rows {
            self.put_bytes(k, b)?;
        }
        Ok(())
    }
}

type Rows = BTreeMap<(Table, String), String>;
type Blobs = BTreeMap<String, Vec<u8>>;

/// In memory, with copy-on-begin rollback.
#[derive(Debug, Clone, Default)]
pub struct MemDocs {
    scope: String,
    tables: Rows,
    bytes: Blobs,
    saved: Option<Box<(Rows, Blobs)>>,
}

impl Docs for MemDocs {
    fn scope(&self) -> &str {
        scope_or_root(&self.scope)
    }
    fn set_scope(&mut self, scope: &str) {
        scope.clone_into(&mut self.scope);
    }
    fn begin(&mut self) -> R<()> {
        self.saved = Some(Box::new((self.tables.clone(), self.bytes.clone())));
        Ok(())
    }
    fn commit(&mut self) -> R<()> {
        self.saved = None;
        Ok(())
    }
    fn rollback(&mut self) {
        if let Some(saved) = self.saved.take() {
            (self.tables, self.bytes) = *saved;
        }
    }
    fn get(&mut self, table: Table, key: &str) -> R<Option<String>> {
        Ok(self.tables.get(&(table, key.to_owned())).cloned())
    }
    fn put(&mut self, table: Table, key: &str, doc: &str) -> R<()> {
        self.tables.insert((table, key.to_owned()), doc.to_owned());
        Ok(())
    }
    fn put_many(&mut self, table: Table, rows: &[(String, String)]) -> R<()> {
        for (k, v) in rows {
            self.tables.insert((table, k.clone()), v.clone());
        }
        Ok(())
    }
    fn insert_new(&mut self, table: Table, key: &str, doc: &str) -> R<bool> {
        let k = (table, key.to_owned());
        if self.tables.contains_key(&k) {
            return Ok(false);
        }
        self.tables.insert(k, doc.to_owned());
        Ok(true)
    }
    fn delete(&mut self, table: Table, key: &str) -> R<()> {
        self.tables.remove(&(table, key.to_owned()));
        Ok(())
    }
    fn last_key(&mut self, table: Table) -> R<Option<String>> {
        Ok(self
            .tables
            .range((table, String::new())..)
            .take_while(|((t, _), _)| *t == table)
            .last()
            .map(|((_, k), _)| k.clone()))
    }
    fn scan(&mut self, table: Table, prefix: &str) -> R<Vec<(String, String)>> {
        Ok(self
            .tables
            .range((table, prefix.to_owned())..)
            .take_while(|((t, k), _)| *t == table && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
    fn range(
        &mut self,
        table: Table,
        start: &str,
        end: &str,
        limit: usize,
    ) -> R<Vec<(String, String)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self
            .tables
            .range((table, start.to_owned())..(table, end.to_owned()))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
    fn claim_below(&mut self, table: Table, end: &str, limit: usize) -> R<Vec<(String, String)>> {
        Ok(self
            .tables
            .range((table, String::new())..(table, end.to_owned()))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
    fn get_bytes(&mut self, key: &str) -> R<Option<Vec<u8>>> {
        Ok(self.bytes.get(key).cloned())
    }
    fn put_bytes(&mut self, key: &str, bytes: &[u8]) -> R<()> {
        self.bytes.insert(key.to_owned(), bytes.to_vec());
        Ok(())
    }
}

/// The smallest string greater than every string starting with `prefix`.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut s = prefix.to_owned();
    s.push(char::MAX);
    s
}

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub(crate) use self::postgres::PgDocs;
#[cfg(feature = "sqlite")]
pub(crate) use self::sqlite::SqliteDocs;

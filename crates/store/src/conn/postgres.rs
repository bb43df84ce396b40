//! The PostgreSQL backend: the same document tables, COPY for bulk rows.

use postgres::types::ToSql;

use super::{Docs, R, Table};
use crate::error::StoreError;

/// Rows per multi-row INSERT.
const BATCH: usize = 500;

/// PostgreSQL through the `postgres` crate.
pub struct PgDocs {
    pub(crate) client: postgres::Client,
    /// The organization group the connection acts within (empty: the root).
    pub(crate) scope: String,
    /// Inside [`Docs::begin_read`]'s snapshot: reads take no row locks.
    pub(crate) reading: bool,
    /// The audit keys the open transaction wrote, ordered after every
    /// committed change when it commits ([`PgDocs::order_changes`]).
    pub(crate) audit_keys: Vec<String>,
}

/// An audit key stamped with another instant, its writer and sequence kept.
fn restamp(key: &str, stamp: i64) -> String {
    format!("{stamp:020}{}", key.get(20..).unwrap_or_default())
}

/// The transaction-level advisory lock under which audit keys are put in
/// commit order.
const CHANGE_LOCK: i64 = 0x0070_726f_766b_6974; // "provkit"

impl std::fmt::Debug for PgDocs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgDocs")
    }
}

/// Upserts rows of two parameters with multi-row INSERT statements of
/// [`BATCH`] rows: `head` is `INSERT ... VALUES `, `tail` the conflict clause.
fn multi_insert(
    client: &mut postgres::Client,
    head: &str,
    tail: &str,
    rows: &[[&(dyn ToSql + Sync); 2]],
) -> R<()> {
    for chunk in rows.chunks(BATCH) {
        let mut sql = String::from(head);
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 2);
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
            params.extend_from_slice(row);
        }
        sql.push_str(tail);
        client.execute(&sql, &params)?;
    }
    Ok(())
}

/// From this many rows on, `put_many` goes through COPY into a staging table.
const COPY_THRESHOLD: usize = 5000;

/// Escapes a value for COPY's text format.
fn copy_escape(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

impl PgDocs {
    /// Moves this transaction's audit rows after every change committed
    /// before it, keeping their order among themselves, so that audit keys
    /// follow the order changes commit in (each statement here sees what
    /// committed before it, and the caller's instants need not follow that
    /// order): a reader that saw the last key of a change then finds every
    /// later change after it. Taken just before COMMIT, under an advisory
    /// lock that is the transaction's last lock (only its own fresh audit
    /// rows are written while it is held, so it cannot deadlock).
    fn order_changes(&mut self, keys: &[String]) -> R<()> {
        self.client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&CHANGE_LOCK])?;
        let audit = Table::Audit.name();
        let last = self.client.query_opt(
            &format!("SELECT k FROM {audit} WHERE NOT (k = ANY($1)) ORDER BY k DESC LIMIT 1"),
            &[&keys],
        )?;
        let Some(mut next) = last
            .and_then(|r| crate::conn::audit_stamp(r.get::<_, &str>(0)))
            .map(|s| s.saturating_add(1))
        else {
            return Ok(());
        };
        let mut mine = keys.to_vec();
        mine.sort();
        for key in mine {
            let stamp = crate::conn::audit_stamp(&key).unwrap_or(i64::MIN);
            let new = stamp.max(next);
            next = new.saturating_add(1);
            if new != stamp {
                self.client.execute(
                    &format!("UPDATE {audit} SET k = $2 WHERE k = $1"),
                    &[&key, &restamp(&key, new)],
                )?;
            }
        }
        Ok(())
    }

    /// Keeps the keys of audit rows written (by any write) for
    /// [`PgDocs::order_changes`] at commit.
    fn note_audit<'k>(&mut self, table: Table, keys: impl IntoIterator<Item = &'k str>) {
        if table == Table::Audit {
            self.audit_keys.extend(keys.into_iter().map(str::to_owned));
        }
    }

    /// The row-lock clause of a read: none inside a read snapshot.
    fn lock(&self) -> &'static str {
        if self.reading { "" } else { " FOR UPDATE" }
    }

    /// Bulk upsert: COPY into a transaction-local staging table, then one
    /// INSERT ... ON CONFLICT from it.
    fn copy_many(&mut self, table: Table, rows: &[(String, String)]) -> R<()> {
        use std::io::Write as _;
        self.client.batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS provkit_staging (k TEXT COLLATE \"C\", doc TEXT, n BIGINT) ON COMMIT DROP; \
             TRUNCATE provkit_staging;",
        )?;
        let mut buf = Vec::with_capacity(rows.len() * 64);
        for (n, (k, v)) in rows.iter().enumerate() {
            copy_escape(&mut buf, k);
            buf.push(b'\t');
            copy_escape(&mut buf, v);
            buf.extend_from_slice(format!("\t{n}\n").as_bytes());
        }
        let mut w = self
            .client
            .copy_in("COPY provkit_staging (k, doc, n) FROM STDIN")?;
        w.write_all(&buf)
            .map_err(|e| StoreError::Invalid(format!("COPY: {e}")))?;
        w.finish()?;
        self.client.batch_execute(&format!(
            "INSERT INTO {t} (k, doc) SELECT DISTINCT ON (k) k, doc FROM provkit_staging ORDER BY k, n DESC \
             ON CONFLICT (k) DO UPDATE SET doc = excluded.doc",
            t = table.name()
        ))?;
        Ok(())
    }

    pub(crate) fn create_tables(&mut self) -> R<()> {
        let mut sql = String::new();
        for t in Table::ALL {
            sql.push_str(&format!("CREATE TABLE IF NOT EXISTS {} (k TEXT COLLATE \"C\" PRIMARY KEY, doc TEXT NOT NULL);\n", t.name()));
        }
        sql.push_str("CREATE TABLE IF NOT EXISTS profile_bytes (k TEXT COLLATE \"C\" PRIMARY KEY, bytes BYTEA NOT NULL);\n");
        self.client.batch_execute(&sql)?;
        Ok(())
    }

    /// Hands each row's document of `sql` (one text column) to `f` as the
    /// rows arrive: the driver reads the socket only as fast as they are
    /// taken (one message batch buffered), so a table of millions of
    /// documents is never held whole.
    fn stream_docs(&mut self, sql: &str, f: &mut dyn FnMut(&str) -> R<()>) -> R<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let none: [&str; 0] = [];
        let mut rows = self.client.query_raw(sql, none)?;
        while let Some(row) = rows.next()? {
            f(row.get(0))?;
        }
        Ok(())
    }
}

impl Docs for PgDocs {
    fn scope(&self) -> &str {
        crate::conn::scope_or_root(&self.scope)
    }
    fn set_scope(&mut self, scope: &str) {
        scope.clone_into(&mut self.scope);
    }
    fn begin(&mut self) -> R<()> {
        self.audit_keys.clear();
        self.client.batch_execute("BEGIN")?;
        Ok(())
    }
    fn commit(&mut self) -> R<()> {
        let keys = std::mem::take(&mut self.audit_keys);
        if !keys.is_empty() {
            self.order_changes(&keys)?;
        }
        self.client.batch_execute("COMMIT")?;
        Ok(())
    }
    fn rollback(&mut self) {
        self.audit_keys.clear();
        let _ = self.client.batch_execute("ROLLBACK");
    }
    fn begin_read(&mut self) -> R<()> {
        // One snapshot for every statement, and no row locks: a read-only
        // transaction refuses FOR UPDATE, and needs none.
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        self.reading = true;
        Ok(())
    }
    fn end_read(&mut self) {
        self.reading = false;
        let _ = self.client.batch_execute("COMMIT");
    }
    fn get(&mut self, table: Table, key: &str) -> R<Option<String>> {
        let rows = self.client.query(
            &format!(
                "SELECT doc FROM {} WHERE k = $1{}",
                table.name(),
                self.lock()
            ),
            &[&key],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }
    fn put(&mut self, table: Table, key: &str, doc: &str) -> R<()> {
        self.note_audit(table, [key]);
        self.client.execute(
            &format!("INSERT INTO {} (k, doc) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET doc = excluded.doc", table.name()),
            &[&key, &doc],
        )?;
        Ok(())
    }
    fn put_many(&mut self, table: Table, rows: &[(String, String)]) -> R<()> {
        self.note_audit(table, rows.iter().map(|(k, _)| k.as_str()));
        if rows.len() >= COPY_THRESHOLD {
            return self.copy_many(table, rows);
        }
        let params: Vec<[&(dyn ToSql + Sync); 2]> = rows
            .iter()
            .map(|(k, v)| [k as &(dyn ToSql + Sync), v])
            .collect();
        multi_insert(
            &mut self.client,
            &format!("INSERT INTO {} (k, doc) VALUES ", table.name()),
            " ON CONFLICT (k) DO UPDATE SET doc = excluded.doc",
            &params,
        )?;
        Ok(())
    }

    fn insert_new(&mut self, table: Table, key: &str, doc: &str) -> R<bool> {
        self.note_audit(table, [key]);
        let n = self.client.execute(
            &format!(
                "INSERT INTO {} (k, doc) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING",
                table.name()
            ),
            &[&key, &doc],
        )?;
        Ok(n == 1)
    }
    fn get_many(
        &mut self,
        table: Table,
        keys: &[String],
    ) -> R<std::collections::HashMap<String, String>> {
        let mut out = std::collections::HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH * 2) {
            let rows = self.client.query(
                &format!(
                    "SELECT k, doc FROM {} WHERE k = ANY($1) ORDER BY k{}",
                    table.name(),
                    self.lock()
                ),
                &[&chunk],
            )?;
            out.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
        }
        Ok(out)
    }
    fn delete_many(&mut self, table: Table, keys: &[String]) -> R<()> {
        for chunk in keys.chunks(BATCH * 2) {
            self.client.execute(
                &format!("DELETE FROM {} WHERE k = ANY($1)", table.name()),
                &[&chunk],
            )?;
        }
        Ok(())
    }
    fn delete_many_if(&mut self, table: Table, rows: &[(String, &str)]) -> R<()> {
        for chunk in rows.chunks(BATCH * 2) {
            let keys: Vec<&str> = chunk.iter().map(|(k, _)| k.as_str()).collect();
            let docs: Vec<&str> = chunk.iter().map(|(_, doc)| *doc).collect();
            self.client.execute(
                &format!(
                    "DELETE FROM {} t USING unnest($1::text[], $2::text[]) AS x(k, doc) \
                     WHERE t.k = x.k AND t.doc = x.doc",
                    table.name()
                ),
                &[&keys, &docs],
            )?;
        }
        Ok(())
    }
    fn delete(&mut self, table: Table, key: &str) -> R<()> {
        self.client.execute(
            &format!("DELETE FROM {} WHERE k = $1", table.name()),
            &[&key],
        )?;
        Ok(())
    }
    fn last_key(&mut self, table: Table) -> R<Option<String>> {
        let rows = self.client.query(
            &format!("SELECT k FROM {} ORDER BY k DESC LIMIT 1", table.name()),
            &[],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }
    fn range(
        &mut self,
        table: Table,
        start: &str,
        end: &str,
        limit: usize,
    ) -> R<Vec<(String, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.client.query(
            &format!(
                "SELECT k, doc FROM {} WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
                table.name()
            ),
            &[&start, &end, &limit],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
    fn each_doc(&mut self, table: Table, f: &mut dyn FnMut(&str) -> R<()>) -> R<()> {
        self.stream_docs(&format!("SELECT doc FROM {} ORDER BY k", table.name()), f)
    }
    fn each_doc_stored(&mut self, table: Table, f: &mut dyn FnMut(&str) -> R<()>) -> R<()> {
        self.stream_docs(&format!("SELECT doc FROM {}", table.name()), f)
    }
    fn claim_below(&mut self, table: Table, end: &str, limit: usize) -> R<Vec<(String, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.client.query(
            &format!(
                "SELECT k, doc FROM {} WHERE k < $1 ORDER BY k LIMIT $2 FOR UPDATE SKIP LOCKED",
                table.name()
            ),
            &[&end, &limit],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
    fn get_bytes(&mut self, key: &str) -> R<Option<Vec<u8>>> {
        let rows = self
            .client
            .query("SELECT bytes FROM profile_bytes WHERE k = $1", &[&key])?;
        Ok(rows.first().map(|r| r.get(0)))
    }
    fn put_bytes(&mut self, key: &str, bytes: &[u8]) -> R<()> {
        self.client.execute(
            "INSERT INTO profile_bytes (k, bytes) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET bytes = excluded.bytes",
            &[&key, &bytes],
        )?;
        Ok(())
    }
    fn put_bytes_many(&mut self, rows: &[(String, &[u8])]) -> R<()> {
        let params: Vec<[&(dyn ToSql + Sync); 2]> = rows
            .iter()
            .map(|(k, b)| [k as &(dyn ToSql + Sync), b])
            .collect();
        multi_insert(
            &mut self.client,
            "INSERT INTO profile_bytes (k, bytes) VALUES ",
            " ON CONFLICT (k) DO UPDATE SET bytes = excluded.bytes",
            &params,
        )?;
        Ok(())
    }
}

//! The SQLite backend (the embedded default): document tables in one file.

use super::{Docs, R, Table};

/// SQLite through rusqlite.
#[derive(Debug)]
pub struct SqliteDocs {
    pub(crate) conn: rusqlite::Connection,
    /// The organization group the connection acts within (empty: the root).
    pub(crate) scope: String,
}

impl SqliteDocs {
    /// Creates the tables a new file lacks. Index tables (small rows, read
    /// and deleted by key) are clustered on their keys: finding or deleting
    /// a key is one B-tree operation instead of a key index's and the
    /// row's. Document tables keep rowids: a bulk import in random key
    /// order appends rows instead of splitting pages of large rows. Files
    /// created before keep their layout and work the same.
    pub(crate) fn create_tables(&mut self) -> R<()> {
        let mut sql = String::new();
        for t in Table::ALL {
            sql.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {} (k TEXT PRIMARY KEY, doc TEXT NOT NULL){};\n",
                t.name(),
                if t.is_index() { " WITHOUT ROWID" } else { "" }
            ));
        }
        sql.push_str(
            "CREATE TABLE IF NOT EXISTS profile_bytes (k TEXT PRIMARY KEY, bytes BLOB NOT NULL);\n",
        );
        self.conn.execute_batch(&sql)?;
        Ok(())
    }

    /// On a read-only connection to a file written before a table existed,
    /// an empty temporary table of that name stands in for it (reads find
    /// nothing there, as a read-write open would have created it empty).
    pub(crate) fn stand_in_for_missing_tables(&mut self) -> R<()> {
        for t in Table::ALL {
            let present: i64 = self.conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [t.name()],
                |r| r.get(0),
            )?;
            if present == 0 {
                self.conn.execute_batch(&format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (k TEXT PRIMARY KEY, doc TEXT NOT NULL);",
                    t.name()
                ))?;
            }
        }
        Ok(())
    }

    /// Hands each row's document of `sql` (one text column) to `f`
    /// straight from the cursor.
    fn stream_docs(&mut self, sql: &str, f: &mut dyn FnMut(&str) -> R<()>) -> R<()> {
        let mut st = self.conn.prepare_cached(sql)?;
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            let doc = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            f(doc)?;
        }
        Ok(())
    }
}

impl Docs for SqliteDocs {
    fn scope(&self) -> &str {
        crate::conn::scope_or_root(&self.scope)
    }
    fn set_scope(&mut self, scope: &str) {
        scope.clone_into(&mut self.scope);
    }
    fn begin(&mut self) -> R<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }
    fn commit(&mut self) -> R<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }
    fn rollback(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }
    fn begin_read(&mut self) -> R<()> {
        // Deferred: the first read takes a WAL snapshot that every later
        // read in the transaction shares, and writers are not held up.
        self.conn.execute_batch("BEGIN DEFERRED")?;
        Ok(())
    }
    fn end_read(&mut self) {
        let _ = self.conn.execute_batch("COMMIT");
    }
    fn get(&mut self, table: Table, key: &str) -> R<Option<String>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT doc FROM {} WHERE k = ?1", table.name()))?;
        let mut rows = st.query([key])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get(0)?),
            None => None,
        })
    }
    fn put(&mut self, table: Table, key: &str, doc: &str) -> R<()> {
        let mut st = self.conn.prepare_cached(&format!(
            "INSERT INTO {} (k, doc) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET doc = excluded.doc",
            table.name()
        ))?;
        st.execute([key, doc])?;
        Ok(())
    }
    fn put_many(&mut self, table: Table, rows: &[(String, String)]) -> R<()> {
        // One statement for the batch: looking it up in the cache per row
        // cost a formatted string and a hash each time.
        let mut st = self.conn.prepare_cached(&format!(
            "INSERT INTO {} (k, doc) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET doc = excluded.doc",
            table.name()
        ))?;
        for (k, v) in rows {
            st.execute([k, v])?;
        }
        Ok(())
    }
    fn get_many(
        &mut self,
        table: Table,
        keys: &[String],
    ) -> R<std::collections::HashMap<String, String>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT doc FROM {} WHERE k = ?1", table.name()))?;
        let mut out = std::collections::HashMap::with_capacity(keys.len());
        for k in keys {
            let mut rows = st.query([k])?;
            if let Some(r) = rows.next()? {
                out.insert(k.clone(), r.get(0)?);
            }
        }
        Ok(out)
    }
    fn get_many_at(
        &mut self,
        table: Table,
        keys: &[String],
    ) -> R<std::collections::HashMap<String, (Option<i64>, String)>> {
        // A table clustered on its keys has no rowid: read it by key.
        let sql = format!("SELECT rowid, doc FROM {} WHERE k = ?1", table.name());
        if self.conn.prepare_cached(&sql).is_err() {
            return Ok(self
                .get_many(table, keys)?
                .into_iter()
                .map(|(k, v)| (k, (None, v)))
                .collect());
        }
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut out = std::collections::HashMap::with_capacity(keys.len());
        for k in keys {
            let mut rows = st.query([k])?;
            if let Some(r) = rows.next()? {
                out.insert(k.clone(), (Some(r.get(0)?), r.get(1)?));
            }
        }
        Ok(out)
    }
    fn put_many_at(&mut self, table: Table, rows: Vec<(Option<i64>, String, String)>) -> R<()> {
        // By rowid, one B-tree search instead of the key index's and then
        // the row's; the key is compared too, so a row that is not where it
        // was read is written by its key instead. (Rows with no rowid, as
        // from a table clustered on its keys, never prepare the update,
        // which such a table would refuse.)
        let mut by_key = Vec::new();
        let mut update = None;
        for (at, k, v) in rows {
            if let Some(at) = at {
                let st = match &mut update {
                    Some(st) => st,
                    None => update.insert(self.conn.prepare_cached(&format!(
                        "UPDATE {} SET doc = ?3 WHERE rowid = ?1 AND k = ?2",
                        table.name()
                    ))?),
                };
                if st.execute(rusqlite::params![at, k, v])? == 1 {
                    continue;
                }
            }
            by_key.push((k, v));
        }
        drop(update);
        self.put_many(table, &by_key)
    }
    fn delete_many(&mut self, table: Table, keys: &[String]) -> R<()> {
        let mut st = self
            .conn
            .prepare_cached(&format!("DELETE FROM {} WHERE k = ?1", table.name()))?;
        for k in keys {
            st.execute([k])?;
        }
        Ok(())
    }
    fn delete_many_if(&mut self, table: Table, rows: &[(String, &str)]) -> R<()> {
        let mut st = self.conn.prepare_cached(&format!(
            "DELETE FROM {} WHERE k = ?1 AND doc = ?2",
            table.name()
        ))?;
        for (k, doc) in rows {
            st.execute([k.as_str(), doc])?;
        }
        Ok(())
    }
    fn delete_run_if(&mut self, table: Table, rows: &[(String, &str)]) -> R<()> {
        let mut given: Vec<(&str, &str)> = rows.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        given.sort_unstable();
        let (Some(&(first, _)), Some(&(last, _))) = (given.first(), given.last()) else {
            return Ok(());
        };
        // The stretch from the first key to the last, read up to one row
        // more than given (more, and some rows there are not given) and
        // matched against the rows given as it is read (both in key
        // order), nothing copied: which given rows it holds, and how many
        // rows it holds in all.
        let (mut held, mut matched) = (0usize, Vec::new());
        {
            let mut st = self.conn.prepare_cached(&format!(
                "SELECT k, doc FROM {} WHERE k >= ?1 AND k <= ?2 ORDER BY k LIMIT ?3",
                table.name()
            ))?;
            let limit = i64::try_from(given.len().saturating_add(1)).unwrap_or(i64::MAX);
            let mut read = st.query(rusqlite::params![first, last, limit])?;
            let mut at = 0;
            while let Some(r) = read.next()? {
                held += 1;
                let k = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
                let doc = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                while given.get(at).is_some_and(|g| g.0 < k) {
                    at += 1;
                }
                let same = given.get(at..).unwrap_or_default();
                if let Some(i) = same
                    .iter()
                    .take_while(|g| g.0 == k)
                    .position(|g| g.1 == doc)
                {
                    matched.push(at + i);
                }
            }
        }
        if held > given.len() {
            return self.delete_many_if(table, rows);
        }
        if held == 0 {
            return Ok(());
        }
        if matched.len() < held {
            let matched: Vec<(String, &str)> = matched
                .into_iter()
                .map(|i| (given[i].0.to_owned(), given[i].1))
                .collect();
            return self.delete_many_if(table, &matched);
        }
        // Every row of the stretch goes: one statement. This transaction
        // holds the write lock (BEGIN IMMEDIATE) and read the stretch just
        // now, so it holds the same rows.
        let deleted = self
            .conn
            .prepare_cached(&format!(
                "DELETE FROM {} WHERE k >= ?1 AND k <= ?2",
                table.name()
            ))?
            .execute([first, last])?;
        if deleted != held {
            return Err(crate::StoreError::Corrupt(format!(
                "{}: {deleted} rows from {first:?} to {last:?}, {held} read",
                table.name(),
            )));
        }
        Ok(())
    }
    fn insert_new(&mut self, table: Table, key: &str, doc: &str) -> R<bool> {
        let mut st = self.conn.prepare_cached(&format!(
            "INSERT INTO {} (k, doc) VALUES (?1, ?2) ON CONFLICT (k) DO NOTHING",
            table.name()
        ))?;
        Ok(st.execute([key, doc])? == 1)
    }
    fn delete(&mut self, table: Table, key: &str) -> R<()> {
        // Cached like every other statement: preparing it anew each time
        // cost more than the deletion (settling a command deletes twice).
        let mut st = self
            .conn
            .prepare_cached(&format!("DELETE FROM {} WHERE k = ?1", table.name()))?;
        st.execute([key])?;
        Ok(())
    }
    fn delete_if(&mut self, table: Table, key: &str, doc: &str) -> R<()> {
        let mut st = self.conn.prepare_cached(&format!(
            "DELETE FROM {} WHERE k = ?1 AND doc = ?2",
            table.name()
        ))?;
        st.execute([key, doc])?;
        Ok(())
    }
    fn last_key(&mut self, table: Table) -> R<Option<String>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT k FROM {} ORDER BY k DESC LIMIT 1",
            table.name()
        ))?;
        let mut rows = st.query([])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get(0)?),
            None => None,
        })
    }
    fn each_doc(&mut self, table: Table, f: &mut dyn FnMut(&str) -> R<()>) -> R<()> {
        self.stream_docs(&format!("SELECT doc FROM {} ORDER BY k", table.name()), f)
    }
    fn each_doc_stored(&mut self, table: Table, f: &mut dyn FnMut(&str) -> R<()>) -> R<()> {
        // The table walked in rowid order, no index.
        self.stream_docs(&format!("SELECT doc FROM {}", table.name()), f)
    }
    fn range(
        &mut self,
        table: Table,
        start: &str,
        end: &str,
        limit: usize,
    ) -> R<Vec<(String, String)>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT k, doc FROM {} WHERE k >= ?1 AND k < ?2 ORDER BY k LIMIT ?3",
            table.name()
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st.query_map(rusqlite::params![start, end, limit], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
    fn claim_below(&mut self, table: Table, end: &str, limit: usize) -> R<Vec<(String, String)>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT k, doc FROM {} WHERE k < ?1 ORDER BY k LIMIT ?2",
            table.name()
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st.query_map(rusqlite::params![end, limit], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
    fn get_bytes(&mut self, key: &str) -> R<Option<Vec<u8>>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT bytes FROM profile_bytes WHERE k = ?1")?;
        let mut rows = st.query([key])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get(0)?),
            None => None,
        })
    }
    fn put_bytes(&mut self, key: &str, bytes: &[u8]) -> R<()> {
        self.conn.execute(
            "INSERT INTO profile_bytes (k, bytes) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET bytes = excluded.bytes",
            rusqlite::params![key, bytes],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> SqliteDocs {
        let mut d = SqliteDocs {
            conn: rusqlite::Connection::open_in_memory().expect("open"),
            scope: String::new(),
        };
        d.create_tables().expect("tables");
        d
    }

    fn row(at: Option<i64>, k: &str, v: &str) -> (Option<i64>, String, String) {
        (at, k.to_owned(), v.to_owned())
    }

    /// Writing back by rowid must never write a row other than the key's:
    /// a place that now holds another key, or none, falls back to the key.
    #[test]
    fn rows_written_back_at_a_stale_place_go_to_their_key() {
        let mut d = docs();
        let t = Table::Devices;
        d.put_many(t, &[("a".into(), "1".into()), ("b".into(), "2".into())])
            .expect("put");
        let read = d.get_many_at(t, &["a".into(), "b".into()]).expect("read");
        let (at_a, at_b) = (read["a"].0, read["b"].0);
        assert!(at_a.is_some() && at_b.is_some() && at_a != at_b);
        // `a` at `b`'s place, `b` at a place no row holds, `c` new.
        d.put_many_at(
            t,
            vec![
                row(at_b, "a", "1'"),
                row(Some(1_000), "b", "2'"),
                row(None, "c", "3"),
            ],
        )
        .expect("write");
        let now = d
            .get_many(t, &["a".into(), "b".into(), "c".into()])
            .expect("read");
        assert_eq!(now["a"], "1'");
        assert_eq!(now["b"], "2'");
        assert_eq!(now["c"], "3");
        // And at the right places, written in place.
        d.put_many_at(t, vec![row(at_a, "a", "1''")])
            .expect("write");
        assert_eq!(d.get(t, "a").expect("get").as_deref(), Some("1''"));
        assert_eq!(d.get(t, "b").expect("get").as_deref(), Some("2'"));
    }

    /// A table clustered on its keys has no rowid: read and written by key.
    #[test]
    fn tables_without_rowids_are_read_and_written_by_key() {
        let mut d = docs();
        let t = Table::Pending;
        d.put(t, "k", "v").expect("put");
        let read = d.get_many_at(t, &["k".into(), "x".into()]).expect("read");
        assert_eq!(read.len(), 1);
        assert_eq!(read["k"], (None, "v".to_owned()));
        d.put_many_at(t, vec![row(None, "k", "w")]).expect("write");
        assert_eq!(d.get(t, "k").expect("get").as_deref(), Some("w"));
    }

    /// A run deleted in one statement must take nothing else: a stretch
    /// holding a row not given, or given with another document, is deleted
    /// row by row, only what matches going, whatever the order given.
    #[test]
    fn a_run_holding_other_rows_deletes_only_the_rows_given() {
        let mut d = docs();
        let t = Table::Pending;
        let keys = |d: &mut SqliteDocs| -> Vec<String> {
            let all = d
                .range(t, "", &crate::conn::prefix_end(""), 100)
                .expect("range");
            all.into_iter().map(|(k, _)| k).collect()
        };
        let all = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
            .map(|k| (k.to_owned(), format!("{k}1")));
        d.put_many(t, &all).expect("put");
        d.begin().expect("begin");
        // a and j, out of order, with eight rows between: row by row.
        d.delete_run_if(t, &[("j".into(), "j1"), ("a".into(), "a1")])
            .expect("run");
        assert_eq!(keys(&mut d), ["b", "c", "d", "e", "f", "g", "h", "i"]);
        // Exactly the stretch b..=c: both go.
        d.delete_run_if(t, &[("c".into(), "c1"), ("b".into(), "b1")])
            .expect("run");
        assert_eq!(keys(&mut d), ["d", "e", "f", "g", "h", "i"]);
        // d..=f without e (one row more than given): d and f go.
        d.delete_run_if(t, &[("d".into(), "d1"), ("f".into(), "f1")])
            .expect("run");
        assert_eq!(keys(&mut d), ["e", "g", "h", "i"]);
        // e..=i with a key not held and i given another document: e, g and
        // h go.
        d.delete_run_if(
            t,
            &[
                ("e".into(), "e1"),
                ("ee".into(), "e1"),
                ("g".into(), "g1"),
                ("h".into(), "h1"),
                ("i".into(), "stale"),
            ],
        )
        .expect("run");
        d.commit().expect("commit");
        assert_eq!(keys(&mut d), ["i"]);
        // Nothing given, nothing deleted.
        d.delete_run_if(t, &[]).expect("empty");
        assert_eq!(keys(&mut d), ["i"]);
    }
}

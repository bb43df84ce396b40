//! Opening the real backends: SQLite (feature `sqlite`, the default) and
//! PostgreSQL (feature `postgres`).

#[cfg(feature = "sqlite")]
use std::path::Path;

#[cfg(feature = "postgres")]
use crate::conn::PgDocs;
#[cfg(feature = "sqlite")]
use crate::conn::SqliteDocs;
#[cfg(feature = "postgres")]
use crate::conn::Table;
use crate::doc_store::DocStore;
#[cfg(feature = "sqlite")]
use crate::doc_store::SCHEMA_VERSION;
use crate::error::StoreError;

type R<T> = Result<T, StoreError>;

/// The embedded default: one SQLite file in WAL mode.
#[cfg(feature = "sqlite")]
pub type SqliteStore = DocStore<SqliteDocs>;
/// PostgreSQL, for tenants beyond one machine.
#[cfg(feature = "postgres")]
pub type PostgresStore = DocStore<PgDocs>;
#[cfg(feature = "sqlite")]
impl SqliteStore {
    /// Opens (creating if needed) a SQLite database file and migrates it.
    ///
    /// # Errors
    /// SQLite errors; [`StoreError::SchemaTooNew`] for a newer schema.
    pub fn open(path: impl AsRef<Path>) -> R<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Large tenants are read whole: map the file and keep a big page cache.
        conn.pragma_update(None, "mmap_size", 1_i64 << 30)?;
        conn.pragma_update(None, "cache_size", -131_072_i64)?;
        let mut docs = SqliteDocs {
            conn,
            scope: String::new(),
        };
        docs.create_tables()?;
        let mut store = DocStore::over(docs);
        store.migrate()?;
        Ok(store)
    }
}

/// How [`SqliteStore::open_existing`] opens a file.
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only: works on a read-only file; every write fails.
    ReadOnly,
}

#[cfg(feature = "sqlite")]
impl SqliteStore {
    /// Opens a provkit database that must already exist: a missing file is
    /// [`StoreError::Missing`] (nothing is created), a file without the
    /// provkit tables is [`StoreError::NotProvkit`] (nothing is changed). A
    /// read-only open reads a read-only file and never migrates.
    ///
    /// # Errors
    /// As above; SQLite errors; [`StoreError::SchemaTooNew`].
    pub fn open_existing(path: impl AsRef<Path>, access: Access) -> R<Self> {
        use rusqlite::OpenFlags;
        let path = path.as_ref();
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(StoreError::Missing(shown));
        }
        let flags = match access {
            Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
            Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(path, flags)?;
        let is_provkit = conn
            .query_row("SELECT doc FROM meta WHERE k = 'schema_version'", [], |r| {
                r.get::<_, String>(0)
            })
            .is_ok();
        if !is_provkit {
            return Err(StoreError::NotProvkit(shown));
        }
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "mmap_size", 1_i64 << 30)?;
        conn.pragma_update(None, "cache_size", -131_072_i64)?;
        let mut store = DocStore::over(SqliteDocs {
            conn,
            scope: String::new(),
        });
        match access {
            Access::ReadWrite => {
                store
                    .docs
                    .conn
                    .pragma_update(None, "synchronous", "NORMAL")?;
                store.docs.create_tables()?;
                store.migrate()?;
            }
            Access::ReadOnly => {
                store.docs.stand_in_for_missing_tables()?;
                let found = store.schema_version()?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew {
                        found,
                        known: SCHEMA_VERSION,
                    });
                }
            }
        }
        Ok(store)
    }
}

#[cfg(feature = "postgres")]
impl PostgresStore {
    /// Connects to a PostgreSQL database that already holds provkit's
    /// tables ([`StoreError::NotProvkit`] otherwise; nothing is created).
    ///
    /// # Errors
    /// As above; connection errors; [`StoreError::SchemaTooNew`].
    pub fn connect_existing(url: &str) -> R<Self> {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let is_provkit = client
            .query_opt("SELECT doc FROM meta WHERE k = 'schema_version'", &[])
            .ok()
            .flatten()
            .is_some();
        if !is_provkit {
            return Err(StoreError::NotProvkit(url.to_owned()));
        }
        let mut store = DocStore::over(PgDocs {
            client,
            scope: String::new(),
            reading: false,
            audit_keys: Vec::new(),
        });
        store.docs.create_tables()?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects to PostgreSQL (`postgres://user@host/db`) and migrates.
    ///
    /// # Errors
    /// Connection errors; [`StoreError::SchemaTooNew`] for a newer schema.
    pub fn connect(url: &str) -> R<Self> {
        let client = postgres::Client::connect(url, postgres::NoTls)?;
        let mut docs = PgDocs {
            client,
            scope: String::new(),
            reading: false,
            audit_keys: Vec::new(),
        };
        docs.create_tables()?;
        let mut store = DocStore::over(docs);
        store.migrate()?;
        Ok(store)
    }

    /// Drops every provkit table (for tests against a shared database).
    ///
    /// # Errors
    /// PostgreSQL errors.
    pub fn reset(url: &str) -> R<()> {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let mut sql = String::new();
        for t in Table::ALL {
            sql.push_str(&format!("DROP TABLE IF EXISTS {};", t.name()));
        }
        sql.push_str("DROP TABLE IF EXISTS profile_bytes;");
        client.batch_execute(&sql)?;
        Ok(())
    }
}

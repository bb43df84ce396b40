//! Which store to open: `--database-url` / `PROVKIT_DATABASE_URL` for
//! PostgreSQL, else `--db` / `PROVKIT_DB` / `./provkit.db` for SQLite.

use std::path::PathBuf;

use anyhow::{Context, Result};
use provkit_store::{Access, PostgresStore, SqliteStore, Store};

/// Where the data lives.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DbArgs {
    /// SQLite file (default: $PROVKIT_DB, else ./provkit.db).
    #[arg(long, global = true)]
    pub(crate) db: Option<PathBuf>,
    /// PostgreSQL URL, e.g. postgres://user@host/db (default: $PROVKIT_DATABASE_URL).
    #[arg(long, global = true)]
    pub(crate) database_url: Option<String>,
}

impl DbArgs {
    pub(crate) fn describe(&self) -> String {
        match self.url() {
            Some(u) => format!("PostgreSQL at {u}"),
            None => format!("SQLite file {}", self.path().display()),
        }
    }

    fn url(&self) -> Option<String> {
        self.database_url.clone().or_else(|| {
            if self.db.is_some() {
                None
            } else {
                std::env::var("PROVKIT_DATABASE_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
            }
        })
    }

    fn path(&self) -> PathBuf {
        self.db
            .clone()
            .or_else(|| std::env::var_os("PROVKIT_DB").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("provkit.db"))
    }

    /// Creates the store if it is not there, and migrates it: for `init`,
    /// `demo` and `generate` only.
    pub(crate) fn create(&self) -> Result<Box<dyn Store>> {
        Ok(match self.url() {
            Some(url) => Box::new(
                PostgresStore::connect(&url).with_context(|| format!("connecting to {url}"))?,
            ),
            None => {
                let path = self.path();
                Box::new(
                    SqliteStore::open(&path)
                        .with_context(|| format!("opening {}", path.display()))?,
                )
            }
        })
    }

    /// Opens a store that must exist, for reading and writing.
    pub(crate) fn open(&self) -> Result<Box<dyn Store>> {
        self.existing(Access::ReadWrite)
    }

    /// Opens a store that must exist, read-only (a read-only file works).
    pub(crate) fn read(&self) -> Result<Box<dyn Store>> {
        self.existing(Access::ReadOnly)
    }

    /// Opens connections to a store that must exist, for reading and
    /// writing, as many times as asked (the server's pool).
    pub(crate) fn opener(&self) -> Box<provkit_server::state::Opener> {
        let (url, path) = (self.url(), self.path());
        Box::new(move || {
            Ok(match &url {
                Some(url) => Box::new(PostgresStore::connect_existing(url)?),
                None => Box::new(SqliteStore::open_existing(&path, Access::ReadWrite)?),
            })
        })
    }

    fn existing(&self, access: Access) -> Result<Box<dyn Store>> {
        Ok(match self.url() {
            Some(url) => Box::new(PostgresStore::connect_existing(&url)?),
            None => Box::new(SqliteStore::open_existing(self.path(), access)?),
        })
    }
}

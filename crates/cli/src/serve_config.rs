//! `provkit serve --config FILE`: the same settings as the flags, in TOML.
//! A flag given on the command line wins over the file, the file over the
//! defaults; the database named by a flag or by `PROVKIT_DB` /
//! `PROVKIT_DATABASE_URL` wins over the file's. Unknown keys are refused, so
//! a misspelt setting is an error instead of a default silently kept.
//!
//! ```toml
//! listen = "0.0.0.0:8443"
//! database_url = "postgres://provkit@db/provkit"
//! connections = 8
//! max_body = 16777216
//! max_upload = 4294967296
//! timeout = 300
//! concurrency = 512
//! console_build_wait = 1000   # milliseconds
//! replan_every = 15      # minutes
//! lease_ttl = 30         # seconds
//! delivery_lease = 120   # seconds an MDM call or a message is held by one sender
//! tls_cert = "/etc/provkit/cert.pem"
//! tls_key = "/etc/provkit/key.pem"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// The file's settings; every one optional.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeConfig {
    pub(crate) listen: Option<String>,
    pub(crate) db: Option<PathBuf>,
    pub(crate) database_url: Option<String>,
    pub(crate) connections: Option<usize>,
    pub(crate) max_body: Option<u64>,
    pub(crate) max_upload: Option<u64>,
    pub(crate) timeout: Option<u64>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) console_build_wait: Option<u64>,
    pub(crate) replan_every: Option<u64>,
    pub(crate) lease_ttl: Option<u64>,
    pub(crate) delivery_lease: Option<u64>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
}

impl ServeConfig {
    /// Reads and parses `path`; relative TLS and SQLite paths are taken
    /// relative to the file's folder.
    pub(crate) fn read(path: &Path) -> Result<ServeConfig> {
        let text = crate::output::read_input(path)?;
        let text = String::from_utf8(text)
            .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))?;
        let mut config: ServeConfig = toml::from_str(&text)
            .map_err(|e| provkit_store::StoreError::Invalid(format!("{}: {e}", path.display())))?;
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            return Err(provkit_store::StoreError::Invalid(format!(
                "{}: tls_cert and tls_key go together",
                path.display()
            ))
            .into());
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut config.tls_cert, &mut config.tls_key, &mut config.db]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// The database flags with the file's database filled in where neither
    /// a flag nor the environment names one.
    pub(crate) fn database(&self, given: &crate::db::DbArgs) -> crate::db::DbArgs {
        let named = given.db.is_some()
            || given.database_url.is_some()
            || std::env::var_os("PROVKIT_DB").is_some()
            || std::env::var("PROVKIT_DATABASE_URL").is_ok_and(|u| !u.is_empty());
        if named {
            return given.clone();
        }
        crate::db::DbArgs {
            db: self.db.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

/// Reads `--config` when it is given.
pub(crate) fn load(path: Option<&Path>) -> Result<ServeConfig> {
    path.map_or_else(
        || Ok(ServeConfig::default()),
        |p| ServeConfig::read(p).with_context(|| format!("reading {}", p.display())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary one.
    fn folder(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "provkit-serve-config-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn a_misspelt_setting_is_refused_not_ignored() {
        let dir = folder("typo");
        let p = dir.join("serve.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:9\"\nreplan_evry = 5\n").expect("write");
        let e = ServeConfig::read(&p).expect_err("typo");
        assert!(format!("{e:#}").contains("replan_evry"), "{e:#}");
    }

    #[test]
    fn relative_paths_are_taken_from_the_files_folder() {
        let dir = folder("relative");
        let p = dir.join("serve.toml");
        std::fs::write(
            &p,
            "tls_cert = \"c.pem\"\ntls_key = \"/abs/k.pem\"\ndb = \"x.db\"\nconnections = 2\nconsole_build_wait = 250\n",
        )
        .expect("write");
        let c = ServeConfig::read(&p).expect("read");
        assert_eq!(c.tls_cert, Some(dir.join("c.pem")));
        assert_eq!(c.tls_key, Some(PathBuf::from("/abs/k.pem")));
        assert_eq!(c.db, Some(dir.join("x.db")));
        assert_eq!(c.connections, Some(2));
        assert_eq!(c.console_build_wait, Some(250));
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let dir = folder("half");
        let p = dir.join("serve.toml");
        std::fs::write(&p, "tls_cert = \"c.pem\"\n").expect("write");
        assert!(ServeConfig::read(&p).is_err());
    }
}

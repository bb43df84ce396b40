//! `provkit mdm`: the MDM servers an organization group's devices are
//! reached through. Keys come from the environment and are stored to be
//! used, never printed again.

use anyhow::Result;
use clap::Subcommand;
use provkit_store::{MdmKind, Store};

use crate::output::outln;
use crate::profile_cmd::Outcome;

#[derive(Debug, Subcommand)]
pub(crate) enum MdmCommand {
    /// Add a connection: the devices of the organization group (and of the
    /// groups below it without their own) are reached through it; audited.
    Add {
        /// nanomdm or micromdm.
        #[arg(long)]
        kind: String,
        /// The server's base URL.
        #[arg(long)]
        url: String,
        /// The environment variable holding the API key.
        #[arg(long)]
        api_key_env: String,
        /// The environment variable holding the webhook's HMAC key.
        #[arg(long)]
        webhook_hmac_key_env: Option<String>,
        /// The organization group it serves (default: Global).
        #[arg(long)]
        org_group: Option<String>,
        /// Its name (default: the group's path).
        #[arg(long)]
        name: Option<String>,
    },
    /// The connections, without their keys.
    List,
    /// Remove a connection; audited.
    Remove {
        /// Its name.
        name: String,
    },
}

/// A variable's value, required non-empty.
pub(crate) fn secret(var: &str) -> Result<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            provkit_store::StoreError::Invalid(format!("the environment variable {var} is not set"))
                .into()
        })
}

pub(crate) fn run(db: &crate::db::DbArgs, command: MdmCommand) -> Result<Outcome> {
    let a = crate::tenant_cmd::actor();
    match command {
        MdmCommand::Add {
            kind,
            url,
            api_key_env,
            webhook_hmac_key_env,
            org_group,
            name,
        } => {
            let kind = MdmKind::parse(&kind).ok_or_else(|| {
                provkit_store::StoreError::Invalid(format!(
                    "--kind {kind}: give nanomdm or micromdm"
                ))
            })?;
            let key = secret(&api_key_env)?;
            let hmac = webhook_hmac_key_env.as_deref().map(secret).transpose()?;
            let mut store = db.open()?;
            let c = provkit_service::delivery::add_connection(
                store.as_mut(),
                name.as_deref(),
                kind,
                &url,
                &key,
                hmac.as_deref(),
                org_group.as_deref(),
                &a,
            )?;
            outln!(
                "added {} ({} at {}) for {}{}",
                c.name,
                c.kind.as_str(),
                c.url,
                c.org_group,
                if c.webhook_hmac_key.is_some() {
                    ", webhook signed"
                } else {
                    ""
                }
            )?;
        }
        MdmCommand::List => list(db.read()?.as_mut())?,
        MdmCommand::Remove { name } => {
            let c = db.open()?.remove_mdm_connection(&name, &a)?;
            outln!("removed {} ({})", c.name, c.url)?;
        }
    }
    Ok(Outcome::Ok)
}

fn list(store: &mut dyn Store) -> Result<()> {
    for c in store.mdm_connections()? {
        outln!(
            "{}  {}  {}  {}{}",
            c.name,
            c.kind.as_str(),
            c.url,
            c.org_group,
            if c.webhook_hmac_key.is_some() {
                "  signed"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

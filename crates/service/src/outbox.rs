//! The command outbox: acknowledging queued commands as the devices would.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use provkit_store::{CommandResult, CommandStatus, ReportedProfile, Store};

use crate::ServiceError;

/// Which commands to acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acknowledge {
    /// Every command not yet answered.
    AllPending,
    /// These command UUIDs (each must be in the outbox).
    Only(Vec<String>),
}

/// What [`acknowledge`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Acknowledged {
    /// Commands acknowledged.
    pub commands: usize,
    /// Devices whose reported profiles changed.
    pub devices: usize,
}

/// Records an acknowledgement for each chosen pending command, as the
/// device would send it: an install adds the profile to what the device
/// reports, a removal takes it away. One transaction; the cost per command
/// is the same at any queue size (lookups by key, one batched write).
///
/// # Errors
/// [`ServiceError::Unknown`] naming every command UUID the outbox does not
/// hold (nothing is written); store failures.
pub fn acknowledge(
    store: &mut dyn Store,
    which: &Acknowledge,
    at: DateTime<Utc>,
) -> Result<Acknowledged, ServiceError> {
    let outbox = store.outbox()?;
    let chosen: Option<HashSet<String>> = match which {
        Acknowledge::AllPending => None,
        Acknowledge::Only(ids) => {
            let known: HashSet<String> = outbox
                .iter()
                .map(|e| e.command_uuid.to_ascii_uppercase())
                .collect();
            let unknown: Vec<String> = ids
                .iter()
                .filter(|id| !known.contains(&id.to_ascii_uppercase()))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(ServiceError::Unknown {
                    kind: "command",
                    names: unknown,
                });
            }
            Some(ids.iter().map(|id| id.to_ascii_uppercase()).collect())
        }
    };
    let tenant = store.load_tenant()?;
    let devices: HashMap<&str, &provkit_policy::Device> = tenant
        .devices
        .iter()
        .map(|d| (d.udid.as_str(), d))
        .collect();
    let profiles: HashMap<String, &provkit_policy::ProfileFacts> = tenant
        .profiles
        .iter()
        .map(|p| (p.uuid.to_ascii_uppercase(), p))
        .collect();
    let mut reports: HashMap<&str, Vec<ReportedProfile>> = HashMap::new();
    let mut results = Vec::new();
    for e in &outbox {
        let pending = matches!(
            e.status,
            CommandStatus::Planned | CommandStatus::Sent | CommandStatus::NotNow
        );
        if !pending
            || chosen
                .as_ref()
                .is_some_and(|c| !c.contains(&e.command_uuid.to_ascii_uppercase()))
        {
            continue;
        }
        let Some(dev) = devices.get(e.udid.as_str()) else {
            continue;
        };
        let list = reports.entry(dev.udid.as_str()).or_insert_with(|| {
            dev.reported
                .iter()
                .map(|r| ReportedProfile {
                    uuid: r.uuid.to_string(),
                    expires: r.expires,
                    managed: r.managed,
                })
                .collect()
        });
        let uuid = e.profile_uuid.to_ascii_uppercase();
        list.retain(|r| !r.uuid.eq_ignore_ascii_case(&uuid));
        if e.request_type == "InstallProvisioningProfile"
            && let Some(p) = profiles.get(&uuid)
        {
            list.push(ReportedProfile {
                uuid: p.uuid.clone(),
                expires: p.expires,
                managed: true,
            });
        }
        results.push(CommandResult {
            command_uuid: e.command_uuid.clone(),
            status: CommandStatus::Acknowledged,
            error_chain: None,
        });
    }
    let reports: Vec<(String, Vec<ReportedProfile>)> = reports
        .into_iter()
        .map(|(udid, list)| (udid.to_owned(), list))
        .collect();
    store.record_results(&results, &reports, at)?;
    Ok(Acknowledged {
        commands: results.len(),
        devices: reports.len(),
    })
}

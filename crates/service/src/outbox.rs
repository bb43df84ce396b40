//! The command outbox: acknowledging queued commands as the devices would.

use chrono::{DateTime, Utc};
use provkit_store::Store;

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
    let ids = match which {
        Acknowledge::AllPending => None,
        Acknowledge::Only(ids) => Some(ids.as_slice()),
    };
    let done = store.acknowledge_commands(ids, at)?;
    if !done.unknown.is_empty() {
        return Err(ServiceError::Unknown {
            kind: "command",
            names: done.unknown,
        });
    }
    Ok(Acknowledged {
        commands: done.commands,
        devices: done.devices,
    })
}

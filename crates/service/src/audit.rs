//! The audit log: every change to a tenant, who made it and when.

use provkit_store::{AuditEntry, Store};

use crate::ServiceError;

/// The audit log, oldest first, optionally only the last `limit` entries.
///
/// # Errors
/// [`ServiceError::Store`] on a backend failure.
pub fn log(store: &mut dyn Store, limit: Option<usize>) -> Result<Vec<AuditEntry>, ServiceError> {
    let mut all = store.audit_log()?;
    if let Some(n) = limit {
        let skip = all.len().saturating_sub(n);
        all.drain(..skip);
    }
    Ok(all)
}

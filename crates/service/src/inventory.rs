//! Inventory import: users, devices and groups from JSON or CSV, merged into
//! what is stored or replacing what the caller names, with a dry run.

use chrono::{DateTime, Utc};
use provkit_store::{Actor, Inventory, InventoryChange, Replace, Store};

use crate::ServiceError;

/// The two inventory formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The JSON form (`{"users": [...], "devices": [...], "groups": [...]}`).
    Json,
    /// The CSV form, one fact per row.
    Csv,
}

impl Format {
    /// CSV for a `.csv` file name (any case), JSON otherwise.
    pub fn of_file_name(name: &str) -> Self {
        let csv = name
            .rsplit_once('.')
            .is_some_and(|(_, e)| e.eq_ignore_ascii_case("csv"));
        if csv { Self::Csv } else { Self::Json }
    }
}

/// Reads an inventory from UTF-8 bytes (a leading byte-order mark is
/// accepted).
///
/// # Errors
/// [`ServiceError::NotAnInventory`] saying what does not read and where.
pub fn parse(bytes: &[u8], format: Format) -> Result<Inventory, ServiceError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ServiceError::NotAnInventory(format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Csv => Inventory::from_csv(text),
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
    }
    .map_err(ServiceError::NotAnInventory)
}

/// Imports an inventory in one transaction: validated whole, then merged
/// into what is stored (or replacing what `replace` names); with `dry_run`
/// nothing is written. Returns every change, with the devices whose desired
/// profiles change at `at`.
///
/// # Errors
/// [`ServiceError::Store`] with [`provkit_store::StoreError::Invalid`] or
/// `UnknownReference` naming the first problem (nothing is written).
pub fn import(
    store: &mut dyn Store,
    inventory: &Inventory,
    replace: &Replace,
    dry_run: bool,
    at: DateTime<Utc>,
    actor: &Actor,
) -> Result<InventoryChange, ServiceError> {
    Ok(store.apply_inventory(inventory, replace, dry_run, at, actor)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_byte_order_marks() {
        assert_eq!(Format::of_file_name("a.CSV"), Format::Csv);
        assert_eq!(Format::of_file_name("a.json"), Format::Json);
        let inv = parse("\u{feff}{\"users\": [\"ann\"]}".as_bytes(), Format::Json).unwrap();
        assert_eq!(inv.users, ["ann"]);
        assert!(matches!(
            parse(b"\xff\xfe", Format::Json),
            Err(ServiceError::NotAnInventory(m)) if m.contains("UTF-8")
        ));
        assert!(matches!(
            parse(b"{\"userz\": []}", Format::Json),
            Err(ServiceError::NotAnInventory(m)) if m.contains("userz")
        ));
    }
}

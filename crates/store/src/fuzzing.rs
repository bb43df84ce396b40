//! Entry points for the fuzz targets in `fuzz/` (behind the `fuzzing`
//! feature): not part of the API, and free to change.

use crate::records::{DeviceRecord, OutboxEntry};

/// Reads `text` as an outbox row and as a device document, with the
/// store's own readers and with serde_json; panics where they differ (a
/// value one reads and the other does not, or two different values).
pub fn check_document_readers(text: &str) {
    let theirs = serde_json::from_str::<OutboxEntry>(text).ok();
    let ours = crate::json::read_outbox_entry(text).ok();
    assert_eq!(ours, theirs, "an outbox row read otherwise: {text:?}");
    let theirs = serde_json::from_str::<DeviceRecord>(text).ok();
    let ours = crate::json::read_device_record(text).ok();
    assert_eq!(ours, theirs, "a device read otherwise: {text:?}");
}

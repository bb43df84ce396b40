//! Every operation on a provkit tenant as a library call: the layer the
//! command line and the server stand on, so that neither holds tenant logic.
//!
//! Each call takes the store, the instant and the acting admin as
//! parameters (nothing here reads the clock), does its writes in one store
//! transaction, and returns a typed result or a [`ServiceError`].
//!
//! ```
//! use provkit_service::outbox::{Acknowledge, acknowledge};
//! use provkit_store::{Actor, MemoryStore, Store};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store = MemoryStore::default();
//! let at = chrono::DateTime::UNIX_EPOCH;
//! let admin = Actor { name: "admin".into(), at };
//! store.import_inventory(&serde_json::from_str(r#"{"devices": [{"udid": "D1"}]}"#)?, &admin)?;
//! // Nothing queued yet: acknowledging every pending command does nothing.
//! let done = acknowledge(&mut store, &Acknowledge::AllPending, at)?;
//! assert_eq!((done.commands, done.devices), (0, 0));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod outbox;
pub mod trust;

pub use error::ServiceError;

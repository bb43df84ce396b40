//! Every operation on a provkit tenant as a library call: the layer the
//! command line and the server stand on, so that neither holds tenant logic.
//!
//! Each call takes the store, the instant and the acting admin as
//! parameters (nothing here reads the clock), does its writes in one store
//! transaction, and returns a typed result or a [`ServiceError`].
//!
//! A whole flow on the memory store: trust, import, assign, plan and
//! enqueue, acknowledge, renew.
//!
//! ```
//! use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
//! use provkit_service::{lifecycle, outbox, plan, trust};
//! use provkit_store::{Actor, AssignmentEdit, MemoryStore, Replace, Store, TargetName};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (mut store, at) = (MemoryStore::default(), utc(2026, 11, 22));
//! let admin = Actor { name: "admin".into(), at };
//! let ca = TestCa::rsa();
//! trust::add_anchor(&mut store, ca.root.cert.der(), &admin)?;
//! let verifier = trust::tenant_verifier(&mut store)?;
//! let old = signed_profile(&ca, &ProfileSpec { all_devices: true, devices: None, ..ProfileSpec::default() });
//! let rec = trust::store_profile(&mut store, &old, &verifier, at, &admin, false)?;
//!
//! let inventory = serde_json::from_str(r#"{"users": ["ann"], "devices": [{"udid": "D1", "user": "ann"}]}"#)?;
//! store.apply_inventory(&inventory, &Replace::Nothing, false, at, &admin)?;
//! let edit = AssignmentEdit::Add { include: vec![TargetName::AllUsers], exclude: vec![] };
//! assert_eq!(store.edit_assignments(&rec.uuid, &edit, at, &admin)?.devices_gaining, ["D1"]);
//!
//! let planned = plan::plan_and_enqueue(&mut store, at, at)?;
//! assert_eq!(planned.commands[0].request_type, "InstallProvisioningProfile");
//! assert_eq!(outbox::acknowledge(&mut store, &outbox::Acknowledge::AllPending, at)?.commands, 1);
//!
//! let new = signed_profile(&ca, &ProfileSpec {
//!     uuid: "0E0E0E0E-0000-4000-8000-000000000002".into(), all_devices: true, devices: None,
//!     expiration: utc(2028, 1, 1), ..ProfileSpec::default()
//! });
//! let renewed = lifecycle::renew(&mut store, &rec.uuid, &new, &verifier, at, &admin, false)?;
//! assert_eq!(renewed.assignments, 1);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod assign;
pub mod audit;
pub mod catalog;
pub mod console;
pub mod delivery;
mod error;
pub mod expiry;
#[cfg(feature = "generate")]
pub mod generate;
pub mod import;
pub mod inventory;
pub mod lifecycle;
pub mod names;
pub mod notify;
pub mod outbox;
pub mod plan;
pub mod schedule;
pub mod tokens;
pub mod trust;

pub use error::ServiceError;

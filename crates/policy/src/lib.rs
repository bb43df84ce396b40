//! The assignment and expiry engine: a tenant snapshot and an instant in, a
//! deterministic plan out. Pure: no I/O, no clock.
//!
//! [`Engine::new`] resolves which profiles every device should hold (group
//! nesting with cycles, include/exclude of user and device targets, app
//! links), reconciles them against what each device reports (installs, and
//! removes only after the replacement is acknowledged), and [`Engine::plan`]
//! adds admin notifications by stage, device-user notices, blockers
//! (re-sign required, not provisioned, uncovered app, expiring without
//! successor) and warnings. [`Engine::apply_all`] takes changes and
//! recomputes only the devices they can affect.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use provkit_policy::{generate::{Shape, generate}, Engine};
//!
//! let tenant = generate(&Shape::scaled(1_000), 7);
//! let at = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
//! let engine = Engine::new(tenant, at);
//! let plan = engine.plan();
//! println!("{} devices have commands, {} blockers", plan.devices.len(), plan.blockers.len());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod engine;
mod explain;
pub mod generate;
mod index;
mod model;
mod ops;
mod plan;
mod target;

pub use engine::{Change, ChangeError, Delta, Engine, Member, plan};
pub use explain::Explanation;
pub use model::{
    App, AppId, AppList, Assignment, AssignmentId, CertFacts, Config, Device, DeviceId,
    DeviceScope, Group, GroupId, GroupKind, InlineStr, Intent, ProfileFacts, ProfileId, Reported,
    Target, Tenant, Udid, User, UserId, UserName, Uuid,
};
pub use ops::{DeleteRefused, RenewError, Renewal, check_delete, renew};
pub use plan::{
    AdminNotification, Blocker, Command, DevicePlan, Plan, ResignReason, UserNotice, Warning,
};

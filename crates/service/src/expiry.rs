//! What dies when: profiles and signing certificates by death date, with
//! the apps and devices they take with them, "already dead but still in
//! use" apart from "dying within" the window.

use chrono::{DateTime, TimeDelta, Utc};
use provkit_policy::{DeviceId, Engine};
use provkit_store::Store;
use serde::Serialize;

use crate::ServiceError;

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ItemKind {
    /// A provisioning profile: renew it.
    Profile,
    /// A signing certificate: re-sign the apps.
    Certificate,
}

impl ItemKind {
    /// The stable lowercase word (`profile`, `certificate`), as JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Certificate => "certificate",
        }
    }
}

/// One thing that dies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiryItem {
    /// Profile or certificate.
    pub kind: ItemKind,
    /// Its name.
    pub name: String,
    /// The profile's UUID, or the certificate's SHA-256 (hex).
    pub id: String,
    /// The team.
    pub team: String,
    /// When apps stop launching because of it.
    pub death: DateTime<Utc>,
    /// Whole days left ([`provkit_profile::days_left`]; negative once dead).
    pub days_left: i64,
    /// What causes the death date: `profile expires` or `certificate expires`.
    pub cause: &'static str,
    /// What to do: `renew` or `re-sign`.
    pub action: &'static str,
    /// Apps it takes down, as `bundle-id version`.
    pub apps: Vec<String>,
    /// Devices that hold the profile, or run an app signed with the certificate.
    pub devices: usize,
}

/// Which items to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpiryFilter {
    /// Only this kind.
    pub kind: Option<ItemKind>,
    /// Only this team.
    pub team: Option<String>,
    /// Only items that take down an app with this bundle id.
    pub app: Option<String>,
}

impl ExpiryFilter {
    /// Only this kind (`None`: both).
    pub fn with_kind(mut self, kind: Option<ItemKind>) -> Self {
        self.kind = kind;
        self
    }

    /// Only this team (`None`: any).
    pub fn with_team(mut self, team: Option<String>) -> Self {
        self.team = team;
        self
    }

    /// Only items that take down this app (`None`: any).
    pub fn with_app(mut self, app: Option<String>) -> Self {
        self.app = app;
        self
    }
}

/// The report at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    /// The instant.
    pub at: DateTime<Utc>,
    /// The window, in days.
    pub within_days: i64,
    /// Already dead, but still linked to an app or held by devices.
    pub dead_in_use: Vec<ExpiryItem>,
    /// Dying within the window, soonest first.
    pub dying: Vec<ExpiryItem>,
}

/// Profiles in use (not retired, not superseded) and every app's signing
/// certificate (each certificate once, with all its apps), dead-in-use and
/// dying within `within_days` of `at`.
///
/// # Errors
/// Store failures.
pub fn report(
    store: &mut dyn Store,
    at: DateTime<Utc>,
    within_days: i64,
    filter: &ExpiryFilter,
) -> Result<ExpiryReport, ServiceError> {
    Ok(report_with(
        &Engine::new(store.load_tenant()?, at),
        within_days,
        filter,
    ))
}

/// [`report`] over an engine already built (a server's snapshot).
pub fn report_with(engine: &Engine, within_days: i64, filter: &ExpiryFilter) -> ExpiryReport {
    let (tenant, at) = (engine.tenant(), engine.at());
    let mut holders = vec![0usize; tenant.profiles.len()];
    for d in 0..tenant.devices.len() {
        for p in engine.desired(DeviceId(u32::try_from(d).unwrap_or(u32::MAX))) {
            holders[p.index()] += 1;
        }
    }
    // One pass over the devices and one over the apps, not one per item.
    let mut installs = vec![0usize; tenant.apps.len()];
    for d in &tenant.devices {
        for a in &d.apps {
            installs[a.index()] += 1;
        }
    }
    let app_name = |a: &provkit_policy::App| format!("{} {}", a.bundle_id, a.version);
    // Per profile: its apps' names and bundle ids.
    let mut apps_of: Vec<(Vec<String>, Vec<String>)> =
        vec![(Vec::new(), Vec::new()); tenant.profiles.len()];
    for a in &tenant.apps {
        if let Some(p) = a.profile {
            apps_of[p.index()].0.push(app_name(a));
            apps_of[p.index()].1.push(a.bundle_id.clone());
        }
    }
    let mut items = Vec::new();
    for (i, p) in tenant.profiles.iter().enumerate() {
        if p.retired || p.superseded_by.is_some() {
            continue;
        }
        items.push((
            ExpiryItem {
                kind: ItemKind::Profile,
                name: p.name.clone(),
                id: p.uuid.clone(),
                team: p.team.clone(),
                death: p.expires,
                days_left: provkit_profile::days_left(p.expires, at),
                cause: "profile expires",
                action: "renew",
                apps: apps_of[i].0.clone(),
                devices: holders[i],
            },
            apps_of[i].1.clone(),
        ));
    }
    // Each certificate once, with every app it signed.
    let mut certs: std::collections::BTreeMap<Vec<u8>, (ExpiryItem, Vec<String>)> =
        std::collections::BTreeMap::new();
    for (i, a) in tenant.apps.iter().enumerate() {
        let entry = certs.entry(a.certificate.to_vec()).or_insert_with(|| {
            (
                ExpiryItem {
                    kind: ItemKind::Certificate,
                    name: "signing certificate".to_owned(),
                    id: provkit_profile::hex(&a.certificate),
                    team: a.team.clone(),
                    death: a.certificate_not_after,
                    days_left: provkit_profile::days_left(a.certificate_not_after, at),
                    cause: "certificate expires",
                    action: "re-sign",
                    apps: Vec::new(),
                    devices: 0,
                },
                Vec::new(),
            )
        });
        entry.0.apps.push(app_name(a));
        entry.0.devices += installs[i];
        entry.1.push(a.bundle_id.clone());
    }
    items.extend(certs.into_values());
    let horizon = at + TimeDelta::days(within_days);
    let keep = |(item, bundles): &(ExpiryItem, Vec<String>)| {
        filter.kind.is_none_or(|k| k == item.kind)
            && filter.team.as_ref().is_none_or(|t| *t == item.team)
            && filter.app.as_ref().is_none_or(|b| bundles.contains(b))
    };
    let (mut dead_in_use, mut dying) = (Vec::new(), Vec::new());
    for entry in items {
        if !keep(&entry) {
            continue;
        }
        let item = entry.0;
        if item.death < at {
            if item.devices > 0 || !item.apps.is_empty() {
                dead_in_use.push(item);
            }
        } else if item.death <= horizon {
            dying.push(item);
        }
    }
    let order = |a: &ExpiryItem, b: &ExpiryItem| a.death.cmp(&b.death).then(a.id.cmp(&b.id));
    dead_in_use.sort_by(order);
    dying.sort_by(order);
    ExpiryReport {
        at,
        within_days,
        dead_in_use,
        dying,
    }
}

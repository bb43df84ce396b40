//! The plan at an instant, named for people and programs: every command
//! with its device, profile and idempotent command UUID, the admin
//! notifications, the device-user notices, the blockers and the warnings,
//! each with a sentence in the admin's words.

use chrono::{DateTime, Utc};
use provkit_policy::{Blocker, Command, Engine, Plan, ResignReason, Target, Tenant, Warning};
use provkit_store::{CommandStatus, OutboxEntry, Store};
use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sha2::Digest as _;

use crate::ServiceError;

/// One command for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandView {
    /// Device UDID.
    pub udid: String,
    /// `InstallProvisioningProfile` or `RemoveProvisioningProfile`.
    pub request_type: &'static str,
    /// The profile's UUID.
    pub profile_uuid: String,
    /// The CommandUUID: the same device, request, profile and instant
    /// always give the same one, so enqueueing twice adds nothing.
    pub command_uuid: String,
}

/// An admin notification stage reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationView {
    /// Profile UUID.
    pub profile: String,
    /// Its name.
    pub name: String,
    /// The stage, in days before death.
    pub stage_days: i64,
    /// When its apps stop launching.
    pub death: DateTime<Utc>,
    /// What causes that date: `profile expires`, or `certificate expires`
    /// when an app's signing certificate dies first.
    pub cause: &'static str,
    /// Whole days left ([`provkit_profile::days_left`]).
    pub days_left: i64,
    /// Apps linked to it, as `bundle-id version`.
    pub apps: Vec<String>,
    /// Devices that hold or should hold it.
    pub devices: usize,
}

/// A device user's notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserNoticeView {
    /// User name.
    pub user: String,
    /// Device UDID.
    pub device: String,
    /// The app, as `bundle-id version`.
    pub app: String,
    /// When it stops launching.
    pub death: DateTime<Utc>,
}

/// Something the plan cannot fix by sending profiles, or a configuration
/// oddity, with its facts and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueView {
    /// `resign-required`, `not-provisioned`, `uncovered-app`,
    /// `expiring-without-successor`, `mixed-kind-exclusion`, `missing-group`.
    pub kind: &'static str,
    /// The profile concerned, by UUID.
    pub profile: Option<String>,
    /// The app concerned.
    pub app: Option<String>,
    /// The device concerned.
    pub device: Option<String>,
    /// The assignment target concerned.
    pub target: Option<String>,
    /// Devices affected.
    pub devices: Option<usize>,
    /// When it happens.
    pub at: Option<DateTime<Utc>>,
    /// The sentence, in the admin's words.
    pub message: String,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanView {
    /// The instant.
    pub at: DateTime<Utc>,
    /// Devices with commands.
    pub devices: usize,
    /// Commands, device by device.
    pub commands: Vec<CommandView>,
    /// Admin notifications.
    pub notifications: Vec<NotificationView>,
    /// Device-user notices.
    pub user_notices: Vec<UserNoticeView>,
    /// Blockers.
    pub blockers: Vec<IssueView>,
    /// Warnings.
    pub warnings: Vec<IssueView>,
}

/// A deterministic command UUID for (device, request, profile, instant),
/// laid out as RFC 9562's version 7: the instant's Unix milliseconds in the
/// first 48 bits, then the version and variant, then bits of a SHA-256 of
/// the four. The same command planned at the same instant gets the same
/// UUID (a retry never enqueues twice), and the commands of one plan sort
/// after every earlier plan's, so a store's key index takes a plan's rows
/// at its right edge instead of on a random page each.
pub fn command_uuid(udid: &str, request: &str, profile: &str, at: DateTime<Utc>) -> String {
    let h =
        sha2::Sha256::digest(format!("{udid}|{request}|{profile}|{}", at.timestamp()).as_bytes());
    // Milliseconds since 1970 in 48 bits (instants before 1970 count as 0).
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0) & ((1 << 48) - 1);
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&h[..10]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let x = provkit_profile::hex(&b).to_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The plan at `at` for the stored tenant.
///
/// # Errors
/// Store failures.
pub fn plan(store: &mut dyn Store, at: DateTime<Utc>) -> Result<PlanView, ServiceError> {
    Ok(plan_with(&Engine::new(store.load_tenant()?, at)))
}

/// [`plan`] over an engine already built (a server's snapshot).
pub fn plan_with(engine: &Engine) -> PlanView {
    let tenant = engine.tenant();
    let plan = engine.plan();
    let mut v = view(tenant, &plan);
    v.warnings.extend(overridden_exclusions(tenant, engine));
    v
}

/// Who an exclusion reaches.
enum Reach {
    AllUsers,
    AllDevices,
    /// Users and devices a group holds, through nested groups.
    Members(HashSet<u32>, HashSet<u32>),
}

/// Every user and device a group holds, through nested groups (each group
/// visited once, so cycles end).
fn members_of(t: &Tenant, g: provkit_policy::GroupId) -> Reach {
    let (mut users, mut devices) = (HashSet::new(), HashSet::new());
    let mut seen = HashSet::new();
    let mut stack = vec![g];
    while let Some(g) = stack.pop() {
        if !seen.insert(g) {
            continue;
        }
        let grp = &t.groups[g.index()];
        users.extend(grp.users.iter().map(|u| u.0));
        devices.extend(grp.devices.iter().map(|d| d.0));
        stack.extend(grp.subgroups.iter().copied());
    }
    Reach::Members(users, devices)
}

/// Devices that keep a profile only because an installed app links to it,
/// although an exclusion of the profile reaches them: one warning per
/// profile, app and excluded target, with the device count. Only profiles
/// that an app links and that have exclusions are looked at.
fn overridden_exclusions(t: &Tenant, engine: &Engine) -> Vec<IssueView> {
    use provkit_policy::{DeviceId, Intent, ProfileId};
    let linked: HashSet<ProfileId> = t.apps.iter().filter_map(|a| a.profile).collect();
    let mut by_profile: HashMap<ProfileId, Vec<(String, Reach)>> = HashMap::new();
    for a in &t.assignments {
        if a.intent != Intent::Exclude || !linked.contains(&a.profile) {
            continue;
        }
        let reach = match &a.target {
            Target::AllUsers => Reach::AllUsers,
            Target::AllDevices => Reach::AllDevices,
            Target::Group(g) => members_of(t, *g),
            Target::MissingGroup(_) => continue,
        };
        by_profile
            .entry(a.profile)
            .or_default()
            .push((target_name(t, &a.target), reach));
    }
    if by_profile.is_empty() {
        return Vec::new();
    }
    let mut counts: std::collections::BTreeMap<(usize, usize, String), usize> =
        std::collections::BTreeMap::new();
    for (di, d) in t.devices.iter().enumerate() {
        let id = DeviceId(u32::try_from(di).unwrap_or(u32::MAX));
        for app in &d.apps {
            let Some(p) = t.apps[app.index()].profile else {
                continue;
            };
            let Some(exclusions) = by_profile.get(&p) else {
                continue;
            };
            if engine.desired(id).binary_search(&p).is_err() {
                continue;
            }
            for (target, reach) in exclusions {
                let reached = match reach {
                    Reach::AllUsers => d.user.is_some(),
                    Reach::AllDevices => true,
                    Reach::Members(users, devices) => {
                        devices.contains(&id.0) || d.user.is_some_and(|u| users.contains(&u.0))
                    }
                };
                if reached {
                    *counts
                        .entry((p.index(), app.index(), target.clone()))
                        .or_default() += 1;
                }
            }
        }
    }
    counts
        .into_iter()
        .map(|((p, a, target), n)| {
            let uuid = t.profiles[p].uuid.clone();
            let app = app_name(t, provkit_policy::AppId(u32::try_from(a).unwrap_or(u32::MAX)));
            IssueView {
                profile: Some(uuid.clone()),
                app: Some(app.clone()),
                target: Some(target.clone()),
                devices: Some(n),
                ..issue(
                    "exclusion-overridden-by-app",
                    format!(
                        "excluded through {target}, profile {uuid} is still installed on {n} device(s) because app {app} links it"
                    ),
                )
            }
        })
        .collect()
}

/// The plan at `at`, its commands queued in the outbox and its notification
/// stages logged, in one transaction: commands already queued (the same
/// command UUID) and stages already logged are left alone.
///
/// # Errors
/// Store failures (nothing is written).
pub fn plan_and_enqueue(
    store: &mut dyn Store,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<PlanView, ServiceError> {
    // The change the plan is made at: answers processed while it is made
    // are checked again when it is queued.
    let seen = store.last_change()?;
    let engine = Engine::new(store.load_tenant()?, at);
    let view = plan_with(&engine);
    let entries: Vec<OutboxEntry> = view
        .commands
        .iter()
        .map(|c| OutboxEntry {
            command_uuid: c.command_uuid.clone(),
            udid: c.udid.clone(),
            request_type: c.request_type.into(),
            profile_uuid: c.profile_uuid.clone(),
            status: CommandStatus::Planned,
            error_chain: None,
            retries: 0,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let logged: Vec<(String, i64)> = view
        .notifications
        .iter()
        .map(|n| (n.profile.clone(), n.stage_days))
        .collect();
    store.enqueue_plan_since(&entries, &logged, now, seen.as_deref())?;
    // Each channel's message for each stage, made once.
    let notices = crate::notify::notices_of(store, &engine, &view)?;
    if !notices.is_empty() {
        store.queue_notices(&notices, now)?;
    }
    Ok(view)
}

fn app_name(t: &Tenant, a: provkit_policy::AppId) -> String {
    let app = &t.apps[a.index()];
    format!("{} {}", app.bundle_id, app.version)
}

fn target_name(t: &Tenant, target: &Target) -> String {
    match target {
        Target::AllUsers => "all-users".into(),
        Target::AllDevices => "all-devices".into(),
        Target::Group(g) => t.groups[g.index()].name.clone(),
        Target::MissingGroup(n) => n.clone(),
    }
}

fn issue(kind: &'static str, message: String) -> IssueView {
    IssueView {
        kind,
        profile: None,
        app: None,
        device: None,
        target: None,
        devices: None,
        at: None,
        message,
    }
}

fn blocker(t: &Tenant, b: &Blocker) -> IssueView {
    let uuid = |p: provkit_policy::ProfileId| t.profiles[p.index()].uuid.clone();
    match b {
        Blocker::ResignRequired {
            app,
            profile,
            reason,
            devices,
        } => {
            let why = match reason {
                ResignReason::CertificateExpired => "its signing certificate has expired",
                ResignReason::CertificateNotInProfile => {
                    "its signing certificate is not in its profile"
                }
            };
            IssueView {
                profile: profile.map(uuid),
                app: Some(app_name(t, *app)),
                devices: Some(*devices),
                ..issue(
                    "resign-required",
                    format!(
                        "{} must be re-signed: {why}; renewing the profile cannot help ({devices} device(s))",
                        app_name(t, *app)
                    ),
                )
            }
        }
        Blocker::NotProvisioned { device, profile } => {
            let udid = t.devices[device.index()].udid.as_str().to_owned();
            IssueView {
                profile: Some(uuid(*profile)),
                device: Some(udid.clone()),
                ..issue(
                    "not-provisioned",
                    format!(
                        "profile {} does not list device {udid}: the install would fail",
                        uuid(*profile)
                    ),
                )
            }
        }
        Blocker::UncoveredApp { app, devices } => {
            let a = &t.apps[app.index()];
            let linked = a.profile.map(|p| &t.profiles[p.index()]);
            let cause = match linked {
                None => "no profile is linked to it".to_owned(),
                Some(p) if !p.app_id.starts_with(&format!("{}.", a.team)) => format!(
                    "team mismatch: the app is signed by team {}, its profile {} belongs to team {}",
                    a.team, p.uuid, p.team
                ),
                Some(p) => format!(
                    "its profile {} has App ID {}, which does not cover bundle id {}",
                    p.uuid, p.app_id, a.bundle_id
                ),
            };
            IssueView {
                app: Some(app_name(t, *app)),
                profile: linked.map(|p| p.uuid.clone()),
                devices: Some(*devices),
                ..issue(
                    "uncovered-app",
                    format!(
                        "no profile covers {}: {cause} ({devices} device(s))",
                        app_name(t, *app)
                    ),
                )
            }
        }
        Blocker::ExpiringWithoutSuccessor {
            profile,
            app,
            devices,
            at,
        } => {
            let what = app.map_or_else(|| "their apps".to_owned(), |a| app_name(t, a));
            IssueView {
                profile: Some(uuid(*profile)),
                app: app.map(|a| app_name(t, a)),
                devices: Some(*devices),
                at: Some(*at),
                ..issue(
                    "expiring-without-successor",
                    format!(
                        "{devices} device(s) lose {what} when profile {} dies: it has no successor",
                        uuid(*profile)
                    ),
                )
            }
        }
    }
}

fn warning(t: &Tenant, w: &Warning) -> IssueView {
    let (a, kind) = match w {
        Warning::MixedKindExclusion { assignment } => (*assignment, "mixed-kind-exclusion"),
        Warning::MissingGroup { assignment, .. } => (*assignment, "missing-group"),
    };
    let a = &t.assignments[a.index()];
    let profile = t.profiles[a.profile.index()].uuid.clone();
    let target = target_name(t, &a.target);
    let message = match w {
        Warning::MixedKindExclusion { .. } => format!(
            "excluding {target} from profile {profile} has no effect: no include of its kind (users or devices) to cancel"
        ),
        Warning::MissingGroup { name, .. } => {
            format!("profile {profile} is assigned to group {name:?}, which does not exist")
        }
    };
    IssueView {
        profile: Some(profile),
        target: Some(target),
        ..issue(kind, message)
    }
}

/// Names a computed plan.
pub fn view(t: &Tenant, plan: &Plan) -> PlanView {
    let commands = plan
        .devices
        .iter()
        .flat_map(|d| {
            d.commands.iter().map(move |c| {
                let (request_type, profile_uuid) = match c {
                    Command::InstallProvisioningProfile { profile } => (
                        "InstallProvisioningProfile",
                        t.profiles[profile.index()].uuid.clone(),
                    ),
                    Command::RemoveProvisioningProfile { uuid } => {
                        ("RemoveProvisioningProfile", uuid.to_string())
                    }
                };
                CommandView {
                    command_uuid: command_uuid(&d.udid, request_type, &profile_uuid, plan.at),
                    udid: d.udid.clone(),
                    request_type,
                    profile_uuid,
                }
            })
        })
        .collect();
    PlanView {
        at: plan.at,
        devices: plan.devices.len(),
        commands,
        notifications: plan
            .notifications
            .iter()
            .map(|x| NotificationView {
                profile: x.uuid.clone(),
                name: t.profiles[x.profile.index()].name.clone(),
                stage_days: x.stage_days,
                death: x.death,
                cause: if x.death < t.profiles[x.profile.index()].expires {
                    "certificate expires"
                } else {
                    "profile expires"
                },
                days_left: x.days_left,
                apps: x.apps.iter().map(|a| app_name(t, *a)).collect(),
                devices: x.devices,
            })
            .collect(),
        user_notices: plan
            .user_notices
            .iter()
            .map(|u| UserNoticeView {
                user: t.users[u.user.index()].name.as_str().to_owned(),
                device: t.devices[u.device.index()].udid.as_str().to_owned(),
                app: app_name(t, u.app),
                death: u.death,
            })
            .collect(),
        blockers: plan.blockers.iter().map(|b| blocker(t, b)).collect(),
        warnings: plan.warnings.iter().map(|w| warning(t, w)).collect(),
    }
}

#[cfg(test)]
mod command_uuid_tests {
    use super::command_uuid;
    use chrono::TimeZone as _;

    /// Command UUIDs are RFC 9562 version 7: the same inputs give the same
    /// UUID, a later plan's UUIDs sort after an earlier one's (regression:
    /// hash-random UUIDs put each enqueued row on a random index page,
    /// 26 µs a command on SQLite), and each device gets its own.
    #[test]
    fn random_command_uuids_scattered_the_outbox_index() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let later = at + chrono::Duration::seconds(1);
        let install = "InstallProvisioningProfile";
        let p = "ACAC0000-0000-4000-8000-000000000001";
        let a = command_uuid("D1", install, p, at);
        assert_eq!(a, command_uuid("D1", install, p, at));
        assert_ne!(a, command_uuid("D2", install, p, at));
        assert_ne!(a, command_uuid("D1", "RemoveProvisioningProfile", p, at));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7", "version 7: {a}");
        assert!(matches!(&a[19..20], "8" | "9" | "A" | "B"), "variant: {a}");
        // 2026-12-05T12:00:00Z is 1796472000000 ms: 0x01A2_4613_4E00.
        assert_eq!(&a[..13], "01A24613-4E00", "{a}");
        for d in ["D1", "D2", "D3", "ZZ"] {
            assert!(command_uuid(d, install, p, later) > command_uuid("D1", install, p, at));
        }
        let before_1970 = chrono::Utc.with_ymd_and_hms(1960, 1, 1, 0, 0, 0).unwrap();
        assert!(command_uuid("D1", install, p, before_1970).starts_with("00000000-0000-7"));
    }
}

//! A seeded, reproducible generator of tenants with the shape of a large
//! real one (domain doc: 1M devices, 600k users, 100k groups nested about 10
//! deep with some cycles, 10k profiles, 2k apps, up to 200 assignments per
//! profile, 1 to 20 profiles per device), scaled down at will. Used by the
//! benches, the store and the CLI.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use provkit_profile::ProfileKind;

use crate::model::{
    App, AppId, AppList, Assignment, CertFacts, Config, Device, DeviceId, DeviceScope, Group,
    GroupId, GroupKind, Intent, ProfileFacts, ProfileId, Reported, Target, Tenant, User, UserId,
    Uuid,
};

/// How big, and how tangled.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Shape {
    /// Devices.
    pub devices: usize,
    /// Users.
    pub users: usize,
    /// Groups (half user groups, half device groups).
    pub groups: usize,
    /// Profiles.
    pub profiles: usize,
    /// Apps.
    pub apps: usize,
    /// Nesting depth of groups.
    pub depth: usize,
    /// Fraction of groups given an extra nesting edge that closes a cycle.
    pub cycle_fraction: f64,
    /// Most assignments one profile has.
    pub max_assignments_per_profile: usize,
    /// Fraction of devices with a primary user.
    pub with_user: f64,
    /// The chance that an assignment targets All users or All devices.
    /// `None`: one in 5,000, so such assignments grow with the profiles
    /// (about 5 at 1M devices, 18 at 4M) and every device wants more
    /// profiles in a larger tenant. [`Shape::same_density`] keeps them as
    /// many as at 1M.
    pub everyone_chance: Option<f64>,
    /// The instant profile dates are spread around.
    pub around: DateTime<Utc>,
}

impl Shape {
    /// The large tenant: 1M devices.
    pub fn large() -> Self {
        Self::scaled(1_000_000)
    }

    /// The large tenant's proportions at `devices` devices.
    pub fn scaled(devices: usize) -> Self {
        Shape {
            devices,
            users: devices * 6 / 10,
            groups: (devices / 10).max(4),
            profiles: (devices / 100).max(3),
            apps: (devices / 500).max(2),
            depth: 10,
            cycle_fraction: 0.002,
            max_assignments_per_profile: 200,
            with_user: 0.85,
            everyone_chance: None,
            around: Utc
                .with_ymd_and_hms(2026, 11, 22, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }

    /// The large tenant's proportions at `devices` devices, with as many
    /// All users / All devices assignments as the 1M tenant expects (so a
    /// device wants about as many profiles at any size): for measuring how
    /// the engine scales with the devices alone.
    pub fn same_density(devices: usize) -> Self {
        let shape = Self::scaled(devices);
        let at_1m = Self::scaled(1_000_000).profiles;
        #[allow(clippy::cast_precision_loss)]
        let chance = (at_1m as f64 / shape.profiles.max(1) as f64) / 5000.0;
        Shape {
            everyone_chance: Some(chance.min(1.0)),
            ..shape
        }
    }
}

/// SplitMix64: small, fast, reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

fn id32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn uuid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08X}-{:04X}-4{:03X}-{:04X}-{:012X}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// A UDID for device `i` (deterministic).
pub fn udid(i: usize) -> String {
    format!(
        "00008110-{:016X}",
        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    )
}

/// Generates a tenant. The same shape and seed always give the same tenant.
/// Devices report only the profiles of their installed apps; see [`settle`]
/// for a tenant in steady state.
pub fn generate(shape: &Shape, seed: u64) -> Tenant {
    let mut rng = Rng::new(seed);
    let day = TimeDelta::days(1);
    let users: Vec<User> = (0..shape.users)
        .map(|i| User {
            name: format!("user{i}").into(),
        })
        .collect();

    // Groups: the first half user groups, the rest device groups, each kind
    // in `depth` levels; a group below level 0 is nested in a random group
    // one level up.
    let half = shape.groups / 2;
    let mut groups: Vec<Group> = (0..shape.groups)
        .map(|i| {
            let kind = if i < half {
                GroupKind::User
            } else {
                GroupKind::Device
            };
            Group {
                name: format!(
                    "{}-group-{i}",
                    if kind == GroupKind::User {
                        "user"
                    } else {
                        "device"
                    }
                ),
                kind,
                users: Vec::new(),
                devices: Vec::new(),
                subgroups: Vec::new(),
            }
        })
        .collect();
    let depth = shape.depth.max(1);
    let level = |i: usize, base: usize| (i - base) % depth;
    for (base, count) in [(0, half), (half, shape.groups - half)] {
        if count < 2 {
            continue;
        }
        let per_level = count.div_ceil(depth);
        for i in base..base + count {
            let l = level(i, base);
            if l == 0 {
                continue;
            }
            // A random group of the same kind at level l - 1.
            let k = rng.below(per_level);
            let parent = base + (k * depth + l - 1).min(count - 1);
            if parent != i && level(parent, base) == l - 1 {
                groups[parent].subgroups.push(GroupId(id32(i)));
            }
            if rng.chance(shape.cycle_fraction) {
                // Close a cycle: this deep group contains a top-level group.
                let top = base + (rng.below(per_level) * depth).min(count - 1);
                if top != i {
                    groups[i].subgroups.push(GroupId(id32(top)));
                }
            }
        }
    }
    let pick_group = |rng: &mut Rng, kind: GroupKind, deep: bool| -> Option<usize> {
        let (base, count) = if kind == GroupKind::User {
            (0, half)
        } else {
            (half, shape.groups - half)
        };
        if count == 0 {
            return None;
        }
        let i = rng.below(count);
        let l = if deep {
            depth - 1 - rng.below(depth.min(4))
        } else {
            rng.below(depth.min(4))
        };
        Some(base + ((i / depth) * depth + l).min(count - 1))
    };
    for u in 0..shape.users {
        for _ in 0..1 + rng.below(2) {
            if let Some(g) = pick_group(&mut rng, GroupKind::User, true) {
                groups[g].users.push(UserId(id32(u)));
            }
        }
    }

    // Profiles.
    let teams = 1 + shape.profiles / 200;
    let mut profiles = Vec::with_capacity(shape.profiles);
    for i in 0..shape.profiles {
        let team = format!("TEAM{:06}", rng.below(teams));
        let roll = rng.below(100);
        let kind = match roll {
            0..70 => ProfileKind::Enterprise,
            70..85 => ProfileKind::AppStore,
            85..93 => ProfileKind::AdHoc,
            _ => ProfileKind::Development,
        };
        let devices = if matches!(kind, ProfileKind::AdHoc | ProfileKind::Development) {
            let mut list: Vec<String> = (0..1 + rng.below(100))
                .map(|_| udid(rng.below(shape.devices.max(1))))
                .collect();
            list.sort();
            list.dedup();
            DeviceScope::Listed(list)
        } else {
            DeviceScope::All
        };
        let offset = i64::try_from(rng.below(430)).unwrap_or(0) - 30;
        let expires = shape.around + day * i32::try_from(offset).unwrap_or(0);
        let certificates = (0..1 + rng.below(2))
            .map(|_| {
                let mut sha256 = [0u8; 32];
                for chunk in sha256.chunks_mut(8) {
                    chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
                }
                let days = i32::try_from(rng.below(1100)).unwrap_or(0) - 40;
                CertFacts {
                    sha256,
                    not_after: shape.around + day * days,
                }
            })
            .collect();
        profiles.push(ProfileFacts {
            uuid: uuid(&mut rng),
            name: format!("Profile {i}"),
            app_id: format!("{team}.com.example.app{i}"),
            team,
            kind,
            platforms: vec!["iOS".into()],
            created: expires - day * 365,
            expires,
            certificates,
            devices,
            superseded_by: None,
            retired: false,
        });
    }

    // Apps, each signed under a profile and usually with one of its certificates.
    let apps: Vec<App> = (0..shape.apps)
        .map(|i| {
            let p = ProfileId(id32(i % shape.profiles.max(1)));
            let f: &ProfileFacts = &profiles[p.index()];
            let cert = if rng.chance(0.97) {
                f.certificates[rng.below(f.certificates.len())].clone()
            } else {
                CertFacts {
                    sha256: [0xee; 32],
                    not_after: shape.around + day * 200,
                }
            };
            App {
                bundle_id: f
                    .app_id
                    .split_once('.')
                    .map(|(_, b)| b.to_owned())
                    .unwrap_or_default(),
                version: format!("1.{}", i % 10),
                team: f.team.clone(),
                profile: Some(p),
                certificate: cert.sha256,
                certificate_not_after: cert.not_after,
            }
        })
        .collect();

    // Devices.
    let ios: std::sync::Arc<str> = "iOS".into();
    let mut devices = Vec::with_capacity(shape.devices);
    for i in 0..shape.devices {
        let user = (shape.users > 0 && rng.chance(shape.with_user))
            .then(|| UserId(id32(rng.below(shape.users))));
        // Apps under development or ad hoc profiles are only on the devices those list.
        let this = udid(i);
        let mut installed: AppList = (0..rng.below(4))
            .map(|_| AppId(id32(rng.below(shape.apps.max(1)))))
            .filter(|a| {
                apps[a.index()]
                    .profile
                    .is_none_or(|p| profiles[p.index()].allows_device(&this))
            })
            .collect();
        installed.sort_unstable();
        installed.dedup();
        let reported = installed
            .iter()
            .filter_map(|a| apps[a.index()].profile)
            .filter_map(|p| {
                let f = &profiles[p.index()];
                Some(Reported {
                    uuid: Uuid::parse(&f.uuid)?,
                    expires: f.expires,
                    managed: true,
                })
            })
            .collect();
        devices.push(Device {
            udid: this.into(),
            platform: std::sync::Arc::clone(&ios),
            user,
            apps: installed,
            reported,
        });
        for _ in 0..1 + rng.below(2) {
            if let Some(g) = pick_group(&mut rng, GroupKind::Device, true) {
                groups[g].devices.push(DeviceId(id32(i)));
            }
        }
    }

    // Assignments: mostly a few per profile, a long tail up to the maximum.
    let mut assignments = Vec::new();
    for (p, facts) in profiles.iter().enumerate() {
        // Development and ad hoc profiles are installed through their apps;
        // one in ten is also (mis)assigned to a group.
        if matches!(facts.devices, DeviceScope::Listed(_)) && !rng.chance(0.1) {
            continue;
        }
        let n = match rng.below(1000) {
            0 => shape.max_assignments_per_profile,
            1..20 => 10 + rng.below(40),
            _ => 1 + rng.below(3),
        };
        for k in 0..n {
            let intent = if k > 0 && rng.chance(0.15) {
                Intent::Exclude
            } else {
                Intent::Include
            };
            // One draw either way, so the default tenant stays as it was.
            let everyone = match shape.everyone_chance {
                None => rng.below(5000) == 0,
                Some(p) => rng.chance(p),
            };
            let target = if everyone {
                if rng.chance(0.5) {
                    Target::AllUsers
                } else {
                    Target::AllDevices
                }
            } else if rng.below(2000) == 0 {
                Target::MissingGroup(format!("deleted-group-{p}-{k}"))
            } else {
                let kind = if rng.chance(0.5) {
                    GroupKind::User
                } else {
                    GroupKind::Device
                };
                match pick_group(&mut rng, kind, false) {
                    Some(g) => Target::Group(GroupId(id32(g))),
                    None => Target::AllDevices,
                }
            };
            assignments.push(Assignment {
                profile: ProfileId(id32(p)),
                target,
                intent,
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    assignments.retain(|a| seen.insert(a.clone()));

    Tenant {
        profiles,
        apps,
        users,
        devices,
        groups,
        assignments,
        config: Config::default(),
    }
}

/// Puts the tenant in steady state at `at`: every device whose index is
/// not a multiple of `drift_every` reports exactly what the plan wants it to
/// hold (the others keep their reports, and so have work to do).
pub fn settle(mut t: Tenant, at: DateTime<Utc>, drift_every: usize) -> Tenant {
    // Targeting alone: a full engine would also plan every device's
    // commands, only to drop them.
    let wants = crate::engine::desired_all(&t);
    for (i, (d, want)) in t.devices.iter_mut().zip(&wants).enumerate() {
        if drift_every > 0 && i % drift_every == 0 {
            continue;
        }
        // Sized once: a list grown push by push holds up to twice its length.
        let mut reported = Vec::with_capacity(want.len());
        reported.extend(
            want.iter()
                .map(|p| &t.profiles[p.index()])
                .filter(|f| f.expires >= at && f.allows_device(&d.udid))
                .filter_map(|f| {
                    Some(Reported {
                        uuid: Uuid::parse(&f.uuid)?,
                        expires: f.expires,
                        managed: true,
                    })
                }),
        );
        reported.shrink_to_fit();
        d.reported = reported;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    #[test]
    fn a_settled_tenant_leaves_work_only_on_drifting_devices() {
        let shape = Shape::scaled(5_000);
        let at = shape.around;
        let before = Engine::new(generate(&shape, 3), at).plan();
        let engine = Engine::new(settle(generate(&shape, 3), at, 20), at);
        let plan = engine.plan();
        assert!(plan.command_count() > 0, "the drifting devices have work");
        assert!(plan.command_count() < before.command_count());
        for d in &plan.devices {
            let i = engine
                .tenant()
                .devices
                .iter()
                .position(|x| x.udid == d.udid)
                .expect("a planned device is in the tenant");
            assert_eq!(i % 20, 0, "device {i} was settled but has commands");
        }
        // Settled reports hold exactly the installable desired profiles.
        let t = engine.tenant();
        for (i, dev) in t.devices.iter().enumerate().filter(|(i, _)| i % 20 != 0) {
            let wanted = engine
                .desired(DeviceId(id32(i)))
                .iter()
                .map(|p| &t.profiles[p.index()])
                .filter(|f| f.expires >= at && f.allows_device(&dev.udid))
                .count();
            assert_eq!(dev.reported.len(), wanted, "device {i}");
            assert_eq!(dev.reported.capacity(), dev.reported.len(), "device {i}");
        }
    }

    #[test]
    fn same_density_keeps_the_everyone_assignments_of_the_1m_tenant() {
        let everyone = |t: &Tenant| {
            t.assignments
                .iter()
                .filter(|a| matches!(a.target, Target::AllUsers | Target::AllDevices))
                .count()
        };
        // Scaled, a 20k tenant expects 0.09 of them; at the 1M density,
        // about 4.6 (the seed below gives a few).
        let scaled = generate(&Shape::scaled(20_000), 9);
        let dense = generate(&Shape::same_density(20_000), 9);
        assert!(everyone(&scaled) <= 1, "{}", everyone(&scaled));
        assert!((2..=12).contains(&everyone(&dense)), "{}", everyone(&dense));
        // The chance falls as the profiles grow, so the count stays.
        let big = Shape::same_density(4_000_000).everyone_chance.expect("set");
        assert!((big * 4.0 * 5000.0 - 1.0).abs() < 1e-9, "{big}");
        assert_eq!(Shape::scaled(4_000_000).everyone_chance, None);
    }
}

//! The engine's targeting against the same targeting as a recursive-CTE
//! query in PostgreSQL (the approach a team without this engine would take),
//! on the same generated tenant, in the same run. Both must find the same
//! (device, profile) pairs; the report gives both times and the ratio.
//!
//! ```text
//! PROVKIT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release --example policy_vs_sql -- 1000000
//! ```
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]

use std::io::Write as _;
use std::time::Instant;

use provkit::policy::generate::{Shape, generate};
use provkit::policy::{DeviceId, Engine, GroupKind, Intent, Target};

const SCHEMA: &str = "
DROP TABLE IF EXISTS cte_users, cte_devices, cte_groups, cte_nesting, cte_user_members, cte_device_members, cte_assignments;
CREATE TABLE cte_users (user_id INT PRIMARY KEY);
CREATE TABLE cte_devices (device_id INT PRIMARY KEY, user_id INT);
CREATE TABLE cte_groups (group_id INT PRIMARY KEY, kind TEXT NOT NULL);
CREATE TABLE cte_nesting (parent INT NOT NULL, child INT NOT NULL);
CREATE TABLE cte_user_members (group_id INT NOT NULL, user_id INT NOT NULL);
CREATE TABLE cte_device_members (group_id INT NOT NULL, device_id INT NOT NULL);
CREATE TABLE cte_assignments (profile_id INT NOT NULL, target TEXT NOT NULL, group_id INT, include BOOLEAN NOT NULL);
";

const INDEXES: &str = "
CREATE INDEX ON cte_nesting (child);
CREATE INDEX ON cte_user_members (group_id);
CREATE INDEX ON cte_device_members (group_id);
CREATE INDEX ON cte_assignments (group_id);
CREATE INDEX ON cte_devices (user_id);
ANALYZE;
";

/// Rule 3 in SQL: group closure by recursive CTE (UNION stops on cycles),
/// memberships through it, includes minus excludes per kind, union of kinds.
const QUERY: &str = "
WITH RECURSIVE closure (ancestor, descendant) AS (
    SELECT group_id, group_id FROM cte_groups
  UNION
    SELECT n.parent, c.descendant
    FROM cte_nesting n JOIN closure c ON n.child = c.ancestor
),
user_in AS (
    SELECT DISTINCT m.user_id, c.ancestor AS group_id
    FROM cte_user_members m JOIN closure c ON c.descendant = m.group_id
),
device_in AS (
    SELECT DISTINCT m.device_id, c.ancestor AS group_id
    FROM cte_device_members m JOIN closure c ON c.descendant = m.group_id
),
user_hits AS (
    SELECT u.user_id, a.profile_id, a.include
    FROM user_in u JOIN cte_assignments a ON a.target = 'group' AND a.group_id = u.group_id
  UNION ALL
    SELECT u.user_id, a.profile_id, a.include
    FROM cte_users u JOIN cte_assignments a ON a.target = 'all-users'
),
user_targets AS (
    SELECT user_id, profile_id FROM user_hits GROUP BY user_id, profile_id
    HAVING bool_or(include) AND NOT bool_or(NOT include)
),
device_hits AS (
    SELECT d.device_id, a.profile_id, a.include
    FROM device_in d JOIN cte_assignments a ON a.target = 'group' AND a.group_id = d.group_id
  UNION ALL
    SELECT d.device_id, a.profile_id, a.include
    FROM cte_devices d JOIN cte_assignments a ON a.target = 'all-devices'
),
device_targets AS (
    SELECT device_id, profile_id FROM device_hits GROUP BY device_id, profile_id
    HAVING bool_or(include) AND NOT bool_or(NOT include)
),
targeted AS (
    SELECT d.device_id, t.profile_id FROM cte_devices d JOIN user_targets t ON t.user_id = d.user_id
  UNION
    SELECT device_id, profile_id FROM device_targets
)
SELECT count(*) FROM targeted
";

fn copy(
    client: &mut postgres::Client,
    table: &str,
    rows: impl Iterator<Item = String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut buf = Vec::new();
    for r in rows {
        buf.extend_from_slice(r.as_bytes());
        buf.push(b'\n');
    }
    let mut w = client.copy_in(&format!("COPY {table} FROM STDIN"))?;
    w.write_all(&buf)?;
    w.finish()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let devices: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let url = std::env::var("PROVKIT_DATABASE_URL").map_err(|_| "set PROVKIT_DATABASE_URL")?;
    let shape = Shape::scaled(devices);
    let mut t = generate(&shape, 42);
    // Targeting only: no app links, no missing groups.
    for d in &mut t.devices {
        d.apps.clear();
    }
    t.assignments
        .retain(|a| !matches!(a.target, Target::MissingGroup(_)));

    let started = Instant::now();
    let engine = Engine::new(t.clone(), shape.around);
    let engine_time = started.elapsed();
    let engine_pairs: usize = (0..t.devices.len())
        .map(|d| engine.desired(DeviceId(d as u32)).len())
        .sum();

    let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
    client.batch_execute(SCHEMA)?;
    copy(
        &mut client,
        "cte_users",
        (0..t.users.len()).map(|u| u.to_string()),
    )?;
    copy(
        &mut client,
        "cte_devices",
        t.devices.iter().enumerate().map(|(i, d)| {
            format!(
                "{i}\t{}",
                d.user.map_or("\\N".to_owned(), |u| u.0.to_string())
            )
        }),
    )?;
    copy(
        &mut client,
        "cte_groups",
        t.groups.iter().enumerate().map(|(i, g)| {
            format!(
                "{i}\t{}",
                if g.kind == GroupKind::User {
                    "user"
                } else {
                    "device"
                }
            )
        }),
    )?;
    copy(
        &mut client,
        "cte_nesting",
        t.groups.iter().enumerate().flat_map(|(i, g)| {
            let kind = g.kind;
            let groups = &t.groups;
            g.subgroups
                .iter()
                .filter(move |s| groups[s.index()].kind == kind)
                .map(move |s| format!("{i}\t{}", s.0))
        }),
    )?;
    copy(
        &mut client,
        "cte_user_members",
        t.groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.users.iter().map(move |u| format!("{i}\t{}", u.0))),
    )?;
    copy(
        &mut client,
        "cte_device_members",
        t.groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.devices.iter().map(move |d| format!("{i}\t{}", d.0))),
    )?;
    copy(
        &mut client,
        "cte_assignments",
        t.assignments.iter().map(|a| {
            let (target, group) = match &a.target {
                Target::AllUsers => ("all-users", "\\N".to_owned()),
                Target::AllDevices => ("all-devices", "\\N".to_owned()),
                Target::Group(g) => ("group", g.0.to_string()),
                Target::MissingGroup(_) => ("missing", "\\N".to_owned()),
            };
            format!(
                "{}\t{target}\t{group}\t{}",
                a.profile.0,
                a.intent == Intent::Include
            )
        }),
    )?;
    client.batch_execute(INDEXES)?;
    let started = Instant::now();
    let sql_pairs: i64 = client.query_one(QUERY, &[])?.get(0);
    let sql_time = started.elapsed();
    client.batch_execute("DROP TABLE cte_users, cte_devices, cte_groups, cte_nesting, cte_user_members, cte_device_members, cte_assignments")?;

    println!(
        "{devices} devices, {} groups, {} assignments",
        t.groups.len(),
        t.assignments.len()
    );
    println!(
        "engine (targeting + reconcile, both cores): {engine_time:?}, {engine_pairs} (device, profile) pairs"
    );
    println!("PostgreSQL recursive CTE (targeting only):  {sql_time:?}, {sql_pairs} pairs");
    println!(
        "ratio: the engine is {:.1}x faster",
        sql_time.as_secs_f64() / engine_time.as_secs_f64()
    );
    if engine_pairs as i64 != sql_pairs {
        return Err(format!("the two disagree: {engine_pairs} vs {sql_pairs}").into());
    }
    Ok(())
}

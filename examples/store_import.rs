//! Import a generated tenant into SQLite and PostgreSQL side by side, load
//! it back into the engine's snapshot, and report times and sizes on disk;
//! then, on SQLite, an inventory upload that adds one user and the
//! console's preview of an assignment and the save of that edit (in the
//! store, and on the engine a server holds).
//!
//! ```text
//! PROVKIT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release --features fixtures --example store_import -- 1000000
//! ```

use std::time::Instant;

use provkit::policy::generate::{Shape, generate};
use provkit::profile::fixtures::TestCa;
use provkit::store::{Actor, PostgresStore, SqliteStore, Store, import_tenant, sign_profiles};

/// Millions of small allocations: mimalloc handles them better than the
/// system allocator (figures for both are in the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What was imported comes back: the same counts of everything.
fn check(original: &provkit::policy::Tenant, loaded: &provkit::policy::Tenant) {
    let assignments = original
        .assignments
        .iter()
        .filter(|a| !matches!(a.target, provkit::policy::Target::MissingGroup(_)))
        .count();
    assert_eq!(loaded.devices.len(), original.devices.len());
    assert_eq!(loaded.users.len(), original.users.len());
    assert_eq!(loaded.groups.len(), original.groups.len());
    assert_eq!(loaded.profiles.len(), original.profiles.len());
    assert_eq!(loaded.apps.len(), original.apps.len());
    assert_eq!(loaded.assignments.len(), assignments);
    let memberships = |t: &provkit::policy::Tenant| {
        t.groups
            .iter()
            .map(|g| g.users.len() + g.devices.len() + g.subgroups.len())
            .sum::<usize>()
    };
    assert_eq!(memberships(loaded), memberships(original));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let devices: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let shape = Shape::scaled(devices);
    let tenant = generate(&shape, 42);
    let ca = TestCa::ecdsa();
    let started = Instant::now();
    let profiles = sign_profiles(&tenant, &ca);
    println!(
        "{devices} devices; {} profiles signed in {:?} (not counted below)",
        profiles.len(),
        started.elapsed()
    );
    let actor = Actor {
        name: "bench".into(),
        at: shape.around,
    };

    let dir = std::env::temp_dir().join(format!("provkit-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("provkit.db");
    let mut sqlite = SqliteStore::open(&path)?;
    let started = Instant::now();
    import_tenant(&mut sqlite, &tenant, &profiles, &ca.developer.cert, &actor)?;
    let import = started.elapsed();
    let started = Instant::now();
    let loaded = sqlite.load_tenant()?;
    let load = started.elapsed();
    check(&tenant, &loaded);
    // An inventory upload that adds one user, as `POST /api/v1/inventory`
    // makes it: merged, written, and every device's desired profiles
    // compared before and after.
    let one_user: provkit::store::Inventory =
        serde_json::from_value(serde_json::json!({ "users": ["new.user@example.com"] }))?;
    let started = Instant::now();
    let change = provkit::service::inventory::import(
        &mut sqlite,
        &one_user,
        &provkit::store::Replace::Nothing,
        false,
        shape.around,
        &actor,
    )?;
    let upload = started.elapsed();
    assert_eq!(change.users_added.len(), 1);
    // The console's assignment preview: one profile gains All devices,
    // computed in a transaction that is rolled back.
    let profile = sqlite
        .profiles()?
        .into_iter()
        .next()
        .ok_or("no profile")?
        .uuid;
    let edit = provkit::store::AssignmentEdit::Add {
        include: vec![provkit::store::TargetName::AllDevices],
        exclude: vec![],
    };
    let started = Instant::now();
    let preview = provkit::service::assign::preview(&mut sqlite, &profile, &edit, shape.around)?;
    let preview_took = started.elapsed();
    // The same preview as the console makes it now: the edit checked by
    // the store, the devices from the engine the server already holds (its
    // snapshot; built here, not counted).
    let engine = provkit::policy::Engine::new(sqlite.load_tenant()?, shape.around);
    let started = Instant::now();
    let on_engine =
        provkit::service::assign::preview_on(&mut sqlite, &engine, &profile, &edit, shape.around)?;
    let engine_took = started.elapsed();
    assert_eq!(on_engine, preview, "the two previews agree");
    // Saving that edit: the store's own edit plans the tenant twice in its
    // transaction; `edit_on` writes the targets alone and takes the devices
    // from the engine (built before either edit: a snapshot behind the
    // store still gives the right devices).
    let started = Instant::now();
    let saved = provkit::service::assign::edit(&mut sqlite, &profile, &edit, shape.around, &actor)?;
    let save_took = started.elapsed();
    let undo = provkit::store::AssignmentEdit::Remove {
        include: vec![provkit::store::TargetName::AllDevices],
        exclude: vec![],
    };
    let undone = provkit::service::assign::edit_on(
        &mut sqlite,
        &engine,
        &profile,
        &undo,
        shape.around,
        &actor,
    )?;
    assert_eq!(
        undone.devices_losing, saved.devices_gaining,
        "undone on the engine"
    );
    let started = Instant::now();
    let again = provkit::service::assign::edit_on(
        &mut sqlite,
        &engine,
        &profile,
        &edit,
        shape.around,
        &actor,
    )?;
    let save_on_took = started.elapsed();
    assert_eq!(again, saved, "the two saves agree");
    drop(sqlite);
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "SQLite:     import {import:?}, load {load:?} ({} devices), {:.1} MB on disk; an inventory upload of one user {upload:?}; an assignment preview {preview_took:?} in the store, {engine_took:?} on the engine ({} devices would gain the profile); saving it {save_took:?} in the store, {save_on_took:?} on the engine",
        loaded.devices.len(),
        size as f64 / 1e6,
        preview.devices_gaining.len()
    );
    std::fs::remove_dir_all(&dir)?;

    if let Ok(url) = std::env::var("PROVKIT_DATABASE_URL") {
        PostgresStore::reset(&url)?;
        let mut pg = PostgresStore::connect(&url)?;
        let started = Instant::now();
        import_tenant(&mut pg, &tenant, &profiles, &ca.developer.cert, &actor)?;
        let import = started.elapsed();
        let started = Instant::now();
        let loaded = pg.load_tenant()?;
        let load = started.elapsed();
        check(&tenant, &loaded);
        let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
        let bytes: i64 = client
            .query_one(
                "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relkind = 'r'",
                &[],
            )?
            .get(0);
        println!(
            "PostgreSQL: import {import:?}, load {load:?} ({} devices), {:.1} MB on disk",
            loaded.devices.len(),
            bytes as f64 / 1e6
        );
    } else {
        println!("PostgreSQL: skipped (PROVKIT_DATABASE_URL is not set)");
    }
    Ok(())
}

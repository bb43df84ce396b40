//! Every released schema has a fixture database made by that version; each
//! must open (migrating forward) and read back what was written. Regenerate
//! the current one with `cargo test -p provkit-store --test schema_fixtures -- --ignored`
//! (only when a new schema version is released: old fixtures are never rewritten).

use chrono::DateTime;
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile};
use provkit_store::*;

const V1: &str = "tests/fixtures/schema-v1.sqlite";
const V2: &str = "tests/fixtures/schema-v2.sqlite";
const V3: &str = "tests/fixtures/schema-v3.sqlite";
const V4: &str = "tests/fixtures/schema-v4.sqlite";

/// A command queued for UDID-1, as the fixtures since version 3 hold.
fn pending_install(uuid: &str) -> OutboxEntry {
    OutboxEntry {
        command_uuid: uuid.into(),
        udid: "UDID-1".into(),
        request_type: "InstallProvisioningProfile".into(),
        profile_uuid: UUID.into(),
        status: CommandStatus::Planned,
        error_chain: None,
        retries: 0,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    }
}
const UUID: &str = "0F1E2D3C-4B5A-4968-8776-655443322110";

fn actor() -> Actor {
    Actor {
        name: "fixture".into(),
        at: DateTime::UNIX_EPOCH,
    }
}

#[test]
#[ignore = "writes the fixture of the current schema version"]
fn write_current_schema_fixture() {
    let path = format!("tests/fixtures/schema-v{SCHEMA_VERSION}.sqlite");
    let _ = std::fs::remove_file(&path);
    let mut store = SqliteStore::open(&path).expect("create");
    let ca = TestCa::rsa();
    store
        .add_profile(
            &signed_profile(
                &ca,
                &ProfileSpec {
                    uuid: UUID.into(),
                    ..ProfileSpec::default()
                },
            ),
            &actor(),
        )
        .expect("profile");
    let inv: Inventory = serde_json::from_value(serde_json::json!({
        "users": ["alice"],
        "devices": [{"udid": "UDID-1", "user": "alice"}],
        "groups": [{"name": "Staff", "kind": "user", "members": ["alice"]}]
    }))
    .expect("inventory");
    store.import_inventory(&inv, &actor()).expect("inventory");
    store
        .set_assignments(UUID, &[TargetName::parse("Staff")], &[], &actor())
        .expect("assign");
    store
        .enqueue(&[pending_install("FIXTURE-COMMAND-1")])
        .expect("queue");
    drop(store);
    // Fold the WAL into the file so the fixture is one file.
    let conn = rusqlite::Connection::open(&path).expect("raw");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
        .expect("checkpoint");
}

/// Opens a copy of a fixture (which migrates it) and reads it back.
fn opens_and_reads(fixture: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("provkit-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let copy = dir.join(fixture.rsplit('/').next().expect("name"));
    std::fs::copy(fixture, &copy).expect("copy the fixture (opening migrates it)");
    let mut store = SqliteStore::open(&copy).expect("an old database opens");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let profiles = store.profiles().expect("profiles");
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].uuid, UUID);
    assert!(!store.profile_bytes(UUID).expect("bytes").is_empty());
    let t = store.load_tenant().expect("tenant");
    assert_eq!(
        (
            t.users.len(),
            t.devices.len(),
            t.groups.len(),
            t.assignments.len()
        ),
        (1, 1, 1, 1)
    );
    copy
}

/// The profile documents as stored.
fn raw_profile_docs(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("raw");
    let mut st = conn.prepare("SELECT doc FROM profiles").expect("query");
    st.query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("docs")
}

#[test]
fn schema_v1_fixture_opens_and_reads() {
    let copy = opens_and_reads(V1);
    // Migrated to version 2: the engine's in-memory fields are gone.
    for doc in raw_profile_docs(&copy) {
        assert!(!doc.contains("superseded_by"), "{doc}");
    }
}

#[test]
fn schema_v3_fixture_opens_and_reads() {
    let copy = opens_and_reads(V3);
    let mut store = SqliteStore::open(&copy).expect("open");
    // Its queued command is pending: the same install under another UUID
    // is not queued again.
    let queued = store
        .enqueue_plan(
            &[pending_install("FIXTURE-COMMAND-2")],
            &[],
            DateTime::UNIX_EPOCH,
        )
        .expect("enqueue");
    assert_eq!(queued, (0, 0));
    // Migrated to version 4: its planned command waits for a dispatch,
    // and goes into one once a connection serves the device.
    delivery_after_migration(&mut store);
}

/// A connection at the root; the fixture's planned command is dispatched.
fn delivery_after_migration(store: &mut SqliteStore) {
    assert_eq!(
        store
            .prepare_dispatches(DateTime::UNIX_EPOCH, 200)
            .expect("none yet"),
        0
    );
    store
        .add_mdm_connection(
            &MdmConnection {
                name: "mdm".into(),
                kind: MdmKind::NanoMdm,
                url: "https://mdm.example.com".into(),
                api_key: "k".into(),
                webhook_hmac_key: None,
                org_group: "Global".into(),
                created_by: "fixture".into(),
                created_at: DateTime::UNIX_EPOCH,
            },
            &actor(),
        )
        .expect("connection");
    assert_eq!(
        store
            .prepare_dispatches(DateTime::UNIX_EPOCH, 200)
            .expect("dispatch"),
        1
    );
    let d = store.dispatches().expect("dispatches");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].targets[0].row.as_deref(), Some("FIXTURE-COMMAND-1"));
}

#[test]
fn schema_v4_fixture_opens_and_reads() {
    let copy = opens_and_reads(V4);
    let mut store = SqliteStore::open(&copy).expect("open");
    delivery_after_migration(&mut store);
}

#[test]
fn schema_v2_fixture_opens_and_reads() {
    let copy = opens_and_reads(V2);
    for doc in raw_profile_docs(&copy) {
        assert!(!doc.contains("superseded_by"), "{doc}");
    }
}

/// A read-only open never migrates, so a file written before the users'
/// email table existed has none: reads must still answer (regression: the
/// inventory read failed with "no such table" on such a file).
#[test]
fn read_only_open_of_an_older_file_missed_new_tables() {
    let dir = std::env::temp_dir().join(format!("provkit-schema-ro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let copy = dir.join("schema-v4.sqlite");
    std::fs::copy(V4, &copy).expect("copy");
    let mut store = SqliteStore::open_existing(&copy, Access::ReadOnly).expect("read-only open");
    let inv = store.inventory().expect("the inventory reads");
    assert_eq!(inv.users.len(), 1);
    assert!(inv.emails.is_empty());
    assert!(
        store
            .user_emails(&inv.users)
            .expect("no addresses")
            .is_empty()
    );
    drop(store);
    // Nothing was written to the file.
    let conn = rusqlite::Connection::open(&copy).expect("raw");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'user_emails'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(tables, 0, "the stand-in table is temporary");
}

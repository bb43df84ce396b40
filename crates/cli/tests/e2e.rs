//! The whole workflow through the built binary: init → import → inventory
//! import → app add → assign → plan → acknowledge → renew → plan (installs
//! of the successor; the old profile is removed only after acknowledgement)
//! → delete refused → delete allowed. On SQLite, and on PostgreSQL when
//! `PROVKIT_DATABASE_URL` is set (`.ci/run` sets it).

mod common;

use std::path::{Path, PathBuf};

const FIELD: &str = "D3A10000-0000-4000-8000-00000000F1E1";
const RENEWED: &str = "D3A10000-0000-4000-8000-00000000F1E2";
const AT: &str = "2026-11-22T12:00:00Z";

fn run(db: &[String], args: &[&str]) -> (i32, String, String) {
    common::provkit_in(db, args)
}

fn ok(db: &[String], args: &[&str]) -> String {
    let (code, out, err) = run(db, args);
    assert_eq!(code, 0, "provkit {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

/// The plan's commands as (udid, request type, profile uuid), sorted.
fn commands(db: &[String]) -> Vec<(String, String, String)> {
    let out = ok(db, &["plan", "--at", AT, "--json", "--enqueue"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("plan json");
    let mut c: Vec<_> = v["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| {
            (
                c["udid"].as_str().unwrap_or_default().to_owned(),
                c["request_type"].as_str().unwrap_or_default().to_owned(),
                c["profile_uuid"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    c.sort();
    c
}

fn samples(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("provkit-e2e-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ok(
        &[],
        &["demo", "--dir", dir.to_str().expect("utf8"), "--at", AT],
    );
    dir
}

fn workflow(db: &[String], dir: &Path) {
    let p = |rel: &str| dir.join(rel).display().to_string();
    ok(db, &["init"]);
    // Profiles signed by a CA the tenant does not trust are refused.
    let (code, out, err) = run(db, &["import", &p("profiles")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("imported 0 of 3"), "{out}");
    assert!(err.contains("chain-untrusted"), "{err}");
    let trusted = ok(db, &["trust", "add", &p("test-root-ca.cer")]);
    assert!(
        trusted.contains("trusted provkit Test Root CA"),
        "{trusted}"
    );
    assert!(ok(db, &["trust", "list"]).contains("provkit Test Root CA"));
    let imported = ok(db, &["import", &p("profiles")]);
    assert!(imported.contains("imported 3 of 3"), "{imported}");
    // A bad file is reported and the rest still imported.
    std::fs::write(dir.join("junk.mobileprovision"), b"not a profile").expect("write");
    let (code, _, err) = run(
        db,
        &[
            "import",
            &p("junk.mobileprovision"),
            &p("profiles/sales.mobileprovision"),
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("junk.mobileprovision") && err.contains("text, not a DER-encoded profile"),
        "{err}"
    );
    ok(db, &["inventory", "import", &p("inventory.json")]);
    ok(
        db,
        &[
            "app",
            "add",
            "--bundle-id",
            "com.example.field",
            "--version",
            "3.2",
            "--profile",
            FIELD,
            "--certificate",
            &p("developer.cer"),
        ],
    );
    ok(db, &["assign", FIELD, "--include", "Field"]);
    // An unknown group is refused by name.
    let (code, _, err) = run(db, &["assign", FIELD, "--include", "Ghosts"]);
    assert_eq!(code, 1);
    assert!(err.contains("Ghosts"), "{err}");

    let u = |i: usize| provkit_profile::fixtures::udid(i);
    // alice's phone (u0) and bob's tablet (u4) get the profile; bob's phone (u1) already reports it.
    let first = commands(db);
    let install = |d: usize, p: &str| (u(d), "InstallProvisioningProfile".to_owned(), p.to_owned());
    let remove = |d: usize, p: &str| (u(d), "RemoveProvisioningProfile".to_owned(), p.to_owned());
    let mut want = vec![install(0, FIELD), install(4, FIELD)];
    want.sort();
    assert_eq!(first, want);
    // Per device: sent until acknowledged, then installed.
    let status = ok(db, &["profile", "devices", FIELD]);
    assert!(
        status.contains(&format!("{}  sent", u(0))) && status.contains(&format!("{}  sent", u(4))),
        "{status}"
    );
    ok(db, &["ack"]);
    assert!(commands(db).is_empty(), "acknowledged: nothing left to do");
    let status: serde_json::Value =
        serde_json::from_str(&ok(db, &["profile", "devices", FIELD, "--json"])).expect("json");
    let states: Vec<&str> = status
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert!(
        !states.is_empty() && states.iter().all(|s| *s == "installed"),
        "{status}"
    );

    // Renewal: the successor goes to every device running the field app or assigned it.
    let renewed = ok(
        db,
        &["renew", FIELD, &p("renewal/field-renewed.mobileprovision")],
    );
    assert!(
        renewed.contains("1 app(s) and 1 assignment(s) moved"),
        "{renewed}"
    );
    let mut want = vec![
        install(0, RENEWED),
        install(1, RENEWED),
        install(4, RENEWED),
    ];
    want.sort();
    assert_eq!(
        commands(db),
        want,
        "make before break: no removal before the successor is acknowledged"
    );
    ok(db, &["ack"]);
    let mut want = vec![remove(0, FIELD), remove(1, FIELD), remove(4, FIELD)];
    want.sort();
    assert_eq!(
        commands(db),
        want,
        "the old profile goes once the successor is acknowledged"
    );
    ok(db, &["ack"]);
    assert!(commands(db).is_empty());

    // The successor is in use; the old profile no longer is.
    let (code, _, err) = run(db, &["delete", RENEWED]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refused") && err.contains("com.example.field") && err.contains("Field"),
        "{err}"
    );
    ok(db, &["delete", FIELD]);
    let why = ok(db, &["explain", &u(4), RENEWED, "--at", AT]);
    assert!(why.contains("gets") && why.contains("\"Field\""), "{why}");
    let expiring = ok(db, &["expiring", "--within", "30d", "--at", AT, "--json"]);
    assert!(
        expiring.lines().any(|l| l.contains("com.example.beta")),
        "{expiring}"
    );
    assert!(
        !expiring.contains(FIELD),
        "a renewed profile is not reported as dying: {expiring}"
    );
}

#[test]
fn workflow_on_sqlite() {
    let dir = samples("sqlite");
    let db = vec!["--db".to_owned(), dir.join("e2e.db").display().to_string()];
    workflow(&db, &dir);
}

#[test]
fn generated_tenant_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("provkit-e2e-gen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = vec!["--db".to_owned(), dir.join("gen.db").display().to_string()];
    let out = ok(&db, &["generate", "--devices", "2000", "--seed", "7"]);
    assert!(out.contains("2000 devices, 1200 users"), "{out}");
    let plan: serde_json::Value =
        serde_json::from_str(ok(&db, &["plan", "--at", AT, "--json"]).trim()).expect("json");
    assert!(!plan["commands"].as_array().expect("commands").is_empty());
}

#[test]
fn workflow_on_postgres() {
    let Some(url) = std::env::var("PROVKIT_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("NOTICE: PROVKIT_DATABASE_URL is not set: the PostgreSQL workflow is skipped");
        return;
    };
    provkit_store::PostgresStore::reset(&url).expect("reset");
    let dir = samples("postgres");
    workflow(&["--database-url".to_owned(), url], &dir);
}

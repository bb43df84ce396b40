//! Regressions for data lost without a word: a later inventory batch
//! replaced a group's members, and `assign` replaced (or cleared) what was
//! assigned. Both now merge by default, replace only when told, and say what
//! changed.

mod common;

use common::{provkit, s, tmp};

const AT: &str = "2026-11-22T12:00:00Z";
const FIELD: &str = "D3A10000-0000-4000-8000-00000000F1E1";

/// A demo tenant; returns its `--db` arguments.
fn demo(tag: &str) -> (std::path::PathBuf, Vec<String>) {
    let dir = tmp(tag);
    let (code, out, err) = provkit(&["demo", "--dir", s(&dir), "--at", AT]);
    assert_eq!(code, 0, "{out}{err}");
    let db = vec!["--db".to_owned(), s(&dir.join("provkit.db")).to_owned()];
    (dir, db)
}

fn run(db: &[String], args: &[&str]) -> (i32, String, String) {
    common::provkit_in(db, args)
}

#[test]
fn inventory_import_replaced_group_members() {
    let (dir, db) = demo("inv-merge");
    // 100 users in Field, then a batch that nests a new subgroup in Field.
    let users: Vec<String> = (0..100).map(|i| format!("u{i:03}")).collect();
    let first = serde_json::json!({
        "users": users,
        "groups": [{"name": "Field", "kind": "user", "members": users}]
    });
    let path = dir.join("first.json");
    std::fs::write(&path, first.to_string()).expect("write");
    let (code, out, err) = run(&db, &["inventory", "import", s(&path), "--at", AT]);
    assert_eq!(code, 0, "{out}{err}");
    let later_json = dir.join("later.json");
    std::fs::write(
        &later_json,
        serde_json::json!({
            "users": ["zed"],
            "groups": [
                {"name": "Field North", "kind": "user", "members": ["zed"]},
                {"name": "Field", "kind": "user", "subgroups": ["Field North"]}
            ]
        })
        .to_string(),
    )
    .expect("write");
    // A dry run says what would change and writes nothing.
    let (code, out, err) = run(
        &db,
        &[
            "inventory",
            "import",
            s(&later_json),
            "--dry-run",
            "--at",
            AT,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("dry run, nothing written"), "{out}");
    assert!(
        out.contains("group Field: subgroups added: Field North"),
        "{out}"
    );
    assert!(!out.contains("members removed"), "{out}");
    // The import merges: Field keeps its 100 members.
    let (code, out, err) = run(&db, &["inventory", "import", s(&later_json), "--at", AT]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("imported:"), "{out}");
    let (code, out, err) = run(
        &db,
        &[
            "inventory",
            "import",
            s(&later_json),
            "--dry-run",
            "--replace-group",
            "Field",
            "--at",
            AT,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("members removed: "),
        "replacing is explicit and says so: {out}"
    );
    assert!(out.contains("u099"), "{out}");
    // Validation names the key or the problem, and writes nothing.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"userz": ["a"]}"#).expect("write");
    let (code, _, err) = run(&db, &["inventory", "import", s(&bad)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown field `userz`"), "{err}");
    std::fs::write(
        &bad,
        r#"{"groups": [{"name": "all-users", "kind": "user"}]}"#,
    )
    .expect("write");
    let (code, _, err) = run(&db, &["inventory", "import", s(&bad)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reserved"), "{err}");
    // A BOM is accepted.
    std::fs::write(&bad, "\u{feff}{\"users\": [\"bom-user\"]}").expect("write");
    let (code, out, err) = run(&db, &["inventory", "import", s(&bad)]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn assign_replaced_existing_targets() {
    let (_dir, db) = demo("assign");
    // The demo assigns FIELD to Field minus Executives; adding Sales keeps both.
    let (code, out, err) = run(&db, &["assign", FIELD, "--include", "Sales", "--at", AT]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("before: include Field; exclude Executives"),
        "{out}"
    );
    assert!(
        out.contains("after:  include Field, Sales; exclude Executives"),
        "{out}"
    );
    assert!(out.contains("device(s) gain it"), "{out}");
    // No targets is refused, not a silent clear.
    let (code, out, err) = run(&db, &["assign", FIELD]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("name a target"), "{err}");
    // Removing names what goes; removing what is not there is refused.
    let (code, out, err) = run(&db, &["unassign", FIELD, "--include", "Sales", "--at", AT]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("after:  include Field; exclude Executives"),
        "{out}"
    );
    let (code, _, err) = run(&db, &["unassign", FIELD, "--include", "Sales"]);
    assert_ne!(code, 0);
    assert!(err.contains("not included"), "{err}");
    // Replacing is explicit.
    let (code, out, err) = run(
        &db,
        &[
            "assign",
            FIELD,
            "--replace",
            "--include",
            "all-users",
            "--at",
            AT,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("after:  include all-users; exclude -"),
        "{out}"
    );
    let (code, out, err) = run(&db, &["unassign", FIELD, "--all", "--at", AT]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("after:  include -; exclude -"), "{out}");
    assert!(out.contains("0 device(s) gain it"), "{out}");
}

#[test]
fn profile_uuid_prefixes_were_not_accepted() {
    let (_dir, db) = demo("prefix");
    // The expiry report shows UUIDs; a unique prefix names the profile.
    let (code, out, err) = run(
        &db,
        &[
            "assign",
            "D3A10000-0000-4000-8000-00000000F1",
            "--include",
            "Sales",
            "--at",
            AT,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(FIELD), "{out}");
    // A prefix shared by several profiles names them all and is refused.
    let (code, _, err) = run(&db, &["delete", "d3a10000"]);
    assert_eq!(code, 1);
    assert!(err.contains("matches") && err.contains(FIELD), "{err}");
    // Too short to be a prefix: unknown.
    let (code, _, err) = run(&db, &["delete", "D3A1"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown profile"), "{err}");
}

#[test]
fn explain_hid_that_an_app_link_overrides_an_exclusion() {
    let (dir, db) = demo("override");
    // bob is an Executive (excluded from FIELD) whose phone runs the field app.
    let inv: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("inventory.json")).expect("inventory"),
    )
    .expect("json");
    let bob = inv["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["user"] == "bob" && d["apps"].as_array().is_some_and(|a| !a.is_empty()))
        .and_then(|d| d["udid"].as_str())
        .expect("bob's phone")
        .to_owned();
    let (code, out, err) = run(&db, &["explain", &bob, FIELD, "--at", AT]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("excluded through user group \"Executives\"")
            && out.contains("the app link overrides the exclusion"),
        "{out}"
    );
    assert!(
        !out.contains("rule ") && !out.contains("assignment #"),
        "{out}"
    );
    // The plan warns about it too, per profile, app and excluded target.
    let (code, out, _) = run(&db, &["plan", "--at", AT, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("plan json");
    let w = v["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .find(|w| w["kind"] == "exclusion-overridden-by-app")
        .expect("the override warning");
    assert_eq!(w["profile"], FIELD);
    assert_eq!(w["target"], "Executives");
    assert_eq!(w["app"], "com.example.field 3.2");
    assert_eq!(w["devices"], 1);
}

#[test]
fn plan_could_not_be_filtered_or_exported() {
    let (_dir, db) = demo("planfilter");
    let (code, all, _) = run(&db, &["plan", "--at", AT, "--format", "csv"]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = all.lines().collect();
    assert_eq!(rows[0], "udid,request_type,profile_uuid,command_uuid");
    assert!(rows.len() > 2, "{all}");
    let first_udid = rows[1].split(',').next().expect("udid");
    let (code, one, _) = run(
        &db,
        &[
            "plan", "--at", AT, "--format", "csv", "--device", first_udid,
        ],
    );
    assert_eq!(code, 0);
    assert!(
        one.lines().skip(1).all(|l| l.starts_with(first_udid)),
        "{one}"
    );
    assert!(one.lines().count() < rows.len(), "{one}");
    let (code, text, err) = run(
        &db,
        &[
            "plan",
            "--at",
            AT,
            "--profile",
            "D3A10000-0000-4000-8000-0000000005A",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("By profile:\n  D3A10000-0000-4000-8000-0000000005A1:"),
        "{text}"
    );
    assert!(!text.contains(FIELD), "only the sales profile: {text}");
}

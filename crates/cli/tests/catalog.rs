//! The everyday read commands, and the inventory export that re-imports to
//! the same tenant (JSON and CSV).

mod common;

use common::{provkit, s, tmp};

const AT: &str = "2026-11-22T12:00:00Z";
const FIELD: &str = "D3A10000-0000-4000-8000-00000000F1E1";

#[test]
fn listings_and_the_export_round_trip() {
    let dir = tmp("catalog");
    let demo = dir.join("demo");
    assert_eq!(provkit(&["demo", "--dir", s(&demo), "--at", AT]).0, 0);
    let db = demo.join("provkit.db");
    let db = s(&db);
    let ok = |args: &[&str]| {
        let mut all = vec!["--db", db];
        all.extend_from_slice(args);
        let (code, out, err) = provkit(&all);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        out
    };
    let out = ok(&["profile", "list"]);
    assert!(
        out.contains(FIELD) && out.contains("include Field; exclude Executives"),
        "{out}"
    );
    let out = ok(&["profile", "show", "D3A10000-0000-4000-8000-00000000F1E"]);
    assert!(
        out.contains("versions:") && out.contains("com.example.field 3.2"),
        "{out}"
    );
    assert!(ok(&["app", "list"]).contains("com.example.beta 0.9"));
    assert!(ok(&["user", "list"]).contains("alice"));
    let devices = ok(&["device", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&devices)
            .expect("json")
            .as_array()
            .map(Vec::len),
        Some(6)
    );
    let tree = ok(&["group", "list"]);
    assert!(
        tree.contains("Sales [users: carol]\n  Sales EU [users: dave]"),
        "{tree}"
    );

    // Export, import into a new tenant, export again: the same inventory.
    for format in ["json", "csv"] {
        let exported = ok(&["inventory", "export", "--format", format]);
        let file = dir.join(format!("inventory.{format}"));
        std::fs::write(&file, &exported).expect("write");
        let other = dir.join(format!("other-{format}.db"));
        let other = s(&other);
        assert_eq!(provkit(&["--db", other, "init"]).0, 0);
        let (code, out, err) = provkit(&["--db", other, "inventory", "import", s(&file)]);
        assert_eq!(code, 0, "{format}: {out}{err}");
        let (code, again, _) = provkit(&["--db", other, "inventory", "export", "--format", format]);
        assert_eq!(code, 0);
        assert_eq!(
            again, exported,
            "{format}: the export re-imports to the same inventory"
        );
    }
}

#[test]
fn removals_refuse_what_is_still_referred_to() {
    let dir = tmp("remove");
    let demo = dir.join("demo");
    assert_eq!(provkit(&["demo", "--dir", s(&demo), "--at", AT]).0, 0);
    let db = demo.join("provkit.db");
    let run = |args: &[&str]| {
        let mut all = vec!["--db", s(&db)];
        all.extend_from_slice(args);
        provkit(&all)
    };
    let (code, _, err) = run(&["group", "remove", "Field"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unassign it first") && err.contains(FIELD),
        "{err}"
    );
    let (code, _, err) = run(&["user", "remove", "carol"]);
    assert_eq!(code, 1);
    assert!(err.contains("primary user"), "{err}");
    let (code, out, err) = run(&["group", "remove", "Sales EU"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("took it out of Sales"), "{out}");
    let (code, out, _) = run(&["app", "remove", "com.example.beta", "0.9"]);
    assert_eq!(code, 0, "{out}");
    let (code, _, _) = run(&["app", "remove", "com.example.beta", "0.9"]);
    assert_eq!(code, 1, "already gone");
    assert!(!run(&["app", "list"]).1.contains("com.example.beta"));
}

//! One exit-code table, true for every subcommand (regression: the argument
//! parser exited 2 where the README says 3, an unknown profile exited 3 from
//! `delete` and 1 from `assign`, `ack NOT-A-UUID` exited 0):
//! 0 success, 1 invalid or refused (including unknown names given as
//! arguments), 2 an input file missing or unreadable as what it should be,
//! 3 usage, database or other I/O error.

mod common;

use common::{provkit, s, tmp};

const AT: &str = "2026-11-22T12:00:00Z";
const FIELD: &str = "D3A10000-0000-4000-8000-00000000F1E1";
const GHOST: &str = "0000DEAD-0000-4000-8000-000000000000";

#[test]
fn exit_codes_differed_between_subcommands() {
    let dir = tmp("exit");
    let demo = dir.join("demo");
    assert_eq!(provkit(&["demo", "--dir", s(&demo), "--at", AT]).0, 0);
    let db = demo.join("provkit.db");
    let db = s(&db);
    let junk = dir.join("junk.mobileprovision");
    std::fs::write(&junk, b"not a profile").expect("write");
    let junk = s(&junk);
    let bad_inv = dir.join("bad.json");
    std::fs::write(&bad_inv, b"{\"users\": 5}").expect("write");
    let bad_inv = s(&bad_inv);
    let profile = demo.join("profiles/field.mobileprovision");
    let profile = s(&profile);
    let renewed = demo.join("renewal/field-renewed.mobileprovision");
    let renewed = s(&renewed);
    let missing = dir.join("nothing.db");
    let missing = s(&missing);
    let cases: Vec<(i32, Vec<&str>)> = vec![
        // 3: usage, whatever the subcommand.
        (3, vec!["--no-such-flag"]),
        (3, vec![]),
        (3, vec!["plan", "--bogus"]),
        (3, vec!["assign"]),
        (3, vec!["expiring", "--within", "soon"]),
        (3, vec!["--db", db, "plan", "--at", "yesterday"]),
        (3, vec!["--db", missing, "plan"]),
        (3, vec!["--db", missing, "delete", FIELD]),
        (3, vec!["ipa", "verify"]),
        // 2: an input file missing or not what it should be.
        (
            2,
            vec!["profile", "inspect", "/nonexistent/file.mobileprovision"],
        ),
        (2, vec!["ipa", "verify", "/nonexistent/App.ipa"]),
        (
            2,
            vec!["--db", db, "inventory", "import", "/nonexistent/inv.json"],
        ),
        (
            2,
            vec![
                "--db",
                db,
                "renew",
                FIELD,
                "/nonexistent/new.mobileprovision",
            ],
        ),
        (2, vec!["--db", db, "trust", "add", "/nonexistent/ca.cer"]),
        (2, vec!["profile", "inspect", junk]),
        (2, vec!["profile", "verify", junk]),
        (2, vec!["ipa", "verify", junk]),
        (2, vec!["--db", db, "import", junk]),
        (2, vec!["--db", db, "inventory", "import", bad_inv]),
        // 1: refused, including unknown names given as arguments.
        (1, vec!["--db", db, "delete", GHOST]),
        (1, vec!["--db", db, "assign", GHOST, "--include", "Field"]),
        (1, vec!["--db", db, "assign", FIELD, "--include", "Ghosts"]),
        (1, vec!["--db", db, "unassign", GHOST, "--all"]),
        (1, vec!["--db", db, "renew", GHOST, renewed]),
        (1, vec!["--db", db, "explain", "NO-SUCH-DEVICE", FIELD]),
        (1, vec!["--db", db, "ack", "NOT-A-UUID"]),
        (1, vec!["--db", db, "delete", FIELD]),
        (1, vec!["--db", db, "trust", "remove", "abc"]),
        (1, vec!["profile", "verify", "--at", AT, profile]),
        // 0: success.
        (0, vec!["--help"]),
        (0, vec!["--version"]),
        (0, vec!["--db", db, "plan", "--at", AT]),
        (0, vec!["--db", db, "expiring", "--at", AT]),
        (0, vec!["--db", db, "trust", "list"]),
        (0, vec!["--db", db, "ack"]),
        (0, vec!["profile", "inspect", profile]),
    ];
    for (want, args) in &cases {
        let (code, out, err) = provkit(args);
        assert_eq!(code, *want, "provkit {args:?}\n{out}{err}");
    }
}

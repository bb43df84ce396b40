//! Regression: a mistyped `--db typo.db` created an empty database and
//! printed an empty plan with exit 0. Only `init`, `demo` and `generate`
//! create a database; a file provkit did not make is refused untouched; the
//! read-only commands work on a read-only file.

mod common;

use common::{provkit, s, tmp};

#[test]
fn mistyped_db_created_an_empty_database() {
    let dir = tmp("dbopen");
    let typo = dir.join("typo.db");
    for args in [
        vec!["plan"],
        vec!["expiring"],
        vec!["ack"],
        vec!["import", "nothing.mobileprovision"],
        vec!["inventory", "import", "inv.json"],
    ] {
        let mut all = vec!["--db", s(&typo)];
        all.extend(args.iter().copied());
        let (code, out, err) = provkit(&all);
        assert_eq!(code, 3, "{args:?}: {out}{err}");
        assert!(
            err.contains("typo.db") && err.contains("provkit init"),
            "{err}"
        );
        assert!(!typo.exists(), "{args:?} created the file");
    }
    // A file that is not a provkit database is refused and left as it was.
    let other = dir.join("notes.db");
    std::fs::write(&other, b"just some notes, not SQLite").expect("write");
    let (code, _, err) = provkit(&["--db", s(&other), "plan"]);
    assert_eq!(code, 3);
    assert!(err.contains("not a provkit database"), "{err}");
    assert_eq!(
        std::fs::read(&other).expect("read"),
        b"just some notes, not SQLite"
    );
    // init creates; a read-only file still serves the read-only commands.
    let foreign = dir.join("made.db");
    let (code, _, _) = provkit(&["--db", s(&foreign), "init"]);
    assert_eq!(code, 0);
    let before = std::fs::read(&foreign).expect("read");
    let mut perms = std::fs::metadata(&foreign).expect("meta").permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&foreign, perms).expect("chmod");
    for args in [vec!["plan", "--json"], vec!["expiring", "--json"]] {
        let mut all = vec!["--db", s(&foreign)];
        all.extend(args.iter().copied());
        let (code, out, err) = provkit(&all);
        assert_eq!(code, 0, "{args:?} on a read-only file: {out}{err}");
    }
    assert_eq!(std::fs::read(&foreign).expect("read"), before);
}

#[test]
fn generate_grew_without_bound_and_over_a_tenant() {
    let dir = tmp("generate");
    let db = dir.join("g.db");
    let (code, _, err) = provkit(&["--db", s(&db), "generate", "--devices", "1000000000000"]);
    assert_eq!(code, 3);
    assert!(err.contains("give from 1 to"), "{err}");
    assert!(!db.exists(), "a refused size touches no database");
    let (code, out, err) = provkit(&["--db", s(&db), "generate", "--devices", "300"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("importing in one transaction"),
        "progress: {err}"
    );
    let (code, _, err) = provkit(&["--db", s(&db), "generate", "--devices", "300"]);
    assert_eq!(code, 3);
    assert!(
        err.contains("already holds a tenant") && err.contains("--force"),
        "{err}"
    );
}

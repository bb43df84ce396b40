//! `provkit console-user` and `provkit notify stages` through the binary:
//! the password read from the environment and kept only as its hash, the
//! refusals with their exit codes, the stages shown, set and refused.

mod common;

use common::{provkit, provkit_with, s, tmp};

#[test]
fn console_users_and_notice_stages_from_the_command_line() {
    let dir = tmp("console-users");
    let db = dir.join("t.db");
    let db = s(&db);
    assert_eq!(provkit(&["--db", db, "init"]).0, 0);
    let pw = [("PK_PW", "a long enough password")];
    let create = |name: &str, env: &[(&str, &str)]| {
        provkit_with(
            &[
                "--db",
                db,
                "console-user",
                "create",
                name,
                "--role",
                "operator",
                "--password-env",
                "PK_PW",
            ],
            env,
        )
    };
    let (code, out, err) = create("ana", &pw);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("console user ana (operator, Global) created"),
        "{out}"
    );
    // Refused: the name again, a short password, no password at all.
    assert_eq!(create("ana", &pw).0, 1);
    assert_eq!(create("bo", &[("PK_PW", "short")]).0, 1);
    assert_eq!(create("cy", &[]).0, 3);
    let (code, out, _) = provkit(&["--db", db, "console-user", "list"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ana  operator  Global"), "{out}");
    assert!(
        !out.contains("argon2") && !out.contains("a long enough password"),
        "{out}"
    );
    // The database holds the hash, never the password.
    let mut bytes = std::fs::read(dir.join("t.db")).expect("db");
    bytes.extend(std::fs::read(dir.join("t.db-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("$argon2id$") && !text.contains("a long enough password"));

    let (code, out, _) = provkit(&["--db", db, "notify", "stages"]);
    assert_eq!(
        (code, out.trim()),
        (0, "admin stages [60, 30, 7, 0] days; device users 30 days")
    );
    let (code, out, _) = provkit(&[
        "--db", db, "notify", "stages", "--admin", "7,90,30", "--user", "14",
    ]);
    assert_eq!(
        (code, out.trim()),
        (0, "admin stages [90, 30, 7] days; device users 14 days")
    );
    assert_eq!(
        provkit(&["--db", db, "notify", "stages", "--admin", "30,30"]).0,
        1
    );

    assert_eq!(provkit(&["--db", db, "console-user", "remove", "ana"]).0, 0);
    assert_eq!(provkit(&["--db", db, "console-user", "remove", "ana"]).0, 1);
}

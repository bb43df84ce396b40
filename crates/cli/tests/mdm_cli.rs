//! `provkit mdm add|list|remove`: keys from the environment, never printed
//! or kept in the audit log; one connection per organization group.

mod common;

use common::{provkit, provkit_with};

#[test]
fn mdm_connections_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("provkit-cli-mdm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("t.db");
    let db = db.to_str().expect("utf-8");
    assert_eq!(provkit(&["--db", db, "init"]).0, 0);
    let add = [
        "--db",
        db,
        "mdm",
        "add",
        "--kind",
        "nanomdm",
        "--url",
        "https://mdm.example.com/",
        "--api-key-env",
        "PK_TEST_MDM_KEY",
        "--webhook-hmac-key-env",
        "PK_TEST_MDM_HMAC",
    ];
    let (code, _, err) = provkit(&add);
    assert_eq!(code, 1, "no key in the environment: {err}");
    assert!(err.contains("PK_TEST_MDM_KEY"), "{err}");
    let env = [
        ("PK_TEST_MDM_KEY", "s3cret-api-key"),
        ("PK_TEST_MDM_HMAC", "s3cret-hmac"),
    ];
    let (code, out, err) = provkit_with(&add, &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("added Global (nanomdm at https://mdm.example.com)"),
        "{out}"
    );
    let (code, _, err) = provkit_with(&add, &env);
    assert_eq!(code, 1, "one per group: {err}");
    let (_, list, _) = provkit(&["--db", db, "mdm", "list"]);
    assert!(
        list.contains("Global  nanomdm  https://mdm.example.com  Global  signed"),
        "{list}"
    );
    let audit = {
        use provkit_store::Store as _;
        let mut s = provkit_store::SqliteStore::open_existing(
            std::path::Path::new(db),
            provkit_store::Access::ReadOnly,
        )
        .expect("open");
        serde_json::to_string(&s.audit_log().expect("audit")).expect("json")
    };
    assert!(audit.contains("mdm-add"), "{audit}");
    for text in [&list, &audit] {
        assert!(!text.contains("s3cret"), "no secret shown: {text}");
    }
    let raw = std::fs::read(dir.join("t.db")).expect("db");
    assert!(
        raw.windows(14).any(|w| w == b"s3cret-api-key"),
        "the key is stored to be used"
    );
    let (code, out, _) = provkit(&["--db", db, "mdm", "remove", "Global"]);
    assert_eq!(code, 0);
    assert!(out.contains("removed Global"), "{out}");
    assert!(provkit(&["--db", db, "mdm", "list"]).1.is_empty());
}

//! Regression: `provkit ... | head` exited 101 with a panic when the reader
//! closed the pipe early. Every subcommand runs with its output closed before
//! it writes, and must end without a panic; bad dates and durations give a
//! clear error, never a panic.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::{s, tmp};

const AT: &str = "2026-11-22T12:00:00Z";
const FIELD: &str = "D3A10000-0000-4000-8000-00000000F1E1";

/// Runs `provkit args` with its stdout already closed by the reader;
/// returns the exit code and stderr.
fn closed_early(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provkit"))
        .args(args)
        .env_remove("PROVKIT_DATABASE_URL")
        .env_remove("PROVKIT_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn provkit");
    // Close the read end at once, as `head -0` would.
    drop(child.stdout.take());
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).expect("stderr");
    }
    let status = child.wait().expect("wait");
    (status.code().unwrap_or(-1), err)
}

#[test]
fn output_piped_into_head_panicked() {
    let dir = tmp("closed");
    let demo = dir.join("demo");
    let (code, out, err) = common::provkit(&["demo", "--dir", s(&demo), "--at", AT]);
    assert_eq!(code, 0, "{out}{err}");
    let db = demo.join("provkit.db");
    let db = s(&db);
    let samples = dir.join("samples");
    let (code, _, err) = common::provkit(&["profile", "sample", "--out", s(&samples)]);
    assert_eq!(code, 0, "{err}");
    let profiles: Vec<String> = std::fs::read_dir(&samples)
        .expect("samples")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "mobileprovision").then(|| p.to_string_lossy().into_owned())
        })
        .collect();
    assert!(!profiles.is_empty());
    let profile = profiles[0].as_str();
    let inventory = demo.join("inventory.json").to_string_lossy().into_owned();
    let root = demo.join("test-root-ca.cer").to_string_lossy().into_owned();
    let profiles_dir = demo.join("profiles").to_string_lossy().into_owned();
    let renewed = demo
        .join("renewal/field-renewed.mobileprovision")
        .to_string_lossy()
        .into_owned();
    let (fresh, generated, samples2) = (
        dir.join("fresh.db"),
        dir.join("generated.db"),
        dir.join("samples2"),
    );
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["demo", "--dir", s(&demo), "--at", AT],
        vec!["profile", "inspect", profile],
        vec!["profile", "inspect", "--json", profile],
        vec!["profile", "verify", "--at", AT, profile],
        vec!["profile", "verify", "--json", "--at", AT, profile],
        vec!["--db", db, "plan", "--at", AT],
        vec!["--db", db, "plan", "--at", AT, "--json"],
        vec!["--db", db, "expiring", "--at", AT, "--within", "400d"],
        vec![
            "--db", db, "expiring", "--at", AT, "--within", "400d", "--json",
        ],
        vec!["--db", db, "plan", "--at", AT, "--enqueue"],
        vec!["--db", db, "plan", "--at", AT, "--format", "csv"],
        vec!["--db", db, "ack"],
        vec!["--db", db, "explain", "NO-SUCH", FIELD],
        vec!["--db", db, "profile", "list"],
        vec!["--db", db, "profile", "show", FIELD],
        vec!["--db", db, "app", "list"],
        vec!["--db", db, "device", "list"],
        vec!["--db", db, "user", "list"],
        vec!["--db", db, "group", "list"],
        vec!["--db", db, "inventory", "export"],
        vec!["--db", db, "inventory", "export", "--format", "csv"],
        vec!["--db", db, "inventory", "import", &inventory, "--dry-run"],
        vec!["--db", db, "trust", "list"],
        vec![
            "--db", db, "token", "create", "--name", "closed", "--role", "viewer",
        ],
        vec!["--db", db, "token", "list"],
        vec!["--db", db, "org-group", "create", "Global/EMEA"],
        vec!["--db", db, "org-group", "list"],
        vec!["--db", db, "token", "revoke", "closed"],
        vec!["--db", db, "trust", "add", &root],
        vec!["--db", db, "import", &profiles_dir],
        vec![
            "--db",
            db,
            "assign",
            FIELD,
            "--include",
            "Sales",
            "--at",
            AT,
        ],
        vec![
            "--db",
            db,
            "unassign",
            FIELD,
            "--include",
            "Sales",
            "--at",
            AT,
        ],
        vec!["--db", db, "renew", FIELD, &renewed],
        vec!["--db", db, "delete", FIELD],
        vec!["--db", db, "group", "remove", "Sales EU"],
        vec!["--db", s(&fresh), "init"],
        vec!["--db", s(&generated), "generate", "--devices", "50"],
        vec!["profile", "sample", "--out", s(&samples2)],
    ];
    let corpus = common::corpus();
    let ipa = corpus.as_ref().map(|c| {
        c.join("ipas/SimpleSaucyApp.ipa")
            .to_string_lossy()
            .into_owned()
    });
    let sample = |name: &str| samples.join(name).to_string_lossy().into_owned();
    let (cert, key, chain, anchor, enterprise) = (
        sample("test-developer.pem"),
        sample("test-developer.key"),
        sample("test-intermediate.pem"),
        sample("test-root-ca.cer"),
        sample("enterprise.mobileprovision"),
    );
    let resigned = dir.join("resigned.ipa").to_string_lossy().into_owned();
    let sqlite = corpus.as_ref().map(|c| {
        c.join("ipas/sqilte_universal.ipa")
            .to_string_lossy()
            .into_owned()
    });
    if let Some(sqlite) = &sqlite {
        runs.push(vec![
            "ipa",
            "resign",
            sqlite,
            "--certificate",
            &cert,
            "--key",
            &key,
            "--chain",
            &chain,
            "--anchor",
            &anchor,
            "--profile",
            &enterprise,
            "-o",
            &resigned,
        ]);
    }
    if let Some(ipa) = &ipa {
        runs.push(vec!["ipa", "verify", "--at", "signing-time", ipa]);
        runs.push(vec!["ipa", "verify", "--json", "--at", "signing-time", ipa]);
        runs.push(vec!["ipa", "info", ipa]);
        runs.push(vec![
            "ipa",
            "verify",
            "--format",
            "sarif",
            "--at",
            "signing-time",
            ipa,
        ]);
        runs.push(vec![
            "ipa",
            "verify",
            "--format",
            "junit",
            "--at",
            "signing-time",
            ipa,
        ]);
    }
    for args in &runs {
        let (code, err) = closed_early(args);
        assert!(
            !err.contains("panicked") && code != 101,
            "provkit {args:?}: exit {code}\n{err}"
        );
    }
}

#[test]
fn dates_and_durations_out_of_range_panicked() {
    let dir = tmp("dates");
    let db = dir.join("p.db");
    let (code, _, err) = common::provkit(&["--db", s(&db), "init"]);
    assert_eq!(code, 0, "{err}");
    let db = s(&db);
    for (args, needle) in [
        (
            vec!["--db", db, "expiring", "--within", "100000000d"],
            "100 years",
        ),
        (
            vec!["--db", db, "expiring", "--within", "1000000000000d"],
            "100 years",
        ),
        (
            vec!["--db", db, "expiring", "--within", "99999999999999999999d"],
            "like 60d",
        ),
        (vec!["--db", db, "expiring", "--within", "soon"], "like 60d"),
        (
            vec![
                "demo",
                "--dir",
                s(&dir.join("d")),
                "--at",
                "9999-12-31T23:59:59Z",
            ],
            "1970",
        ),
        (
            vec!["--db", db, "plan", "--at", "0001-01-01T00:00:00Z"],
            "1970",
        ),
        (
            vec!["--db", db, "plan", "--at", "+275760-09-13T00:00:00Z"],
            "RFC 3339",
        ),
        (vec!["--db", db, "plan", "--at", "yesterday"], "RFC 3339"),
        (
            vec!["profile", "verify", "--at", "3000-01-01T00:00:00Z", "x"],
            "2999",
        ),
    ] {
        let (code, out, err) = common::provkit(&args);
        assert!(
            !err.contains("panicked") && code != 0 && code != 101,
            "provkit {args:?}: exit {code}\n{out}{err}"
        );
        assert!(err.contains(needle), "provkit {args:?}: {err}");
    }
    // A date without a time is midnight UTC.
    let (code, out, err) = common::provkit(&["--db", db, "plan", "--at", "2026-11-22", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2026-11-22T00:00:00Z"), "{out}");
}

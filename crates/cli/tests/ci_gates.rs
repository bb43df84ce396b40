//! What a CI pipeline asks: `ipa verify` over several apps in JUnit or
//! SARIF, and expiry gates (`profile verify --fail-if-expires-within`,
//! `expiring --fail-if-any`) that fail before anything dies.

mod common;

use common::{corpus, provkit, s, tmp};

const AT: &str = "2026-11-22T12:00:00Z";

#[test]
fn ipa_verify_over_several_apps_in_junit_and_sarif() {
    let Some(dir) = corpus() else { return };
    let good = dir.join("ipas/sqilte_universal.ipa");
    let bad = dir.join("ipas/LegazpikoSantikutzak13.rezipped.ipa");
    let not_an_app = dir.join("ipas/NotAnApp.negative.ipa");
    let (good, bad, not_an_app) = (s(&good), s(&bad), s(&not_an_app));
    // Text: one verdict per path; the worst decides the exit code.
    let (code, out, _) = provkit(&["ipa", "verify", "--at", "signing-time", good, bad]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("sqilte_universal.ipa: valid") && out.contains("INVALID"),
        "{out}"
    );
    let (code, _, _) = provkit(&[
        "ipa",
        "verify",
        "--at",
        "signing-time",
        good,
        bad,
        not_an_app,
    ]);
    assert_eq!(code, 2);
    // JUnit: a test case per app, failures for the invalid one.
    let (code, out, _) = provkit(&[
        "ipa",
        "verify",
        "--format",
        "junit",
        "--at",
        "signing-time",
        good,
        bad,
        not_an_app,
    ]);
    assert_eq!(code, 2);
    assert!(out.starts_with("<?xml"), "{out}");
    assert!(
        out.contains("tests=\"3\" failures=\"1\" errors=\"1\""),
        "{out}"
    );
    assert!(
        out.contains("<failure type=\"info-plist-modified\""),
        "{out}"
    );
    assert_eq!(out.matches("<testcase ").count(), 3);
    // SARIF 2.1.0: a result per finding, the code as the rule id.
    let (code, out, _) = provkit(&[
        "ipa",
        "verify",
        "--format",
        "sarif",
        "--at",
        "signing-time",
        good,
        bad,
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("sarif json");
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().expect("results");
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "info-plist-modified" && r["level"] == "error")
    );
    assert!(
        results
            .iter()
            .all(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == bad),
        "only the invalid app has results"
    );
    let rules = v["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    assert!(rules.iter().any(|r| r["id"] == "info-plist-modified"));
}

#[test]
fn expiry_gates_for_ci() {
    let dir = tmp("gates");
    let samples = dir.join("s");
    assert_eq!(provkit(&["profile", "sample", "--out", s(&samples)]).0, 0);
    let enterprise = samples.join("enterprise.mobileprovision");
    let anchor = samples.join("test-root-ca.cer");
    let verify = |window: &str| {
        provkit(&[
            "profile",
            "verify",
            "--anchor",
            s(&anchor),
            "--fail-if-expires-within",
            window,
            s(&enterprise),
        ])
    };
    // The sample enterprise profile is valid for about a year from now.
    let (code, out, err) = verify("30d");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = verify("800d");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("gate: apps signed under it die in"), "{out}");
    let (code, _, err) = verify("soon");
    assert_eq!(code, 3);
    assert!(err.contains("--fail-if-expires-within"), "{err}");

    let demo = dir.join("demo");
    assert_eq!(provkit(&["demo", "--dir", s(&demo), "--at", AT]).0, 0);
    let db = demo.join("provkit.db");
    let (code, _, _) = provkit(&[
        "--db",
        s(&db),
        "expiring",
        "--at",
        AT,
        "--within",
        "10d",
        "--fail-if-any",
    ]);
    assert_eq!(code, 0, "nothing dies within 10 days of the demo's instant");
    let (code, out, _) = provkit(&[
        "--db",
        s(&db),
        "expiring",
        "--at",
        AT,
        "--within",
        "60d",
        "--fail-if-any",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"state\":\"dying\""), "{out}");
}

//! Drives the built `provkit` binary: JSON schema of `profile inspect`,
//! exit codes of `profile verify`, on samples it writes and on the corpus.

mod common;

use std::path::PathBuf;

use common::{provkit, s};

fn samples(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("provkit-cli-test-{tag}-{}", std::process::id()));
    let (code, _, err) = provkit(&["profile", "sample", "--out", dir.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    dir
}

#[test]
fn inspect_json_carries_the_documented_fields() {
    let dir = samples("inspect");
    let file = dir.join("adhoc-100-devices.mobileprovision");
    let (code, out, err) = provkit(&["profile", "inspect", "--json", s(&file)]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    for key in [
        "file",
        "uuid",
        "name",
        "team_identifier",
        "app_id_name",
        "application_identifier",
        "creation_date",
        "expiration_date",
        "kind",
        "platforms",
        "devices",
        "provisions_all_devices",
        "developer_certificates",
        "entitlements",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["kind"], "adhoc");
    assert_eq!(v["devices"].as_array().map(Vec::len), Some(100));
    assert_eq!(v["team_identifier"], "PROVKIT01");
    assert!(
        v["expiration_date"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z'))
    );
    let cert = &v["developer_certificates"][0];
    assert_eq!(cert["not_after"], "2028-01-01T00:00:00Z");
    assert_eq!(cert["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(
        v["entitlements"]["application-identifier"],
        "PROVKIT01.com.example.field"
    );
}

#[test]
fn verify_exit_codes() {
    let dir = samples("verify");
    let anchor = dir.join("test-root-ca.cer");
    let good = dir.join("enterprise.mobileprovision");
    let expired = dir.join("expired-appstore.mobileprovision");
    let junk = dir.join("junk.mobileprovision");
    std::fs::write(&junk, b"this is not a profile").expect("write");

    let (code, out, _) = provkit(&["profile", "verify", "--anchor", s(&anchor), s(&good)]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = provkit(&[
        "profile",
        "verify",
        "--anchor",
        s(&anchor),
        s(&good),
        s(&expired),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("profile-expired"), "{out}");
    let (code, _, err) = provkit(&[
        "profile",
        "verify",
        "--anchor",
        s(&anchor),
        s(&good),
        s(&expired),
        s(&junk),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("junk.mobileprovision"), "{err}");
    // Without the test anchor the sample is untrusted.
    let (code, out, _) = provkit(&["profile", "verify", "--json", s(&good)]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["valid"], false);
    assert_eq!(v["findings"][0]["code"], "chain-untrusted");
    // A bad --at is a usage error.
    let (code, _, _) = provkit(&["profile", "verify", "--at", "yesterday", s(&good)]);
    assert_eq!(code, 3);
}

#[test]
fn corpus_profiles_verify_at_their_signing_time() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut files: Vec<String> = std::fs::read_dir(corpus.join("profiles"))
        .expect("profiles dir")
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["profile", "verify", "--at", "signing-time", "--json"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = provkit(&args);
    assert_eq!(code, 0, "{err}\n{out}");
    assert_eq!(out.lines().count(), files.len());
    // At 2026-11-22 most have expired: exit 1, and every line says why.
    let mut args = vec!["profile", "verify", "--at", "2026-11-22T00:00:00Z"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, _) = provkit(&args);
    assert_eq!(code, 1);
    assert!(out.contains("profile-expired") && out.contains("certificate-expired"));
}

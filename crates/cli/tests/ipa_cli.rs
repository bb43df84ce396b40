//! Drives the built `provkit` binary on the corpus IPAs: `ipa verify` exit
//! codes and JSON findings, `ipa info`, and `import` of IPAs (valid ones
//! linked to their embedded profile, invalid ones refused with a reason),
//! plus the CSV inventory. Runs the IPA parts when `PROVKIT_CORPUS` is set.

mod common;

use common::{corpus, provkit, provkit_with, s, tmp};

#[test]
fn verify_exit_codes_and_json() {
    let Some(dir) = corpus() else { return };
    let ipa = |n: &str| dir.join("ipas").join(n).to_string_lossy().into_owned();
    let valid = ipa("sqilte_universal.ipa");
    let (code, out, err) = provkit(&["ipa", "verify", "--at", "signing-time", &valid]);
    assert_eq!(code, 0, "{out}{err}");
    // The same app today: its certificate and profile have expired.
    let (code, out, _) = provkit(&[
        "ipa",
        "verify",
        "--json",
        "--at",
        "2026-11-22T00:00:00Z",
        &valid,
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["valid"], false);
    let findings = v["findings"].as_array().expect("findings");
    for f in findings {
        for key in ["code", "bundle", "arch", "path", "message", "fix"] {
            assert!(f.get(key).is_some(), "finding without {key}: {f}");
        }
    }
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "signing-certificate-expired")
    );
    assert!(findings.iter().any(|f| f["code"] == "profile-expired"));
    // A device the ad-hoc profile does not list.
    let (code, out, _) = provkit(&[
        "ipa",
        "verify",
        "--json",
        "--at",
        "signing-time",
        "--device",
        "0000",
        &valid,
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("device-not-provisioned"));
    // Tampered: exit 1 with the reason; not an app: exit 2.
    let (code, out, _) = provkit(&[
        "ipa",
        "verify",
        "--at",
        "signing-time",
        &ipa("Reversal_ionic-reverse-engineering.rezipped.ipa"),
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("resource-added") && out.contains("www/package.json"),
        "{out}"
    );
    let (code, _, err) = provkit(&["ipa", "verify", &ipa("NotAnApp.negative.ipa")]);
    assert_eq!(code, 2);
    assert!(err.contains("not an app"), "{err}");
    // info names the bundle, slices, signer, profile and entitlements.
    let (code, out, err) = provkit(&["ipa", "info", &valid]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "com.sqlite",
        "armv7",
        "arm64",
        "sha1+sha256",
        "73W38KTARF",
        "3682bbdf",
        "application-identifier",
    ] {
        assert!(out.contains(needle), "info lacks {needle}: {out}");
    }
}

#[test]
fn import_links_valid_ipas_and_refuses_the_rest() {
    let Some(dir) = corpus() else { return };
    let work = tmp("import");
    let db = work.join("t.db");
    let db = db.to_str().expect("utf8");
    assert_eq!(provkit(&["--db", db, "init"]).0, 0);
    let ipas = dir.join("ipas");
    let (code, out, err) = provkit(&["--db", db, "import", ipas.to_str().expect("utf8")]);
    assert_eq!(code, 2, "some files refused: {out}{err}");
    assert!(out.contains("imported 7 of 12 files (5 refused)"), "{out}");
    assert!(
        err.contains("LegazpikoSantikutzak13") && err.contains("info-plist-modified"),
        "{err}"
    );
    let (code, out, err) = provkit(&["--db", db, "expiring", "--within", "36500d", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("com.sqlite") && out.contains("3682bbdf-29fb-4d75-8742-59731773d0a1"),
        "{out}"
    );
}

#[test]
fn inventory_csv_imports_and_errors_name_the_line() {
    let work = tmp("csv");
    let db = work.join("t.db");
    let db = db.to_str().expect("utf8");
    assert_eq!(provkit(&["--db", db, "init"]).0, 0);
    let good = work.join("inv.csv");
    std::fs::write(
        &good,
        "record,a,b,c\nuser,alice,,\ndevice,U1,alice,\napp,U1,com.example.app,1.0\ngroup,Sales,user,\nmember,Sales,alice,\n",
    )
    .expect("write");
    let (code, out, err) = provkit(&[
        "--db",
        db,
        "inventory",
        "import",
        good.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "imported: 1 new user(s), 1 new device(s), 0 device(s) updated, 1 group(s) changed"
        ),
        "{out}"
    );
    let bad = work.join("bad.csv");
    std::fs::write(&bad, "user,bob\napp,U9,com.example.app,1.0\n").expect("write");
    let (code, _, err) = provkit(&[
        "--db",
        db,
        "inventory",
        "import",
        bad.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2") && err.contains("U9"), "{err}");
}

#[test]
fn resign_with_a_p12_or_pem_identity_then_verify() {
    let Some(dir) = corpus() else { return };
    let work = tmp("resign");
    let samples = work.join("s");
    let (code, _, err) = provkit(&["profile", "sample", "--out", s(&samples)]);
    assert_eq!(code, 0, "{err}");
    let sample = |name: &str| samples.join(name).to_str().expect("utf8").to_owned();
    let input = dir
        .join("ipas/sqilte_universal.ipa")
        .to_str()
        .expect("utf8")
        .to_owned();
    let (enterprise, anchor) = (
        sample("enterprise.mobileprovision"),
        sample("test-root-ca.cer"),
    );
    let (p12, cert, key) = (
        sample("test-developer.p12"),
        sample("test-developer.pem"),
        sample("test-developer.key"),
    );
    let verify = |ipa: &std::path::Path| {
        provkit(&[
            "ipa",
            "verify",
            "--json",
            "--anchor",
            &anchor,
            "--at",
            "signing-time",
            s(ipa),
        ])
    };
    // PKCS#12 with the password from the environment.
    let out = work.join("out.ipa");
    let with_password = |password: &str| {
        provkit_with(
            &[
                "ipa",
                "resign",
                &input,
                "--identity",
                &p12,
                "--password-env",
                "PROVKIT_TEST_P12",
                "--profile",
                &enterprise,
                "--anchor",
                &anchor,
                "-o",
                s(&out),
            ],
            &[("PROVKIT_TEST_P12", password)],
        )
    };
    let (code, _, err) = with_password("provkit");
    assert_eq!(code, 0, "{err}");
    let (code, out_text, _) = verify(&out);
    assert_eq!(code, 0, "{out_text}");
    // A wrong password is a clear error, not a panic.
    let (code, _, err) = with_password("wrong");
    assert_eq!(code, 3);
    assert!(err.contains("PKCS#12"));
    // The output exists now: replacing it needs --force; the input never.
    let (code, _, err) = with_password("provkit");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exists; pass --force"), "{err}");
    let resign = |extra: &[&str], output: &str| {
        let mut args = vec![
            "ipa",
            "resign",
            &input,
            "--certificate",
            &cert,
            "--key",
            &key,
            "--profile",
            &enterprise,
            "-o",
            output,
        ];
        args.extend_from_slice(extra);
        provkit(&args)
    };
    let (code, _, err) = resign(
        &[
            "--chain",
            &sample("test-intermediate.pem"),
            "--anchor",
            &anchor,
            "--force",
        ],
        &input,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is the input"), "{err}");
    // Written only when its own verifier accepts it: without the test root
    // as an anchor, or without the intermediate, it says which to pass.
    let unchecked = work.join("unchecked.ipa");
    let (code, _, err) = resign(
        &["--chain", &sample("test-intermediate.pem")],
        s(&unchecked),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("chain-untrusted") && err.contains("--anchor"),
        "{err}"
    );
    assert!(!unchecked.exists(), "nothing written");
    let (code, _, err) = resign(&["--anchor", &anchor], s(&unchecked));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("with --chain"), "{err}");
    assert!(
        !err.contains("sign with a certificate issued by Apple"),
        "{err}"
    );
    assert!(!unchecked.exists(), "nothing written");
    // An expired profile: refused with its reason.
    let (code, _, err) = provkit(&[
        "ipa",
        "resign",
        &input,
        "--certificate",
        &cert,
        "--key",
        &key,
        "--chain",
        &sample("test-intermediate.pem"),
        "--anchor",
        &anchor,
        "--profile",
        &sample("expired-appstore.mobileprovision"),
        "-o",
        s(&unchecked),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(!unchecked.exists());
    // PEM certificate and key, carrying the intermediate; a new bundle id.
    let out2 = work.join("out2.ipa");
    let (code, _, err) = provkit(&[
        "ipa",
        "resign",
        &input,
        "--certificate",
        &cert,
        "--key",
        &key,
        "--chain",
        &sample("test-intermediate.pem"),
        "--profile",
        &enterprise,
        "--bundle-id",
        "com.example.sqlite",
        "--anchor",
        &anchor,
        "-o",
        s(&out2),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, info, _) = verify(&out2);
    assert_eq!(code, 0, "{info}");
    assert!(info.contains("com.example.sqlite"));
    // A profile that does not cover the app: refused, exit 1, nothing written.
    let out3 = work.join("out3.ipa");
    let (code, _, err) = provkit(&[
        "ipa",
        "resign",
        &input,
        "--certificate",
        &cert,
        "--key",
        &key,
        "--profile",
        &sample("adhoc-100-devices.mobileprovision"),
        "-o",
        s(&out3),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no profile covers com.sqlite"), "{err}");
    assert!(!out3.exists());
}

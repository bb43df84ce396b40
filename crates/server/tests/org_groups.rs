//! Organization groups through the API, both ways: a Benelux token gets
//! 404 on a DACH profile, device and assignment and cannot assign a DACH
//! group, a DACH token the same for Benelux, a Global token sees both; each
//! sees only its own in lists, plans and the audit log.

mod common;

use chrono::{DateTime, Utc};
use common::Server;
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_server::Limits;
use provkit_server::state::Opener;
use provkit_service::tokens::{self, Role};
use provkit_store::{Actor, PostgresStore, SqliteStore, Store};
use serde_json::json;

const BNL: &str = "Global/EMEA/Benelux";
const DACH: &str = "Global/EMEA/DACH";
const P_BNL: &str = "0B0B0B0B-0000-4000-8000-00000000000B";
const P_DACH: &str = "0D0D0D0D-0000-4000-8000-00000000000D";

fn at() -> DateTime<Utc> {
    utc(2026, 11, 22)
}

struct Tokens {
    bnl: String,
    dach: String,
    bnl_admin: String,
    global: String,
}

fn prepare(store: &mut dyn Store, ca: &TestCa) -> Tokens {
    let cli = Actor {
        name: "cli".into(),
        at: at(),
    };
    provkit_service::trust::add_anchor(store, ca.root.cert.der(), &cli).expect("anchor");
    store.add_org_group(BNL, &cli).expect("og");
    store.add_org_group(DACH, &cli).expect("og");
    let mut make = |name: &str, role: Role, og: Option<&str>, seed: u8| {
        tokens::create(store, name, role, og, &[seed; 32], &cli)
            .expect("token")
            .token
    };
    Tokens {
        bnl: make("bnl", Role::Operator, Some(BNL), 11),
        dach: make("dach", Role::Operator, Some(DACH), 12),
        bnl_admin: make("bnl-admin", Role::Admin, Some(BNL), 13),
        global: make("global", Role::Viewer, None, 14),
    }
}

#[test]
fn org_groups_over_sqlite() {
    let dir = std::env::temp_dir().join(format!("provkit-og-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("t.db");
    let ca = TestCa::rsa();
    let tokens = {
        let mut s = SqliteStore::open(&path).expect("create");
        prepare(&mut s, &ca)
    };
    let open = common::sqlite_opener(&path);
    scenario(&open, &ca, &tokens, "sqlite");
}

#[test]
fn org_groups_over_postgres() {
    let Some(url) = std::env::var("PROVKIT_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("NOTICE: PROVKIT_DATABASE_URL is not set: the PostgreSQL run is skipped");
        return;
    };
    PostgresStore::reset(&url).expect("reset");
    let ca = TestCa::rsa();
    let tokens = {
        let mut s = PostgresStore::connect(&url).expect("connect");
        prepare(&mut s, &ca)
    };
    let open: Box<Opener> = Box::new(move || Ok(Box::new(PostgresStore::connect_existing(&url)?)));
    scenario(&open, &ca, &tokens, "postgres");
}

fn scenario(open: &Opener, ca: &TestCa, t: &Tokens, backend: &str) {
    let server = Server::start(open, 2, Limits::default(), at());
    let bin = Some("application/octet-stream");
    let json_ct = Some("application/json");
    let body = |r: &common::Response| String::from_utf8_lossy(&r.body).into_owned();

    // Each operator uploads a profile and an inventory into its own group.
    for (token, uuid, prefix) in [(&t.bnl, P_BNL, "bnl"), (&t.dach, P_DACH, "dach")] {
        let bytes = signed_profile(ca, &ProfileSpec::for_all_devices(uuid));
        let r = server.call("POST", "/api/v1/profiles", Some(token), bin, &bytes);
        assert_eq!(r.status, 201, "{backend}: {}", body(&r));
        let inv = json!({
            "users": [format!("{prefix}-user")],
            "devices": [{"udid": format!("{prefix}-DEVICE"), "user": format!("{prefix}-user")}],
            "groups": [{"name": format!("{prefix} Sales"), "kind": "user", "members": [format!("{prefix}-user")]}]
        })
        .to_string();
        let r = server.call(
            "POST",
            "/api/v1/inventory",
            Some(token),
            json_ct,
            inv.as_bytes(),
        );
        assert_eq!(r.status, 200, "{backend}: {}", body(&r));
        let assign = json!({"include": [format!("{prefix} Sales")]}).to_string();
        let r = server.call(
            "PUT",
            &format!("/api/v1/profiles/{uuid}/assignments"),
            Some(token),
            json_ct,
            assign.as_bytes(),
        );
        assert_eq!(r.status, 200, "{backend}: {}", body(&r));
    }

    let listed = |token: &str| -> Vec<String> {
        let r = server.call("GET", "/api/v1/profiles", Some(token), None, b"");
        r.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["uuid"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(listed(&t.bnl), [P_BNL], "{backend}");
    assert_eq!(listed(&t.dach), [P_DACH], "{backend}");
    let mut both = listed(&t.global);
    both.sort();
    assert_eq!(both, [P_BNL, P_DACH], "{backend}: Global sees both");

    // Both ways: the other's objects answer 404, as if they did not exist.
    for (token, theirs, their_device, their_group, mine) in [
        (&t.bnl, P_DACH, "dach-DEVICE", "dach Sales", P_BNL),
        (&t.dach, P_BNL, "bnl-DEVICE", "bnl Sales", P_DACH),
    ] {
        for path in [
            format!("/api/v1/profiles/{theirs}"),
            format!("/api/v1/profiles/{theirs}/assignments"),
            format!("/api/v1/profiles/{theirs}/devices"),
            format!("/api/v1/devices/{their_device}/explain?profile={mine}"),
        ] {
            let r = server.call("GET", &path, Some(token), None, b"");
            assert_eq!(
                (r.status, r.problem().as_str()),
                (404, "not-found"),
                "{backend}: {path}"
            );
        }
        let sideways = json!({"include": [their_group]}).to_string();
        let r = server.call(
            "PUT",
            &format!("/api/v1/profiles/{mine}/assignments"),
            Some(token),
            json_ct,
            sideways.as_bytes(),
        );
        assert_eq!(
            r.status,
            404,
            "{backend}: cannot assign the other's group: {}",
            body(&r)
        );
        let everyone = json!({"include": ["all-users"]}).to_string();
        let r = server.call(
            "PUT",
            &format!("/api/v1/profiles/{mine}/assignments"),
            Some(token),
            json_ct,
            everyone.as_bytes(),
        );
        assert_eq!(
            r.status,
            422,
            "{backend}: all users would reach outside: {}",
            body(&r)
        );
        let r = server.call(
            "PUT",
            &format!("/api/v1/profiles/{theirs}/assignments"),
            Some(token),
            json_ct,
            br#"{"include": []}"#,
        );
        assert_eq!(r.status, 404, "{backend}");
    }
    let r = server.call(
        "DELETE",
        &format!("/api/v1/profiles/{P_DACH}"),
        Some(&t.bnl_admin),
        None,
        b"",
    );
    assert_eq!(
        r.status, 404,
        "{backend}: an admin of Benelux cannot delete DACH's"
    );
    // Taking over the other's device through an inventory is refused and
    // writes nothing.
    let steal = json!({"devices": [{"udid": "dach-DEVICE"}]}).to_string();
    let r = server.call(
        "POST",
        "/api/v1/inventory",
        Some(&t.bnl),
        json_ct,
        steal.as_bytes(),
    );
    assert_eq!(r.status, 422, "{backend}: {}", body(&r));

    // Plans and the audit log, each its own.
    let plan = server
        .call("GET", "/api/v1/plan", Some(&t.bnl), None, b"")
        .json();
    let devices: Vec<&str> = plan["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .filter_map(|c| c["udid"].as_str())
        .collect();
    assert_eq!(devices, ["bnl-DEVICE"], "{backend}");
    let audit = server
        .call("GET", "/api/v1/audit?limit=1000", Some(&t.dach), None, b"")
        .json();
    let actors: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(
        !actors.is_empty() && actors.iter().all(|a| *a == "token:dach"),
        "{backend}: {actors:?}"
    );
    // Global sees both groups' plans.
    let plan = server
        .call("GET", "/api/v1/plan", Some(&t.global), None, b"")
        .json();
    assert_eq!(
        plan["commands"].as_array().map(Vec::len),
        Some(2),
        "{backend}"
    );

    // A Benelux admin manages Benelux's tokens and groups only.
    let json_ct = Some("application/json");
    let tokens = server.call("GET", "/api/v1/tokens", Some(&t.bnl_admin), None, b"");
    let names: Vec<String> = tokens
        .json()
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|x| x["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        names.contains(&"bnl".to_owned()) && !names.contains(&"dach".to_owned()),
        "{backend}: {names:?}"
    );
    let r = server.call(
        "DELETE",
        "/api/v1/tokens/dach",
        Some(&t.bnl_admin),
        None,
        b"",
    );
    assert_eq!(
        r.status, 404,
        "{backend}: DACH's token does not exist for Benelux"
    );
    let r = server.call(
        "POST",
        "/api/v1/tokens",
        Some(&t.bnl_admin),
        json_ct,
        format!(r#"{{"name": "sneaky", "role": "admin", "org_group": "{DACH}"}}"#).as_bytes(),
    );
    assert_eq!(
        r.status,
        404,
        "{backend}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let r = server.call(
        "POST",
        "/api/v1/tokens",
        Some(&t.bnl_admin),
        json_ct,
        br#"{"name": "bnl-ci", "role": "viewer"}"#,
    );
    assert_eq!(r.status, 201, "{backend}");
    assert_eq!(
        r.json()["org_group"],
        BNL,
        "a token lands in the caller's group"
    );
    let r = server.call(
        "POST",
        "/api/v1/org-groups",
        Some(&t.bnl_admin),
        json_ct,
        format!(r#"{{"path": "{DACH}/Vienna"}}"#).as_bytes(),
    );
    assert_eq!(r.status, 422, "{backend}: no group made sideways");
    let r = server.call(
        "POST",
        "/api/v1/org-groups",
        Some(&t.bnl_admin),
        json_ct,
        format!(r#"{{"path": "{BNL}/Antwerp"}}"#).as_bytes(),
    );
    assert_eq!(r.status, 201, "{backend}");
    let groups = server
        .call("GET", "/api/v1/org-groups", Some(&t.bnl_admin), None, b"")
        .json();
    let paths: Vec<&str> = groups
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["path"].as_str())
        .collect();
    assert!(
        paths.iter().all(|p| p.starts_with(BNL)),
        "{backend}: {paths:?}"
    );
    // Trust anchors are the root's to change.
    let r = server.call(
        "POST",
        "/api/v1/trust-anchors",
        Some(&t.bnl_admin),
        None,
        TestCa::ecdsa().root.cert.der(),
    );
    assert_eq!(
        r.status,
        422,
        "{backend}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

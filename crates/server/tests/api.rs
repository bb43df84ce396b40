//! The API over a real listening socket, on SQLite and on PostgreSQL (when
//! `PROVKIT_DATABASE_URL` names a database; skipped with a notice
//! otherwise): every endpoint's success and refusal, 401 without a token or
//! with a revoked one, each role's limits, the audit log naming the token,
//! and hostile requests that write nothing and leave the server up.

mod common;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use common::Server;
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_server::Limits;
use provkit_server::state::Opener;
use provkit_service::tokens::{self, Role};
use provkit_store::{Actor, PostgresStore, SqliteStore, Store};
use serde_json::{Value, json};

const OLD: &str = "0E0E0E0E-0000-4000-8000-000000000001";
const NEW: &str = "0E0E0E0E-0000-4000-8000-000000000002";

fn at() -> DateTime<Utc> {
    utc(2026, 11, 22)
}

fn profile(ca: &TestCa, uuid: &str, expires: DateTime<Utc>) -> Vec<u8> {
    signed_profile(
        ca,
        &ProfileSpec {
            uuid: uuid.into(),
            all_devices: true,
            devices: None,
            expiration: expires,
            ..ProfileSpec::default()
        },
    )
}

/// The tokens of the scenario, by role.
struct Tokens {
    viewer: String,
    operator: String,
    admin: String,
}

/// Tokens and the test CA as an anchor, written before the server starts.
fn prepare(store: &mut dyn Store, ca: &TestCa) -> Tokens {
    let cli = Actor {
        name: "cli".into(),
        at: at(),
    };
    provkit_service::trust::add_anchor(store, ca.root.cert.der(), &cli).expect("anchor");
    let mut make = |name: &str, role: Role, seed: u8| {
        tokens::create(store, name, role, None, &[seed; 32], &cli)
            .expect("token")
            .token
    };
    Tokens {
        viewer: make("viewer", Role::Viewer, 1),
        operator: make("operator", Role::Operator, 2),
        admin: make("admin", Role::Admin, 3),
    }
}

fn small_limits() -> Limits {
    let mut l = Limits::default();
    l.max_body_bytes = 256 << 10;
    l.max_upload_bytes = 8 << 20;
    l
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("provkit-server-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

#[test]
fn api_over_sqlite() {
    let path = tmp("sqlite").join("t.db");
    let ca = TestCa::rsa();
    let tokens = {
        let mut s = SqliteStore::open(&path).expect("create");
        prepare(&mut s, &ca)
    };
    let open = common::sqlite_opener(&path);
    scenario(&open, &ca, &tokens, "sqlite");
}

#[test]
fn api_over_postgres() {
    let Some(url) = std::env::var("PROVKIT_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("NOTICE: PROVKIT_DATABASE_URL is not set: the PostgreSQL API run is skipped");
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
    let server = Server::start(open, 3, small_limits(), at());
    let json_ct = Some("application/json");
    let bin = Some("application/octet-stream");

    // Health without a token; everything else needs one.
    assert_eq!(server.call("GET", "/healthz", None, None, b"").status, 200);
    let r = server.call("GET", "/api/v1/profiles", None, None, b"");
    assert_eq!(
        (r.status, r.problem().as_str()),
        (401, "unauthorized"),
        "{backend}"
    );
    let r = server.call("GET", "/api/v1/profiles", Some("pk_00"), None, b"");
    assert_eq!(r.status, 401, "{backend}");
    let r = server.call("GET", "/api/v1/openapi.json", Some(&t.viewer), None, b"");
    assert_eq!(r.status, 200, "{backend}");
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/profiles/{uuid}/assignments",
        "/api/v1/inventory",
        "/healthz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }

    // Upload: a viewer may not; an operator may; junk and untrusted are refused.
    let old = profile(ca, OLD, utc(2027, 1, 15));
    let r = server.call("POST", "/api/v1/profiles", Some(&t.viewer), bin, &old);
    assert_eq!((r.status, r.problem().as_str()), (403, "forbidden"));
    let r = server.call(
        "POST",
        "/api/v1/profiles?name=Sales%20app&description=Signed%20for%20the%20sales%20app",
        Some(&t.operator),
        bin,
        &old,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["uuid"], OLD);
    assert_eq!(r.json()["label"]["name"], "Sales app", "{backend}");
    assert_eq!(r.json()["label"]["description"], "Signed for the sales app");
    let r = server.call(
        "POST",
        "/api/v1/profiles",
        Some(&t.operator),
        bin,
        b"not a profile",
    );
    assert_eq!((r.status, r.problem().as_str()), (422, "not-a-profile"));
    let stranger = profile(
        &TestCa::ecdsa(),
        "0E0E0E0E-0000-4000-8000-0000000000FF",
        utc(2027, 1, 15),
    );
    let r = server.call(
        "POST",
        "/api/v1/profiles",
        Some(&t.operator),
        bin,
        &stranger,
    );
    assert_eq!((r.status, r.problem().as_str()), (422, "untrusted-profile"));
    assert!(
        r.json()["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    let list = server
        .call("GET", "/api/v1/profiles", Some(&t.viewer), None, b"")
        .json();
    assert_eq!(list["total"], 1, "refused uploads wrote nothing: {list}");
    assert_eq!(list["items"][0]["label"]["name"], "Sales app", "{list}");

    // The admin's name and description: operators edit them, viewers may
    // not, bad ones are refused and change nothing.
    let path = format!("/api/v1/profiles/{OLD}");
    let relabel = br#"{"name": "Sales app (2027)", "description": "Renew in December"}"#;
    let r = server.call("PATCH", &path, Some(&t.viewer), json_ct, relabel);
    assert_eq!(r.status, 403, "{backend}");
    let r = server.call("PATCH", &path, Some(&t.operator), json_ct, relabel);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["label"]["name"], "Sales app (2027)");
    let long = format!(r#"{{"name": "{}"}}"#, "n".repeat(201));
    let r = server.call("PATCH", &path, Some(&t.operator), json_ct, long.as_bytes());
    assert_eq!(
        (r.status, r.problem().as_str()),
        (422, "invalid"),
        "{backend}"
    );
    let r = server.call(
        "PATCH",
        &path,
        Some(&t.operator),
        json_ct,
        br#"{"title": "x"}"#,
    );
    assert_eq!(r.status, 422, "unknown fields are refused: {backend}");
    let shown = server.call("GET", &path, Some(&t.viewer), None, b"").json();
    assert_eq!(shown["label"]["name"], "Sales app (2027)", "{shown}");
    assert_eq!(shown["label"]["description"], "Renew in December");

    // Inventory: a dry run writes nothing, then the import.
    let inv = json!({
        "users": ["ann", "bob", "ceo"],
        "devices": [
            {"udid": "D-ANN", "user": "ann"},
            {"udid": "D-BOB", "user": "bob"},
            {"udid": "D-CEO", "user": "ceo"}
        ],
        "groups": [{"name": "Executives", "kind": "user", "members": ["ceo"]}]
    })
    .to_string();
    let r = server.call(
        "POST",
        "/api/v1/inventory?dry_run=true",
        Some(&t.viewer),
        json_ct,
        inv.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["written"], false);
    let r = server.call(
        "POST",
        "/api/v1/inventory",
        Some(&t.viewer),
        json_ct,
        inv.as_bytes(),
    );
    assert_eq!(r.status, 403);
    let r = server.call(
        "POST",
        "/api/v1/inventory",
        Some(&t.operator),
        json_ct,
        inv.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["written"], true);
    let csv = "kind,name,value\nuser,dan,\n";
    let r = server.call(
        "POST",
        "/api/v1/inventory",
        Some(&t.operator),
        Some("text/csv"),
        csv.as_bytes(),
    );
    assert!(
        matches!(r.status, 200 | 400),
        "CSV is read: {}",
        String::from_utf8_lossy(&r.body)
    );
    let r = server.call(
        "POST",
        "/api/v1/inventory",
        Some(&t.operator),
        Some("text/plain"),
        b"x",
    );
    assert_eq!(
        (r.status, r.problem().as_str()),
        (415, "unsupported-media-type")
    );

    // All users but not the executives.
    let path = format!("/api/v1/profiles/{OLD}/assignments");
    let body = json!({"include": ["all-users"], "exclude": ["Executives"]}).to_string();
    let r = server.call("PUT", &path, Some(&t.viewer), json_ct, body.as_bytes());
    assert_eq!(r.status, 403);
    let r = server.call("PUT", &path, Some(&t.operator), json_ct, body.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let change = r.json();
    assert_eq!(
        change["devices_gaining"],
        json!(["D-ANN", "D-BOB"]),
        "{change}"
    );
    assert_eq!(change["exclude_after"], json!(["Executives"]));
    let r = server.call("GET", &path, Some(&t.viewer), None, b"").json();
    assert_eq!(
        r,
        json!({"include": ["all-users"], "exclude": ["Executives"]})
    );
    let patch = json!({"add": {"include": ["Executives"]}, "remove": {"exclude": ["Executives"]}})
        .to_string();
    let r = server.call("PATCH", &path, Some(&t.operator), json_ct, patch.as_bytes());
    assert_eq!(
        (r.status, r.problem().as_str()),
        (400, "invalid-edit"),
        "one edit per call"
    );

    // Per-device status: both desired, nothing queued yet.
    let r = server.call(
        "GET",
        &format!("/api/v1/profiles/{OLD}/devices"),
        Some(&t.viewer),
        None,
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let states = common::device_states(&r.json());
    assert_eq!(
        states,
        [
            ("D-ANN".to_owned(), "pending-install".to_owned()),
            ("D-BOB".to_owned(), "pending-install".to_owned())
        ]
    );

    // Reads.
    let plan = server.call("GET", "/api/v1/plan", Some(&t.viewer), None, b"");
    assert_eq!(plan.status, 200);
    let installs = plan.json()["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .filter(|c| c["request_type"] == "InstallProvisioningProfile")
        .count();
    assert_eq!(installs, 2, "ann and bob, not the CEO");
    // Paged: one command a page, the total beside it.
    let total = plan.json()["commands_total"].as_u64().expect("total");
    let page = server
        .call(
            "GET",
            "/api/v1/plan?limit=1&offset=1",
            Some(&t.viewer),
            None,
            b"",
        )
        .json();
    assert_eq!(page["commands"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["commands"][0], plan.json()["commands"][1]);
    assert_eq!(page["commands_total"].as_u64(), Some(total));
    let r = server.call("GET", "/api/v1/plan?limit=0", Some(&t.viewer), None, b"");
    assert_eq!((r.status, r.problem().as_str()), (400, "invalid-page"));
    let r = server.call(
        "GET",
        "/api/v1/expiring?within=60d",
        Some(&t.viewer),
        None,
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["dying"].as_array().map(Vec::len),
        Some(1),
        "expires 2027-01-15"
    );
    let r = server.call(
        "GET",
        "/api/v1/expiring?within=forever",
        Some(&t.viewer),
        None,
        b"",
    );
    assert_eq!((r.status, r.problem().as_str()), (400, "invalid-window"));
    let r = server.call(
        "GET",
        &format!("/api/v1/devices/D-CEO/explain?profile={OLD}"),
        Some(&t.viewer),
        None,
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = server.call(
        "GET",
        "/api/v1/devices/D-CEO/explain",
        Some(&t.viewer),
        None,
        b"",
    );
    assert_eq!(
        (r.status, r.problem().as_str()),
        (400, "bad-request"),
        "profile is required"
    );
    let r = server.call(
        "GET",
        &format!("/api/v1/profiles/{}", &OLD[..8]),
        Some(&t.viewer),
        None,
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["devices"],
        2,
        "ann and bob; the list is at .../devices"
    );
    for missing in [
        "/api/v1/profiles/0E0E0E0E-FFFF",
        "/api/v1/profiles/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/nothing",
    ] {
        let r = server.call("GET", missing, Some(&t.viewer), None, b"");
        assert_eq!(
            (r.status, r.problem().as_str()),
            (404, "not-found"),
            "{missing}"
        );
    }

    // Delete: admin only, and refused while in use, with the reasons.
    let one = format!("/api/v1/profiles/{OLD}");
    let r = server.call("DELETE", &one, Some(&t.operator), None, b"");
    assert_eq!(r.status, 403);
    let r = server.call("DELETE", &one, Some(&t.admin), None, b"");
    assert_eq!((r.status, r.problem().as_str()), (409, "in-use"));
    assert!(
        r.json()["assignments"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    // Renew: assignments move to the successor.
    let new = profile(ca, NEW, utc(2028, 1, 15));
    let r = server.call(
        "POST",
        &format!("{one}/renew"),
        Some(&t.operator),
        bin,
        &new,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["assignments"], 2, "the include and the exclude");
    let r = server.call(
        "POST",
        &format!("{one}/renew"),
        Some(&t.operator),
        bin,
        &old,
    );
    assert!(
        matches!(r.status, 409 | 422),
        "not a successor: {}",
        r.status
    );

    // Now unused, the old profile can go.
    let r = server.call("DELETE", &one, Some(&t.admin), None, b"");
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));

    // The audit log names the tokens.
    let log = server
        .call(
            "GET",
            "/api/v1/audit?limit=1000",
            Some(&t.viewer),
            None,
            b"",
        )
        .json();
    let actors: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    for who in ["token:operator", "token:admin"] {
        assert!(actors.contains(&who), "{who} in {actors:?}");
    }

    documented_roles_are_enforced(&server, t, &doc);
    hostile(&server, t, backend);
    apps(&server, t, ca);
    admin_endpoints(&server, t, ca, backend);

    // A revoked token stops working at once.
    {
        let mut store = open().expect("open");
        tokens::revoke(
            store.as_mut(),
            "operator",
            &Actor {
                name: "cli".into(),
                at: at(),
            },
        )
        .expect("revoke");
    }
    let r = server.call("GET", "/api/v1/plan", Some(&t.operator), None, b"");
    assert_eq!(r.status, 401, "{backend}: revoked");
}

/// Tokens, organization groups and trust anchors over the API: admins
/// only, secrets never shown after creation, every change audited.
fn admin_endpoints(server: &Server, t: &Tokens, ca: &TestCa, backend: &str) {
    let json_ct = Some("application/json");
    // A token made over the API works at once, is listed without its
    // secret, and stops working when revoked over the API.
    let body = br#"{"name": "ci-bot", "role": "viewer"}"#;
    let r = server.call("POST", "/api/v1/tokens", Some(&t.operator), json_ct, body);
    assert_eq!(r.status, 403, "{backend}: operators make no tokens");
    let r = server.call("POST", "/api/v1/tokens", Some(&t.admin), json_ct, body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let made = r.json();
    let bot = made["token"].as_str().expect("token").to_owned();
    assert!(bot.starts_with("pk_") && bot.len() == 67, "{bot}");
    assert_eq!(made["org_group"], "Global");
    let r = server.call("POST", "/api/v1/tokens", Some(&t.admin), json_ct, body);
    assert_eq!(r.status, 422, "{backend}: the name is taken");
    let r = server.call(
        "POST",
        "/api/v1/tokens",
        Some(&t.admin),
        json_ct,
        br#"{"name": "x", "role": "root"}"#,
    );
    assert!(
        matches!(r.status, 400 | 422),
        "{backend}: no such role: {}",
        r.status
    );
    assert_eq!(
        server
            .call("GET", "/api/v1/profiles", Some(&bot), None, b"")
            .status,
        200
    );
    let list = server.call("GET", "/api/v1/tokens", Some(&t.admin), None, b"");
    assert_eq!(list.status, 200);
    let text = String::from_utf8_lossy(&list.body).into_owned();
    assert!(
        text.contains("ci-bot") && !text.contains(&bot[3..]),
        "{text}"
    );
    assert!(!text.contains("sha256"), "no hashes either: {text}");
    let r = server.call("DELETE", "/api/v1/tokens/ci-bot", Some(&t.admin), None, b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["revoked_at"].is_string());
    assert_eq!(
        server
            .call("GET", "/api/v1/profiles", Some(&bot), None, b"")
            .status,
        401
    );
    let r = server.call("DELETE", "/api/v1/tokens/nobody", Some(&t.admin), None, b"");
    assert_eq!(r.status, 404, "{backend}");

    // Organization groups: made with their parents, listed, refused when
    // the path is malformed.
    let r = server.call(
        "POST",
        "/api/v1/org-groups",
        Some(&t.admin),
        json_ct,
        br#"{"path": "Global/APAC/Japan"}"#,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["created"],
        json!(["Global/APAC", "Global/APAC/Japan"])
    );
    let r = server.call(
        "POST",
        "/api/v1/org-groups",
        Some(&t.admin),
        json_ct,
        br#"{"path": "Global/APAC/Japan"}"#,
    );
    assert_eq!((r.status, r.json()["created"].clone()), (200, json!([])));
    let r = server.call(
        "POST",
        "/api/v1/org-groups",
        Some(&t.admin),
        json_ct,
        br#"{"path": "Global/../etc"}"#,
    );
    assert_eq!(
        r.status,
        422,
        "{backend}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let groups = server.call("GET", "/api/v1/org-groups", Some(&t.viewer), None, b"");
    let paths: Vec<String> = groups
        .json()
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["path"].as_str().map(str::to_owned))
        .collect();
    assert!(paths.contains(&"Global/APAC/Japan".to_owned()), "{paths:?}");

    // Trust anchors: listed for viewers; added and removed by admins.
    let anchors = server
        .call("GET", "/api/v1/trust-anchors", Some(&t.viewer), None, b"")
        .json();
    let fingerprint = anchors[0]["sha256"]
        .as_str()
        .expect("the test CA")
        .to_owned();
    let other = TestCa::ecdsa();
    let pem = other.root.cert.der().to_vec();
    let r = server.call(
        "POST",
        "/api/v1/trust-anchors",
        Some(&t.operator),
        None,
        &pem,
    );
    assert_eq!(r.status, 403);
    let r = server.call("POST", "/api/v1/trust-anchors", Some(&t.admin), None, &pem);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let added = r.json()["sha256"].as_str().expect("sha").to_owned();
    let r = server.call(
        "POST",
        "/api/v1/trust-anchors",
        Some(&t.admin),
        None,
        b"not a certificate",
    );
    assert_eq!(r.status, 422, "{backend}");
    let r = server.call(
        "DELETE",
        &format!("/api/v1/trust-anchors/{added}"),
        Some(&t.admin),
        None,
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let after = server
        .call("GET", "/api/v1/trust-anchors", Some(&t.viewer), None, b"")
        .json();
    assert_eq!(after.as_array().map(Vec::len), Some(1), "{after}");
    assert_eq!(after[0]["sha256"], fingerprint.as_str());
    let _ = ca;

    let log = server
        .call(
            "GET",
            "/api/v1/audit?limit=1000",
            Some(&t.viewer),
            None,
            b"",
        )
        .json();
    let by_admin: Vec<String> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["actor"] == "token:admin")
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    for action in [
        "token-create",
        "token-revoke",
        "org-group-create",
        "trust-add",
        "trust-remove",
    ] {
        assert!(
            by_admin.iter().any(|a| a == action),
            "{backend}: {action} in {by_admin:?}"
        );
    }
}

/// Every route's documented least role is what the server enforces: a
/// token one role below gets 403 before anything is read or written, the
/// documented role gets past the role check.
fn documented_roles_are_enforced(server: &Server, t: &Tokens, doc: &Value) {
    let below = |role: &str| match role {
        "operator" => Some(&t.viewer),
        "admin" => Some(&t.operator),
        _ => None,
    };
    let at = |role: &str| match role {
        "viewer" => &t.viewer,
        "operator" => &t.operator,
        _ => &t.admin,
    };
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        let path = path
            .replace("{uuid}", "0E0E0E0E-FFFF-FFFF-FFFF-FFFFFFFFFFFF")
            .replace("{udid}", "NO-SUCH-DEVICE");
        for (method, op) in ops.as_object().expect("operations") {
            let Some(role) = op["x-provkit-role"].as_str() else {
                continue;
            };
            let m = method.to_uppercase();
            let r = server.call(&m, &path, None, None, b"");
            assert_eq!(r.status, 401, "{m} {path} without a token");
            if let Some(low) = below(role) {
                let r = server.call(&m, &path, Some(low), None, b"");
                assert_eq!(r.status, 403, "{m} {path} below {role}");
            }
            // The least role of an endpoint with a dry run is the dry run's.
            let dry = op["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == "dry_run"));
            let least = if dry {
                format!("{path}?dry_run=true")
            } else {
                path.clone()
            };
            let r = server.call(&m, &least, Some(at(role)), None, b"");
            assert!(
                ![401, 403].contains(&r.status),
                "{m} {path} as {role}: {}",
                r.status
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} operations checked");
}

/// Requests no client should send: each a problem, nothing written, the
/// server still up.
fn hostile(server: &Server, t: &Tokens, backend: &str) {
    let count = |server: &Server| {
        server
            .call("GET", "/api/v1/audit?limit=1", Some(&t.viewer), None, b"")
            .json()["total"]
            .clone()
    };
    let before = count(server);
    let json_ct = Some("application/json");
    let path = format!("/api/v1/profiles/{NEW}/assignments");
    for (body, code) in [
        (&b"{not json"[..], "bad-request"),
        (&br#"{"include": ["x"], "unknown": 1}"#[..], "invalid-body"),
        (&br#"{"include": 5}"#[..], "invalid-body"),
    ] {
        let r = server.call("PUT", &path, Some(&t.operator), json_ct, body);
        assert_eq!(
            r.problem(),
            code,
            "{backend}: {}",
            String::from_utf8_lossy(body)
        );
    }
    // Over the body limit (256 KiB here).
    let big = vec![b'x'; 300 << 10];
    let r = server.call(
        "POST",
        "/api/v1/profiles",
        Some(&t.operator),
        Some("application/octet-stream"),
        &big,
    );
    assert_eq!((r.status, r.problem().as_str()), (413, "too-large"));
    // A body that stops short of its Content-Length.
    let raw = format!(
        "POST /api/v1/profiles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 5000\r\n\r\nshort",
        t.operator
    );
    let answer = server.raw_bytes(raw.as_bytes(), true);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
        "truncated body: {}",
        String::from_utf8_lossy(&answer)
    );
    // Query parameters the endpoint does not take.
    let r = server.call(
        "GET",
        "/api/v1/profiles?colour=red",
        Some(&t.viewer),
        None,
        b"",
    );
    assert_eq!(r.status, 400);
    let r = server.call(
        "GET",
        "/api/v1/profiles?limit=100000",
        Some(&t.viewer),
        None,
        b"",
    );
    assert_eq!((r.status, r.problem().as_str()), (400, "invalid-page"));
    // A method the path does not take.
    let r = server.call("DELETE", "/api/v1/plan", Some(&t.admin), None, b"");
    assert_eq!(
        (r.status, r.problem().as_str()),
        (405, "method-not-allowed")
    );
    // Garbage instead of HTTP.
    let answer = server.raw_bytes(b"\x00\x01\x02 NOT HTTP\r\n\r\n", true);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(server.alive(), "{backend}: still up");
    assert_eq!(
        count(server),
        before,
        "{backend}: nothing written by hostile requests"
    );
}

/// IPA uploads: verification and import through the API.
fn apps(server: &Server, t: &Tokens, ca: &TestCa) {
    use provkit_codesign::fixtures::{BundleSpec, build_ipa, developer_identity};
    let id = developer_identity(ca);
    let mut app = BundleSpec::new("Demo.app", "com.example.app");
    app.profile = Some(profile(
        ca,
        "0E0E0E0E-0000-4000-8000-0000000000A1",
        utc(2027, 6, 1),
    ));
    let ipa = build_ipa(&app, provkit_profile::fixtures::TEST_TEAM, &id, |_| false);
    let bin = Some("application/octet-stream");
    let r = server.call("POST", "/api/v1/ipa/verify", Some(&t.viewer), bin, &ipa);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let report: Value = r.json();
    assert_eq!(report["valid"], true, "{report}");
    let r = server.call("POST", "/api/v1/apps", Some(&t.viewer), bin, &ipa);
    assert_eq!(r.status, 403);
    let r = server.call("POST", "/api/v1/apps", Some(&t.operator), bin, &ipa);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["bundle_id"], "com.example.app");
    // Not a zip, and a zip bomb: refused, the server up.
    let r = server.call(
        "POST",
        "/api/v1/apps",
        Some(&t.operator),
        bin,
        b"PK\x03\x04 not really",
    );
    assert_eq!((r.status, r.problem().as_str()), (422, "not-an-app"));
    let bomb = zip_bomb();
    let r = server.call("POST", "/api/v1/apps", Some(&t.operator), bin, &bomb);
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    // Over the upload limit (8 MiB here).
    let r = server.call(
        "POST",
        "/api/v1/ipa/verify",
        Some(&t.viewer),
        bin,
        &vec![0u8; 9 << 20],
    );
    assert_eq!((r.status, r.problem().as_str()), (413, "too-large"));
    assert!(server.alive());
}

/// A zip whose one entry inflates about 1,000 times: 256 MiB of zeros.
fn zip_bomb() -> Vec<u8> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    w.start_file("Payload/Bomb.app/Info.plist", opts)
        .expect("entry");
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..256 {
        w.write_all(&chunk).expect("write");
    }
    w.finish().expect("zip").into_inner()
}

//! The web console: sign-in, sessions, CSRF and organization-group scope
//! over plain HTTP (always), and the admin's workflows in a real browser
//! (Debian's chromium driven through chromedriver over WebDriver) when
//! chromedriver is installed, as `.ci/run` installs it. The browser run
//! takes the screenshots in `docs/console/`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Response, Server};
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_server::Limits;
use provkit_service::tokens::Role;
use provkit_store::{Actor, ProfileLabel, SqliteStore, Store};
use serde_json::json;

const BNL: &str = "Global/EMEA/Benelux";
const DACH: &str = "Global/EMEA/DACH";
const P_FIELD: &str = "F1E1D000-0000-4000-8000-0000000000F1";
const P_FIELD2: &str = "F1E1D000-0000-4000-8000-0000000000F2";
const P_DACH: &str = "DAC40000-0000-4000-8000-0000000000D1";
const PASSWORD: &str = "benelux admin secret";
const GLOBAL_PASSWORD: &str = "global admin secret";

fn at() -> DateTime<Utc> {
    utc(2026, 11, 22)
}

fn field_profile(ca: &TestCa, uuid: &str, expires: DateTime<Utc>) -> Vec<u8> {
    signed_profile(
        ca,
        &ProfileSpec {
            name: "Field Service In House".into(),
            uuid: uuid.into(),
            bundle_id: "com.example.field".into(),
            all_devices: true,
            devices: None,
            creation: at() - chrono::Duration::days(300),
            expiration: expires,
            ..ProfileSpec::default()
        },
    )
}

/// A tenant with Benelux and DACH groups, a DACH profile, the Benelux
/// inventory (alice, bob the executive, carol) and its console admin, and
/// an API token to compare the console with the plan.
fn prepare(path: &std::path::Path, ca: &TestCa) -> String {
    let mut store = SqliteStore::open(path).expect("create");
    let cli = Actor {
        name: "cli".into(),
        at: at(),
    };
    provkit_service::trust::add_anchor(&mut store, ca.root.cert.der(), &cli).expect("anchor");
    store.add_org_group(BNL, &cli).expect("og");
    store.add_org_group(DACH, &cli).expect("og");
    provkit_service::console::create_user(
        &mut store,
        "bnl-admin",
        Role::Admin,
        Some(BNL),
        PASSWORD,
        &[9; 16],
        &cli,
    )
    .expect("console user");
    provkit_service::console::create_user(
        &mut store,
        "global-admin",
        Role::Admin,
        None,
        GLOBAL_PASSWORD,
        &[8; 16],
        &cli,
    )
    .expect("console user");
    store.set_scope(DACH);
    let dach = signed_profile(
        ca,
        &ProfileSpec {
            name: "DACH Secret Profile".into(),
            uuid: P_DACH.into(),
            all_devices: true,
            devices: None,
            ..ProfileSpec::default()
        },
    );
    let verifier = provkit_service::trust::tenant_verifier(&mut store).expect("verifier");
    provkit_service::trust::store_labeled_profile(
        &mut store,
        &dach,
        &ProfileLabel::default(),
        &verifier,
        at(),
        &cli,
        false,
    )
    .expect("dach profile");
    store.set_scope(provkit_store::org::ROOT);
    provkit_service::tokens::create(
        &mut store,
        "global-viewer",
        Role::Viewer,
        None,
        &[4; 32],
        &cli,
    )
    .expect("token")
    .token
}

fn inventory() -> String {
    json!({
        "users": ["alice", "bob", "carol"],
        "devices": [
            {"udid": "BNL-ALICE-IPAD", "user": "alice"},
            {"udid": "BNL-BOB-IPHONE", "user": "bob"},
            {"udid": "BNL-CAROL-IPHONE", "user": "carol"}
        ],
        "groups": [{"name": "Executives", "kind": "user", "members": ["bob"]}]
    })
    .to_string()
}

fn start(dir_name: &str) -> (Server, TestCa, String, std::path::PathBuf) {
    start_with(dir_name, Limits::default())
}

fn start_with(dir_name: &str, limits: Limits) -> (Server, TestCa, String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("provkit-{dir_name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("t.db");
    let ca = TestCa::rsa();
    let token = prepare(&path, &ca);
    let open = common::sqlite_opener(&path);
    let server = Server::start(&open, 2, limits, at());
    (server, ca, token, dir)
}

/// The Benelux inventory imported through the API.
fn import_inventory(server: &Server, dir: &std::path::Path) {
    let r = server.call(
        "POST",
        "/api/v1/inventory",
        Some(&bnl_operator(server, dir)),
        Some("application/json"),
        inventory().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", text(&r));
}

// ---- plain HTTP ------------------------------------------------------

fn header_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn get(server: &Server, path: &str, cookie: &str) -> Response {
    server.raw(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
            server.addr
        )
        .as_bytes(),
    )
}

fn post_form(server: &Server, path: &str, cookie: &str, form: &str) -> Response {
    server.raw(
        format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            server.addr,
            form.len()
        )
        .as_bytes(),
    )
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 64].to_owned()
}

/// Signs the Benelux admin in over HTTP; the session cookie pair.
fn sign_in(server: &Server, password: &str) -> Result<String, Response> {
    sign_in_named(server, "bnl-admin", password)
}

/// Signs `name` in over HTTP; returns the session cookie pair.
fn sign_in_named(server: &Server, name: &str, password: &str) -> Result<String, Response> {
    let page = server.call("GET", "/console/sign-in", None, None, b"");
    let pre = header_cookie(&page, "pk_signin").expect("pre-session cookie");
    let pre = pre.split(';').next().expect("pair").to_owned();
    let token = csrf_of(&text(&page));
    let form = format!(
        "csrf={token}&next=%2Fconsole%2Fprofiles&name={name}&password={}",
        password.replace(' ', "+")
    );
    let r = post_form(server, "/console/sign-in", &pre, &form);
    if r.status != 303 {
        return Err(r);
    }
    let c = header_cookie(&r, "pk_session").expect("session cookie");
    assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
    assert_eq!(r.header("location"), Some("/console/profiles"));
    Ok(c.split(';').next().expect("pair").to_owned())
}

/// Creates a profile through the console's form (multipart): the answer.
fn upload(server: &Server, cookie: &str, bytes: &[u8], name: &str, description: &str) -> Response {
    let page = text(&get(server, "/console/profiles/new", cookie));
    let csrf = csrf_of(&page);
    let boundary = "XyZbOuNdArY";
    let mut body = Vec::new();
    for (k, v) in [
        ("csrf", csrf.as_str()),
        ("name", name),
        ("description", description),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.mobileprovision\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut req = format!(
        "POST /console/profiles HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    server.raw(&req)
}

#[test]
fn console_sessions_csrf_and_scope_over_http() {
    let (server, ca, token, dir) = start("console-http");
    // Not signed in: every page sends the browser to sign in.
    let r = get(&server, "/console/profiles", "");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/console/sign-in?next=/console/profiles")
    );
    // A wrong password, and a sign-in form without its double-submit cookie.
    assert_eq!(
        sign_in(&server, "not the password").map_err(|r| r.status),
        Err(401)
    );
    let r = post_form(
        &server,
        "/console/sign-in",
        "",
        &format!(
            "csrf={}&name=bnl-admin&password={}",
            "a".repeat(64),
            PASSWORD.replace(' ', "+")
        ),
    );
    assert_eq!(r.status, 403, "{}", text(&r));
    let cookie = sign_in(&server, PASSWORD).expect("signed in");

    // Upload through the console form (multipart) in the Benelux group.
    let bytes = field_profile(&ca, P_FIELD, at() + chrono::Duration::days(40));
    let r = upload(
        &server,
        &cookie,
        &bytes,
        "Field app",
        "the field technicians' app",
    );
    let csrf = csrf_of(&text(&get(&server, "/console/profiles/new", &cookie)));
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(
        r.header("location"),
        Some(format!("/console/profiles/{P_FIELD}?note=created").as_str())
    );
    let page = text(&get(
        &server,
        &format!("/console/profiles/{P_FIELD}"),
        &cookie,
    ));
    assert!(
        page.contains("Field app") && page.contains("expires in 40 days"),
        "{page}"
    );

    // CSRF: the delete form without its token, or with another's, is
    // refused and deletes nothing.
    for form in [String::new(), format!("csrf={}", "0".repeat(64))] {
        let r = post_form(
            &server,
            &format!("/console/profiles/{P_FIELD}/delete"),
            &cookie,
            &form,
        );
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(text(&r).contains("csrf"));
    }
    assert_eq!(
        get(&server, &format!("/console/profiles/{P_FIELD}"), &cookie).status,
        200
    );

    // Scope: the Benelux admin sees no DACH profile, in the table, the CSV
    // or by its URL (404, as for one that does not exist); nor a group above.
    let list = text(&get(&server, "/console/profiles", &cookie));
    assert!(
        list.contains("Field app") && !list.contains("DACH Secret"),
        "{list}"
    );
    let csv = get(&server, "/console/profiles.csv", &cookie);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let csv = text(&csv);
    assert!(
        csv.starts_with("name,uuid,kind,team,app_id,expires,days_left,"),
        "{csv}"
    );
    assert!(csv.contains(P_FIELD) && !csv.contains(P_DACH), "{csv}");
    let r = get(&server, &format!("/console/profiles/{P_DACH}"), &cookie);
    assert_eq!(r.status, 404);
    let r = get(
        &server,
        &format!(
            "/console/profiles/{}",
            "00000000-0000-4000-8000-000000000000"
        ),
        &cookie,
    );
    assert_eq!(r.status, 404);
    for above_or_beside in ["Global%2FEMEA%2FDACH", "Global"] {
        let form = format!("csrf={csrf}&org_group={above_or_beside}");
        let r = post_form(&server, "/console/org-group", &cookie, &form);
        assert_eq!(r.status, 404, "{}", text(&r));
    }

    // Settings: a channel added with its secret, which no page shows
    // again; without the token nothing is added; then removed.
    let secret = "whsec-console-test-0123456789";
    let add = format!(
        "name=ops-hook&kind=webhook&url=http%3A%2F%2F127.0.0.1%3A9%2Fhook&secret={secret}&org_group=Global%2FEMEA%2FBenelux"
    );
    let r = post_form(&server, "/console/settings/channels", &cookie, &add);
    assert_eq!(r.status, 403, "{}", text(&r));
    let r = post_form(
        &server,
        "/console/settings/channels",
        &cookie,
        &format!("csrf={csrf}&{add}"),
    );
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&get(&server, "/console/settings", &cookie));
    assert!(
        page.contains("ops-hook") && !page.contains(secret),
        "{page}"
    );
    let r = post_form(
        &server,
        "/console/settings/channels",
        &cookie,
        &format!("csrf={csrf}&name=bad&kind=webhook&url=http%3A%2F%2Fx"),
    );
    assert_eq!(r.status, 422, "a webhook without a secret: {}", text(&r));
    let r = post_form(
        &server,
        "/console/settings/channels/remove",
        &cookie,
        &format!("csrf={csrf}&name=ops-hook"),
    );
    assert_eq!(r.status, 303, "{}", text(&r));
    assert!(!text(&get(&server, "/console/settings", &cookie)).contains("ops-hook"));

    // Notice stages are the tenant's: a Benelux admin cannot set them; a
    // Global admin can, and the plan uses them at once.
    let stages = format!("csrf={csrf}&admin=90%2C+30&user=14");
    let r = post_form(&server, "/console/settings/stages", &cookie, &stages);
    assert_eq!(r.status, 422, "{}", text(&r));
    assert!(
        text(&r).contains("notice stages are the tenant&#39;s")
            || text(&r).contains("notice stages are the tenant")
    );
    let global = sign_in_named(&server, "global-admin", GLOBAL_PASSWORD).expect("signed in");
    let gcsrf = csrf_of(&text(&get(&server, "/console/settings", &global)));
    let r = post_form(
        &server,
        "/console/settings/stages",
        &global,
        &format!("csrf={gcsrf}&admin=0%2C7%2Cx&user=14"),
    );
    assert_eq!(r.status, 422, "not a number: {}", text(&r));
    let r = post_form(
        &server,
        "/console/settings/stages",
        &global,
        &format!("csrf={gcsrf}&admin=90%2C+30&user=14"),
    );
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&get(&server, "/console/settings", &global));
    assert!(
        page.contains("value=\"90, 30\"") && page.contains("value=\"14\""),
        "{page}"
    );
    let ics = text(&server.call("GET", "/api/v1/calendar.ics", Some(&token), None, b""));
    assert!(
        ics.contains("TRIGGER:-P90D")
            && ics.contains("TRIGGER:-P30D")
            && !ics.contains("TRIGGER:-P60D"),
        "the calendar's reminders follow the new stages: {ics}"
    );

    // A profile's own notification settings, from its page: the form
    // needs its token, "own" needs stages, the saved ones are shown; a
    // Benelux admin does not reach a DACH profile's; an app nobody sees
    // is not found.
    let url = format!("/console/profiles/{P_DACH}/notifications");
    assert_eq!(post_form(&server, &url, &global, "mode=off").status, 403);
    let r = post_form(
        &server,
        &url,
        &global,
        &format!("csrf={gcsrf}&mode=own&stages="),
    );
    assert_eq!(r.status, 422, "{}", text(&r));
    let r = post_form(
        &server,
        &url,
        &global,
        &format!("csrf={gcsrf}&mode=own&stages=90%2C+14"),
    );
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&get(
        &server,
        &format!("/console/profiles/{P_DACH}"),
        &global,
    ));
    assert!(page.contains("its own admin stages 90, 14 days"), "{page}");
    let ics = text(&server.call("GET", "/api/v1/calendar.ics", Some(&token), None, b""));
    assert!(
        ics.contains("TRIGGER:-P14D"),
        "the profile's reminders follow its own stages: {ics}"
    );
    let r = post_form(&server, &url, &cookie, &format!("csrf={csrf}&mode=off"));
    assert_eq!(r.status, 404, "{}", text(&r));
    let r = post_form(
        &server,
        "/console/apps/notifications",
        &global,
        &format!("csrf={gcsrf}&bundle_id=com.example.none&mode=off"),
    );
    assert_eq!(r.status, 404, "{}", text(&r));

    // Signing out ends the session on the server, not only in the browser.
    let r = post_form(
        &server,
        "/console/sign-out",
        &cookie,
        &format!("csrf={csrf}"),
    );
    assert_eq!(r.status, 303);
    assert_eq!(get(&server, "/console/profiles", &cookie).status, 303);
    let _ = std::fs::remove_dir_all(dir);
}

/// The first console page after a change waited for the whole tenant to be
/// read again (about 15 s at 1M devices). With `console_build_wait` at
/// zero every tenant counts as large: a change that leaves the engine as
/// it was (a relabel) shows at once; after one that does not (an
/// assignment saved), the next page answers from the last reading and says
/// so, its editor shows the saved targets, a form read before the save
/// cannot undo it, and the page of a profile made since waits instead of
/// answering 404.
#[test]
fn the_first_page_after_a_change_waited_for_the_tenant_to_be_read_again() {
    let mut limits = Limits::default();
    limits.console_build_wait = Duration::ZERO;
    let (server, ca, _, dir) = start_with("console-lag", limits);
    let path = dir.join("t.db");
    import_inventory(&server, &dir);
    let cookie = sign_in(&server, PASSWORD).expect("signed in");
    let bytes = field_profile(&ca, P_FIELD, at() + chrono::Duration::days(40));
    let r = upload(&server, &cookie, &bytes, "Field app", "");
    assert_eq!(r.status, 303, "{}", text(&r));
    let url = format!("/console/profiles/{P_FIELD}");
    const LAGS: &str = "a change made since is being applied";
    let page = text(&get(&server, &url, &cookie));
    assert!(page.contains("Field app") && !page.contains(LAGS), "{page}");

    // A relabel (another process's write) leaves the engine as it was.
    let mut store =
        SqliteStore::open_existing(&path, provkit_store::Access::ReadWrite).expect("open");
    store.set_scope(BNL);
    let label = ProfileLabel {
        name: Some("Field app, renamed".into()),
        description: None,
    };
    let cli = Actor {
        name: "cli".into(),
        at: at(),
    };
    store.label_profile(P_FIELD, &label, &cli).expect("relabel");
    let page = text(&get(&server, &url, &cookie));
    assert!(
        page.contains("Field app, renamed") && !page.contains(LAGS),
        "{page}"
    );

    // An assignment saved: the next page lags and says so; its editor
    // starts from what is stored.
    let csrf = csrf_of(&page);
    let save = format!("csrf={csrf}&base=1&include=Executives&action=save");
    let r = post_form(&server, &format!("{url}/assignments"), &cookie, &save);
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&get(&server, &url, &cookie));
    assert!(page.contains(LAGS), "{page}");
    assert!(page.contains("0 devices want"), "{page}");
    assert!(
        page.contains(r#"name="include" value="Executives" checked"#)
            && page.contains(r#"name="was_include" value="Executives""#),
        "{page}"
    );
    // The new reading arrives (built in the background).
    let mut page = page;
    for _ in 0..200 {
        if !page.contains(LAGS) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
        page = text(&get(&server, &url, &cookie));
    }
    assert!(
        !page.contains(LAGS) && page.contains("1 devices want"),
        "{page}"
    );

    // The form as it was before the save cannot undo it: refused,
    // nothing written.
    let stale = format!("csrf={csrf}&base=1&action=save");
    let r = post_form(&server, &format!("{url}/assignments"), &cookie, &stale);
    assert_eq!(r.status, 409, "{}", text(&r));
    assert!(
        text(&r).contains("changed since they were read"),
        "{}",
        text(&r)
    );
    let stored = store.profile_assignments(P_FIELD).expect("assignments");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].include && stored[0].target.to_string() == "Executives");

    // A profile made after the last reading: its page waits for the next.
    let r = get(&server, "/console/", &cookie);
    assert_eq!(r.status, 200);
    let bytes = field_profile(&ca, P_FIELD2, at() + chrono::Duration::days(90));
    let r = upload(&server, &cookie, &bytes, "Second field app", "");
    assert_eq!(r.status, 303, "{}", text(&r));
    let r = get(&server, &format!("/console/profiles/{P_FIELD2}"), &cookie);
    assert_eq!(r.status, 200, "{}", text(&r));
    let page = text(&r);
    assert!(
        page.contains("Second field app") && !page.contains(LAGS),
        "{page}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// regression guard for the assignments editor offering every group of
/// the tenant in both boxes (a generated 1M-device tenant has 100,000
/// groups: two checkbox lists of megabytes on every profile page): above
/// 200 groups the boxes offer the chosen targets and what a search finds
/// (at most 50, the rest counted), the ticks kept across a search, and a
/// group found can be saved. The groups page, which drew the whole
/// outline, shows it 500 lines at a time.
#[test]
fn the_assignment_editor_listed_every_group_twice() {
    let (server, ca, _, dir) = start("console-groups");
    let groups: Vec<serde_json::Value> = (0..600)
        .map(|i| json!({"name": format!("Depot {i:03}"), "kind": "device", "members": []}))
        .chain([json!({"name": "Executives", "kind": "user", "members": ["bob"]})])
        .collect();
    let inventory = json!({
        "users": ["alice", "bob"],
        "devices": [
            {"udid": "BNL-ALICE-IPAD", "user": "alice"},
            {"udid": "BNL-BOB-IPHONE", "user": "bob"}
        ],
        "groups": groups,
    });
    let r = server.call(
        "POST",
        "/api/v1/inventory",
        Some(&bnl_operator(&server, &dir)),
        Some("application/json"),
        inventory.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    let cookie = sign_in(&server, PASSWORD).expect("signed in");
    let bytes = field_profile(&ca, P_FIELD, at() + chrono::Duration::days(40));
    let r = upload(&server, &cookie, &bytes, "Field app", "");
    assert_eq!(r.status, 303, "{}", text(&r));
    let url = format!("/console/profiles/{P_FIELD}");
    let page = text(&get(&server, &url, &cookie));
    let offered =
        |page: &str, group: &str| page.contains(&format!(r#"name="exclude" value="{group}""#));
    assert!(
        page.contains("601 groups") && page.contains(r#"id="find-groups""#),
        "{page}"
    );
    assert!(
        !offered(&page, "Depot 000") && !offered(&page, "Executives"),
        "{page}"
    );

    // Executives ticked, then a search: the tick stays, what matched is
    // offered, no more than 50, the rest counted.
    let csrf = csrf_of(&page);
    let find = format!("csrf={csrf}&base=1&exclude=Executives&find=depot+1&action=find");
    let r = post_form(&server, &format!("{url}/assignments"), &cookie, &find);
    assert_eq!(r.status, 200, "{}", text(&r));
    let page = text(&r);
    assert!(
        page.contains(r#"name="exclude" value="Executives" checked"#),
        "{page}"
    );
    assert!(
        offered(&page, "Depot 100") && offered(&page, "Depot 149"),
        "{page}"
    );
    assert!(
        !offered(&page, "Depot 150") && !offered(&page, "Depot 099"),
        "{page}"
    );
    assert!(page.contains("50 more match"), "{page}");
    assert!(
        page.contains(r#"value="depot 1""#),
        "the search is kept: {page}"
    );

    // A group found, saved with the tick kept.
    let save =
        format!("csrf={csrf}&base=1&include=Depot+123&exclude=Executives&find=depot+1&action=save");
    let r = post_form(&server, &format!("{url}/assignments"), &cookie, &save);
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&get(&server, &url, &cookie));
    assert!(
        page.contains(r#"name="include" value="Depot 123" checked"#)
            && page.contains(r#"name="exclude" value="Executives" checked"#),
        "{page}"
    );
    assert!(!offered(&page, "Depot 124"), "{page}");

    let lines = |page: &str| page.matches(r#"<li style="margin-left:"#).count();
    let first = text(&get(&server, "/console/groups", &cookie));
    assert!(first.contains("1–500 of 601"), "{first}");
    assert_eq!(lines(&first), 500);
    let rest = text(&get(&server, "/console/groups?offset=500", &cookie));
    assert!(rest.contains("501–601 of 601"), "{rest}");
    assert_eq!(lines(&rest), 101);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

// ---- the browser -----------------------------------------------------

/// chromedriver on a free port, stopped when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<Driver> {
    let bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child, port);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(driver);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver did not listen on {port}");
}

#[test]
fn console_workflows_in_chromium() {
    let Some(driver) = chromedriver() else {
        assert!(
            std::env::var_os("PROVKIT_REQUIRE_BROWSER").is_none(),
            "PROVKIT_REQUIRE_BROWSER is set but chromedriver is not installed"
        );
        eprintln!(
            "NOTICE: chromedriver is not installed (apt-get install chromium chromium-driver): the browser test is skipped"
        );
        return;
    };
    let (server, ca, token, dir) = start("console-browser");
    import_inventory(&server, &dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(browse(&server, &driver, &ca, &token, &dir));
    let _ = std::fs::remove_dir_all(dir);
}

/// An operator token for the Benelux group (the inventory import).
fn bnl_operator(_server: &Server, dir: &std::path::Path) -> String {
    let mut store = SqliteStore::open_existing(dir.join("t.db"), provkit_store::Access::ReadWrite)
        .expect("open");
    let cli = Actor {
        name: "cli".into(),
        at: at(),
    };
    provkit_service::tokens::create(
        &mut store,
        "bnl-operator",
        Role::Operator,
        Some(BNL),
        &[5; 32],
        &cli,
    )
    .expect("token")
    .token
}

/// The element `at` finds once it is on the page, looked for again on any
/// error until 30 s have passed: while a form's answer loads, WebDriver may
/// answer with other errors than "no such element" (which is all that
/// fantoccini's own wait retries), more so on a busy machine. Panics
/// with `what`, the last error and the page's main part.
async fn appear(
    c: &fantoccini::Client,
    at: fantoccini::Locator<'_>,
    what: &str,
) -> fantoccini::elements::Element {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match c.find(at).await {
            Ok(e) => return e,
            Err(e) if std::time::Instant::now() >= deadline => {
                let page = c.source().await.unwrap_or_default();
                let main = &page[page.find("<main").unwrap_or(0)..];
                panic!("{what}: {e}; the page: {main}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The text of the element `at` finds on the page now.
async fn text_of(c: &fantoccini::Client, at: fantoccini::Locator<'_>) -> String {
    c.find(at)
        .await
        .expect("the element")
        .text()
        .await
        .expect("its text")
}

async fn sign_in_as(c: &fantoccini::Client, name: &str, password: &str) {
    use fantoccini::Locator;
    appear(c, Locator::Id("name"), "the sign-in form")
        .await
        .send_keys(name)
        .await
        .expect("type");
    c.find(Locator::Id("password"))
        .await
        .expect("pw")
        .send_keys(password)
        .await
        .expect("type");
    c.find(Locator::Css("main form button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    appear(
        c,
        Locator::XPath("//main/h1[.='Dashboard']"),
        "the dashboard",
    )
    .await;
}

async fn browse(server: &Server, driver: &Driver, ca: &TestCa, token: &str, dir: &std::path::Path) {
    use fantoccini::{ClientBuilder, Locator};
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a WebDriver session");
    let base = format!("http://{}", server.addr);
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let shot = |name: &'static str| {
        let c = c.clone();
        let path = shots.join(format!("{name}.png"));
        async move {
            let png = c.screenshot().await.expect("screenshot");
            std::fs::write(&path, png).expect("write screenshot");
        }
    };

    // Sign in (sent there from the dashboard).
    c.goto(&format!("{base}/console/")).await.expect("goto");
    assert!(
        c.current_url()
            .await
            .expect("url")
            .as_str()
            .contains("/console/sign-in")
    );
    shot("sign-in").await;
    sign_in_as(&c, "global-admin", GLOBAL_PASSWORD).await;

    // Create a profile by upload, with a name and a description.
    let file = dir.join("field.mobileprovision");
    std::fs::write(
        &file,
        field_profile(ca, P_FIELD, at() + chrono::Duration::days(40)),
    )
    .expect("file");
    c.goto(&format!("{base}/console/profiles"))
        .await
        .expect("goto");
    c.find(Locator::LinkText("Create profile"))
        .await
        .expect("link")
        .click()
        .await
        .expect("click");
    c.find(Locator::Id("profile-name"))
        .await
        .expect("name")
        .send_keys("Field app")
        .await
        .expect("type");
    c.find(Locator::Id("profile-description"))
        .await
        .expect("desc")
        .send_keys("The field technicians' app")
        .await
        .expect("type");
    c.find(Locator::Id("profile-file"))
        .await
        .expect("file")
        .send_keys(&file.display().to_string())
        .await
        .expect("attach");
    c.find(Locator::Css("main form button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let note = appear(&c, Locator::Css("div.note"), "note")
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(note, "Profile created.");
    let page = c.source().await.expect("source");
    assert!(page.contains("expires in 40 days"), "{page}");

    // Link an app to it: an IPA that embeds the profile, verified and stored.
    let ipa = {
        use provkit_codesign::fixtures::{BundleSpec, build_ipa, developer_identity};
        let mut app = BundleSpec::new("Field.app", "com.example.field");
        app.profile = Some(field_profile(
            ca,
            P_FIELD,
            at() + chrono::Duration::days(40),
        ));
        build_ipa(
            &app,
            provkit_profile::fixtures::TEST_TEAM,
            &developer_identity(ca),
            |_| false,
        )
    };
    let ipa_path = dir.join("field.ipa");
    std::fs::write(&ipa_path, ipa).expect("ipa");
    c.goto(&format!("{base}/console/apps")).await.expect("goto");
    c.find(Locator::Id("ipa-file"))
        .await
        .expect("file")
        .send_keys(&ipa_path.display().to_string())
        .await
        .expect("attach");
    c.find(Locator::Id("ipa-link"))
        .await
        .expect("link")
        .click()
        .await
        .expect("tick");
    c.find(Locator::Id("ipa-button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let linked = appear(&c, Locator::Id("linked"), "linked")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        linked.contains("com.example.field") && linked.contains(P_FIELD),
        "{linked}"
    );
    shot("apps").await;
    // The app's own device-user notice, 45 days, from the same page.
    c.find(Locator::Id("notify-own"))
        .await
        .expect("own")
        .click()
        .await
        .expect("choose");
    c.find(Locator::Id("notify-user-stage"))
        .await
        .expect("user stage")
        .send_keys("45")
        .await
        .expect("type");
    c.find(Locator::Id("notify-button"))
        .await
        .expect("save")
        .click()
        .await
        .expect("click");
    appear(
        &c,
        Locator::XPath("//td[contains(., 'device users at 45 days')]"),
        "the app's settings are shown",
    )
    .await;

    // Assign: All users, but not the Executives; the preview's count is
    // what the plan then gives.
    c.goto(&format!("{base}/console/profiles/{P_FIELD}"))
        .await
        .expect("goto");
    c.find(Locator::Css("input[name=include][value=all-users]"))
        .await
        .expect("all users")
        .click()
        .await
        .expect("tick");
    c.find(Locator::Css("input[name=exclude][value=Executives]"))
        .await
        .expect("executives")
        .click()
        .await
        .expect("tick");
    c.find(Locator::Id("preview-button"))
        .await
        .expect("preview")
        .click()
        .await
        .expect("click");
    appear(&c, Locator::Id("gaining"), "the preview").await;
    let gaining: usize = appear(&c, Locator::Id("gaining"), "gaining")
        .await
        .text()
        .await
        .expect("text")
        .parse()
        .expect("a count");
    assert_eq!(gaining, 2, "alice's and carol's devices, not bob's");
    c.execute(
        "document.getElementById('assignments').scrollIntoView();",
        vec![],
    )
    .await
    .expect("scroll");
    shot("profile-preview").await;
    // The preview saved nothing.
    let r = server.call(
        "GET",
        &format!("/api/v1/profiles/{P_FIELD}/assignments"),
        Some(token),
        None,
        b"",
    );
    assert_eq!(r.json()["include"], json!([]));
    // The editor kept the ticks across the preview; save.
    c.find(Locator::Id("save-button"))
        .await
        .expect("save")
        .click()
        .await
        .expect("click");
    let note = appear(&c, Locator::Css("div.note"), "note")
        .await
        .text()
        .await
        .expect("text");
    assert!(note.starts_with("Assignments saved"), "{note}");
    let r = server.call(
        "GET",
        &format!("/api/v1/profiles/{P_FIELD}/devices"),
        Some(token),
        None,
        b"",
    );
    let planned: Vec<String> = r.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|d| d["desired"] == true)
        .map(|d| d["udid"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(planned.len(), gaining, "{planned:?}");
    assert!(!planned.contains(&"BNL-BOB-IPHONE".to_owned()));

    // Renew by upload for every app that shares it: the app moves.
    let successor = dir.join("field-renewed.mobileprovision");
    std::fs::write(
        &successor,
        field_profile(ca, P_FIELD2, at() + chrono::Duration::days(400)),
    )
    .expect("file");
    c.find(Locator::Id("renew-file"))
        .await
        .expect("file")
        .send_keys(&successor.display().to_string())
        .await
        .expect("attach");
    c.find(Locator::Id("renew-button"))
        .await
        .expect("renew")
        .click()
        .await
        .expect("click");
    appear(
        &c,
        Locator::XPath("//div[@class='note' and starts-with(., 'Renewed')]"),
        "renewed",
    )
    .await;
    let url = c.current_url().await.expect("url");
    assert!(url.as_str().contains(P_FIELD2), "{url}");
    let apps = text_of(&c, Locator::Id("apps")).await;
    assert!(apps.contains("com.example.field"), "{apps}");
    // The admin's name and description went on with the successor.
    let h1 = text_of(&c, Locator::Css("main h1")).await;
    assert_eq!(h1, "Field app");
    shot("profile").await;
    c.goto(&format!("{base}/console/profiles/{P_FIELD}"))
        .await
        .expect("goto");
    let old = c.source().await.expect("source");
    assert!(
        old.contains("Renewed by") && !old.contains("id=\"apps\""),
        "the app left the old profile"
    );

    // Delete a profile in use: refused, with the guard's reasons.
    c.goto(&format!("{base}/console/profiles/{P_FIELD2}"))
        .await
        .expect("goto");
    c.find(Locator::Id("delete-button"))
        .await
        .expect("delete")
        .click()
        .await
        .expect("click");
    c.accept_alert().await.expect("confirm the deletion");
    let err = appear(&c, Locator::Id("error"), "error")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        err.contains("in use") && err.contains("com.example.field"),
        "{err}"
    );
    shot("profile-delete-refused").await;

    // A device's "why": alice's iPad gets the renewed profile through All users.
    c.goto(&format!("{base}/console/devices"))
        .await
        .expect("goto");
    c.find(Locator::Id("device-q"))
        .await
        .expect("q")
        .send_keys("alice")
        .await
        .expect("type");
    c.find(Locator::Css("main form button[type=submit]"))
        .await
        .expect("search")
        .click()
        .await
        .expect("click");
    let results = url::Url::parse(&format!("{base}/console/devices?q=alice")).expect("url");
    c.wait()
        .for_url(&results)
        .await
        .expect("the search's results");
    c.find(Locator::LinkText("BNL-ALICE-IPAD"))
        .await
        .expect("device")
        .click()
        .await
        .expect("click");
    appear(&c, Locator::LinkText("why"), "why")
        .await
        .click()
        .await
        .expect("click");
    let steps = appear(&c, Locator::Id("why-steps"), "steps")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        steps.to_lowercase().contains("all users") || steps.contains("all-users"),
        "{steps}"
    );
    shot("device-why").await;

    // CSV export, fetched by the page with the session's cookie.
    c.goto(&format!("{base}/console/profiles"))
        .await
        .expect("goto");
    shot("profiles").await;
    let csv = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; fetch('/console/profiles.csv').then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .expect("csv");
    let csv = csv.as_str().expect("text");
    assert!(
        csv.starts_with("name,uuid,") && csv.contains(P_FIELD2),
        "{csv}"
    );

    // The Benelux admin sees no DACH profile and is refused its URL.
    assert!(
        c.source().await.expect("source").contains("DACH Secret"),
        "Global sees DACH"
    );
    c.goto(&format!("{base}/console/settings"))
        .await
        .expect("goto");
    shot("settings").await;
    c.goto(&format!("{base}/console/groups"))
        .await
        .expect("goto");
    shot("groups").await;
    c.goto(&format!("{base}/console/")).await.expect("goto");
    shot("dashboard").await;
    c.find(Locator::XPath("//button[.='Sign out']"))
        .await
        .expect("sign out")
        .click()
        .await
        .expect("click");
    sign_in_as(&c, "bnl-admin", PASSWORD).await;
    c.goto(&format!("{base}/console/profiles"))
        .await
        .expect("goto");
    let list = c.source().await.expect("source");
    assert!(
        !list.contains("DACH Secret") && !list.contains(P_DACH),
        "{list}"
    );
    let options = text_of(&c, Locator::Id("org-group")).await;
    assert!(
        !options.contains("DACH") && !options.contains("Global\n"),
        "{options}"
    );
    c.goto(&format!("{base}/console/profiles/{P_DACH}"))
        .await
        .expect("goto");
    let h1 = text_of(&c, Locator::Css("main h1")).await;
    assert_eq!(h1, "Not found");

    // CSRF: a form posted without its token is refused.
    c.goto(&format!("{base}/console/audit"))
        .await
        .expect("goto");
    c.execute(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/console/org-group'; document.body.appendChild(f); f.submit();",
        vec![],
    )
    .await
    .expect("post");
    appear(&c, Locator::XPath("//main/h1[.='Not allowed']"), "refused").await;

    c.close().await.expect("close");
}

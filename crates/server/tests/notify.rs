//! Notifications through real HTTP receivers on loopback (a signed JSON
//! webhook and a Slack-shaped one), a tenant driven through time: each
//! stage once per channel; planning again and a restart send nothing
//! twice; downtime across two stages sends the later one once, naming the
//! one skipped; a failing receiver gets its message once it recovers, the
//! failure audited; three senders on one database send each message once;
//! hostile channels (unreachable, TLS failure, 500, silent, no SMTP
//! server) are each reported within the timeout while the others go.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile, utc};
use provkit_server::Limits;
use provkit_server::delivery::{Delivery, round};
use provkit_server::state::{AppState, Opener, StorePool};
use provkit_store::{
    Actor, AssignmentEdit, ChannelKind, PostgresStore, Replace, SqliteStore, Store, TargetName,
};

const UUID: &str = "0E0E0E0E-0000-4000-8000-00000000A001";
const SECRET: &str = "hook-secret";

/// What a receiver got: (path, signature header, body).
type Got = Arc<Mutex<Vec<(String, Option<String>, serde_json::Value)>>>;

/// Receivers on loopback: `/hook` and `/slack`; they answer 500 while
/// `failing` is set.
fn receivers(failing: Arc<Mutex<bool>>) -> (String, Got) {
    let got: Got = Arc::default();
    let g = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/{path}",
        axum::routing::post(
            move |axum::extract::Path(path): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let (g, failing) = (Arc::clone(&g), Arc::clone(&failing));
                async move {
                    if *failing.lock().expect("flag") {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let sig = headers
                        .get(provkit_service::notify::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    if path == "hook"
                        && !sig.as_deref().is_some_and(|s| {
                            provkit_service::notify::signature_ok(
                                SECRET,
                                &body,
                                s,
                                Utc::now(),
                                chrono::Duration::days(3650 * 3),
                            )
                        })
                    {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    let v = serde_json::from_slice(&body).unwrap_or_default();
                    g.lock().expect("got").push((path, sig, v));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).expect("listener");
            axum::serve(l, app).await.expect("serve");
        });
    });
    (format!("http://{addr}"), got)
}

fn death() -> DateTime<Utc> {
    utc(2027, 6, 1)
}

fn prepare(store: &mut dyn Store, base: &str) {
    let a = Actor {
        name: "t".into(),
        at: utc(2026, 12, 1),
    };
    let ca = TestCa::rsa();
    provkit_service::trust::add_anchor(store, ca.root.cert.der(), &a).expect("anchor");
    let bytes = signed_profile(
        &ca,
        &ProfileSpec {
            uuid: UUID.into(),
            all_devices: true,
            devices: None,
            expiration: death(),
            ..ProfileSpec::default()
        },
    );
    store.add_profile(&bytes, &a).expect("profile");
    let inv = serde_json::from_value(
        serde_json::json!({"users": ["ann"], "devices": [{"udid": "D1", "user": "ann",
            "apps": [{"bundle_id": "com.example.field", "version": "2.0"}]}]}),
    )
    .expect("inv");
    store
        .apply_inventory(&inv, &Replace::Nothing, false, a.at, &a)
        .expect("inventory");
    let edit = AssignmentEdit::Add {
        include: vec![TargetName::AllUsers],
        exclude: vec![],
    };
    store
        .edit_assignments(UUID, &edit, a.at, &a)
        .expect("assign");
    let app = provkit_store::AppRecord {
        bundle_id: "com.example.field".into(),
        version: "2.0".into(),
        team: "TEAMID1234".into(),
        profile_uuid: Some(UUID.into()),
        certificate_sha256: "00".repeat(32),
        certificate_not_after: utc(2029, 1, 1),
        report: None,
        org_group: None,
    };
    store.add_app(&app, &a).expect("app");
    provkit_service::notify::add_channel(
        store,
        "ops-hook",
        ChannelKind::Webhook,
        &format!("{base}/hook"),
        &provkit_service::notify::ChannelOptions::default()
            .secret(Some(SECRET))
            .to(&[])
            .org_group(None),
        &a,
    )
    .expect("webhook");
    provkit_service::notify::add_channel(
        store,
        "ops-slack",
        ChannelKind::Slack,
        &format!("{base}/slack"),
        &provkit_service::notify::ChannelOptions::default()
            .secret(None)
            .to(&[])
            .org_group(None),
        &a,
    )
    .expect("slack");
    // A receiver that is not there: its messages fail and wait; the
    // others are not held up.
    provkit_service::notify::add_channel(
        store,
        "gone",
        ChannelKind::Slack,
        "http://127.0.0.1:9/nobody",
        &provkit_service::notify::ChannelOptions::default()
            .secret(None)
            .to(&[])
            .org_group(None),
        &a,
    )
    .expect("unreachable");
    assert!(
        provkit_service::notify::add_channel(
            store,
            "mail",
            ChannelKind::Smtp,
            "smtp://127.0.0.1:25",
            &provkit_service::notify::ChannelOptions::default()
                .secret(None)
                .to(&[])
                .org_group(None),
            &a,
        )
        .is_err(),
        "SMTP is refused until it can be sent"
    );
}

/// A sender process: its own pool, the shared clock.
fn sender(open: &Opener, clock: &Arc<Mutex<DateTime<Utc>>>) -> AppState {
    let c = Arc::clone(clock);
    AppState::new(StorePool::open(open, 2).expect("pool"), Limits::default())
        .with_clock(Arc::new(move || *c.lock().expect("clock")))
}

/// Plans at the clock's instant (the scheduler's work), then runs rounds
/// of every sender at once until none has anything to send.
fn tick(
    open: &Opener,
    clock: &Arc<Mutex<DateTime<Utc>>>,
    senders: &[AppState],
    rt: &tokio::runtime::Runtime,
) {
    let at = *clock.lock().expect("clock");
    provkit_service::plan::plan_and_enqueue(open().expect("open").as_mut(), at, at).expect("plan");
    rt.block_on(async {
        let client = reqwest::Client::new();
        loop {
            let mut set = tokio::task::JoinSet::new();
            for s in senders {
                let (s, client) = (s.clone(), client.clone());
                set.spawn(async move { round(&s, &client, &Delivery::default()).await });
            }
            let mut busy = false;
            while let Some(r) = set.join_next().await {
                busy |= r.expect("task").expect("round").notices > 0;
            }
            if !busy {
                break;
            }
        }
    });
}

fn scenario(open: &Opener, backend: &str, processes: usize) {
    let failing = Arc::new(Mutex::new(false));
    let (base, got) = receivers(Arc::clone(&failing));
    prepare(open().expect("open").as_mut(), &base);
    let clock = Arc::new(Mutex::new(death() - chrono::Duration::days(61)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let senders: Vec<AppState> = (0..processes).map(|_| sender(open, &clock)).collect();
    // Admin messages per receiver (device users' notices counted apart).
    let count = |path: &str| {
        got.lock()
            .expect("got")
            .iter()
            .filter(|(p, _, v)| p == path && v["item_kind"] != "device-user")
            .count()
    };
    let user_notices = || {
        got.lock()
            .expect("got")
            .iter()
            .filter(|(_, _, v)| v["item_kind"] == "device-user")
            .map(|(p, _, v)| (p.clone(), v.clone()))
            .collect::<Vec<_>>()
    };

    tick(open, &clock, &senders, &rt);
    assert_eq!(
        count("hook") + count("slack"),
        0,
        "{backend}: nothing due at 61 days"
    );

    *clock.lock().expect("clock") = death() - chrono::Duration::days(59);
    tick(open, &clock, &senders, &rt);
    assert_eq!(
        (count("hook"), count("slack")),
        (1, 1),
        "{backend}: the 60-day stage, once each"
    );
    {
        let g = got.lock().expect("got");
        let (_, sig, v) = g.iter().find(|(p, _, _)| p == "hook").expect("hook");
        assert!(sig.is_some(), "signed");
        assert_eq!(v["stage"], 60);
        assert_eq!(v["uuid"], UUID);
        assert_eq!(v["action"], "renew");
        assert_eq!(v["org_group"], "Global");
        assert_eq!(v["skipped_stages"], serde_json::json!([]));
        let (_, _, s) = g.iter().find(|(p, _, _)| p == "slack").expect("slack");
        assert!(
            s["text"]
                .as_str()
                .is_some_and(|t| t.contains("dies in 59 days")),
            "{s}"
        );
    }
    // Planning again, and a restart (new senders), send nothing twice.
    tick(open, &clock, &senders, &rt);
    let restarted: Vec<AppState> = (0..processes).map(|_| sender(open, &clock)).collect();
    tick(open, &clock, &restarted, &rt);
    assert_eq!(
        (count("hook"), count("slack")),
        (1, 1),
        "{backend}: once across restarts"
    );

    // Down across the 30-day stage: at 6 days only the 7-day one goes,
    // naming the 30-day one as skipped.
    *clock.lock().expect("clock") = death() - chrono::Duration::days(6);
    tick(open, &clock, &restarted, &rt);
    assert_eq!((count("hook"), count("slack")), (2, 2), "{backend}");
    {
        let g = got.lock().expect("got");
        let last = g
            .iter()
            .rev()
            .find(|(p, _, v)| p == "hook" && v["item_kind"] != "device-user")
            .expect("hook");
        assert_eq!(last.2["stage"], 7, "{backend}");
        assert_eq!(
            last.2["skipped_stages"],
            serde_json::json!([30]),
            "{backend}"
        );
    }
    // The device user's notice (30 days): once, to the webhook only,
    // naming user, device and app.
    let users = user_notices();
    assert_eq!(users.len(), 1, "{backend}: {users:?}");
    assert_eq!(users[0].0, "hook");
    assert_eq!(
        (
            &users[0].1["user"],
            &users[0].1["device"],
            &users[0].1["app"]
        ),
        (
            &serde_json::json!("ann"),
            &serde_json::json!("D1"),
            &serde_json::json!("com.example.field 2.0")
        ),
        "{backend}"
    );

    // A failing receiver: the failure is kept and audited, the message
    // goes once it recovers.
    *failing.lock().expect("flag") = true;
    *clock.lock().expect("clock") = death() + chrono::Duration::hours(1);
    tick(open, &clock, &restarted, &rt);
    assert_eq!((count("hook"), count("slack")), (2, 2));
    let mut s = open().expect("open");
    assert!(
        s.audit_log()
            .expect("audit")
            .iter()
            .any(|e| e.action == "notify-failed"),
        "{backend}: the failure is audited"
    );
    let pending: Vec<_> = s
        .notices()
        .expect("notices")
        .into_iter()
        .filter(|n| n.sent_at.is_none() && n.channel != "gone")
        .collect();
    assert_eq!(pending.len(), 2, "{backend}");
    assert!(
        pending
            .iter()
            .all(|n| n.last_error.as_deref().is_some_and(|e| e.contains("500")))
    );
    *failing.lock().expect("flag") = false;
    *clock.lock().expect("clock") = death() + chrono::Duration::hours(2);
    tick(open, &clock, &restarted, &rt);
    assert_eq!(
        (count("hook"), count("slack")),
        (3, 3),
        "{backend}: delivered after recovery"
    );

    // Each message once at the receivers.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, _, v) in got.lock().expect("got").iter() {
        if let Some(id) = v["event_id"].as_str() {
            *seen.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    assert!(seen.values().all(|&n| n == 1), "{backend}: {seen:?}");
    let gone: Vec<_> = open()
        .expect("open")
        .notices()
        .expect("notices")
        .into_iter()
        .filter(|n| n.channel == "gone")
        .collect();
    assert!(
        !gone.is_empty()
            && gone.iter().all(|n| n.sent_at.is_none()
                && n.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("unreachable"))),
        "{backend}: the unreachable channel's messages wait with the reason: {gone:?}"
    );
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn notifications_over_sqlite() {
    let dir = std::env::temp_dir().join(format!("provkit-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("t.db");
    drop(SqliteStore::open(&path).expect("create"));
    let open = common::sqlite_opener(&path);
    scenario(&open, "sqlite", 1);
}

#[test]
fn notifications_from_three_senders_over_postgres() {
    let Some(url) = std::env::var("PROVKIT_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "NOTICE: PROVKIT_DATABASE_URL is not set: the PostgreSQL notification run is skipped"
        );
        return;
    };
    PostgresStore::reset(&url).expect("reset");
    drop(PostgresStore::connect(&url).expect("create"));
    let open: Box<Opener> = Box::new(move || Ok(Box::new(PostgresStore::connect_existing(&url)?)));
    scenario(&open, "postgres", 3);
}

/// Channels through the API (never a secret back), and the calendar feed
/// read by a real iCalendar parser: the profile's death date with a
/// reminder at each admin stage.
#[test]
fn channels_api_and_calendar_feed() {
    let dir = std::env::temp_dir().join(format!("provkit-notify-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("t.db");
    let token = {
        let mut s = SqliteStore::open(&path).expect("create");
        prepare(&mut s, "http://127.0.0.1:9");
        let a = Actor {
            name: "t".into(),
            at: utc(2026, 12, 1),
        };
        provkit_service::tokens::create(
            &mut s,
            "admin",
            provkit_service::tokens::Role::Admin,
            None,
            &[9; 32],
            &a,
        )
        .expect("token")
        .token
    };
    let open = common::sqlite_opener(&path);
    let server = common::Server::start(&open, 2, Limits::default(), utc(2026, 12, 5));
    let json = Some("application/json");
    let r = server.call(
        "POST",
        "/api/v1/notify-channels",
        Some(&token),
        json,
        br#"{"name": "teams", "kind": "teams", "url": "https://example.invalid/workflow", "secret": null}"#,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = server.call("GET", "/api/v1/notify-channels", Some(&token), None, b"");
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        text.contains("\"ops-hook\"") && text.contains("\"teams\"") && !text.contains(SECRET),
        "{text}"
    );
    let r = server.call("GET", "/api/v1/calendar.ics", Some(&token), None, b"");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/calendar"))
    );
    let mut cals = ical::IcalParser::new(std::io::BufReader::new(r.body.as_slice()));
    let cal = cals.next().expect("a calendar").expect("parses");
    assert_eq!(cal.events.len(), 1);
    let e = &cal.events[0];
    let prop = |name: &str| {
        e.properties
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.clone())
            .unwrap_or_default()
    };
    assert_eq!(prop("DTSTART"), "20270601");
    assert_eq!(prop("UID"), format!("{UUID}@provkit"));
    assert!(prop("SUMMARY").contains("expires"));
    let triggers: Vec<String> = e
        .alarms
        .iter()
        .filter_map(|a| {
            a.properties
                .iter()
                .find(|p| p.name == "TRIGGER")
                .and_then(|p| p.value.clone())
        })
        .collect();
    assert_eq!(triggers, ["-P60D", "-P30D", "-P7D", "-P0D"]);
}

/// An SMTP channel through a real SMTP server (aiosmtpd, which prints what
/// it receives): the 60-day stage arrives once, to every address, as plain
/// text and HTML with the same facts.
#[test]
fn email_through_a_real_smtp_server() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "NOTICE: aiosmtpd is not installed (pip install aiosmtpd): the SMTP run is skipped"
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut smtpd = std::process::Command::new("python3")
        .args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("aiosmtpd");
    let out = smtpd.stdout.take().expect("stdout");
    let received = Arc::new(Mutex::new(String::new()));
    let r = Arc::clone(&received);
    std::thread::spawn(move || {
        use std::io::Read as _;
        let mut out = out;
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            r.lock()
                .expect("received")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // Wait for it to listen.
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "aiosmtpd listens");

    let dir = std::env::temp_dir().join(format!("provkit-notify-smtp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("t.db");
    {
        let mut s = SqliteStore::open(&path).expect("create");
        prepare(&mut s, "http://127.0.0.1:9");
        let a = Actor {
            name: "t".into(),
            at: utc(2026, 12, 1),
        };
        for name in ["ops-hook", "ops-slack", "gone"] {
            s.remove_channel(name, &a).expect("remove");
        }
        let emails =
            serde_json::from_value(serde_json::json!({"emails": {"ann": "ann@example.com"}}))
                .expect("emails");
        s.import_inventory(&emails, &a).expect("ann's address");
        provkit_service::notify::add_channel(
            &mut s,
            "mail",
            ChannelKind::Smtp,
            &format!("smtp://127.0.0.1:{port}?from=provkit@example.com"),
            &provkit_service::notify::ChannelOptions::default()
                .secret(None)
                .to(&["mobile-team@example.com".into(), "ops@example.com".into()])
                .org_group(None),
            &a,
        )
        .expect("smtp channel");
    }
    let open = common::sqlite_opener(&path);
    let clock = Arc::new(Mutex::new(death() - chrono::Duration::days(59)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let senders = vec![sender(&open, &clock)];
    tick(&open, &clock, &senders, &rt);
    tick(&open, &clock, &senders, &rt);
    let arrived = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        received.lock().expect("received").contains("END MESSAGE")
    });
    let text = received.lock().expect("received").clone();
    assert!(arrived, "a message arrived: {text}");
    assert_eq!(text.matches("MESSAGE FOLLOWS").count(), 1, "once: {text}");
    assert!(
        text.contains("Subject: [provkit]") && text.contains("dies in 59 days"),
        "{text}"
    );
    assert!(
        text.contains("mobile-team@example.com") && text.contains("ops@example.com"),
        "{text}"
    );
    assert!(
        text.contains("text/plain") && text.contains("text/html"),
        "{text}"
    );
    assert!(text.contains(UUID), "{text}");
    let sent = open().expect("open").notices().expect("notices");
    assert!(sent.iter().all(|n| n.sent_at.is_some()), "{sent:?}");

    // 29 days out: the admins' 30-day stage, and ann's device-user notice
    // by email, to her address alone.
    *clock.lock().expect("clock") = death() - chrono::Duration::days(29);
    tick(&open, &clock, &senders, &rt);
    tick(&open, &clock, &senders, &rt);
    let arrived = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        received
            .lock()
            .expect("received")
            .matches("END MESSAGE")
            .count()
            >= 3
    });
    let _ = smtpd.kill();
    let _ = smtpd.wait();
    let text = received.lock().expect("received").clone();
    assert!(arrived, "three messages arrived: {text}");
    // Each message with quoted-printable soft breaks and folded header
    // lines joined again.
    let messages: Vec<String> = text
        .split("MESSAGE FOLLOWS")
        .skip(1)
        .map(|m| {
            m.replace("\r\n", "\n")
                .replace("=\n", "")
                .replace("\n ", " ")
        })
        .collect();
    assert_eq!(messages.len(), 3, "{text}");
    let to_ann: Vec<&String> = messages
        .iter()
        .filter(|m| m.contains("on your device"))
        .collect();
    assert_eq!(to_ann.len(), 1, "one device-user email: {text}");
    let rcpt: Vec<&str> = to_ann[0].lines().filter(|l| l.starts_with("To:")).collect();
    assert_eq!(rcpt, ["To: ann@example.com"], "{}", to_ann[0]);
    assert!(
        to_ann[0].contains("com.example.field 2.0") && to_ann[0].contains("D1"),
        "{}",
        to_ann[0]
    );
    let sent = open().expect("open").notices().expect("notices");
    assert_eq!(
        sent.iter()
            .filter(|n| n.item.starts_with("user:") && n.channel == "mail")
            .count(),
        1,
        "{sent:?}"
    );
}

/// A loopback server that answers every connection with `answer` (after
/// reading the request), or holds it without a word when `answer` is
/// `None`; its port.
fn raw_server(answer: Option<&'static str>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                use std::io::{Read as _, Write as _};
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                match answer {
                    Some(a) => {
                        let _ = s.write_all(a.as_bytes());
                    }
                    None => std::thread::sleep(Duration::from_secs(30)),
                }
            });
        }
    });
    port
}

/// Hostile channel configuration: an unreachable host, a TLS failure (a
/// plain-HTTP server behind an https URL), a 500, a receiver that never
/// answers, and an SMTP server that is not there. Each is reported with
/// its reason and audited, the round ends within the client's timeout, and
/// the good channels get their messages in the same round.
#[test]
fn hostile_channels_are_reported_and_the_others_served() {
    let (base, got) = receivers(Arc::new(Mutex::new(false)));
    let dir = std::env::temp_dir().join(format!("provkit-notify-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("t.db");
    let plain = raw_server(Some("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    let err = raw_server(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
    ));
    let silent = raw_server(None);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    {
        let mut s = SqliteStore::open(&path).expect("create");
        prepare(&mut s, &base);
        let a = Actor {
            name: "t".into(),
            at: utc(2026, 12, 1),
        };
        for (name, kind, url, to) in [
            (
                "tls-fail",
                ChannelKind::Slack,
                format!("https://127.0.0.1:{plain}/x"),
                vec![],
            ),
            (
                "err-500",
                ChannelKind::Slack,
                format!("http://127.0.0.1:{err}/x"),
                vec![],
            ),
            (
                "silent",
                ChannelKind::Slack,
                format!("http://127.0.0.1:{silent}/x"),
                vec![],
            ),
            (
                "no-smtp",
                ChannelKind::Smtp,
                format!("smtp://127.0.0.1:{closed}?from=provkit@example.com"),
                vec!["ops@example.com".to_owned()],
            ),
        ] {
            provkit_service::notify::add_channel(
                &mut s,
                name,
                kind,
                &url,
                &provkit_service::notify::ChannelOptions::default()
                    .secret(None)
                    .to(&to)
                    .org_group(None),
                &a,
            )
            .expect(name);
        }
    }
    let open = common::sqlite_opener(&path);
    let at = death() - chrono::Duration::days(59);
    provkit_service::plan::plan_and_enqueue(open().expect("open").as_mut(), at, at).expect("plan");
    let clock = Arc::new(Mutex::new(at));
    let state = sender(&open, &clock);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    // The client as `provkit serve` builds it, with a 1 s timeout.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let started = std::time::Instant::now();
    let r = rt
        .block_on(round(&state, &client, &Delivery::default()))
        .expect("the round ends without an error of its own");
    let took = started.elapsed();
    assert_eq!(r.notices, 7, "every channel's message was tried: {r:?}");
    assert!(
        took < Duration::from_secs(10),
        "bounded by the timeout: {took:?}"
    );
    // The good channels were served in the same round.
    let paths: Vec<String> = got
        .lock()
        .expect("got")
        .iter()
        .map(|g| g.0.clone())
        .collect();
    assert!(
        paths.contains(&"hook".to_owned()) && paths.contains(&"slack".to_owned()),
        "{paths:?}"
    );
    let notices = open().expect("open").notices().expect("notices");
    let error_of = |channel: &str| -> String {
        let n = notices
            .iter()
            .find(|n| n.channel == channel)
            .unwrap_or_else(|| panic!("{channel}: {notices:?}"));
        assert!(n.sent_at.is_none(), "{channel} was not delivered");
        n.last_error
            .clone()
            .unwrap_or_else(|| panic!("{channel} has its reason"))
    };
    let gone = error_of("gone");
    assert!(gone.starts_with("unreachable"), "{gone}");
    let tls = error_of("tls-fail");
    assert!(
        tls.starts_with("unreachable") && !tls.contains("HTTP 200"),
        "a plain answer to TLS is no delivery: {tls}"
    );
    let e500 = error_of("err-500");
    assert!(
        e500.starts_with("HTTP 500") && e500.contains("oops"),
        "{e500}"
    );
    let silent = error_of("silent");
    assert!(silent.starts_with("timed out"), "{silent}");
    let smtp = error_of("no-smtp");
    assert!(!smtp.is_empty(), "{smtp}");
    for ok in ["ops-hook", "ops-slack"] {
        assert!(
            notices
                .iter()
                .any(|n| n.channel == ok && n.sent_at.is_some()),
            "{ok}: {notices:?}"
        );
    }
    let log = open().expect("open").audit_log().expect("audit");
    for channel in ["gone", "tls-fail", "err-500", "silent", "no-smtp"] {
        assert!(
            log.iter()
                .any(|e| e.action == "notify-failed" && e.object == channel),
            "{channel} audited"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

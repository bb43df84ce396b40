//! How long the web console's pages take on a generated tenant: the
//! tenant in SQLite with its plan queued (so the outbox holds a command per
//! planned install, as after a first plan), `provkit serve`'s router in
//! this process on loopback, one signed-in console admin, and each page
//! requested one after another on one keep-alive connection: the first
//! request and then p50, p99 and the slowest of the rest. The server reads
//! the tenant and its outbox from the start (as `provkit serve` does); the
//! example first asks for the dashboard until it is ready.
//!
//! Then the first pages after changes: a relabel (which leaves the engine
//! as it was) and an assignment saved through the console's form (after
//! which pages answer from the last snapshot, saying so, until the next is
//! built), and how long until the pages show that save.
//!
//! `cargo run --release --features fixtures --example console_pages -- [DEVICES] [REQUESTS] [queue|empty] [compare]`
//! (defaults 100000, 20, queue: the plan queued in the outbox; `empty`
//! leaves the outbox empty, much quicker to set up at 1M devices;
//! `compare` also times reading the outbox index two ways, twice).
//! With `PROVKIT_PAGES_KEEP=DIR` the database is `DIR/pages.db` and is
//! kept: a later run over the same folder starts the server over it at
//! once (the tenant as the last run left it, its changes included).

use std::time::{Duration, Instant};

use chrono::Utc;
use provkit::server::Limits;
use provkit::server::state::{AppState, Opener, StorePool};
use provkit::service::tokens::Role;
use provkit::store::{Access, Actor, SqliteStore, Store};

#[path = "support/http.rs"]
mod http;
use http::Client;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let requests: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let queue = args.next().is_none_or(|a| a != "empty");
    let compare = args.next().is_some_and(|a| a == "compare");
    // The server's own log when `RUST_LOG` asks for it.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }

    let kept = std::env::var_os("PROVKIT_PAGES_KEEP").map(std::path::PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("provkit-pages-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("pages.db");
    let made = path.exists();
    let now = Utc::now();
    let actor = Actor {
        name: "pages".into(),
        at: now,
    };
    let started = Instant::now();
    let (cookie, csrf, profile, udid) = {
        let mut store = SqliteStore::open(&path)?;
        if !made {
            provkit::service::generate::generate(
                &mut store,
                devices,
                1,
                false,
                &actor,
                &mut |s| {
                    eprintln!("[{:>6.1} s] {s}", started.elapsed().as_secs_f64());
                },
            )?;
        }
        let view = if made {
            provkit::service::plan::plan(&mut store, now)?
        } else if queue {
            provkit::service::plan::plan_and_enqueue(&mut store, now, now)?
        } else {
            provkit::service::plan::plan(&mut store, now)?
        };
        eprintln!(
            "[{:>6.1} s] plan {}: {} commands",
            started.elapsed().as_secs_f64(),
            if made {
                "made (the kept database)"
            } else if queue {
                "queued"
            } else {
                "made, not queued"
            },
            view.commands.len()
        );
        if !made {
            provkit::service::console::create_user(
                &mut store,
                "admin",
                Role::Admin,
                None,
                "pages admin password",
                &[1; 16],
                &actor,
            )?;
        }
        let (cookie, session) = provkit::service::console::sign_in(
            &mut store,
            "admin",
            "pages admin password",
            &[2; 64],
            now,
        )?
        .ok_or("sign-in refused")?;
        // The outbox index the pages read, both ways in one run, twice
        // alternating: the whole outbox collected and then indexed (the
        // earlier road), and read row by row (`CommandIndex::read`).
        let engine = provkit::policy::Engine::new(store.load_tenant()?, now);
        for _ in 0..if compare { 2 } else { 0 } {
            let t = Instant::now();
            let whole = provkit::service::catalog::CommandIndex::build(&engine, store.outbox()?);
            let collected = t.elapsed();
            drop(whole);
            let t = Instant::now();
            let index = provkit::service::catalog::CommandIndex::read(&engine, &mut store)?;
            let read = t.elapsed();
            eprintln!(
                "[{:>6.1} s] outbox index of {} commands: collected then indexed {collected:?}, read row by row {read:?}",
                started.elapsed().as_secs_f64(),
                index.len()
            );
        }
        drop(engine);
        // The profile with the most devices, and a device that has it.
        let first = view.commands.first().ok_or("an empty plan")?;
        (
            cookie,
            session.csrf,
            first.profile_uuid.clone(),
            first.udid.clone(),
        )
    };
    let (p, path) = (path.clone(), path);
    let open: Box<Opener> =
        Box::new(move || Ok(Box::new(SqliteStore::open_existing(&p, Access::ReadWrite)?)));
    let state = AppState::new(StorePool::open(&*open, 4)?, Limits::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // As `provkit serve` runs it: the tenant and its outbox are read
        // in the background from the start.
        let serving = Instant::now();
        tokio::spawn(provkit::server::run(listener, state, None, std::future::pending()));
        let mut c = Client::connect(addr).await?;
        let prefix = &udid[..6];
        let pages = [
            "/console/".to_owned(),
            "/console/profiles".to_owned(),
            "/console/profiles?sort=name&dir=desc&q=enterprise".to_owned(),
            format!("/console/profiles/{profile}"),
            format!("/console/profiles/{profile}?offset=500"),
            "/console/devices".to_owned(),
            format!("/console/devices?q={prefix}"),
            format!("/console/devices/{udid}"),
            format!("/console/devices/{udid}?profile={profile}"),
            "/console/apps".to_owned(),
            "/console/groups".to_owned(),
            "/console/audit".to_owned(),
            "/console/settings".to_owned(),
            "/console/profiles.csv".to_owned(),
        ];
        println!("{devices} devices; {requests} requests per page after the first");
        // Cold start: the dashboard every 250 ms until it is ready; the
        // pages meanwhile say they are loading.
        let (mut loading, mut slowest) = (0usize, Duration::ZERO);
        loop {
            let t = Instant::now();
            let status = c.send(&get_head("/console/", &cookie), b"").await?;
            slowest = slowest.max(t.elapsed());
            match status {
                200 => break,
                503 => loading += 1,
                other => return Err(format!("the dashboard answered {other}").into()),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!(
            "cold start: the dashboard ready {:.1} s after the server started; {loading} loading pages before it, the slowest answer {:.1}ms",
            serving.elapsed().as_secs_f64(),
            slowest.as_secs_f64() * 1e3
        );
        println!("{:<58} {:>10} {:>9} {:>9} {:>9}", "page", "first", "p50", "p99", "max");
        for page in &pages {
            let head = format!(
                "GET {page} HTTP/1.1\r\nHost: pages\r\nCookie: pk_session={cookie}\r\nConnection: keep-alive\r\n\r\n"
            );
            let t = Instant::now();
            let status = c.send(&head, b"").await?;
            let first = t.elapsed();
            assert_eq!(status, 200, "{page}");
            let mut lat: Vec<Duration> = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                let status = c.send(&head, b"").await?;
                lat.push(t.elapsed());
                assert_eq!(status, 200, "{page}");
            }
            lat.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let pct = |p: usize| lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1))).copied().unwrap_or_default();
            println!(
                "{:<58} {:>8.1}ms {:>7.1}ms {:>7.1}ms {:>7.1}ms",
                page.replace(&profile, "{uuid}").replace(&udid, "{udid}"),
                ms(first),
                ms(pct(50)),
                ms(pct(99)),
                ms(lat.last().copied().unwrap_or_default())
            );
        }
        // The assignment editor's Preview: the profile to All devices,
        // posted as the form posts it (nothing is saved).
        {
            let body = format!("csrf={csrf}&include=all-devices&action=preview");
            let head = format!(
                "POST /console/profiles/{profile}/assignments HTTP/1.1\r\nHost: pages\r\nCookie: pk_session={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
                body.len()
            );
            let mut lat: Vec<Duration> = Vec::with_capacity(requests + 1);
            for _ in 0..=requests {
                let t = Instant::now();
                let status = c.send(&head, body.as_bytes()).await?;
                lat.push(t.elapsed());
                assert_eq!(status, 200, "preview");
            }
            let first = lat.remove(0);
            lat.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let pct = |p: usize| lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1))).copied().unwrap_or_default();
            println!(
                "{:<58} {:>8.1}ms {:>7.1}ms {:>7.1}ms {:>7.1}ms",
                "POST /console/profiles/{uuid}/assignments (preview)",
                ms(first),
                ms(pct(50)),
                ms(pct(99)),
                ms(lat.last().copied().unwrap_or_default())
            );
        }
        // An audited change that leaves the engine as it was (a profile
        // relabelled from another connection): the next pages answer
        // from a snapshot derived from the last one.
        {
            let mut store = SqliteStore::open_existing(&path, Access::ReadWrite)?;
            let label = provkit::store::ProfileLabel {
                name: Some("relabelled".into()),
                description: None,
            };
            store.label_profile(&profile, &label, &actor)?;
        }
        let get = |page: &str| get_head(page, &cookie);
        let profile_page = format!("/console/profiles/{profile}");
        first_pages(&mut c, "a relabel", &[&profile_page, "/console/"], &cookie, &profile).await?;
        // An assignment saved through the console's form (the profile
        // also to All devices, the stored targets named as the form
        // names them): the pages after it answer from the last snapshot
        // while the next is built.
        let (_, body) = c.exchange(&get(&profile_page), b"").await?;
        let html = String::from_utf8_lossy(&body).into_owned();
        let mut form = format!("csrf={csrf}&base=1&action=save&include=all-devices");
        for (field, side) in [("was_include", "include"), ("was_exclude", "exclude")] {
            for value in hidden_values(&html, field) {
                let v = form_encode(&value);
                form.push_str(&format!("&{field}={v}"));
                if value != "all-devices" {
                    form.push_str(&format!("&{side}={v}"));
                }
            }
        }
        let head = format!(
            "POST /console/profiles/{profile}/assignments HTTP/1.1\r\nHost: pages\r\nCookie: pk_session={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            form.len()
        );
        let saved = Instant::now();
        let status = c.send(&head, form.as_bytes()).await?;
        assert_eq!(status, 303, "save");
        println!(
            "{:<58} {:>8.1}ms",
            "POST /console/profiles/{uuid}/assignments (save)",
            saved.elapsed().as_secs_f64() * 1e3
        );
        first_pages(&mut c, "a save", &[&profile_page, "/console/"], &cookie, &profile).await?;
        // Until the pages show the save: the dashboard every 250 ms.
        let mut slowest = Duration::ZERO;
        loop {
            let t = Instant::now();
            let (status, body) = c.exchange(&get("/console/"), b"").await?;
            slowest = slowest.max(t.elapsed());
            assert_eq!(status, 200, "dashboard");
            if !String::from_utf8_lossy(&body).contains(LAGS) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!(
            "the pages show the save {:.1} s after it (slowest page meanwhile {:.1}ms)",
            saved.elapsed().as_secs_f64(),
            slowest.as_secs_f64() * 1e3
        );
        // The snapshot they show holds it: the profile's row in the export
        // names All devices among its targets.
        let (_, csv) = c.exchange(&get("/console/profiles.csv"), b"").await?;
        let csv = String::from_utf8_lossy(&csv).into_owned();
        let row = csv
            .lines()
            .find(|l| l.to_ascii_uppercase().contains(&profile.to_ascii_uppercase()))
            .ok_or("the profile is not in the export")?;
        assert!(row.contains("all-devices"), "the save is not shown: {row}");
        println!("the profile's row after the save: {row}");
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// What a console page says while it answers from a snapshot that lags.
const LAGS: &str = "a change made since is being applied";

/// A keep-alive GET of `page` with the session cookie.
fn get_head(page: &str, cookie: &str) -> String {
    format!(
        "GET {page} HTTP/1.1\r\nHost: pages\r\nCookie: pk_session={cookie}\r\nConnection: keep-alive\r\n\r\n"
    )
}

/// Times the first request of each of `pages` after `change`, and says
/// which lag.
async fn first_pages(
    c: &mut Client,
    change: &str,
    pages: &[&str],
    cookie: &str,
    profile: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    for page in pages {
        let t = Instant::now();
        let (status, body) = c.exchange(&get_head(page, cookie), b"").await?;
        let took = t.elapsed();
        assert_eq!(status, 200, "{page}");
        let lags = String::from_utf8_lossy(&body).contains(LAGS);
        println!(
            "{:<58} {:>8.1}ms{}",
            format!(
                "after {change}, first GET {}",
                page.replace(profile, "{uuid}")
            ),
            took.as_secs_f64() * 1e3,
            if lags { " (lags)" } else { "" }
        );
    }
    Ok(())
}

/// The values of a page's hidden fields named `name`, unescaped.
fn hidden_values(html: &str, name: &str) -> Vec<String> {
    let key = format!("name=\"{name}\" value=\"");
    html.match_indices(&key)
        .filter_map(|(at, _)| {
            let rest = &html[at + key.len()..];
            rest.find('"').map(|end| {
                rest[..end]
                    .replace("&quot;", "\"")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&#39;", "'")
                    .replace("&amp;", "&")
            })
        })
        .collect()
}

/// `value` encoded for an `application/x-www-form-urlencoded` body.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! Delivery at volume: N planned installs delivered through a NanoMDM
//! stand-in on loopback (it answers each enqueue 200 at once, so the
//! figure is provkit's), then N device answers posted to provkit's webhook
//! by keep-alive clients and processed. Prints commands per second each
//! way and the peak memory.
//!
//! `cargo run --release --features fixtures --example delivery_load -- [N] [sqlite|postgres]`
//! (defaults 100000, sqlite; postgres takes `PROVKIT_DATABASE_URL` and
//! empties that database first).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::Utc;
use provkit::server::delivery::{Delivery, round};
use provkit::server::state::{AppState, Opener, StorePool};
use provkit::server::{Limits, router};
use provkit::store::{
    Access, Actor, CommandStatus, Inventory, MdmConnection, MdmKind, OutboxEntry, PostgresStore,
    SqliteStore, Store,
};

#[path = "support/http.rs"]
mod http;
use http::Client;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROFILE: &str = "0E0E0E0E-0000-4000-8000-0000000000B1";

/// The stand-in: every enqueue answered 200 with a status per id.
async fn stand_in(counter: Arc<AtomicUsize>) -> std::net::SocketAddr {
    use axum::extract::Path;
    let app = axum::Router::new().route(
        "/v1/enqueue/{ids}",
        axum::routing::put(move |Path(ids): Path<String>| {
            let counter = Arc::clone(&counter);
            async move {
                let mut status = serde_json::Map::new();
                for id in ids.split(',') {
                    status.insert(id.to_owned(), serde_json::json!({}));
                }
                counter.fetch_add(status.len(), Ordering::Relaxed);
                serde_json::json!({"status": status}).to_string()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

fn tenant(store: &mut dyn Store, n: usize, mdm: &str) {
    let a = Actor {
        name: "load".into(),
        at: Utc::now(),
    };
    let ca = provkit::profile::fixtures::TestCa::rsa();
    let bytes = provkit::profile::fixtures::signed_profile(
        &ca,
        &provkit::profile::fixtures::ProfileSpec {
            uuid: PROFILE.into(),
            ..Default::default()
        },
    );
    store.add_profile(&bytes, &a).expect("profile");
    let devices: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"udid": format!("DEV-{i:07}")}))
        .collect();
    let inv: Inventory =
        serde_json::from_value(serde_json::json!({"devices": devices})).expect("inventory");
    store.import_inventory(&inv, &a).expect("inventory");
    for chunk in (0..n).collect::<Vec<_>>().chunks(20_000) {
        let rows: Vec<OutboxEntry> = chunk
            .iter()
            .map(|i| OutboxEntry {
                command_uuid: format!("ROW-{i:07}"),
                udid: format!("DEV-{i:07}"),
                request_type: "InstallProvisioningProfile".into(),
                profile_uuid: PROFILE.into(),
                status: CommandStatus::Planned,
                error_chain: None,
                retries: 0,
                created_at: a.at,
                updated_at: a.at,
            })
            .collect();
        store.enqueue(&rows).expect("enqueue");
    }
    store
        .add_mdm_connection(
            &MdmConnection {
                name: "load".into(),
                kind: MdmKind::NanoMdm,
                url: mdm.into(),
                api_key: "k".into(),
                webhook_hmac_key: Some("hmac".into()),
                org_group: "Global".into(),
                created_by: "load".into(),
                created_at: a.at,
            },
            &a,
        )
        .expect("connection");
}

/// Runs store work off the async workers (the PostgreSQL client blocks).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Outbox rows with `status`.
async fn count(open: &Arc<Opener>, status: CommandStatus) -> usize {
    let o = Arc::clone(open);
    blocking(move || {
        o().expect("open")
            .outbox()
            .expect("outbox")
            .iter()
            .filter(|e| e.status == status)
            .count()
    })
    .await
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let backend = args.get(2).map_or("sqlite", String::as_str).to_owned();
    let counter = Arc::new(AtomicUsize::new(0));
    let mdm = stand_in(Arc::clone(&counter)).await;
    let open: Arc<Opener> = if backend == "postgres" {
        let url = std::env::var("PROVKIT_DATABASE_URL").expect("PROVKIT_DATABASE_URL");
        let u = url.clone();
        blocking(move || {
            PostgresStore::reset(&u).expect("reset");
            drop(PostgresStore::connect(&u).expect("create"));
        })
        .await;
        Arc::new(move || Ok(Box::new(PostgresStore::connect_existing(&url)?)))
    } else {
        let dir =
            std::env::temp_dir().join(format!("provkit-delivery-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.db");
        drop(SqliteStore::open(&path).expect("create"));
        Arc::new(move || {
            Ok(Box::new(SqliteStore::open_existing(
                &path,
                Access::ReadWrite,
            )?))
        })
    };
    let t = Instant::now();
    let o = Arc::clone(&open);
    blocking(move || tenant(o().expect("open").as_mut(), n, &format!("http://{mdm}"))).await;
    println!(
        "{backend}: {n} planned installs made in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let o = Arc::clone(&open);
    let pool = blocking(move || StorePool::open(&*o, 4).expect("pool")).await;
    let state = AppState::new(pool, Limits::default());
    let client = reqwest::Client::new();
    let cfg = Delivery::default();
    let t = Instant::now();
    while counter.load(Ordering::Relaxed) < n {
        round(&state, &client, &cfg).await.expect("round");
    }
    let sent = count(&open, CommandStatus::Sent).await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(sent, n, "every command sent and recorded");
    println!(
        "{backend}: delivered {n} in {secs:.2} s: {:.0} commands/s ({} NanoMDM calls of up to {})",
        n as f64 / secs,
        n.div_ceil(cfg.batch),
        cfg.batch
    );

    // The answers, as NanoMDM would post them.
    let o = Arc::clone(&open);
    let bodies: Vec<Vec<u8>> = blocking(move || {
        let mut s = o().expect("open");
        let mut out = Vec::with_capacity(n);
        for d in s.dispatches().expect("dispatches") {
            for t in &d.targets {
                let plist = provkit::mdm::result::answer_plist(
                    &d.command_uuid,
                    &t.udid,
                    "Acknowledged",
                    &[],
                    None,
                );
                out.push(provkit::mdm::webhook::answer_event(
                    &format!("{}-{}", d.command_uuid, t.udid),
                    &t.udid,
                    &d.command_uuid,
                    "Acknowledged",
                    &plist,
                ));
            }
        }
        out
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (bodies, next) = (Arc::clone(&bodies), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await.expect("connect");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let sig = provkit::mdm::webhook::sign(b"hmac", body);
                let head = format!(
                    "POST /webhooks/nanomdm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Hmac-Signature: {sig}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let status = c.send(&head, body).await.expect("post");
                assert_eq!(status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let received = t.elapsed().as_secs_f64();
    loop {
        let r = round(&state, &client, &cfg).await.expect("round");
        if r.events == 0 {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let acked = count(&open, CommandStatus::Acknowledged).await;
    assert_eq!(acked, n, "every answer recorded");
    println!(
        "{backend}: ingested {n} webhook answers in {secs:.2} s: {:.0} answers/s (received in {received:.2} s, {:.0}/s)",
        n as f64 / secs,
        n as f64 / received
    );
    println!("peak RSS {:.0} MB", peak_rss_mb());
}

//! A load test of `provkit serve`: a generated tenant in SQLite, the API
//! served in this process on loopback, and many clients on keep-alive
//! connections, each sending one request after another for a while;
//! requests per second and the p50 and p99 latencies, per request kind.
//!
//! `cargo run --release --example load_api -- [DEVICES] [CLIENTS] [SECONDS]`
//! (defaults 100000, 200, 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use provkit::server::state::{AppState, Opener, StorePool};
use provkit::server::{Limits, router};
use provkit::service::tokens::{self, Role};
use provkit::store::{Access, Actor, SqliteStore, Store};

#[path = "support/http.rs"]
mod http;
use http::Client;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `clients` clients for `seconds`, each sending `request(client, n)`;
/// prints the figures.
async fn scenario(
    name: &str,
    addr: std::net::SocketAddr,
    clients: usize,
    seconds: u64,
    request: Arc<dyn Fn(usize, usize) -> (String, Vec<u8>) + Send + Sync>,
) {
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let request = Arc::clone(&request);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let Ok(mut client) = Client::connect(addr).await else {
                return (lat, 1);
            };
            let mut n = 0;
            while Instant::now() < end {
                let (head, body) = request(c, n);
                n += 1;
                let t = Instant::now();
                match client.send(&head, &body).await {
                    Ok(s) if s < 400 => lat.push(t.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        match Client::connect(addr).await {
                            Ok(c) => client = c,
                            Err(_) => break,
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    let took = started.elapsed().as_secs_f64().max(seconds as f64);
    all.sort();
    // The p-th percentile, p in thousandths.
    let pct = |p: usize| {
        all.get((all.len() * p / 1000).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{name:<28} {clients:>4} clients  {:>8.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ({} requests, {errors} errors)",
        all.len() as f64 / took,
        pct(500),
        pct(990),
        all.len()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let clients: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |a| a.parse())?;

    let dir = std::env::temp_dir().join(format!("provkit-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("load.db");
    let actor = Actor {
        name: "load".into(),
        at: Utc::now(),
    };
    let started = Instant::now();
    let (token, profiles, udids) = {
        let mut store = SqliteStore::open(&path)?;
        provkit::service::generate::generate(&mut store, devices, 1, false, &actor, &mut |s| {
            eprintln!("[{:>6.1} s] {s}", started.elapsed().as_secs_f64());
        })?;
        let token = tokens::create(&mut store, "load", Role::Admin, None, &[9; 32], &actor)?.token;
        let profiles: Vec<String> = store.profiles()?.into_iter().map(|p| p.uuid).collect();
        let udids: Vec<String> = store
            .inventory()?
            .devices
            .into_iter()
            .step_by((devices / 1000).max(1))
            .map(|d| d.udid)
            .collect();
        (token, profiles, udids)
    };
    let p = path.clone();
    let open: Box<Opener> =
        Box::new(move || Ok(Box::new(SqliteStore::open_existing(&p, Access::ReadWrite)?)));
    let state = AppState::new(StorePool::open(&*open, 4)?, Limits::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(provkit::server::serve(listener, router(state), std::future::pending()));
        let auth = format!("Authorization: Bearer {token}\r\n");
        let get = {
            let auth = auth.clone();
            move |path: String| {
                format!("GET {path} HTTP/1.1\r\nHost: load\r\n{auth}Connection: keep-alive\r\n\r\n")
            }
        };
        // The first read builds the snapshot every later read shares.
        let t = Instant::now();
        let mut c = Client::connect(addr).await?;
        let status = c
            .send(&get(format!("/api/v1/profiles/{}", profiles[0])), b"")
            .await?;
        println!(
            "{devices} devices, {} profiles: first read (builds the snapshot) {:.2} s, status {status}",
            profiles.len(),
            t.elapsed().as_secs_f64()
        );
        let (p1, g1) = (profiles.clone(), get.clone());
        scenario(
            "GET /profiles/{uuid}",
            addr,
            clients,
            seconds,
            Arc::new(move |c, n| (g1(format!("/api/v1/profiles/{}", p1[(c * 7919 + n) % p1.len()])), Vec::new())),
        )
        .await;
        let (p2, u2, g2) = (profiles.clone(), udids.clone(), get.clone());
        scenario(
            "GET /devices/{udid}/explain",
            addr,
            clients,
            seconds,
            Arc::new(move |c, n| {
                let i = c * 31 + n;
                (
                    g2(format!(
                        "/api/v1/devices/{}/explain?profile={}",
                        u2[i % u2.len()],
                        p2[i % p2.len()]
                    )),
                    Vec::new(),
                )
            }),
        )
        .await;
        let auth2 = auth.clone();
        scenario(
            "POST /inventory (one user)",
            addr,
            clients.min(2),
            seconds,
            Arc::new(move |c, n| {
                let body = format!(r#"{{"users": ["load-{c}-{n}"]}}"#).into_bytes();
                (
                    format!(
                        "POST /api/v1/inventory HTTP/1.1\r\nHost: load\r\n{auth2}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
                        body.len()
                    ),
                    body,
                )
            }),
        )
        .await;
        Ok::<_, std::io::Error>(())
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

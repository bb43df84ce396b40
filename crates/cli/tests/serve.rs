//! `provkit token` and `provkit serve` as a user runs them: a token made
//! on the command line authenticates against the served API (its hash only
//! in the database), a revoked one does not, a token for an organization
//! group needs the group to exist, and SIGTERM stops the server cleanly.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{provkit, s, tmp};

fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut c = TcpStream::connect(addr).expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    c.read_to_string(&mut out).expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[test]
fn tokens_from_the_cli_authenticate_the_served_api() {
    let dir = tmp("serve");
    let db = dir.join("t.db");
    let (code, _, err) = provkit(&["--db", s(&db), "init"]);
    assert_eq!(code, 0, "{err}");
    let (code, token, err) = provkit(&[
        "--db",
        s(&db),
        "token",
        "create",
        "--name",
        "ci",
        "--role",
        "viewer",
    ]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("pk_"), "{token}");
    assert!(err.contains("shown once"), "{err}");
    let (code, _, err) = provkit(&[
        "--db",
        s(&db),
        "token",
        "create",
        "--name",
        "eu",
        "--role",
        "viewer",
        "--org-group",
        "Global/EMEA",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("unknown organization group: Global/EMEA"),
        "{err}"
    );
    let (code, out, err) = provkit(&["--db", s(&db), "org-group", "create", "Global/EMEA/Benelux"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "created Global/EMEA\ncreated Global/EMEA/Benelux\n");
    let (code, _, err) = provkit(&[
        "--db",
        s(&db),
        "token",
        "create",
        "--name",
        "eu",
        "--role",
        "viewer",
        "--org-group",
        "Global/EMEA",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, tree, _) = provkit(&["--db", s(&db), "org-group", "list"]);
    assert_eq!(
        tree,
        "Global  (Global)\n  EMEA  (Global/EMEA)\n    Benelux  (Global/EMEA/Benelux)\n"
    );
    let (code, _, err) = provkit(&[
        "--db",
        s(&db),
        "token",
        "create",
        "--name",
        "x",
        "--role",
        "root",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("viewer, operator or admin"), "{err}");
    let raw = std::fs::read(&db).expect("db");
    assert!(
        !raw.windows(token.len() - 3)
            .any(|w| w == &token.as_bytes()[3..]),
        "the token itself is not in the database"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_provkit"))
        .args(["--db", s(&db), "serve", "--listen", "127.0.0.1:0"])
        .env_remove("PROVKIT_DATABASE_URL")
        .env_remove("PROVKIT_DB")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("http://")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
        })
        .expect("the listening address");
    // Keep draining stderr so the server never blocks on it.
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).count());

    assert_eq!(get(&addr, "/healthz", None).0, 200);
    assert_eq!(get(&addr, "/api/v1/profiles", None).0, 401);
    let (status, body) = get(&addr, "/api/v1/profiles", Some(&token));
    assert_eq!(status, 200, "{body}");
    let (code, _, err) = provkit(&["--db", s(&db), "token", "revoke", "ci"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        get(&addr, "/api/v1/profiles", Some(&token)).0,
        401,
        "revoked"
    );
    let (_, list, _) = provkit(&["--db", s(&db), "token", "list"]);
    assert!(
        list.contains("ci  viewer  Global") && list.contains("revoked"),
        "{list}"
    );

    // SIGTERM: a graceful stop, exit 0.
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "graceful shutdown");
    let _ = drain.join();
}

/// One `provkit serve` started with `args` (after the global flags), and
/// its stderr lines as they come.
fn spawn_serve(args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provkit"))
        .args(args)
        .env_remove("PROVKIT_DATABASE_URL")
        .env_remove("PROVKIT_DB")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The address a served process says it listens on.
fn listening(rx: &std::sync::mpsc::Receiver<String>) -> String {
    loop {
        let l = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the listening line");
        if let Some(addr) = l
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        {
            return addr.to_owned();
        }
    }
}

/// Whether a line saying the lease was taken arrives within `secs`.
fn takes_lease(rx: &std::sync::mpsc::Receiver<String>, secs: u64) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("scheduler lease: taken") => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn a_killed_scheduler_is_replaced_within_the_lease() {
    let dir = tmp("serve-kill");
    let db = dir.join("t.db");
    let (code, _, err) = provkit(&["--db", s(&db), "init"]);
    assert_eq!(code, 0, "{err}");
    three_processes_one_killed(&["--db", s(&db)]);
}

#[test]
fn a_killed_scheduler_is_replaced_within_the_lease_on_postgres() {
    let Some(url) = std::env::var("PROVKIT_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("NOTICE: PROVKIT_DATABASE_URL is not set: the PostgreSQL run is skipped");
        return;
    };
    provkit_store::PostgresStore::reset(&url).expect("reset");
    let (code, _, err) = provkit(&["--database-url", &url, "init"]);
    assert_eq!(code, 0, "{err}");
    three_processes_one_killed(&["--database-url", &url]);
}

/// Three `provkit serve` on one store: exactly one leads; SIGKILL it and a
/// survivor leads within the lease.
fn three_processes_one_killed(db: &[&str]) {
    let args: Vec<&str> = db
        .iter()
        .copied()
        .chain(["serve", "--listen", "127.0.0.1:0", "--lease-ttl", "2"])
        .collect();
    let mut procs: Vec<_> = (0..3).map(|_| spawn_serve(&args)).collect();
    // Exactly one of the three takes the lease.
    let leader = (0..3)
        .find(|&i| takes_lease(&procs[i].1, 6))
        .expect("one process leads");
    let mut dead = procs.remove(leader);
    let killed = Command::new("kill")
        .args(["-KILL", &dead.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = dead.0.wait();
    // A survivor takes it once the dead holder's 2 s lease lapses.
    let t = std::time::Instant::now();
    let mut took_over = false;
    while !took_over && t.elapsed() < std::time::Duration::from_secs(8) {
        took_over = procs
            .iter()
            .any(|p| p.1.try_iter().any(|l| l.contains("scheduler lease: taken")));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(took_over, "a survivor took the lease over");
    let took = t.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "within the lease and a tick: {took:?}"
    );
    for (mut c, _) in procs {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let _ = c.wait();
    }
}

#[test]
fn serve_takes_its_settings_from_a_config_file_and_flags_win() {
    let dir = tmp("serve-config");
    let db = dir.join("from-config.db");
    let (code, _, err) = provkit(&["--db", s(&db), "init"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = provkit(&[
        "--db",
        s(&db),
        "token",
        "create",
        "--name",
        "cfg",
        "--role",
        "viewer",
    ]);
    assert_eq!(code, 0, "{err}");
    let token = out
        .split_whitespace()
        .find(|w| w.starts_with("pk_"))
        .expect("token")
        .to_owned();
    let config = dir.join("serve.toml");
    // The database relative to the file; a listen address the flag replaces.
    std::fs::write(
        &config,
        "db = \"from-config.db\"\nlisten = \"127.0.0.1:1\"\nreplan_every = 5\n",
    )
    .expect("config");
    let (mut child, rx) =
        spawn_serve(&["serve", "--config", s(&config), "--listen", "127.0.0.1:0"]);
    let addr = listening(&rx);
    assert_ne!(addr, "127.0.0.1:1", "the flag wins over the file");
    let (status, body) = get(&addr, "/api/v1/profiles", Some(&token));
    assert_eq!(status, 200, "the file's database holds the token: {body}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    // A misspelt setting stops the server before it listens.
    std::fs::write(&config, "lissen = \"127.0.0.1:0\"\n").expect("config");
    let (code, _, err) = provkit(&["serve", "--config", s(&config)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("lissen"), "{err}");
}

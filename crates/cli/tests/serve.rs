//! `provkit token` and `provkit serve` as a user runs them: a token made
//! on the command line authenticates against the served API (its hash only
//! in the database), a revoked one does not, `--org-group` below the root is
//! refused until organization groups are enforced, and SIGTERM stops the
//! server cleanly.

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
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not supported yet"), "{err}");
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

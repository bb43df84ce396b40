//! `provkit notify add|list|test|remove`: a webhook channel signed with a
//! secret from the environment, never printed; `test` sends one sample to
//! a receiver on loopback that checks the signature.

mod common;

use std::io::{Read, Write};

use common::{provkit, provkit_with};

/// Accepts one request, answers 200, hands back the request.
fn receiver() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).expect("read");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        got
    });
    (url, h)
}

#[test]
fn notify_channels_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("provkit-cli-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("t.db");
    let db = db.to_str().expect("utf-8");
    assert_eq!(provkit(&["--db", db, "init"]).0, 0);
    let (url, got) = receiver();
    let env = [("PK_TEST_HOOK_SECRET", "s3cret-hook")];
    let (code, out, err) = provkit_with(
        &[
            "--db",
            db,
            "notify",
            "add",
            "--kind",
            "webhook",
            "--name",
            "ops",
            "--url",
            &url,
            "--secret-env",
            "PK_TEST_HOOK_SECRET",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added ops (webhook) for Global"), "{out}");
    let (code, _, err) = provkit(&[
        "--db", db, "notify", "add", "--kind", "webhook", "--name", "x", "--url", &url,
    ]);
    assert_eq!(code, 1, "a webhook without a secret: {err}");
    let (_, list, _) = provkit(&["--db", db, "notify", "list"]);
    assert!(
        list.contains("ops  webhook") && list.contains("signed") && !list.contains("s3cret"),
        "{list}"
    );
    let (code, out, err) = provkit(&["--db", db, "notify", "test", "ops"]);
    assert_eq!(code, 0, "{out}{err}");
    let raw = String::from_utf8(got.join().expect("receiver")).expect("utf-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("request");
    let sig = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("x-provkit-signature: ")
                .or_else(|| l.strip_prefix("X-Provkit-Signature: "))
        })
        .expect("signed");
    assert!(provkit_service::notify::signature_ok(
        "s3cret-hook",
        body.as_bytes(),
        sig,
        chrono::Utc::now(),
        chrono::Duration::minutes(5)
    ));
    assert!(body.contains("\"test\":true"), "{body}");
    let (code, _, _) = provkit(&["--db", db, "notify", "remove", "ops"]);
    assert_eq!(code, 0);
    assert!(provkit(&["--db", db, "notify", "list"]).1.is_empty());
}

//! A server on a real loopback socket, and a raw HTTP/1.1 client that can
#![allow(dead_code)] // each test crate uses part of it
//! also send what no well-behaved client would (truncated, oversized,
//! malformed requests).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use provkit_server::state::{AppState, Opener, StorePool};
use provkit_server::{Limits, router};

/// Opens the SQLite file at `path` (which must exist) for reading and
/// writing, as many times as a pool asks.
pub(crate) fn sqlite_opener(path: &std::path::Path) -> Box<Opener> {
    let path = path.to_owned();
    Box::new(move || {
        Ok(Box::new(provkit_store::SqliteStore::open_existing(
            &path,
            provkit_store::Access::ReadWrite,
        )?))
    })
}

/// A running server; stopped (gracefully) when dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves a pool of `connections` stores from `open` with `limits`,
    /// the clock fixed at `at`.
    pub(crate) fn start(
        open: &Opener,
        connections: usize,
        limits: Limits,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Server {
        let pool = StorePool::open(open, connections).expect("store pool");
        let state = AppState::new(pool, limits).with_clock(std::sync::Arc::new(move || at));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                provkit_server::serve(listener, router(state), async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            });
        });
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Sends a request; `None` headers and body as given.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(c) = content_type {
            head.push_str(&format!("Content-Type: {c}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body);
        self.raw(&raw)
    }

    /// Sends bytes as they are and reads the answer to the end.
    pub(crate) fn raw(&self, bytes: &[u8]) -> Response {
        Response::parse(&self.raw_bytes(bytes, false))
    }

    /// Sends bytes as they are, then (with `hang_up`) closes the sending
    /// side, as a client that gives up mid-request; the answer's bytes,
    /// unparsed.
    pub(crate) fn raw_bytes(&self, bytes: &[u8], hang_up: bool) -> Vec<u8> {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        // The server may answer (413) and close before reading all of it.
        let _ = s.write_all(bytes);
        if hang_up {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// Whether the server still answers.
    pub(crate) fn alive(&self) -> bool {
        self.call("GET", "/healthz", None, None, b"").status == 200
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A parsed answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The problem's code, checking it is a problem document.
    pub(crate) fn problem(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        let j = self.json();
        assert_eq!(j["status"], self.status, "{j}");
        j["code"].as_str().expect("code").to_owned()
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
}

/// The `(udid, state)` of each item of a `profiles/{uuid}/devices` answer.
pub(crate) fn device_states(answer: &serde_json::Value) -> Vec<(String, String)> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| {
            (
                d["udid"].as_str().unwrap_or("").to_owned(),
                d["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

//! A NanoMDM double that behaves as `shared/docs/domain-mdm.md` says
//! NanoMDM does: `PUT /v1/enqueue/{id,id,...}` with HTTP Basic
//! `nanomdm:<key>` (401 otherwise), the raw command plist (it must hold
//! `CommandUUID` and `Command.RequestType`), a JSON answer per id with HTTP
//! 200 / 207 / 500, "queued but the push failed" when it has no APNs
//! certificate (500 with a top-level `push_error`, the command queued), a
//! reused CommandUUID answered 500 `command already exists`, and webhook
//! events (`mdm.Connect` with `acknowledge_event` and a base64
//! `raw_payload`) signed with `X-Hmac-Signature`. Devices are simulated by
//! the test: they poll their queue and answer.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use provkit_profile::plist::{self, Value};

/// A command as the double stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) uuid: String,
    pub(crate) request_type: String,
    /// The profile installed (its UUID, read from the bytes) or removed.
    pub(crate) profile: String,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) api_key: String,
    pub(crate) enrolled: HashSet<String>,
    /// Answers 503 to every call while set.
    pub(crate) down: bool,
    /// No APNs certificate: queued, the push fails.
    pub(crate) no_apns: bool,
    pub(crate) commands: HashMap<String, Stored>,
    pub(crate) queues: HashMap<String, VecDeque<String>>,
    /// Every (CommandUUID, device) enqueued, in order.
    pub(crate) enqueued: Vec<(String, String)>,
    /// Calls answered 503 while down.
    pub(crate) refused_down: usize,
    /// Calls answered `command already exists` (a CommandUUID sent again).
    pub(crate) duplicates: usize,
    /// How long an answer waits after the command is queued (a slow
    /// server, or a network that loses the answer).
    pub(crate) delay: std::time::Duration,
}

/// The double: its address and state.
#[derive(Clone)]
pub(crate) struct NanoMdm {
    pub(crate) addr: SocketAddr,
    pub(crate) state: Arc<Mutex<Inner>>,
}

fn read_command(body: &[u8]) -> Option<(String, String, String)> {
    let (v, _) = plist::parse(body).ok()?;
    let d = v.as_dictionary()?;
    let uuid = d.get("CommandUUID")?.as_str()?.to_owned();
    let c = d.get("Command")?.as_dictionary()?;
    let rt = c.get("RequestType")?.as_str()?.to_owned();
    let profile = match rt.as_str() {
        "InstallProvisioningProfile" => match c.get("ProvisioningProfile")? {
            Value::Data(b) => provkit_profile::ProvisioningProfile::from_der(b)
                .ok()?
                .profile()
                .uuid
                .clone(),
            _ => return None,
        },
        "RemoveProvisioningProfile" => c.get("UUID")?.as_str()?.to_owned(),
        _ => String::new(),
    };
    Some((uuid, rt, profile))
}

async fn enqueue(
    State(state): State<Arc<Mutex<Inner>>>,
    Path(ids): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let (answer, delay) = {
        let mut s = state.lock().expect("double state");
        (enqueue_now(&mut s, &ids, &headers, &body), s.delay)
    };
    tokio::time::sleep(delay).await;
    answer
}

fn enqueue_now(s: &mut Inner, ids: &str, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != provkit_mdm::nanomdm::basic_auth(&s.api_key) {
        return (StatusCode::UNAUTHORIZED, "Unauthorized\n".into());
    }
    if s.down {
        s.refused_down += 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "down\n".into());
    }
    let Some((uuid, rt, profile)) = read_command(body) else {
        return (StatusCode::BAD_REQUEST, "bad command\n".into());
    };
    if s.commands.contains_key(&uuid) {
        s.duplicates += 1;
        let body = serde_json::json!({"command_error": "enqueue: command already exists", "command_uuid": uuid, "request_type": rt});
        return (StatusCode::INTERNAL_SERVER_ERROR, body.to_string());
    }
    s.commands.insert(
        uuid.clone(),
        Stored {
            uuid: uuid.clone(),
            request_type: rt.clone(),
            profile,
        },
    );
    let mut status = serde_json::Map::new();
    let (mut ok, mut failed) = (0, 0);
    for id in ids.split(',') {
        if s.enrolled.contains(id) {
            s.queues
                .entry(id.to_owned())
                .or_default()
                .push_back(uuid.clone());
            s.enqueued.push((uuid.clone(), id.to_owned()));
            let entry = if s.no_apns {
                serde_json::json!({"push_error": "no APNs certificate for topic"})
            } else {
                serde_json::json!({"push_result": "ok"})
            };
            status.insert(id.to_owned(), entry);
            ok += 1;
        } else {
            status.insert(
                id.to_owned(),
                serde_json::json!({"command_error": "enrollment not found"}),
            );
            failed += 1;
        }
    }
    let mut answer =
        serde_json::json!({"status": status, "command_uuid": uuid, "request_type": rt});
    let code = if s.no_apns && ok > 0 {
        answer["push_error"] = "push: no APNs certificate".into();
        StatusCode::INTERNAL_SERVER_ERROR
    } else if failed == 0 {
        StatusCode::OK
    } else if ok == 0 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::MULTI_STATUS
    };
    (code, answer.to_string())
}

impl NanoMdm {
    /// Starts the double on loopback.
    pub(crate) fn start(api_key: &str, enrolled: &[&str]) -> NanoMdm {
        let state = Arc::new(Mutex::new(Inner {
            api_key: api_key.into(),
            enrolled: enrolled.iter().map(|s| (*s).to_owned()).collect(),
            ..Inner::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .route(
                "/v1/enqueue/{ids}",
                axum::routing::put(enqueue).post(enqueue),
            )
            .with_state(Arc::clone(&state));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(l, app).await.expect("serve");
            });
        });
        NanoMdm { addr, state }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.state.lock().expect("double state"))
    }

    /// The device's next command, taken off its queue.
    pub(crate) fn poll(&self, udid: &str) -> Option<Stored> {
        self.with(|s| {
            let uuid = s.queues.get_mut(udid)?.pop_front()?;
            s.commands.get(&uuid).cloned()
        })
    }

    /// Puts a command back at the front (the device said NotNow).
    pub(crate) fn not_now(&self, udid: &str, uuid: &str) {
        self.with(|s| {
            s.queues
                .entry(udid.to_owned())
                .or_default()
                .push_front(uuid.to_owned());
        });
    }

    /// How many times each (CommandUUID, device) was enqueued.
    pub(crate) fn enqueue_counts(&self) -> HashMap<(String, String), usize> {
        self.with(|s| {
            let mut m = HashMap::new();
            for k in &s.enqueued {
                *m.entry(k.clone()).or_insert(0) += 1;
            }
            m
        })
    }
}

/// Posts a webhook body to `addr` at `path`, signed with `key` (or with
/// the given signature); the HTTP status.
pub(crate) fn post_webhook(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    signature: Option<&str>,
) -> u16 {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(sig) = signature {
        head.push_str(&format!("X-Hmac-Signature: {sig}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A GET with a bearer token; status and body.
pub(crate) fn get(addr: SocketAddr, path: &str, token: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    // Chunked answers: take the JSON between the first '{' or '[' and the end.
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |e| e + 1);
    (
        status,
        serde_json::from_str(&body[start..end]).unwrap_or(serde_json::Value::Null),
    )
}

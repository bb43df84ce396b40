//! The delivery worker: every `provkit serve` process runs one. Each round
//! it groups planned commands into dispatches, claims the due ones (no
//! dispatch is handed to two senders at once: PostgreSQL skips locked rows,
//! SQLite has one writer), sends them to their MDM server, records what
//! each answer means per device, and processes the webhook events the
//! receivers kept. A sender that dies mid-batch leaves its claims to come
//! due again when their lease lapses; the CommandUUID is fixed before the
//! first try, so a retry never queues a command twice.

use std::sync::Arc;
use std::time::Duration;

use provkit_service::delivery;
use provkit_store::{Claimed, SendOutcome};

use crate::state::AppState;

/// How the worker paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The wait between rounds when there was nothing to do (a webhook
    /// event wakes it sooner).
    pub tick: Duration,
    /// How long a claim holds before another sender may take it.
    pub lease: Duration,
    /// Dispatches claimed a round.
    pub claim: usize,
    /// Calls to MDM servers in flight at once.
    pub concurrency: usize,
    /// The longest wait for one call's answer.
    pub timeout: Duration,
    /// Devices in one NanoMDM call.
    pub batch: usize,
    /// Webhook events processed a round.
    pub events: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            tick: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            claim: 64,
            concurrency: 16,
            timeout: Duration::from_secs(30),
            batch: provkit_mdm::MAX_BATCH,
            events: 5000,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Commands put into dispatches.
    pub prepared: usize,
    /// Dispatches sent.
    pub sent: usize,
    /// Webhook events processed.
    pub events: usize,
    /// Notification messages sent (or tried).
    pub notices: usize,
}

/// Sends one request; the status and body, or `None` when no answer came.
async fn send(
    client: &reqwest::Client,
    base: &str,
    r: &delivery::Request,
) -> Option<(u16, Vec<u8>)> {
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).ok()?;
    let answer = client
        .request(method, format!("{base}{}", r.path))
        .header(reqwest::header::AUTHORIZATION, &r.authorization)
        .header(reqwest::header::CONTENT_TYPE, r.content_type)
        .body(r.body.clone())
        .send()
        .await;
    match answer {
        Ok(a) => {
            let status = a.status().as_u16();
            let body = a.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            Some((status, body))
        }
        Err(e) => {
            tracing::warn!(url = %base, error = %e, "MDM server unreachable");
            None
        }
    }
}

/// Sends one claimed dispatch and records what came of it.
async fn deliver(state: AppState, client: reqwest::Client, c: Claimed) {
    let now = state.now();
    let uuid = c.dispatch.command_uuid.clone();
    let outcomes: Vec<(String, SendOutcome)> = match delivery::requests_of(&c) {
        Ok(requests) => {
            let mut all = Vec::new();
            for r in &requests {
                let answer = send(&client, &c.connection.url, r).await;
                all.extend(delivery::outcomes_of(
                    c.connection.kind,
                    r,
                    answer.as_ref().map(|(s, b)| (*s, b.as_slice())),
                ));
            }
            all
        }
        Err(e) => c
            .dispatch
            .targets
            .iter()
            .map(|t| (t.enrollment_id.clone(), SendOutcome::Refused(e.to_string())))
            .collect(),
    };
    let retry = delivery::retry_at(&uuid, c.dispatch.attempts, now);
    let queued = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, SendOutcome::Queued(_)))
        .count();
    let settled = state
        .run(provkit_store::org::ROOT, move |store| {
            Ok(store.settle_dispatch(&uuid, &outcomes, retry, now)?)
        })
        .await;
    match settled {
        Ok(()) => tracing::debug!(
            connection = %c.connection.name,
            command = %c.dispatch.command_uuid,
            devices = c.dispatch.targets.len(),
            queued,
            "dispatch sent"
        ),
        Err(p) => tracing::warn!(detail = %p.detail, "could not record a dispatch's outcome"),
    }
}

/// One round: prepare, claim and send, process events.
///
/// # Errors
/// A store failure (the round stops; the next one starts over).
pub async fn round(
    state: &AppState,
    client: &reqwest::Client,
    cfg: &Delivery,
) -> Result<Round, crate::problem::Problem> {
    let root = provkit_store::org::ROOT;
    let now = state.now();
    let batch = cfg.batch;
    let prepared = state
        .run(root, move |store| Ok(store.prepare_dispatches(now, batch)?))
        .await?;
    let lease = chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::seconds(120));
    let limit = cfg.claim;
    let claimed = state
        .run(root, move |store| {
            Ok(store.claim_dispatches(now, lease, limit)?)
        })
        .await?;
    let sent = claimed.len();
    let gate = Arc::new(tokio::sync::Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for c in claimed {
        let (state, client, gate) = (state.clone(), client.clone(), Arc::clone(&gate));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            deliver(state, client, c).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let events = cfg.events;
    let processed = state
        .run(root, move |store| {
            let taken = store.take_events(now, lease, events)?;
            if taken.is_empty() {
                return Ok(0);
            }
            let (answers, unreadable) = delivery::answers_of(&taken);
            for u in &unreadable {
                tracing::warn!(event = %u.id, error = %u.error, "webhook event unreadable; skipped");
            }
            let ids: Vec<String> = taken.into_iter().map(|(handle, _)| handle).collect();
            let counts = store.record_answers(&ids, &answers, now)?;
            tracing::debug!(?counts, "device answers recorded");
            Ok(ids.len())
        })
        .await?;
    let notices = notify(state, client, cfg, now, lease).await?;
    Ok(Round {
        prepared,
        sent,
        events: processed,
        notices,
    })
}

/// Sends the notification messages due: each channel's message once; a
/// failure is kept with its reason and tried again with backoff.
async fn notify(
    state: &AppState,
    client: &reqwest::Client,
    cfg: &Delivery,
    now: chrono::DateTime<chrono::Utc>,
    lease: chrono::Duration,
) -> Result<usize, crate::problem::Problem> {
    let limit = cfg.claim;
    let claimed = state
        .run(provkit_store::org::ROOT, move |store| {
            Ok(store.claim_notices(now, lease, limit)?)
        })
        .await?;
    let n = claimed.len();
    let mut tasks = tokio::task::JoinSet::new();
    for c in claimed {
        let (state, client) = (state.clone(), client.clone());
        tasks.spawn(async move {
            let outcome = send_notice(&client, &c, now).await;
            if let Err(e) = &outcome {
                tracing::warn!(channel = %c.channel.name, error = %e, "notification not delivered; will retry");
            }
            let retry = delivery::retry_at(&c.delivery.event_id, c.delivery.attempts, now);
            let d = c.delivery;
            let settled = state
                .run(provkit_store::org::ROOT, move |store| {
                    Ok(store.settle_notice(&d, outcome, retry, now)?)
                })
                .await;
            if let Err(p) = settled {
                tracing::warn!(detail = %p.detail, "could not record a notification's outcome");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(n)
}

/// One message to its channel: `Ok` on a 2xx answer, or once the SMTP
/// server took the mail.
///
/// # Errors
/// What went wrong (unreachable, TLS, a non-2xx answer, SMTP's refusal),
/// as text for the message's `last_error`.
pub async fn send_notice(
    client: &reqwest::Client,
    c: &provkit_store::ClaimedNotice,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    if c.channel.kind == provkit_store::ChannelKind::Smtp {
        return send_email(&c.channel, &c.delivery.facts).await;
    }
    let m =
        provkit_service::notify::message(&c.channel, &c.delivery.event_id, &c.delivery.facts, now)
            .map_err(|e| e.to_string())?;
    let mut req = client
        .post(&m.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(m.body);
    for (k, v) in m.headers {
        req = req.header(k, v);
    }
    let answer = req.send().await.map_err(|e| failure(&e))?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        let body = answer.text().await.unwrap_or_default();
        Err(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        ))
    }
}

/// A request that got no answer, as text with its causes: timed out,
/// unreachable (no connection, or TLS refused), or another failure.
fn failure(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        format!("timed out: {e}")
    } else if e.is_connect() {
        format!("unreachable: {e}")
    } else {
        format!("failed: {e}")
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Runs rounds until `stop`: at once while there is work, else every
/// `tick` or when a webhook event arrives.
pub async fn run_delivery(
    state: AppState,
    cfg: Delivery,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let client = match reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: delivery is off");
            return;
        }
    };
    loop {
        let busy = match round(&state, &client, &cfg).await {
            Ok(r) => {
                if r != Round::default() {
                    tracing::debug!(
                        prepared = r.prepared,
                        sent = r.sent,
                        events = r.events,
                        "delivery round"
                    );
                }
                r.sent > 0 || r.events > 0 || r.notices > 0
            }
            Err(p) => {
                tracing::warn!(code = p.code, detail = %p.detail, "delivery round failed; trying again");
                false
            }
        };
        if busy {
            tokio::select! {
                () = tokio::task::yield_now() => {}
                () = &mut stop => break,
            }
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(cfg.tick) => {}
            () = state.wake.notified() => {}
            () = &mut stop => break,
        }
    }
}

/// Sends a delivery's email to the channel's addresses (a device user's
/// notice: to that user alone) over SMTP (STARTTLS
/// when offered on `smtp://`, TLS from the start on `smtps://`, the secret
/// as the password), within 30 s.
///
/// # Errors
/// What went wrong, as text for the delivery's `last_error`.
pub async fn send_email(
    channel: &provkit_store::Channel,
    facts: &serde_json::Value,
) -> Result<(), String> {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let target = provkit_service::notify::smtp_target(&channel.url).map_err(|e| e.to_string())?;
    let mail = provkit_service::notify::email(channel, facts);
    let from: Mailbox = target
        .from
        .parse()
        .map_err(|e| format!("from {:?}: {e}", target.from))?;
    let mut builder = lettre::Message::builder().from(from).subject(mail.subject);
    let to = provkit_service::notify::recipients(channel, facts);
    if to.is_empty() {
        return Err("no address to send to".into());
    }
    for to in &to {
        builder = builder.to(to.parse().map_err(|e| format!("to {to:?}: {e}"))?);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
        .map_err(|e| format!("the message: {e}"))?;
    let tls = TlsParameters::new(target.host.clone()).map_err(|e| format!("TLS: {e}"))?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.host)
        .port(target.port)
        .timeout(Some(Duration::from_secs(30)))
        .tls(if target.implicit_tls {
            Tls::Wrapper(tls)
        } else {
            Tls::Opportunistic(tls)
        });
    if let Some(user) = target.user {
        transport = transport.credentials(Credentials::new(
            user,
            channel.secret.clone().unwrap_or_default(),
        ));
    }
    transport
        .build()
        .send(message)
        .await
        .map(drop)
        .map_err(|e| format!("SMTP {}:{}: {e}", target.host, target.port))
}

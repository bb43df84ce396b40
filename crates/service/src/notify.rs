//! Notifications, without I/O: the notices a plan makes due (one per
//! profile and stage, with the facts people act on), and each channel's
//! message for them: a signed JSON webhook with a stable schema, a Slack
//! message, a Teams card. A sender (in provkit, `provkit-server`'s worker)
//! does the HTTP; the store makes each (item, stage, channel) once.

use chrono::{DateTime, Utc};
use provkit_store::{Actor, Channel, ChannelKind, Notice, Store};
use ring::hmac;

use crate::ServiceError;
use crate::plan::PlanView;

/// The header that carries a webhook's signature:
/// `t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(secret, "t.body"))`.
pub const SIGNATURE_HEADER: &str = "X-Provkit-Signature";

/// What [`add_channel`] makes, beside its name, kind and URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelOptions {
    /// The signing key (webhook) or password (smtps).
    pub secret: Option<String>,
    /// Email addresses.
    pub to: Vec<String>,
    /// The organization group (the caller's scope when `None`).
    pub org_group: Option<String>,
    /// The message template ([`TEMPLATE_VARIABLES`]).
    pub template: Option<String>,
}

impl ChannelOptions {
    /// With this secret.
    #[must_use]
    pub fn secret(mut self, secret: Option<&str>) -> Self {
        self.secret = secret.map(str::to_owned);
        self
    }

    /// To these addresses.
    #[must_use]
    pub fn to(mut self, to: &[String]) -> Self {
        self.to = to.to_vec();
        self
    }

    /// For this organization group.
    #[must_use]
    pub fn org_group(mut self, org_group: Option<&str>) -> Self {
        self.org_group = org_group.map(str::to_owned);
        self
    }

    /// With this template.
    #[must_use]
    pub fn template(mut self, template: Option<&str>) -> Self {
        self.template = template.map(str::to_owned);
        self
    }
}

/// Adds a channel for `org_group` (the caller's scope when `None`).
///
/// # Errors
/// As [`Store::add_channel`]; a webhook without a secret, an SMTP
/// channel without addresses or with a URL [`smtp_target`] refuses, a
/// template [`check_template`] refuses.
pub fn add_channel(
    store: &mut dyn Store,
    name: &str,
    kind: ChannelKind,
    url: &str,
    options: &ChannelOptions,
    actor: &Actor,
) -> Result<Channel, ServiceError> {
    let (secret, to) = (options.secret.as_deref(), options.to.as_slice());
    if let Some(t) = &options.template {
        check_template(t)?;
    }
    if kind == ChannelKind::Smtp {
        if to.is_empty() {
            return Err(provkit_store::StoreError::Invalid(
                "an SMTP channel needs at least one --to address".into(),
            )
            .into());
        }
        smtp_target(url)?;
        if let Some(bad) = to.iter().find(|a| !looks_like_address(a)) {
            return Err(provkit_store::StoreError::Invalid(format!(
                "--to {bad:?} is not an email address"
            ))
            .into());
        }
    }
    if kind == ChannelKind::Webhook && secret.is_none() {
        return Err(provkit_store::StoreError::Invalid(
            "a webhook channel signs its messages: give it a secret".into(),
        )
        .into());
    }
    let c = Channel {
        name: name.to_owned(),
        kind,
        url: url.to_owned(),
        secret: secret.map(str::to_owned),
        to: to.to_vec(),
        org_group: options
            .org_group
            .clone()
            .unwrap_or_else(|| store.scope().to_owned()),
        template: options.template.clone(),
        created_by: actor.name.clone(),
        created_at: actor.at,
    };
    store.add_channel(&c, actor)?;
    Ok(c)
}

/// The variables a template may use.
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "name",
    "uuid",
    "team",
    "death",
    "days_left",
    "stage",
    "skipped_stages",
    "cause",
    "action",
    "apps",
    "devices",
    "org_group",
    "item_kind",
    "user",
    "device",
    "app",
];

/// Checks a template: every `{variable}` one of [`TEMPLATE_VARIABLES`],
/// braces balanced, at most 4,000 characters.
///
/// # Errors
/// [`provkit_store::StoreError::Invalid`] naming the first problem.
pub fn check_template(template: &str) -> Result<(), ServiceError> {
    let bad = |why: String| -> ServiceError {
        provkit_store::StoreError::Invalid(format!("template: {why}")).into()
    };
    if template.chars().count() > 4000 {
        return Err(bad("longer than 4,000 characters".into()));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| bad(format!("an unclosed {{ at {:?}", &rest[open..])))?;
        let var = &after[..close];
        if !TEMPLATE_VARIABLES.contains(&var) {
            return Err(bad(format!(
                "unknown variable {{{var}}}; known: {}",
                TEMPLATE_VARIABLES.join(", ")
            )));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(bad("a } without its {".into()));
    }
    Ok(())
}

/// A template with its variables replaced by the facts.
pub fn render(template: &str, facts: &serde_json::Value) -> String {
    let mut out = template.to_owned();
    for var in TEMPLATE_VARIABLES {
        let value = match &facts[*var] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        };
        out = out.replace(&format!("{{{var}}}"), &value);
    }
    out
}

/// Sets a channel's template (checked first; `None` clears it); audited.
///
/// # Errors
/// As [`check_template`]; [`Store::set_channel_template`]'s refusals.
pub fn set_template(
    store: &mut dyn Store,
    channel: &str,
    template: Option<&str>,
    actor: &Actor,
) -> Result<(), ServiceError> {
    if let Some(t) = template {
        check_template(t)?;
    }
    Ok(store.set_channel_template(channel, template, actor)?)
}

/// The profiles' and apps' own notification settings
/// ([`Store::notify_settings`], [`Store::app_notify_settings`]), and what
/// they make of a profile's admin stages.
#[derive(Debug, Clone, Default)]
pub struct ItemSettings {
    profiles: std::collections::HashMap<String, provkit_store::NotifySettings>,
    apps: std::collections::HashMap<String, provkit_store::NotifySettings>,
}

impl ItemSettings {
    /// Reads both from the store.
    ///
    /// # Errors
    /// Store failures.
    pub fn read(store: &mut dyn Store) -> Result<ItemSettings, ServiceError> {
        Ok(ItemSettings {
            profiles: store.notify_settings()?.into_iter().collect(),
            apps: store.app_notify_settings()?.into_iter().collect(),
        })
    }

    /// An app's own settings; `app` is a bundle id, or `bundle-id
    /// version` as plans name apps.
    fn app(&self, app: &str) -> Option<&provkit_store::NotifySettings> {
        self.apps.get(app.split(' ').next().unwrap_or(app))
    }

    /// Whether an app is not switched off.
    fn app_on(&self, app: &str) -> bool {
        !self.app(app).is_some_and(|s| s.off)
    }

    /// None when nothing is to be sent for the profile (off, or every app
    /// of it off), Some(None) for the tenant's stages, Some(Some(own)) for
    /// its own or, without them, the union of its apps' own (most days
    /// first).
    fn profile_stages(&self, uuid: &str, apps: &[String]) -> Option<Option<Vec<i64>>> {
        if let Some(s) = self.profiles.get(&uuid.to_ascii_uppercase()) {
            if s.off {
                return None;
            }
            if s.stages.is_some() {
                return Some(s.stages.clone());
            }
        }
        let on: Vec<&String> = apps.iter().filter(|a| self.app_on(a)).collect();
        if !apps.is_empty() && on.is_empty() {
            return None;
        }
        let mut own: Vec<i64> = on
            .iter()
            .filter_map(|a| self.app(a).and_then(|s| s.stages.as_ref()))
            .flatten()
            .copied()
            .collect();
        if own.is_empty() {
            return Some(None);
        }
        own.sort_unstable_by(|a, b| b.cmp(a));
        own.dedup();
        Some(Some(own))
    }

    /// The admin stages a profile's messages follow (its apps as `bundle-id
    /// version`), given the tenant's: none when it is switched off or all
    /// its apps are.
    pub fn admin_stages(&self, uuid: &str, apps: &[String], tenant: &[i64]) -> Vec<i64> {
        match self.profile_stages(uuid, apps) {
            None => Vec::new(),
            Some(None) => tenant.to_vec(),
            Some(Some(own)) => own,
        }
    }
}

/// The notices a plan over `engine` makes due: one per profile
/// notification at the tenant's stages, or at its own stages when it has
/// them (else the union of its apps' own stages), none for a profile
/// switched off or whose apps are all switched off (settings from
/// [`Store::notify_settings`] and [`Store::app_notify_settings`]); and one
/// per device user's notice (user, device, app) at the app's user stage or
/// the tenant's, for the device's organization group, so its channels and
/// those above it get it: to webhooks always, and by email to the user
/// when the inventory knows the address ([`Store::user_emails`]).
///
/// # Errors
/// Store failures (the profiles' groups, teams and settings are read).
pub fn notices_of(
    store: &mut dyn Store,
    engine: &provkit_policy::Engine,
    view: &PlanView,
) -> Result<Vec<Notice>, ServiceError> {
    use std::collections::HashMap;
    let t = engine.tenant();
    let (stages, user_stage) = (
        t.config.admin_thresholds_days.clone(),
        t.config.user_notice_days,
    );
    let own = ItemSettings::read(store)?;
    let own_stages = own
        .profiles
        .values()
        .chain(own.apps.values())
        .any(|s| !s.off && s.stages.is_some());
    let later_users = own
        .apps
        .values()
        .any(|s| !s.off && s.user_stage.is_some_and(|d| d > user_stage));
    if view.notifications.is_empty() && view.user_notices.is_empty() && !own_stages && !later_users
    {
        return Ok(Vec::new());
    }
    let profiles: HashMap<String, provkit_store::ProfileRecord> = store
        .profiles()?
        .into_iter()
        .map(|p| (p.uuid.to_ascii_uppercase(), p))
        .collect();
    let group_of = |uuid: &str| {
        let rec = profiles.get(&uuid.to_ascii_uppercase());
        (
            provkit_store::org::of(rec.and_then(|r| r.org_group.as_ref())).to_owned(),
            rec.map(|r| r.facts.team.clone()).unwrap_or_default(),
        )
    };
    let profile_notice = |uuid: &str,
                          name: &str,
                          stage: i64,
                          death: DateTime<Utc>,
                          cause: &str,
                          days_left: i64,
                          apps: &[String],
                          devices: usize,
                          all: &[i64]| {
        let (org_group, team) = group_of(uuid);
        let certificate = cause.starts_with("certificate");
        let apps: Vec<&String> = apps.iter().filter(|a| own.app_on(a)).collect();
        // A signing certificate that dies first is the item: the one of
        // the profile's apps that dies soonest, by its SHA-256.
        let fingerprint = certificate
            .then(|| {
                t.apps
                    .iter()
                    .filter(|a| {
                        a.profile
                            .is_some_and(|p| t.profile(p).uuid.eq_ignore_ascii_case(uuid))
                    })
                    .min_by_key(|a| a.certificate_not_after)
                    .map(|a| provkit_profile::hex(&a.certificate))
            })
            .flatten();
        let mut facts = serde_json::json!({
            "schema": "provkit.notification/1",
            "org_group": org_group,
            "item_kind": if certificate { "certificate" } else { "profile" },
            "name": name,
            "uuid": uuid,
            "team": team,
            "death": death,
            "days_left": days_left,
            "stage": stage,
            "cause": cause,
            "action": if certificate { "re-sign" } else { "renew" },
            "apps": apps,
            "devices": devices,
            "links": {"profile": format!("/profiles/{uuid}")},
        });
        if let Some(f) = fingerprint {
            facts["fingerprint"] = serde_json::json!(f);
        }
        Notice {
            item: uuid.to_owned(),
            org_group,
            stage,
            stages: all.to_vec(),
            facts,
            only: None,
        }
    };
    let mut out = Vec::new();
    for n in &view.notifications {
        if own.profile_stages(&n.profile, &n.apps) != Some(None) {
            continue;
        }
        out.push(profile_notice(
            &n.profile,
            &n.name,
            n.stage_days,
            n.death,
            n.cause,
            n.days_left,
            &n.apps,
            n.devices,
            &stages,
        ));
    }
    if own_stages {
        let summaries = crate::catalog::summaries_of(engine);
        for p in summaries
            .iter()
            .filter(|p| !p.retired && p.successor.is_none())
        {
            let Some(Some(stages)) = own.profile_stages(&p.uuid, &p.apps) else {
                continue;
            };
            let Some(stage) = stages.iter().copied().filter(|&s| p.days_left <= s).min() else {
                continue;
            };
            out.push(profile_notice(
                &p.uuid,
                &p.name,
                stage,
                p.expires,
                "profile expires",
                p.days_left,
                &p.apps,
                p.devices,
                &stages,
            ));
        }
    }
    // Device users' notices: (user, device, app, death, stage), at the
    // app's own stage or the tenant's; none for an app switched off.
    let mut users: Vec<(String, String, String, DateTime<Utc>, i64)> = Vec::new();
    for u in &view.user_notices {
        let app = own.app(&u.app);
        if app.is_some_and(|s| s.off) {
            continue;
        }
        let stage = app.and_then(|s| s.user_stage).unwrap_or(user_stage);
        if provkit_profile::days_left(u.death, view.at) <= stage {
            users.push((
                u.user.clone(),
                u.device.clone(),
                u.app.clone(),
                u.death,
                stage,
            ));
        }
    }
    if later_users {
        // The plan lists device users' notices from the tenant's stage on;
        // apps with an earlier stage of their own add theirs from it.
        let later: Vec<Option<i64>> = t
            .apps
            .iter()
            .map(|a| {
                own.app(&a.bundle_id)
                    .filter(|s| !s.off)
                    .and_then(|s| s.user_stage)
                    .filter(|&d| d > user_stage)
            })
            .collect();
        for d in &t.devices {
            let Some(user) = d.user else { continue };
            for &app in &d.apps {
                let Some(stage) = later[app.index()] else {
                    continue;
                };
                let death = t.app_death(app);
                let left = provkit_profile::days_left(death, view.at);
                if left <= stage && left > user_stage {
                    let a = &t.apps[app.index()];
                    users.push((
                        t.users[user.index()].name.as_str().to_owned(),
                        d.udid.as_str().to_owned(),
                        format!("{} {}", a.bundle_id, a.version),
                        death,
                        stage,
                    ));
                }
            }
        }
    }
    // Each device user's notice goes to the device's organization group (so
    // to the channels there and above it).
    let mut udids: Vec<String> = users.iter().map(|u| u.1.clone()).collect();
    udids.sort();
    udids.dedup();
    let device_group: HashMap<String, String> = store
        .devices_of(&udids)?
        .into_iter()
        .map(|d| {
            let og = provkit_store::org::of(d.org_group.as_ref()).to_owned();
            (d.udid, og)
        })
        .collect();
    let mut names: Vec<String> = users.iter().map(|u| u.0.clone()).collect();
    names.sort();
    names.dedup();
    let emails: HashMap<String, String> = store.user_emails(&names)?.into_iter().collect();
    for (user, device, app, death, stage) in users {
        let org_group = device_group
            .get(&device)
            .map_or(provkit_store::org::ROOT, String::as_str);
        let email = emails.get(&user);
        let mut facts = serde_json::json!({
            "schema": "provkit.notification/1",
            "org_group": org_group,
            "item_kind": "device-user",
            "user": user,
            "device": device,
            "app": app,
            "death": death,
            "days_left": provkit_profile::days_left(death, view.at),
            "stage": stage,
            "action": "update the app or keep the device in reach of the MDM",
        });
        if let Some(address) = email {
            facts["email"] = serde_json::json!(address);
        }
        let notice = Notice {
            item: format!("user:{device}:{app}"),
            org_group: org_group.to_owned(),
            stage,
            stages: Vec::new(),
            facts,
            only: Some(ChannelKind::Webhook),
        };
        if email.is_some() {
            // The same notice by email, to the user alone.
            out.push(Notice {
                only: Some(ChannelKind::Smtp),
                ..notice.clone()
            });
        }
        out.push(notice);
    }
    Ok(out)
}

/// One HTTP request a channel's message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The channel's URL.
    pub url: String,
    /// Extra headers (the signature).
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// A readable line: what dies when, why, and what to do.
fn line(facts: &serde_json::Value) -> String {
    let s = |k: &str| facts[k].as_str().unwrap_or_default().to_owned();
    let days = facts["days_left"].as_i64().unwrap_or_default();
    let when = if days <= 0 {
        "has expired".to_owned()
    } else {
        format!("dies in {days} days")
    };
    if is_device_user(facts) {
        return format!(
            "{} on device {} (user {}) {when} ({}). Action: {}.",
            s("app"),
            s("device"),
            s("user"),
            s("death"),
            s("action"),
        );
    }
    format!(
        "Profile {} ({}, team {}) {when} ({}): {}. Action: {}. Apps: {}. Devices: {}.",
        s("name"),
        s("uuid"),
        s("team"),
        s("death"),
        s("cause"),
        s("action"),
        facts["apps"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "none".into()),
        facts["devices"].as_u64().unwrap_or_default(),
    )
}

/// The signature header value for `body` at `at`.
pub fn sign(secret: &str, body: &[u8], at: DateTime<Utc>) -> String {
    let t = at.timestamp();
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        &signed,
    );
    format!("t={t},v1={}", provkit_profile::hex(tag.as_ref()))
}

/// Whether `header` signs `body` with `secret`, made within `tolerance` of
/// `now` (a receiver's check: forgeries and replays refused).
pub fn signature_ok(
    secret: &str,
    body: &[u8],
    header: &str,
    now: DateTime<Utc>,
    tolerance: chrono::Duration,
) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = Some(x.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now.timestamp() - t).abs() > tolerance.num_seconds() {
        return false;
    }
    let Some(tag) = (0..v1.len() / 2)
        .map(|i| u8::from_str_radix(v1.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        &signed,
        &tag,
    )
    .is_ok()
}

/// The message a channel sends for a delivery's facts, at `at`.
///
/// # Errors
/// [`ServiceError::Store`] with `Invalid` for a channel kind this version
/// cannot send (SMTP).
pub fn message(
    channel: &Channel,
    event_id: &str,
    facts: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<Message, ServiceError> {
    let text = text_of(channel, facts);
    let (body, headers) = match channel.kind {
        ChannelKind::Webhook => {
            let mut f = facts.clone();
            f["event_id"] = event_id.into();
            f["sent_at"] = serde_json::json!(at);
            let body = f.to_string().into_bytes();
            let sig = sign(channel.secret.as_deref().unwrap_or_default(), &body, at);
            (body, vec![(SIGNATURE_HEADER, sig)])
        }
        ChannelKind::Slack => (
            serde_json::json!({"text": format!(":warning: {text}")})
                .to_string()
                .into_bytes(),
            Vec::new(),
        ),
        ChannelKind::Teams => (
            serde_json::json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": format!("Profile {} {}", facts["name"].as_str().unwrap_or_default(), facts["action"].as_str().unwrap_or_default()),
                "themeColor": if facts["days_left"].as_i64().unwrap_or(0) <= 7 { "D70000" } else { "FFA500" },
                "title": format!("provkit: {} days left", facts["days_left"]),
                "text": text,
            })
            .to_string()
            .into_bytes(),
            Vec::new(),
        ),
        ChannelKind::Smtp => {
            return Err(provkit_store::StoreError::Invalid(
                "SMTP delivery is not available yet".into(),
            )
            .into());
        }
    };
    Ok(Message {
        url: channel.url.clone(),
        headers,
        body,
    })
}

/// Where an SMTP channel sends: `smtp://host:port` (STARTTLS when the
/// server offers it) or `smtps://user@host:port` (TLS from the start, the
/// password the channel's secret); `?from=ADDRESS` sets the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    /// TLS from the start.
    pub implicit_tls: bool,
    /// The user to authenticate as, when given.
    pub user: Option<String>,
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The sender address.
    pub from: String,
}

/// `local@domain`, at most 254 characters, nothing blank or controlling:
/// enough to refuse a typo when the channel is added, not a full RFC 5322
/// parser (the SMTP library parses it again when it sends).
fn looks_like_address(a: &str) -> bool {
    a.len() <= 254
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && a.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
}

/// Reads an SMTP channel's URL.
///
/// # Errors
/// [`provkit_store::StoreError::Invalid`] naming what is wrong.
pub fn smtp_target(url: &str) -> Result<SmtpTarget, ServiceError> {
    let bad = |why: &str| -> ServiceError {
        provkit_store::StoreError::Invalid(format!("SMTP URL {url:?}: {why}")).into()
    };
    let (implicit_tls, rest) = if let Some(r) = url.strip_prefix("smtps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("smtp://") {
        (false, r)
    } else {
        return Err(bad("give smtp:// or smtps://"));
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.trim_end_matches('/');
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_owned()), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?,
        ),
        None => (hostport, if implicit_tls { 465 } else { 25 }),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("no host"));
    }
    let from = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("from="))
        .map_or_else(|| "provkit@localhost".to_owned(), str::to_owned);
    if !from.contains('@') {
        return Err(bad("from= is not an address"));
    }
    Ok(SmtpTarget {
        implicit_tls,
        user,
        host: host.to_owned(),
        port,
        from,
    })
}

/// An email's subject, plain text and HTML, with the same facts as the
/// other channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A message's text: the channel's template, else the standard line.
pub fn text_of(channel: &Channel, facts: &serde_json::Value) -> String {
    channel
        .template
        .as_deref()
        .map_or_else(|| line(facts), |t| render(t, facts))
}

/// Whether the facts are a device user's notice (else an item's).
fn is_device_user(facts: &serde_json::Value) -> bool {
    facts["item_kind"] == "device-user"
}

/// Whom a delivery's email goes to: the device user alone for a device
/// user's notice (none when the facts carry no address), else the
/// channel's list.
pub fn recipients(channel: &Channel, facts: &serde_json::Value) -> Vec<String> {
    if is_device_user(facts) {
        facts["email"]
            .as_str()
            .map(|a| vec![a.to_owned()])
            .unwrap_or_default()
    } else {
        channel.to.clone()
    }
}

/// The email for a delivery's facts (its text from the channel's template
/// when it has one).
pub fn email(channel: &Channel, facts: &serde_json::Value) -> Email {
    let s = |k: &str| facts[k].as_str().unwrap_or_default().to_owned();
    let user = is_device_user(facts);
    let name = if user { s("app") } else { s("name") };
    let days = facts["days_left"].as_i64().unwrap_or_default();
    let action = facts["action"].as_str().unwrap_or_default();
    let subject = match (user, days <= 0) {
        (true, true) => format!("[provkit] {name} on your device has stopped working: {action}"),
        (true, false) => {
            format!("[provkit] {name} on your device stops working in {days} days: {action}")
        }
        (false, true) => format!("[provkit] {name} has expired: {action}"),
        (false, false) => format!("[provkit] {name} dies in {days} days: {action}"),
    };
    let text = text_of(channel, facts);
    let rows: Vec<(&str, String)> = if user {
        vec![
            ("App", name.clone()),
            ("Device", s("device")),
            ("User", s("user")),
            ("Stops working", s("death")),
            ("Days left", days.to_string()),
            ("Action", action.to_owned()),
        ]
    } else {
        vec![
            ("Profile", name.to_owned()),
            (
                "UUID",
                facts["uuid"].as_str().unwrap_or_default().to_owned(),
            ),
            (
                "Team",
                facts["team"].as_str().unwrap_or_default().to_owned(),
            ),
            (
                "Dies",
                facts["death"].as_str().unwrap_or_default().to_owned(),
            ),
            ("Days left", days.to_string()),
            (
                "Cause",
                facts["cause"].as_str().unwrap_or_default().to_owned(),
            ),
            ("Action", action.to_owned()),
            ("Devices", facts["devices"].to_string()),
        ]
    };
    let mut html = String::from("<html><body><h2>provkit</h2><table>");
    for (k, v) in rows {
        html.push_str(&format!(
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
            html_escape(&v)
        ));
    }
    html.push_str("</table></body></html>");
    Email {
        subject,
        text: format!("{text}\n"),
        html,
    }
}

/// A sample message's facts, for `provkit notify test`.
pub fn sample_facts(at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "schema": "provkit.notification/1",
        "org_group": "Global",
        "item_kind": "profile",
        "name": "Sample profile (a test of this channel)",
        "uuid": "00000000-0000-4000-8000-000000000000",
        "team": "TEAMID1234",
        "death": at + chrono::Duration::days(30),
        "days_left": 30,
        "stage": 30,
        "cause": "profile expires",
        "action": "renew",
        "apps": ["com.example.app 1.0"],
        "devices": 1,
        "links": {},
        "skipped_stages": [],
        "test": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_refuses_forgeries_and_replays() {
        let at = DateTime::UNIX_EPOCH + chrono::Duration::days(20_000);
        let body = br#"{"stage": 30}"#;
        let h = sign("s3cret", body, at);
        let five = chrono::Duration::minutes(5);
        assert!(signature_ok("s3cret", body, &h, at, five));
        assert!(!signature_ok("other", body, &h, at, five), "wrong key");
        assert!(
            !signature_ok("s3cret", br#"{"stage": 7}"#, &h, at, five),
            "changed body"
        );
        assert!(
            !signature_ok("s3cret", body, &h, at + chrono::Duration::hours(1), five),
            "replayed later"
        );
        assert!(!signature_ok("s3cret", body, "t=1,v1=zz", at, five));
    }

    #[test]
    fn messages_read_as_messages() {
        let at = DateTime::UNIX_EPOCH;
        let facts = sample_facts(at);
        let c = |kind| Channel {
            name: "c".into(),
            kind,
            url: "https://example.invalid/hook".into(),
            secret: Some("k".into()),
            to: Vec::new(),
            org_group: "Global".into(),
            template: None,
            created_by: "t".into(),
            created_at: at,
        };
        let slack = message(&c(ChannelKind::Slack), "e", &facts, at).expect("slack");
        let v: serde_json::Value = serde_json::from_slice(&slack.body).expect("json");
        assert!(
            v["text"]
                .as_str()
                .is_some_and(|t| t.contains("dies in 30 days") && t.contains("renew"))
        );
        let teams = message(&c(ChannelKind::Teams), "e", &facts, at).expect("teams");
        let v: serde_json::Value = serde_json::from_slice(&teams.body).expect("json");
        assert_eq!(v["@type"], "MessageCard");
        let hook = message(&c(ChannelKind::Webhook), "e-1", &facts, at).expect("webhook");
        let v: serde_json::Value = serde_json::from_slice(&hook.body).expect("json");
        assert_eq!(v["event_id"], "e-1");
        assert!(signature_ok(
            "k",
            &hook.body,
            &hook.headers[0].1,
            at,
            chrono::Duration::minutes(5)
        ));
    }

    #[test]
    fn templates_take_the_facts_and_refuse_unknown_variables() {
        let at = DateTime::UNIX_EPOCH;
        let facts = sample_facts(at);
        assert!(check_template("{name} dies in {days_left} days: {action}").is_ok());
        assert!(check_template("{nmae}").is_err(), "a misspelt variable");
        assert!(check_template("{name").is_err());
        assert!(check_template("name}").is_err());
        assert_eq!(
            render("{name}: {days_left} days, apps {apps}", &facts),
            "Sample profile (a test of this channel): 30 days, apps com.example.app 1.0"
        );
        let mut c = Channel {
            name: "c".into(),
            kind: ChannelKind::Slack,
            url: "https://example.invalid".into(),
            secret: None,
            to: Vec::new(),
            org_group: "Global".into(),
            template: Some("Renew {name} by {death}".into()),
            created_by: "t".into(),
            created_at: at,
        };
        let m = message(&c, "e", &facts, at).expect("slack");
        let v: serde_json::Value = serde_json::from_slice(&m.body).expect("json");
        assert!(
            v["text"]
                .as_str()
                .is_some_and(|t| t.contains("Renew Sample profile")),
            "{v}"
        );
        c.kind = ChannelKind::Smtp;
        assert!(email(&c, &facts).text.starts_with("Renew Sample profile"));
    }

    #[test]
    fn an_smtp_channel_with_a_bad_address_is_refused_when_added() {
        let mut store = provkit_store::MemoryStore::default();
        let a = Actor {
            name: "t".into(),
            at: DateTime::UNIX_EPOCH,
        };
        let url = "smtp://127.0.0.1:25";
        for bad in [
            "ops",
            "ops@localhost",
            "a b@example.com",
            "<ops@example.com>",
        ] {
            let o = ChannelOptions::default().to(&[bad.to_owned()]);
            assert!(
                add_channel(&mut store, "m", ChannelKind::Smtp, url, &o, &a).is_err(),
                "{bad}"
            );
        }
        let o = ChannelOptions::default().to(&["ops@example.com".to_owned()]);
        assert!(add_channel(&mut store, "m", ChannelKind::Smtp, url, &o, &a).is_ok());
    }
}

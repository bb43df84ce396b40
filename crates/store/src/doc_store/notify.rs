//! Notification channels and their messages on the document tables:
//! channels in `meta`, one message per (item, stage, channel) in
//! `notice_out` (its key is what makes it once), due ones in `notice_due`,
//! claimed under a lease like dispatches.

use chrono::{DateTime, Duration, Utc};

use super::delivery::due_key;
use super::{DocStore, R, from_json, hidden, root_only, to_json, ukey};
use crate::conn::{Docs, Table};
use crate::error::StoreError;
use crate::notify::{Channel, ClaimedNotice, Notice, NoticeDelivery};
use crate::records::Actor;

/// Channels live in `meta` under this prefix and their name.
const CHANNEL_PREFIX: &str = "notify\u{1}";

/// Profiles' own notification settings live in `meta` under this prefix
/// and the UUID.
const SETTINGS_PREFIX: &str = "notify-item\u{1}";

/// Apps' own notification settings live in `meta` under this prefix and
/// the bundle identifier.
const APP_SETTINGS_PREFIX: &str = "notify-app\u{1}";

/// Stages are whole days from 0 to ten years.
fn check_stages(settings: &crate::NotifySettings) -> R<()> {
    if let Some(stages) = &settings.stages
        && (stages.is_empty() || stages.iter().any(|s| !(0..=3650).contains(s)))
    {
        return Err(StoreError::Invalid(
            "stages: give one or more days from 0 to 3,650".into(),
        ));
    }
    if let Some(s) = settings.user_stage
        && !(0..=3650).contains(&s)
    {
        return Err(StoreError::Invalid(
            "user stage: give days from 0 to 3,650".into(),
        ));
    }
    Ok(())
}

/// A message's key: item, stage (sortable), channel.
fn out_key(item: &str, stage: i64, channel: &str) -> String {
    format!("{}\u{1}{:+06}\u{1}{channel}", ukey(item), stage)
}

#[allow(private_bounds)]
impl<D: Docs> DocStore<D> {
    pub(super) fn add_channel_in(d: &mut D, c: &Channel, actor: &Actor) -> R<()> {
        if c.name.trim().is_empty() || c.name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "channel name {:?}: give a non-empty name without control characters",
                c.name
            )));
        }
        let scheme_ok = match c.kind {
            crate::ChannelKind::Smtp => {
                c.url.starts_with("smtp://") || c.url.starts_with("smtps://")
            }
            _ => c.url.starts_with("https://") || c.url.starts_with("http://"),
        };
        if !scheme_ok {
            return Err(StoreError::Invalid(format!(
                "channel URL {:?} does not suit a {} channel",
                c.url,
                c.kind.as_str()
            )));
        }
        crate::org::validate(&c.org_group)?;
        if !crate::org::within(d.scope(), &c.org_group) {
            return Err(hidden("organization group", &c.org_group, "notify add"));
        }
        let key = format!("{CHANNEL_PREFIX}{}", c.name);
        if !d.insert_new(Table::Meta, &key, &to_json(c))? {
            return Err(StoreError::Invalid(format!(
                "a channel named {:?} exists",
                c.name
            )));
        }
        let after = serde_json::json!({
            "kind": c.kind.as_str(), "url": c.url, "org_group": c.org_group, "to": c.to,
            "secret": c.secret.is_some(),
        });
        Self::audit(d, actor, "notify-add", &c.name, None, Some(after))
    }

    pub(super) fn channels_in(d: &mut D) -> R<Vec<Channel>> {
        let mut out = Vec::new();
        for (_, doc) in d.scan(Table::Meta, CHANNEL_PREFIX)? {
            let c: Channel = from_json(&doc)?;
            if crate::org::within(d.scope(), &c.org_group) {
                out.push(c);
            }
        }
        Ok(out)
    }

    pub(super) fn set_channel_template_in(
        d: &mut D,
        name: &str,
        template: Option<&str>,
        actor: &Actor,
    ) -> R<()> {
        let key = format!("{CHANNEL_PREFIX}{name}");
        let mut c: Channel = match d.get(Table::Meta, &key)? {
            Some(doc) => from_json(&doc)?,
            None => return Err(hidden("channel", name, "notify template")),
        };
        if !crate::org::within(d.scope(), &c.org_group) {
            return Err(hidden("channel", name, "notify template"));
        }
        let before = serde_json::json!(c.template);
        c.template = template.map(str::to_owned);
        d.put(Table::Meta, &key, &to_json(&c))?;
        Self::audit(
            d,
            actor,
            "notify-template",
            name,
            Some(before),
            Some(serde_json::json!(c.template)),
        )
    }

    pub(super) fn set_notify_settings_in(
        d: &mut D,
        uuid: &str,
        settings: &crate::NotifySettings,
        actor: &Actor,
    ) -> R<()> {
        check_stages(settings)?;
        if settings.user_stage.is_some() {
            return Err(StoreError::Invalid(
                "user stage: device users hear of apps; set it on the app".into(),
            ));
        }
        // The profile must be one the scope sees.
        let visible_version = d
            .scan(Table::Profiles, &format!("{}/", ukey(uuid)))?
            .iter()
            .map(|(_, v)| crate::schema::profile_from_doc(v))
            .collect::<R<Vec<_>>>()?
            .into_iter()
            .any(|p| crate::org::within(d.scope(), crate::org::of(p.org_group.as_ref())));
        if !visible_version {
            return Err(hidden("profile", uuid, "notification settings"));
        }
        let key = format!("{SETTINGS_PREFIX}{}", ukey(uuid));
        Self::put_settings(d, &key, uuid, settings, actor)
    }

    /// Stores (or, for the default, clears) one item's settings under
    /// `key`; audited with before and after.
    fn put_settings(
        d: &mut D,
        key: &str,
        item: &str,
        settings: &crate::NotifySettings,
        actor: &Actor,
    ) -> R<()> {
        let before = d
            .get(Table::Meta, key)?
            .map(|v| from_json::<serde_json::Value>(&v))
            .transpose()?;
        if *settings == crate::NotifySettings::default() {
            d.delete(Table::Meta, key)?;
        } else {
            d.put(Table::Meta, key, &to_json(settings))?;
        }
        Self::audit(
            d,
            actor,
            "notify-settings",
            item,
            before,
            Some(serde_json::json!(settings)),
        )
    }

    pub(super) fn set_app_notify_settings_in(
        d: &mut D,
        bundle_id: &str,
        settings: &crate::NotifySettings,
        actor: &Actor,
    ) -> R<()> {
        check_stages(settings)?;
        // Some version of the app must be one the scope sees.
        let visible_version = d
            .scan(Table::Apps, &format!("{bundle_id}\u{1}"))?
            .iter()
            .map(|(_, v)| from_json::<crate::AppRecord>(v))
            .collect::<R<Vec<_>>>()?
            .into_iter()
            .any(|a| crate::org::within(d.scope(), crate::org::of(a.org_group.as_ref())));
        if !visible_version {
            return Err(hidden("app", bundle_id, "notification settings"));
        }
        let key = format!("{APP_SETTINGS_PREFIX}{bundle_id}");
        Self::put_settings(d, &key, &format!("app:{bundle_id}"), settings, actor)
    }

    pub(super) fn app_notify_settings_in(d: &mut D) -> R<Vec<(String, crate::NotifySettings)>> {
        d.scan(Table::Meta, APP_SETTINGS_PREFIX)?
            .iter()
            .map(|(k, v)| Ok((k[APP_SETTINGS_PREFIX.len()..].to_owned(), from_json(v)?)))
            .collect()
    }

    pub(super) fn notify_settings_in(d: &mut D) -> R<Vec<(String, crate::NotifySettings)>> {
        d.scan(Table::Meta, SETTINGS_PREFIX)?
            .iter()
            .map(|(k, v)| Ok((k[SETTINGS_PREFIX.len()..].to_owned(), from_json(v)?)))
            .collect()
    }

    pub(super) fn remove_channel_in(d: &mut D, name: &str, actor: &Actor) -> R<Channel> {
        let key = format!("{CHANNEL_PREFIX}{name}");
        let c: Channel = match d.get(Table::Meta, &key)? {
            Some(doc) => from_json(&doc)?,
            None => return Err(hidden("channel", name, "notify remove")),
        };
        if !crate::org::within(d.scope(), &c.org_group) {
            return Err(hidden("channel", name, "notify remove"));
        }
        d.delete(Table::Meta, &key)?;
        Self::audit(d, actor, "notify-remove", name, None, None)?;
        Ok(c)
    }

    /// One message per (notice, channel reaching the notice's group), each
    /// made once whatever the number of calls; `skipped_stages` in its
    /// facts names the earlier stages this channel never got.
    pub(super) fn queue_notices_in(d: &mut D, notices: &[Notice], at: DateTime<Utc>) -> R<usize> {
        root_only(d, "notifications")?;
        let channels: Vec<Channel> = d
            .scan(Table::Meta, CHANNEL_PREFIX)?
            .iter()
            .map(|(_, v)| from_json(v))
            .collect::<R<_>>()?;
        let mut made = 0;
        for n in notices {
            for c in channels.iter().filter(|c| {
                crate::org::within(&c.org_group, &n.org_group) && n.only.is_none_or(|k| k == c.kind)
            }) {
                let key = out_key(&n.item, n.stage, &c.name);
                if d.get(Table::NoticeOut, &key)?.is_some() {
                    continue;
                }
                let mut skipped = Vec::new();
                for &s in n.stages.iter().filter(|&&s| s > n.stage) {
                    if d.get(Table::NoticeOut, &out_key(&n.item, s, &c.name))?
                        .is_none()
                    {
                        skipped.push(s);
                    }
                }
                skipped.sort_unstable_by(|a, b| b.cmp(a));
                let mut facts = n.facts.clone();
                facts["skipped_stages"] = serde_json::json!(skipped);
                let event_id = format!("{}-{}-{}", ukey(&n.item), n.stage, c.name);
                let out = NoticeDelivery {
                    item: n.item.clone(),
                    stage: n.stage,
                    channel: c.name.clone(),
                    event_id,
                    facts,
                    attempts: 0,
                    due: Some(at),
                    last_error: None,
                    sent_at: None,
                };
                d.put(Table::NoticeOut, &key, &to_json(&out))?;
                d.put(Table::NoticeDue, &due_key(at, &key), &key)?;
                made += 1;
            }
        }
        Ok(made)
    }

    pub(super) fn claim_notices_in(
        d: &mut D,
        at: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> R<Vec<ClaimedNotice>> {
        root_only(d, "notifications")?;
        let mut out = Vec::new();
        for (key, _) in super::delivery::claim_due(d, Table::NoticeDue, at, lease, limit)? {
            let Some(doc) = d.get(Table::NoticeOut, &key)? else {
                continue;
            };
            let mut n: NoticeDelivery = from_json(&doc)?;
            n.due = Some(at + lease);
            n.attempts += 1;
            d.put(Table::NoticeOut, &key, &to_json(&n))?;
            let Some(c) = d.get(Table::Meta, &format!("{CHANNEL_PREFIX}{}", n.channel))? else {
                continue;
            };
            out.push(ClaimedNotice {
                delivery: n,
                channel: from_json(&c)?,
            });
        }
        Ok(out)
    }

    pub(super) fn settle_notice_in(
        d: &mut D,
        n: &NoticeDelivery,
        outcome: Result<(), String>,
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> R<()> {
        root_only(d, "notifications")?;
        let key = out_key(&n.item, n.stage, &n.channel);
        let doc = d
            .get(Table::NoticeOut, &key)?
            .ok_or_else(|| hidden("notification", &key, "settle"))?;
        let mut stored: NoticeDelivery = from_json(&doc)?;
        if let Some(due) = stored.due {
            d.delete(Table::NoticeDue, &due_key(due, &key))?;
        }
        match outcome {
            Ok(()) => {
                stored.due = None;
                stored.sent_at = Some(at);
                stored.last_error = None;
            }
            Err(e) => {
                stored.due = Some(retry_at);
                d.put(Table::NoticeDue, &due_key(retry_at, &key), &key)?;
                let actor = Actor {
                    name: "notify".into(),
                    at,
                };
                let after =
                    serde_json::json!({"stage": n.stage, "attempt": stored.attempts, "error": e});
                stored.last_error = Some(e);
                Self::audit(d, &actor, "notify-failed", &n.channel, None, Some(after))?;
            }
        }
        d.put(Table::NoticeOut, &key, &to_json(&stored))
    }

    pub(super) fn notices_in(d: &mut D) -> R<Vec<NoticeDelivery>> {
        root_only(d, "notifications")?;
        d.scan(Table::NoticeOut, "")?
            .iter()
            .map(|(_, v)| from_json(v))
            .collect()
    }
}

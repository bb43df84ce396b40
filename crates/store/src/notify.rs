//! What the store keeps for notifications: the channels (per organization
//! group, reaching the items of that group and the groups below it) and
//! one delivery per (item, stage, channel), so each message goes once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// JSON with a stable schema, signed with HMAC-SHA256.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams incoming webhook or workflow URL.
    Teams,
    /// Email over SMTP.
    Smtp,
}

impl ChannelKind {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Smtp => "smtp",
        }
    }

    /// Parses `webhook`, `slack`, `teams` or `smtp`.
    pub fn parse(s: &str) -> Option<ChannelKind> {
        Some(match s {
            "webhook" => ChannelKind::Webhook,
            "slack" => ChannelKind::Slack,
            "teams" => ChannelKind::Teams,
            "smtp" => ChannelKind::Smtp,
            _ => return None,
        })
    }
}

/// A notification channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// A name unique in the tenant.
    pub name: String,
    /// How it delivers.
    pub kind: ChannelKind,
    /// Where (an `https://` URL, or `smtp://host:port`).
    pub url: String,
    /// The signing key or password: stored to be used, never shown.
    pub secret: Option<String>,
    /// Email addresses (SMTP).
    pub to: Vec<String>,
    /// The organization group whose items (and those below it) it hears of.
    pub org_group: String,
    /// The message text with the facts as `{name}`-style variables (Slack,
    /// Teams and email; the webhook's JSON is the schema itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Who added it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A stage due for an item, with the facts its messages carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The item: a profile UUID or a certificate fingerprint.
    pub item: String,
    /// Its organization group (a path).
    pub org_group: String,
    /// The stage, in days before death.
    pub stage: i64,
    /// The admin stages configured, for telling which were skipped.
    pub stages: Vec<i64>,
    /// The facts (the webhook's schema), as JSON.
    pub facts: serde_json::Value,
    /// Only channels of this kind hear of it (a device user's notice goes
    /// to webhooks, for the organisation's own portal or bot).
    pub only: Option<ChannelKind>,
}

/// One message to send: an item's stage through one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeDelivery {
    /// The item.
    pub item: String,
    /// The stage.
    pub stage: i64,
    /// The channel's name.
    pub channel: String,
    /// A stable id (the webhook's `event_id`): the same on every retry.
    pub event_id: String,
    /// The facts, with `skipped_stages` (earlier stages never sent, after
    /// downtime: only the most urgent goes).
    pub facts: serde_json::Value,
    /// Tries so far.
    pub attempts: u32,
    /// When next due (none: sent).
    pub due: Option<DateTime<Utc>>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
}

/// A delivery handed to a sender, with its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedNotice {
    /// The delivery.
    pub delivery: NoticeDelivery,
    /// Its channel.
    pub channel: Channel,
}

/// An item's own notification settings, over the tenant's stages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// No admin messages for it at all.
    #[serde(default)]
    pub off: bool,
    /// Its own admin stages, in days before death (none: the tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<i64>>,
    /// An app's own device-user notice stage, in days before the app dies
    /// (none: the tenant's); apps only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_stage: Option<i64>,
}

impl std::fmt::Display for NotifySettings {
    /// One line: `no messages`, or whose admin stages and, when set, the
    /// device users' stage.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.off {
            return f.write_str("no messages");
        }
        match &self.stages {
            Some(st) => {
                let days: Vec<String> = st.iter().map(ToString::to_string).collect();
                write!(f, "its own admin stages {} days", days.join(", "))?;
            }
            None => f.write_str("the tenant's admin stages")?,
        }
        if let Some(u) = self.user_stage {
            write!(f, "; device users at {u} days")?;
        }
        Ok(())
    }
}

//! `provkit notify`: the channels warnings go to. Secrets come from the
//! environment and are stored to be used, never printed again.

use anyhow::Result;
use clap::Subcommand;
use provkit_store::ChannelKind;

use crate::output::outln;
use crate::profile_cmd::Outcome;

#[derive(Debug, Subcommand)]
pub(crate) enum NotifyCommand {
    /// Add a channel for an organization group's items (and those below
    /// it); audited.
    Add {
        /// webhook (signed JSON), slack or teams.
        #[arg(long)]
        kind: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Where it posts.
        #[arg(long)]
        url: String,
        /// The environment variable holding the signing secret (webhook).
        #[arg(long)]
        secret_env: Option<String>,
        /// An email address (SMTP; repeatable).
        #[arg(long)]
        to: Vec<String>,
        /// The organization group (default: Global).
        #[arg(long)]
        org_group: Option<String>,
        /// The message text, with `{name}`, `{days_left}`, `{death}`,
        /// `{action}`, ... as variables (Slack, Teams, email).
        #[arg(long)]
        template: Option<String>,
    },
    /// Set a channel's message template, or clear it (no TEXT); audited.
    Template {
        /// The channel.
        name: String,
        /// The template.
        text: Option<String>,
    },
    /// A profile's own admin stages, or none at all; with neither flag it
    /// goes back to the tenant's stages; audited.
    Profile {
        /// The profile (UUID or a unique prefix of 8 or more).
        profile: String,
        /// No admin messages for it.
        #[arg(long, conflicts_with = "stages")]
        off: bool,
        /// Its own stages in days, e.g. 90,30,7.
        #[arg(long, value_delimiter = ',')]
        stages: Option<Vec<i64>>,
    },
    /// An app's own settings (every version of the bundle): off, or its
    /// own admin stages for the profiles it uses and its own device-user
    /// stage; with no flag it goes back to the tenant's; audited.
    App {
        /// The bundle identifier.
        bundle_id: String,
        /// No messages for it: no device-user notices, and its profiles'
        /// messages leave it out (none when all their apps are off).
        #[arg(long, conflicts_with_all = ["stages", "user_stage"])]
        off: bool,
        /// Admin stages in days for the profiles it uses, e.g. 90,30,7.
        #[arg(long, value_delimiter = ',')]
        stages: Option<Vec<i64>>,
        /// Its device users' notice, in days before it dies.
        #[arg(long)]
        user_stage: Option<i64>,
    },
    /// The tenant's stages: the admin stages and the device-user notice,
    /// in days before a death date (shown when no flag is given); audited.
    Stages {
        /// Admin stages, e.g. 60,30,7,0.
        #[arg(long, value_delimiter = ',')]
        admin: Option<Vec<i64>>,
        /// The device users' notice, e.g. 30.
        #[arg(long)]
        user: Option<i64>,
    },
    /// The channels, without their secrets.
    List,
    /// Remove a channel; audited.
    Remove {
        /// Its name.
        name: String,
    },
    /// Send one sample message through a channel now.
    Test {
        /// Its name.
        name: String,
    },
}

pub(crate) fn run(db: &crate::db::DbArgs, command: NotifyCommand) -> Result<Outcome> {
    let a = crate::tenant_cmd::actor();
    match command {
        NotifyCommand::Add {
            kind,
            name,
            url,
            secret_env,
            to,
            org_group,
            template,
        } => {
            let kind = ChannelKind::parse(&kind).ok_or_else(|| {
                provkit_store::StoreError::Invalid(format!(
                    "--kind {kind}: give webhook, slack, teams or smtp"
                ))
            })?;
            let secret = secret_env
                .as_deref()
                .map(crate::mdm_cmd::secret)
                .transpose()?;
            let c = provkit_service::notify::add_channel(
                db.open()?.as_mut(),
                &name,
                kind,
                &url,
                &provkit_service::notify::ChannelOptions::default()
                    .secret(secret.as_deref())
                    .to(&to)
                    .org_group(org_group.as_deref())
                    .template(template.as_deref()),
                &a,
            )?;
            outln!("added {} ({}) for {}", c.name, c.kind.as_str(), c.org_group)?;
        }
        NotifyCommand::Template { name, text } => {
            provkit_service::notify::set_template(db.open()?.as_mut(), &name, text.as_deref(), &a)?;
            outln!(
                "{name}: template {}",
                if text.is_some() { "set" } else { "cleared" }
            )?;
        }
        NotifyCommand::Profile {
            profile,
            off,
            stages,
        } => {
            let mut store = db.open()?;
            let t = store.load_tenant()?;
            let id = provkit_service::names::profile(&t, &profile)?;
            let uuid = t.profiles[id.index()].uuid.clone();
            let settings = provkit_store::NotifySettings {
                off,
                stages,
                user_stage: None,
            };
            store.set_notify_settings(&uuid, &settings, &a)?;
            outln!("{uuid}: {settings}")?;
        }
        NotifyCommand::App {
            bundle_id,
            off,
            stages,
            user_stage,
        } => {
            let settings = provkit_store::NotifySettings {
                off,
                stages,
                user_stage,
            };
            db.open()?
                .set_app_notify_settings(&bundle_id, &settings, &a)?;
            outln!("{bundle_id}: {settings}")?;
        }
        NotifyCommand::Stages { admin, user } => {
            let mut store = db.open()?;
            let mut stages = store.load_tenant()?.config;
            if admin.is_some() || user.is_some() {
                if let Some(a) = admin {
                    stages.admin_thresholds_days = a;
                }
                if let Some(u) = user {
                    stages.user_notice_days = u;
                }
                store.set_notice_stages(&stages, &a)?;
                stages = store.load_tenant()?.config;
            }
            outln!(
                "admin stages {:?} days; device users {} days",
                stages.admin_thresholds_days,
                stages.user_notice_days
            )?;
        }
        NotifyCommand::List => {
            for c in db.read()?.channels()? {
                outln!(
                    "{}  {}  {}  {}{}",
                    c.name,
                    c.kind.as_str(),
                    c.url,
                    c.org_group,
                    if c.secret.is_some() { "  signed" } else { "" }
                )?;
            }
        }
        NotifyCommand::Remove { name } => {
            let c = db.open()?.remove_channel(&name, &a)?;
            outln!("removed {}", c.name)?;
        }
        NotifyCommand::Test { name } => {
            let c = db
                .read()?
                .channels()?
                .into_iter()
                .find(|c| c.name == name)
                .ok_or_else(|| provkit_store::StoreError::UnknownReference {
                    kind: "channel",
                    name: name.clone(),
                    context: "notify test".into(),
                })?;
            let at = chrono::Utc::now();
            let facts = provkit_service::notify::sample_facts(at);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if c.kind == ChannelKind::Smtp {
                let sent = runtime.block_on(provkit_server::delivery::send_email(&c, &facts));
                return match sent {
                    Ok(()) => {
                        outln!("sent a sample to {} ({})", c.name, c.to.join(", "))?;
                        Ok(Outcome::Ok)
                    }
                    Err(e) => {
                        outln!("{}: not delivered: {e}", c.name)?;
                        Ok(Outcome::Invalid)
                    }
                };
            }
            let m = provkit_service::notify::message(
                &c,
                &format!("test-{}", at.timestamp()),
                &facts,
                at,
            )?;
            let status = runtime.block_on(async {
                let mut req = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(15))
                    .build()?
                    .post(&m.url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(m.body);
                for (k, v) in m.headers {
                    req = req.header(k, v);
                }
                Ok::<_, reqwest::Error>(req.send().await?.status())
            });
            match status {
                Ok(s) if s.is_success() => {
                    outln!("sent a sample to {} (HTTP {})", c.name, s.as_u16())?
                }
                Ok(s) => {
                    outln!("{}: the receiver answered HTTP {}", c.name, s.as_u16())?;
                    return Ok(Outcome::Invalid);
                }
                Err(e) => {
                    outln!("{}: not delivered: {e}", c.name)?;
                    return Ok(Outcome::Invalid);
                }
            }
        }
    }
    Ok(Outcome::Ok)
}

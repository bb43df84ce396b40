//! The command line's words: every subcommand and flag (clap), parsed
//! into these types and dispatched by `main`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub(crate) use crate::subargs::{
    AppCommand, InventoryCommand, IpaCommand, ListCommand, OrgGroupCommand, ProfileCommand,
    TokenCommand, TrustCommand,
};

/// Provisioning profiles and iOS app signatures: inspect, verify, plan.
#[derive(Debug, Parser)]
#[command(name = "provkit", version, about, after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// Show dates in UTC instead of the local time zone.
    #[arg(long, global = true)]
    pub(crate) utc: bool,
    #[command(flatten)]
    pub(crate) db: crate::db::DbArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

pub(crate) const EXAMPLES: &str = "Examples:
  provkit demo
  provkit init && provkit import profiles/ && provkit inventory import inventory.json
  provkit assign 5D1AB0E1-... --include Sales --exclude Kiosks
  provkit plan --at 2026-11-22T00:00:00Z --json
  provkit expiring --within 60d --svg expiring.svg
  provkit renew OLD-UUID new.mobileprovision && provkit delete OLD-UUID
  provkit ipa verify --at signing-time App.ipa
  provkit ipa verify --device 00008030-001A2B3C4D5E6F70 --json App.ipa
  provkit ipa info App.ipa
  provkit ipa resign App.ipa --identity dev.p12 --password-env P12_PASS --profile new.mobileprovision -o App-resigned.ipa
  provkit profile inspect --json app.mobileprovision
  provkit profile verify --at 2026-11-22T00:00:00Z profiles/*.mobileprovision
  provkit profile verify --at signing-time app.mobileprovision

Exit codes: 0 success, 1 invalid or refused (a profile or app invalid, a renewal or deletion refused),\n2 an input unreadable (a file that is not a profile or not an app, an inventory with unknown names),\n3 usage, database or I/O error.";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// iOS apps (.ipa or unpacked .app): verify the signature as a device would, or describe.
    Ipa {
        #[command(subcommand)]
        command: IpaCommand,
    },
    /// Provisioning profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// The main job on a fresh machine: a sample tenant in a new SQLite file
    /// (profiles signed by a test CA), then plan and expiring.
    Demo {
        /// Folder for the sample files and database.
        #[arg(long, default_value = "provkit-demo")]
        dir: PathBuf,
        /// The instant to plan at (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
        /// Then serve the web console over the demo tenant, with a console
        /// user whose sign-in is printed.
        #[arg(long)]
        serve: bool,
        /// Where the console listens with --serve.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Create the database (SQLite by default) and apply migrations.
    Init,
    /// Import a seeded, generated tenant with the large tenant's proportions
    /// (profiles signed by the test CA), for trying the engine at scale.
    Generate {
        /// Devices (users, groups, profiles and apps scale with it).
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        /// Seed: the same seed gives the same tenant.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Add to a database that already holds a tenant.
        #[arg(long)]
        force: bool,
    },
    /// Store profiles (and, later, IPAs) from files or folders, recursively.
    Import {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Store profiles that fail their trust or integrity checks anyway;
        /// the audit log records the override and the findings.
        #[arg(long)]
        allow_untrusted: bool,
        /// The admin's display name for the profile (one profile file only).
        #[arg(long)]
        name: Option<String>,
        /// The admin's description of the profile (one profile file only).
        #[arg(long)]
        description: Option<String>,
    },
    /// Organization groups: every object belongs to one; a token sees its
    /// group and the groups below it.
    OrgGroup {
        #[command(subcommand)]
        command: OrgGroupCommand,
    },
    /// MDM servers (NanoMDM, MicroMDM) that deliver to devices.
    Mdm {
        #[command(subcommand)]
        command: crate::mdm_cmd::MdmCommand,
    },
    /// Notification channels: signed webhooks, Slack, Teams.
    Notify {
        #[command(subcommand)]
        command: crate::notify_cmd::NotifyCommand,
    },
    /// Console users for `provkit serve`'s web console (password sign-in).
    ConsoleUser {
        #[command(subcommand)]
        command: crate::subargs::ConsoleUserCommand,
    },
    /// API tokens for `provkit serve`.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Serve the HTTP API (JSON, bearer tokens) over this database.
    Serve(ServeFlags),
    /// Trust anchors beside Apple's roots: profiles and apps must chain to one.
    Trust {
        #[command(subcommand)]
        command: TrustCommand,
    },
    /// Users, devices and groups.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// Apps.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Devices: UDID, platform, user, apps, what each should hold.
    Device {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// Users and the devices they use.
    User {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// Groups, as a tree of nested groups with their members.
    Group {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// Add targets to a profile's assignments (group names, all-users,
    /// all-devices); with --replace, set exactly these.
    Assign {
        /// Profile UUID.
        profile: String,
        /// Targets to include.
        #[arg(long, num_args = 1..)]
        include: Vec<String>,
        /// Targets to exclude.
        #[arg(long, num_args = 1..)]
        exclude: Vec<String>,
        /// Replace every assignment with exactly the targets given.
        #[arg(long)]
        replace: bool,
        /// The instant for the device counts (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Remove targets from a profile's assignments, or all of them with --all.
    Unassign {
        /// Profile UUID.
        profile: String,
        /// Included targets to remove.
        #[arg(long, num_args = 1..)]
        include: Vec<String>,
        /// Excluded targets to remove.
        #[arg(long, num_args = 1..)]
        exclude: Vec<String>,
        /// Remove every assignment.
        #[arg(long, conflicts_with_all = ["include", "exclude"])]
        all: bool,
        /// The instant for the device counts (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Commands per device, notifications, blockers and warnings.
    Plan {
        /// RFC 3339 instant (default now).
        #[arg(long)]
        at: Option<String>,
        /// One JSON object.
        #[arg(long)]
        json: bool,
        /// Queue the commands in the outbox (and log the notifications sent);
        /// always the whole plan, whatever the filters show.
        #[arg(long)]
        enqueue: bool,
        /// Show only this device's commands, notices and blockers.
        #[arg(long, value_name = "UDID")]
        device: Option<String>,
        /// Show only what concerns this profile (UUID or unique prefix).
        #[arg(long, value_name = "UUID")]
        profile: Option<String>,
        /// Output: text (with a per-profile summary), json, or csv (one command per row).
        #[arg(long, value_parser = ["text", "json", "csv"], default_value = "text", conflicts_with = "json")]
        format: String,
    },
    /// Record device acknowledgements for queued commands (all, or the given command UUIDs).
    Ack {
        /// Command UUIDs (default: every pending command).
        commands: Vec<String>,
    },
    /// Profiles and certificates by death date, with apps and device counts:
    /// already dead but in use, then dying within the window.
    Expiring {
        /// Window, e.g. 60d or 8w.
        #[arg(long, default_value = "60d")]
        within: String,
        /// RFC 3339 instant (default now).
        #[arg(long)]
        at: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Write an SVG timeline here.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Only profiles or only certificates.
        #[arg(long, value_name = "profile|certificate")]
        kind: Option<String>,
        /// Only this team.
        #[arg(long)]
        team: Option<String>,
        /// Only what takes down the app with this bundle id.
        #[arg(long, value_name = "BUNDLE_ID")]
        app: Option<String>,
        /// Exit 1 when anything is dead in use or dying within the window (for CI).
        #[arg(long)]
        fail_if_any: bool,
    },
    /// Renew a profile for every app that shares it.
    Renew {
        /// The old profile's UUID.
        old: String,
        /// The new profile file.
        new: PathBuf,
        /// Accept a successor that fails its trust or integrity checks; the
        /// audit log records the override.
        #[arg(long)]
        allow_untrusted: bool,
    },
    /// Delete a profile (refused while an app links to it or an assignment is active).
    Delete {
        /// Profile UUID.
        profile: String,
    },
    /// Why a device does or does not get a profile.
    Explain {
        /// Device UDID.
        device: String,
        /// Profile UUID.
        profile: String,
        /// RFC 3339 instant (default now).
        #[arg(long)]
        at: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `provkit serve` settings: each flag overrides `--config`, which
/// overrides the default shown.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeFlags {
    /// Settings in a TOML file (the same names as these flags, with `_`
    /// for `-`); flags given here win over it.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// Store connections (SQLite readers run side by side; writes take
    /// turns) [default: 4].
    #[arg(long)]
    pub(crate) connections: Option<usize>,
    /// Largest request body in bytes, apps excepted [default: 16 MiB].
    #[arg(long)]
    pub(crate) max_body: Option<u64>,
    /// Largest .ipa upload in bytes [default: 4 GiB].
    #[arg(long)]
    pub(crate) max_upload: Option<u64>,
    /// Seconds a request may take before it is answered 408 [default: 300].
    #[arg(long)]
    pub(crate) timeout: Option<u64>,
    /// Requests handled at once; the rest wait [default: 512].
    #[arg(long)]
    pub(crate) concurrency: Option<usize>,
    /// After a change, console pages wait for the tenant to be read again
    /// when that took at most this many milliseconds; on a larger tenant
    /// they answer from the last reading with a notice [default: 1000].
    #[arg(long, value_name = "MS")]
    pub(crate) console_build_wait: Option<u64>,
    /// Minutes between two plans at most; the scheduler also re-plans
    /// within seconds of any change [default: 15].
    #[arg(long)]
    pub(crate) replan_every: Option<u64>,
    /// Seconds the scheduler lease lasts unless renewed: another process
    /// takes over within it when the holder dies [default: 30].
    #[arg(long)]
    pub(crate) lease_ttl: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (leaf first).
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
}

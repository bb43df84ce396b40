//! `provkit`: the command line over the provkit crates.
//!
//! This file parses flags, dispatches, and maps outcomes to exit codes:
//! 0 success (every file valid), 1 a check failed (some file invalid),
//! 2 an input could not be read as what it should be, 3 usage or I/O error.

mod db;
mod demo;
mod expiry_cmd;
mod ipa_cmd;
mod lifecycle_cmd;
mod output;
mod plan_cmd;
mod profile_cmd;
mod report_fmt;
mod tenant_cmd;

use crate::output::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Planning a large tenant makes millions of small allocations; mimalloc
/// handles them better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Provisioning profiles and iOS app signatures: inspect, verify, plan.
#[derive(Debug, Parser)]
#[command(name = "provkit", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Show dates in UTC instead of the local time zone.
    #[arg(long, global = true)]
    utc: bool,
    #[command(flatten)]
    db: db::DbArgs,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
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
enum Command {
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
    },
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
        /// Queue the commands in the outbox (and log the notifications sent).
        #[arg(long)]
        enqueue: bool,
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

#[derive(Debug, Subcommand)]
enum InventoryCommand {
    /// Import users, devices and groups from a JSON or CSV file (format in the
    /// README), merging into what is stored unless told to replace.
    Import {
        /// The JSON or CSV file.
        file: PathBuf,
        /// Replace every group and device the file names instead of merging.
        #[arg(long)]
        replace: bool,
        /// Replace only this group's members and subgroups (repeatable).
        #[arg(long = "replace-group", value_name = "GROUP")]
        replace_group: Vec<String>,
        /// Print what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The instant for the desired-profile changes (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Trust a certificate (PEM or DER) as an anchor; audited.
    Add {
        /// The certificate file.
        cert: PathBuf,
    },
    /// The tenant's anchors (Apple's roots are always trusted).
    List,
    /// Stop trusting an anchor, by its SHA-256 or a unique prefix; audited.
    Remove {
        /// SHA-256 (hex) or a prefix of 8 or more digits.
        sha256: String,
    },
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Register an app by its facts, linked to its profile.
    Add {
        /// CFBundleIdentifier.
        #[arg(long)]
        bundle_id: String,
        /// Version.
        #[arg(long)]
        version: String,
        /// The profile UUID it was signed with.
        #[arg(long)]
        profile: String,
        /// The signing certificate (DER or PEM).
        #[arg(long)]
        certificate: PathBuf,
    },
}

fn targets(names: &[String]) -> Vec<provkit_store::TargetName> {
    names
        .iter()
        .map(|s| provkit_store::TargetName::parse(s))
        .collect()
}

fn instant(at: Option<&str>) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    match profile_cmd::parse_at(at)? {
        profile_cmd::At::Instant(t) => Ok(t),
        profile_cmd::At::SigningTime => {
            anyhow::bail!("--at signing-time applies to profile verify only")
        }
    }
}

fn run(cli: Cli, style: output::Style) -> anyhow::Result<profile_cmd::Outcome> {
    use profile_cmd::Outcome;
    let db = &cli.db;
    match cli.command {
        Command::Profile { command } => match command {
            ProfileCommand::Inspect { json, files } => profile_cmd::inspect(&files, json, style),
            ProfileCommand::Verify {
                at,
                json,
                trust,
                fail_if_expires_within,
                files,
            } => profile_cmd::verify(
                &files,
                at.as_deref(),
                json,
                &trust.anchors,
                trust.no_apple_roots,
                fail_if_expires_within
                    .as_deref()
                    .map(|d| expiry_cmd::parse_duration("--fail-if-expires-within", d))
                    .transpose()?,
                style,
            ),
            ProfileCommand::Sample { out } => profile_cmd::sample(&out).map(|()| Outcome::Ok),
        },
        Command::Ipa { command } => match command {
            IpaCommand::Verify {
                at,
                device,
                json,
                format,
                trust,
                paths,
            } => ipa_cmd::verify(
                &paths,
                &ipa_cmd::VerifyArgs {
                    at: at.as_deref(),
                    device: device.as_deref(),
                    format: if json { ipa_cmd::Format::Json } else { format },
                    anchors: &trust.anchors,
                    no_apple_roots: trust.no_apple_roots,
                },
                style,
            ),
            IpaCommand::Info { json, path } => ipa_cmd::info(&path, json, style),
            IpaCommand::Resign {
                input,
                output,
                identity,
                password_env,
                certificate,
                key,
                chain,
                profiles,
                entitlements,
                bundle_id,
                force,
                trust,
            } => ipa_cmd::resign(&ipa_cmd::ResignArgs {
                input: &input,
                output: &output,
                identity: identity.as_deref(),
                password_env: &password_env,
                certificate: certificate.as_deref(),
                key: key.as_deref(),
                chain: &chain,
                profiles: &profiles,
                entitlements: entitlements.as_deref(),
                bundle_id: bundle_id.as_deref(),
                force,
                anchors: &trust.anchors,
                no_apple_roots: trust.no_apple_roots,
            }),
        },
        Command::Demo { dir, at } => demo::run(&dir, instant(at.as_deref())?, style),
        Command::Init => {
            db.create()?;
            outln!("ready: {}", db.describe())?;
            Ok(Outcome::Ok)
        }
        Command::Generate {
            devices,
            seed,
            force,
        } => {
            tenant_cmd::check_generate(devices)?;
            tenant_cmd::generate(db.create()?.as_mut(), devices, seed, force)
        }
        Command::Import {
            paths,
            allow_untrusted,
        } => tenant_cmd::import(db.open()?.as_mut(), &paths, allow_untrusted),
        Command::Trust { command } => match command {
            TrustCommand::Add { cert } => tenant_cmd::trust_add(db.open()?.as_mut(), &cert),
            TrustCommand::List => tenant_cmd::trust_list(db.read()?.as_mut(), style),
            TrustCommand::Remove { sha256 } => {
                tenant_cmd::trust_remove(db.open()?.as_mut(), &sha256)
            }
        },
        Command::Inventory {
            command:
                InventoryCommand::Import {
                    file,
                    replace,
                    replace_group,
                    dry_run,
                    at,
                },
        } => {
            let replace = match (replace, replace_group.is_empty()) {
                (true, true) => provkit_store::Replace::Batch,
                (true, false) => anyhow::bail!("--replace and --replace-group exclude each other"),
                (false, true) => provkit_store::Replace::Nothing,
                (false, false) => provkit_store::Replace::Groups(replace_group),
            };
            tenant_cmd::inventory(
                db.open()?.as_mut(),
                &file,
                &replace,
                dry_run,
                instant(at.as_deref())?,
            )
        }
        Command::App {
            command:
                AppCommand::Add {
                    bundle_id,
                    version,
                    profile,
                    certificate,
                },
        } => tenant_cmd::app_add(
            db.open()?.as_mut(),
            &bundle_id,
            &version,
            &profile,
            &certificate,
        ),
        Command::Assign {
            profile,
            include,
            exclude,
            replace,
            at,
        } => {
            let (include, exclude) = (targets(&include), targets(&exclude));
            let edit = if replace {
                provkit_store::AssignmentEdit::Replace { include, exclude }
            } else {
                provkit_store::AssignmentEdit::Add { include, exclude }
            };
            tenant_cmd::assign(
                db.open()?.as_mut(),
                &profile,
                &edit,
                instant(at.as_deref())?,
            )
        }
        Command::Unassign {
            profile,
            include,
            exclude,
            all,
            at,
        } => {
            let edit = if all {
                provkit_store::AssignmentEdit::Replace {
                    include: Vec::new(),
                    exclude: Vec::new(),
                }
            } else {
                provkit_store::AssignmentEdit::Remove {
                    include: targets(&include),
                    exclude: targets(&exclude),
                }
            };
            tenant_cmd::assign(
                db.open()?.as_mut(),
                &profile,
                &edit,
                instant(at.as_deref())?,
            )
        }
        Command::Plan { at, json, enqueue } => plan_cmd::plan(
            if enqueue { db.open()? } else { db.read()? }.as_mut(),
            instant(at.as_deref())?,
            json,
            enqueue,
            style,
        ),
        Command::Ack { commands } => plan_cmd::ack(db.open()?.as_mut(), &commands),
        Command::Expiring {
            within,
            at,
            json,
            svg,
            kind,
            team,
            app,
            fail_if_any,
        } => {
            let args = expiry_cmd::ExpiringArgs {
                at: instant(at.as_deref())?,
                within_days: expiry_cmd::parse_days(&within)?,
                json,
                svg: svg.as_deref(),
                filter: provkit_service::expiry::ExpiryFilter {
                    kind: kind.as_deref().map(expiry_cmd::parse_kind).transpose()?,
                    team,
                    app,
                },
                fail_if_any,
            };
            expiry_cmd::expiring(db.read()?.as_mut(), &args, style)
        }
        Command::Renew {
            old,
            new,
            allow_untrusted,
        } => lifecycle_cmd::renew(db.open()?.as_mut(), &old, &new, allow_untrusted),
        Command::Delete { profile } => lifecycle_cmd::delete(db.open()?.as_mut(), &profile),
        Command::Explain {
            device,
            profile,
            at,
            json,
        } => plan_cmd::explain(
            db.read()?.as_mut(),
            &device,
            &profile,
            instant(at.as_deref())?,
            json,
        ),
    }
}

/// Which certificates are trusted as roots.
#[derive(Debug, clap::Args)]
struct TrustArgs {
    /// Extra trust anchor (DER or PEM certificate), e.g. a test CA.
    #[arg(long = "anchor")]
    anchors: Vec<PathBuf>,
    /// Trust only the --anchor certificates, not Apple's roots.
    #[arg(long)]
    no_apple_roots: bool,
}

#[derive(Debug, Subcommand)]
enum IpaCommand {
    /// Verify every bundle, slice, seal and embedded profile; exit 0 valid, 1 invalid, 2 not an app.
    Verify {
        /// RFC 3339 instant, or `signing-time` for each signature's own CMS signingTime (default: now).
        #[arg(long)]
        at: Option<String>,
        /// Also check that this device's UDID is provisioned.
        #[arg(long)]
        device: Option<String>,
        /// One JSON object per app: valid, bundles, findings (code, bundle, arch, path, message, fix).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output: text, json (one object per app), junit (XML, one test
        /// case per app) or sarif (2.1.0, one result per finding).
        #[arg(long, value_enum, default_value = "text")]
        format: ipa_cmd::Format,
        #[command(flatten)]
        trust: TrustArgs,
        /// The .ipa files or .app folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Re-sign with a new identity and profile(s); exit 0 written, 1 refused, 2 not an app.
    Resign {
        /// The .ipa file or .app folder.
        input: PathBuf,
        /// The .ipa to write (atomically).
        #[arg(short, long)]
        output: PathBuf,
        /// Signing identity as PKCS#12 (.p12).
        #[arg(long)]
        identity: Option<PathBuf>,
        /// Environment variable holding the .p12 password.
        #[arg(long, default_value = "PROVKIT_P12_PASSWORD")]
        password_env: String,
        /// Signing certificate (PEM or DER), with --key.
        #[arg(long)]
        certificate: Option<PathBuf>,
        /// Private key (PEM or DER; PKCS#8 or PKCS#1), with --certificate.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Intermediate certificates to carry (e.g. Apple WWDR).
        #[arg(long)]
        chain: Vec<PathBuf>,
        /// Provisioning profile(s); each bundle gets the one covering its id.
        #[arg(long = "profile", required = true)]
        profiles: Vec<PathBuf>,
        /// Entitlements plist for the main app (default: what it claims, as the profile allows).
        #[arg(long)]
        entitlements: Option<PathBuf>,
        /// A new bundle id for the app (its extensions follow).
        #[arg(long)]
        bundle_id: Option<String>,
        /// Replace an existing output file (never the input).
        #[arg(long)]
        force: bool,
        /// The anchors the re-signed app must verify against before it is
        /// written (Apple's roots, plus --anchor).
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Bundle ids, versions, slices, hash types, team, signer, profile and entitlements.
    Info {
        /// One JSON object.
        #[arg(long)]
        json: bool,
        /// The .ipa file or .app folder.
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Print what a profile holds.
    Inspect {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Profile files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Verify signature, chain and dates at an instant.
    Verify {
        /// RFC 3339 instant, or `signing-time` for each file's own CMS signingTime (default: now).
        #[arg(long)]
        at: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        trust: TrustArgs,
        /// Exit 1 when a profile's apps die within this window (e.g. 30d),
        /// even if it is valid today: a gate for CI.
        #[arg(long, value_name = "DURATION")]
        fail_if_expires_within: Option<String>,
        /// Profile files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write sample profiles signed by a test CA (and the CA's root) to a folder.
    Sample {
        /// Output folder.
        #[arg(long, default_value = "provkit-sample")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    // Argument errors are usage errors: exit 3, as the table says (clap's
    // own exit code would be 2, the code for unreadable input).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 3,
            });
        }
    };
    let style = output::Style { utc: cli.utc };
    match run(cli, style) {
        Ok(outcome) => ExitCode::from(outcome as u8),
        // Output piped into `head` (or any reader that stops early): the
        // reader has what it wanted; end quietly, as ripgrep does.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<output::Unreadable>().is_some() => {
            eprintln!("provkit: {e:#}");
            ExitCode::from(profile_cmd::Outcome::Unreadable as u8)
        }
        Err(e) => {
            eprintln!("provkit: {e:#}");
            // A refused change (unknown name, broken rule) is a refusal, not a failure.
            let store_refusal = |s: &provkit_store::StoreError| {
                matches!(
                    s,
                    provkit_store::StoreError::UnknownReference { .. }
                        | provkit_store::StoreError::Invalid(_)
                )
            };
            let refused = e
                .downcast_ref::<provkit_store::StoreError>()
                .is_some_and(store_refusal)
                || e.downcast_ref::<provkit_service::ServiceError>()
                    .is_some_and(|s| match s {
                        provkit_service::ServiceError::Store(s) => store_refusal(s),
                        _ => true,
                    });
            ExitCode::from(if refused { 1 } else { 3 })
        }
    }
}

//! `provkit`: the command line over the provkit crates.
//!
//! This file parses flags, dispatches, and maps outcomes to exit codes:
//! 0 success (every file valid), 1 a check failed (some file invalid),
//! 2 an input could not be read as what it should be, 3 usage or I/O error.

mod args;
mod catalog_cmd;
mod db;
mod demo;
mod expiry_cmd;
mod inventory_cmd;
mod ipa_cmd;
mod lifecycle_cmd;
mod output;
mod plan_cmd;
mod profile_cmd;
mod report_fmt;
mod sample_cmd;
mod subargs;
mod tenant_cmd;
mod trust_cmd;

use crate::output::outln;
use std::process::ExitCode;

use args::{
    AppCommand, Cli, Command, InventoryCommand, IpaCommand, ListCommand, ProfileCommand,
    TrustCommand,
};
use clap::Parser;

/// Planning a large tenant makes millions of small allocations; mimalloc
/// handles them better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            ProfileCommand::List { json } => {
                catalog_cmd::profiles(db.read()?.as_mut(), json, style)
            }
            ProfileCommand::Show { profile, json } => {
                catalog_cmd::profile(db.read()?.as_mut(), &profile, json, style)
            }
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
            ProfileCommand::Sample { out } => sample_cmd::sample(&out).map(|()| Outcome::Ok),
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
            TrustCommand::Add { cert } => trust_cmd::add(db.open()?.as_mut(), &cert),
            TrustCommand::List => trust_cmd::list(db.read()?.as_mut(), style),
            TrustCommand::Remove { sha256 } => trust_cmd::remove(db.open()?.as_mut(), &sha256),
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
            inventory_cmd::import(
                db.open()?.as_mut(),
                &file,
                &replace,
                dry_run,
                instant(at.as_deref())?,
            )
        }
        Command::App {
            command: AppCommand::List { json },
        } => catalog_cmd::apps(db.read()?.as_mut(), json, style),
        Command::App {
            command: AppCommand::Remove { bundle_id, version },
        } => catalog_cmd::remove(
            db.open()?.as_mut(),
            &provkit_store::Removal::App { bundle_id, version },
        ),
        Command::Device { command } => match command {
            ListCommand::List { json } => catalog_cmd::devices(db.read()?.as_mut(), json),
            ListCommand::Remove { name } => {
                catalog_cmd::remove(db.open()?.as_mut(), &provkit_store::Removal::Device(name))
            }
        },
        Command::User { command } => match command {
            ListCommand::List { json } => catalog_cmd::users(db.read()?.as_mut(), json),
            ListCommand::Remove { name } => {
                catalog_cmd::remove(db.open()?.as_mut(), &provkit_store::Removal::User(name))
            }
        },
        Command::Group { command } => match command {
            ListCommand::List { json } => catalog_cmd::groups(db.read()?.as_mut(), json),
            ListCommand::Remove { name } => {
                catalog_cmd::remove(db.open()?.as_mut(), &provkit_store::Removal::Group(name))
            }
        },
        Command::Inventory {
            command: InventoryCommand::Export { format },
        } => catalog_cmd::export(db.read()?.as_mut(), &format),
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
        Command::Plan {
            at,
            json,
            enqueue,
            device,
            profile,
            format,
        } => plan_cmd::plan(
            if enqueue { db.open()? } else { db.read()? }.as_mut(),
            &plan_cmd::PlanArgs {
                at: instant(at.as_deref())?,
                format: if json { "json" } else { format.as_str() },
                enqueue,
                device: device.as_deref(),
                profile: profile.as_deref(),
            },
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

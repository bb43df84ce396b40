//! From parsed flags to the command that runs them: each arm calls one
//! command module (which calls provkit-service or the offline crates).

use crate::output::outln;
use crate::{
    catalog_cmd, demo, expiry_cmd, inventory_cmd, ipa_cmd, lifecycle_cmd, output, plan_cmd,
    profile_cmd, sample_cmd, serve_cmd, tenant_cmd, trust_cmd,
};

use crate::args::{
    AppCommand, Cli, Command, InventoryCommand, IpaCommand, ListCommand, OrgGroupCommand,
    ProfileCommand, TokenCommand, TrustCommand,
};

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

pub(crate) fn run(cli: Cli, style: output::Style) -> anyhow::Result<profile_cmd::Outcome> {
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
            ProfileCommand::Devices { profile, json } => {
                catalog_cmd::device_status(db.read()?.as_mut(), &profile, json, style)
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
        Command::Demo {
            dir,
            at,
            serve,
            listen,
        } => {
            let outcome = demo::run(&dir, instant(at.as_deref())?, style)?;
            if serve {
                demo::serve(&dir, &listen)
            } else {
                Ok(outcome)
            }
        }
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
            name,
            description,
        } => {
            let label = provkit_store::ProfileLabel { name, description };
            tenant_cmd::import(db.open()?.as_mut(), &paths, allow_untrusted, &label)
        }
        Command::OrgGroup { command } => match command {
            OrgGroupCommand::Create { path } => {
                serve_cmd::org_group_create(db.open()?.as_mut(), &path)
            }
            OrgGroupCommand::List => serve_cmd::org_group_list(db.read()?.as_mut()),
        },
        Command::Mdm { command } => crate::mdm_cmd::run(db, command),
        Command::Notify { command } => crate::notify_cmd::run(db, command),
        Command::ConsoleUser { command } => match command {
            crate::subargs::ConsoleUserCommand::Create {
                name,
                role,
                org_group,
                password_env,
            } => serve_cmd::console_user_create(
                db.open()?.as_mut(),
                &name,
                &role,
                org_group.as_deref(),
                &password_env,
            ),
            crate::subargs::ConsoleUserCommand::List => {
                serve_cmd::console_user_list(db.read()?.as_mut(), style)
            }
            crate::subargs::ConsoleUserCommand::Remove { name } => {
                serve_cmd::console_user_remove(db.open()?.as_mut(), &name)
            }
        },
        Command::Token { command } => match command {
            TokenCommand::Create {
                name,
                role,
                org_group,
            } => serve_cmd::create(db.open()?.as_mut(), &name, &role, org_group.as_deref()),
            TokenCommand::List => serve_cmd::list(db.read()?.as_mut(), style),
            TokenCommand::Revoke { name } => serve_cmd::revoke(db.open()?.as_mut(), &name),
        },
        Command::Serve(flags) => {
            let file = crate::serve_config::load(flags.config.as_deref())?;
            let db = file.database(db);
            let mut limits = provkit_server::Limits::default();
            limits.max_body_bytes = flags.max_body.or(file.max_body).unwrap_or(16 << 20);
            limits.max_upload_bytes = flags.max_upload.or(file.max_upload).unwrap_or(4 << 30);
            limits.request_timeout =
                std::time::Duration::from_secs(flags.timeout.or(file.timeout).unwrap_or(300));
            limits.concurrency = flags.concurrency.or(file.concurrency).unwrap_or(512);
            let wait = flags.console_build_wait.or(file.console_build_wait);
            limits.console_build_wait = std::time::Duration::from_millis(wait.unwrap_or(1000));
            let mut schedule = provkit_server::Schedule::new(serve_cmd::holder()?);
            let every = flags.replan_every.or(file.replan_every).unwrap_or(15);
            schedule.period = std::time::Duration::from_secs(every.max(1) * 60);
            let ttl = flags.lease_ttl.or(file.lease_ttl).unwrap_or(30);
            schedule.lease_ttl = std::time::Duration::from_secs(ttl.max(1));
            if let (Some(lease), Some(d)) = (file.delivery_lease, schedule.delivery.as_mut()) {
                d.lease = std::time::Duration::from_secs(lease.max(1));
            }
            let tls = flags
                .tls_cert
                .zip(flags.tls_key)
                .or(file.tls_cert.clone().zip(file.tls_key.clone()));
            let listen = flags
                .listen
                .or(file.listen.clone())
                .unwrap_or_else(|| "127.0.0.1:8080".into());
            serve_cmd::serve(
                &db,
                &serve_cmd::ServeArgs {
                    listen: &listen,
                    connections: flags.connections.or(file.connections).unwrap_or(4),
                    limits,
                    schedule,
                    tls,
                },
            )
        }
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
                filter: provkit_service::expiry::ExpiryFilter::default()
                    .with_kind(kind.as_deref().map(expiry_cmd::parse_kind).transpose()?)
                    .with_team(team)
                    .with_app(app),
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

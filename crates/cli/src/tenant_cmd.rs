//! The tenant-building commands: import, inventory, app, assign, generate,
//! trust. Plans are in `plan_cmd`, renewal and deletion in `lifecycle_cmd`,
//! the expiry report in `expiry_cmd`; the logic is provkit-service's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use provkit_service::ServiceError;
use provkit_store::{Actor, Store, TargetName};

use crate::output::outln;
use crate::profile_cmd::Outcome;

pub(crate) fn actor() -> Actor {
    let name = std::env::var("USER").unwrap_or_else(|_| "provkit".into());
    Actor {
        name,
        at: Utc::now(),
    }
}

/// Reads every profile file under `paths` (folders recursively), storing
/// each; a bad file is reported with its reason and the rest go on.
pub(crate) fn import(
    store: &mut dyn Store,
    paths: &[PathBuf],
    allow_untrusted: bool,
    label: &provkit_store::ProfileLabel,
) -> Result<Outcome> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files).with_context(|| format!("reading {}", p.display()))?;
    }
    files.sort();
    let total = files.len();
    if !label.is_empty() && total != 1 {
        return Err(provkit_store::StoreError::Invalid(format!(
            "--name and --description label one profile; {total} files were given"
        ))
        .into());
    }
    let mut outcome = Outcome::Ok;
    let (mut stored, mut failed) = (0, 0);
    let a = actor();
    let verifier = provkit_service::trust::tenant_verifier(store)?;
    let mut progress = Progress::new(total);
    for (i, f) in files.iter().enumerate() {
        let ext = f
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let result = match ext.as_str() {
            "ipa" => import_ipa(store, f, &verifier, &a),
            _ => std::fs::read(f)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| {
                    provkit_service::trust::store_labeled_profile(
                        store,
                        &bytes,
                        label,
                        &verifier,
                        a.at,
                        &a,
                        allow_untrusted,
                    )
                    .map_err(anyhow::Error::from)
                })
                .map(|rec| format!("profile {} version {}", rec.uuid, rec.version)),
        };
        match result {
            Ok(what) => {
                stored += 1;
                progress.line(i + 1, &format!("{}: {what}", f.display()));
            }
            Err(e) => {
                failed += 1;
                // Refused for trust is a refusal; anything else is unreadable.
                let untrusted = matches!(
                    e.downcast_ref::<provkit_service::ServiceError>(),
                    Some(provkit_service::ServiceError::Untrusted { .. })
                );
                outcome = match (outcome, untrusted) {
                    (Outcome::Unreadable, _) | (_, false) => Outcome::Unreadable,
                    _ => Outcome::Invalid,
                };
                progress.line(i + 1, &format!("{}: {e:#}", f.display()));
            }
        }
    }
    progress.done();
    outln!("imported {stored} of {total} files ({failed} refused)")?;
    Ok(outcome)
}

/// Progress on stderr: a bar redrawn in place on a terminal (messages for
/// refused files only), one line per file otherwise.
struct Progress {
    total: usize,
    tty: bool,
    shown: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        use std::io::IsTerminal as _;
        Progress {
            total,
            tty: std::io::stderr().is_terminal() && total > 1,
            shown: 0,
        }
    }

    fn line(&mut self, done: usize, message: &str) {
        if !self.tty {
            eprintln!("[{done}/{}] {message}", self.total);
            return;
        }
        if message.contains(": ") && !message.contains(": profile ") && !message.contains(": app ")
        {
            eprintln!("\r\x1b[K{message}");
        }
        let width = 30;
        let filled = done * width / self.total.max(1);
        if filled != self.shown || done == self.total {
            self.shown = filled;
            eprint!(
                "\r[{}{}] {done}/{}",
                "#".repeat(filled),
                " ".repeat(width - filled),
                self.total
            );
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn import_ipa(
    store: &mut dyn Store,
    path: &Path,
    verifier: &provkit_profile::Verifier,
    a: &provkit_store::Actor,
) -> Result<String> {
    use provkit_codesign::archive::{Archive, Limits};
    let archive = Archive::open(path, Limits::default())?;
    let app = provkit_service::import::import_ipa(store, &archive, verifier, Utc::now(), a)?;
    let mut what = format!(
        "app {} {} linked to profile {}",
        app.bundle_id, app.version, app.profile_uuid
    );
    if !app.today.is_empty() {
        what.push_str(&format!(" (today: {})", app.today.join(", ")));
    }
    Ok(what)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if p.is_dir() {
        for e in std::fs::read_dir(p)? {
            let path = e?.path();
            if path.is_dir() {
                collect(&path, out)?;
            } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "mobileprovision" | "provisionprofile" | "ipa"
                )
            }) {
                out.push(path);
            }
        }
    } else {
        out.push(p.to_owned());
    }
    Ok(())
}

/// Refuses a size `generate` cannot make, before any database is touched
/// (a usage error: exit 3).
pub(crate) fn check_generate(devices: usize) -> Result<()> {
    provkit_service::generate::check_size(devices).map_err(|e| anyhow::anyhow!("{e}"))
}

pub(crate) fn generate(
    store: &mut dyn Store,
    devices: usize,
    seed: u64,
    force: bool,
) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let mut step = |what: &str| eprintln!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());
    let done =
        provkit_service::generate::generate(store, devices, seed, force, &actor(), &mut step)
            .map_err(|e| match e {
                // Sizes and a tenant in the way are usage errors (exit 3).
                ServiceError::OutOfRange(_) | ServiceError::NotEmpty { .. } => {
                    anyhow::anyhow!("{e}")
                }
                e => e.into(),
            })?;
    outln!("generated and imported {} (seed {seed})", done.summary)?;
    Ok(Outcome::Ok)
}

pub(crate) fn app_add(
    store: &mut dyn Store,
    bundle_id: &str,
    version: &str,
    profile: &str,
    certificate: &Path,
) -> Result<Outcome> {
    let bytes = crate::output::read_input(certificate)?;
    let app = provkit_service::import::register_app(
        store,
        bundle_id,
        version,
        profile,
        &bytes,
        &actor(),
    )?;
    let profile = app.profile_uuid.unwrap_or_default();
    outln!("app {bundle_id} {version} linked to profile {profile}")?;
    Ok(Outcome::Ok)
}

pub(crate) fn assign(
    store: &mut dyn Store,
    profile: &str,
    edit: &provkit_store::AssignmentEdit,
    at: DateTime<Utc>,
) -> Result<Outcome> {
    let c = provkit_service::assign::edit(store, profile, edit, at, &actor())?;
    let show = |inc: &[TargetName], exc: &[TargetName]| {
        let names = |l: &[TargetName]| {
            if l.is_empty() {
                "-".to_owned()
            } else {
                l.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        format!("include {}; exclude {}", names(inc), names(exc))
    };
    outln!("profile {}:", c.profile_uuid)?;
    outln!("  before: {}", show(&c.include_before, &c.exclude_before))?;
    outln!("  after:  {}", show(&c.include_after, &c.exclude_after))?;
    outln!(
        "  {} device(s) gain it, {} device(s) lose it",
        c.devices_gaining.len(),
        c.devices_losing.len()
    )?;
    Ok(Outcome::Ok)
}

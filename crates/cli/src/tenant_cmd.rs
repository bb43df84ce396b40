//! The workflow commands over the store and the engine: init, import,
//! inventory, app, assign, plan, ack, expiring, renew, delete, explain.

use crate::output::outln;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, TimeDelta, Utc};
use provkit_policy::{Blocker, Command, Engine, Plan, Target, Tenant, Warning};
use provkit_profile::{Certificate, ProvisioningProfile, hex};
use provkit_store::{
    Actor, AppRecord, CommandStatus, Inventory, OutboxEntry, Store, StoreError, TargetName,
};
use serde_json::json;
use sha2::Digest as _;

use crate::output::{Style, rfc3339};
use crate::profile_cmd::Outcome;

/// An unknown name, refused the same way (exit 1) by every command.
fn unknown(kind: &'static str, name: &str, context: &str) -> anyhow::Error {
    StoreError::UnknownReference {
        kind,
        name: name.to_owned(),
        context: context.to_owned(),
    }
    .into()
}

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
) -> Result<Outcome> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files).with_context(|| format!("reading {}", p.display()))?;
    }
    files.sort();
    let total = files.len();
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
                    provkit_service::trust::store_profile(
                        store,
                        &bytes,
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

/// Verifies an IPA (at its own signing time: intact, signed by Apple's
/// chain, profile consistent); when valid, stores its embedded profile and
/// links the app to it, keeping the report at the present instant (which
/// names an expired certificate or profile: the re-sign and renew work).
fn import_ipa(
    store: &mut dyn Store,
    path: &Path,
    verifier: &provkit_profile::Verifier,
    a: &provkit_store::Actor,
) -> Result<String> {
    use provkit_codesign::{Options, archive::Archive, archive::Limits, cms::At};
    let archive = Archive::open(path, Limits::default())?;
    let opts = |at| Options::new(verifier, at);
    let intact = provkit_codesign::verify_archive(&archive, &opts(At::SigningTime))?;
    if !intact.valid {
        let reasons: Vec<String> = intact
            .findings
            .iter()
            .filter(|f| f.severity == "error")
            .take(5)
            .map(|f| format!("{} {}", f.code, f.path.as_deref().unwrap_or(&f.bundle)))
            .collect();
        anyhow::bail!("invalid app, not imported: {}", reasons.join("; "));
    }
    let now = provkit_codesign::verify_archive(&archive, &opts(At::Instant(chrono::Utc::now())))?;
    let main = &intact.bundles[0];
    let profile_path = format!("{}/embedded.mobileprovision", main.path);
    let entry = archive
        .entries()
        .iter()
        .find(|e| e.path == profile_path)
        .ok_or_else(|| anyhow::anyhow!("no embedded profile to link the app to"))?;
    let bytes = archive.read(entry, provkit_profile::MAX_PROFILE_SIZE as u64)?;
    let rec = store.add_profile(&bytes, a)?;
    let slice = main.slices.first();
    let app = AppRecord {
        bundle_id: main.bundle_id.clone().unwrap_or_default(),
        version: main
            .version
            .clone()
            .or(main.build.clone())
            .unwrap_or_default(),
        team: slice.and_then(|s| s.team_id.clone()).unwrap_or_default(),
        profile_uuid: Some(rec.uuid.clone()),
        certificate_sha256: slice
            .and_then(|s| s.signer_sha256.clone())
            .unwrap_or_default(),
        certificate_not_after: slice
            .and_then(|s| s.signer_not_after)
            .ok_or_else(|| anyhow::anyhow!("no signing certificate"))?,
        report: Some(serde_json::to_value(&now)?),
    };
    store.add_app(&app, a)?;
    let mut what = format!(
        "app {} {} linked to profile {}",
        app.bundle_id, app.version, rec.uuid
    );
    if !now.valid {
        let codes: std::collections::BTreeSet<&str> =
            now.findings.iter().map(|f| f.code.as_str()).collect();
        what.push_str(&format!(
            " (today: {})",
            codes.into_iter().collect::<Vec<_>>().join(", ")
        ));
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

/// The largest tenant `generate` makes: 10 million devices (about 10 GB of
/// memory while generating).
const MAX_GENERATED_DEVICES: usize = 10_000_000;

/// Refuses a size `generate` cannot make, before any database is touched.
pub(crate) fn check_generate(devices: usize) -> Result<()> {
    if !(1..=MAX_GENERATED_DEVICES).contains(&devices) {
        bail!("--devices {devices}: give from 1 to {MAX_GENERATED_DEVICES} devices");
    }
    Ok(())
}

pub(crate) fn generate(
    store: &mut dyn Store,
    devices: usize,
    seed: u64,
    force: bool,
) -> Result<Outcome> {
    check_generate(devices)?;
    let existing = store.load_tenant()?;
    if !force && (!existing.profiles.is_empty() || !existing.devices.is_empty()) {
        bail!(
            "the database already holds a tenant ({} profiles, {} devices); \
             use --force to add a generated one to it, or another --db",
            existing.profiles.len(),
            existing.devices.len()
        );
    }
    let started = std::time::Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());
    step(&format!(
        "generating a tenant of {devices} devices (seed {seed})"
    ));
    let shape = provkit_policy::generate::Shape::scaled(devices);
    let tenant = provkit_policy::generate::generate(&shape, seed);
    step(&format!(
        "signing {} profiles with the test CA",
        tenant.profiles.len()
    ));
    let ca = provkit_profile::fixtures::TestCa::ecdsa();
    let profiles = provkit_store::sign_profiles(&tenant, &ca);
    step("importing in one transaction");
    provkit_store::import_tenant(store, &tenant, &profiles, &ca.developer.cert, &actor())?;
    step("done");
    outln!("generated and imported {} (seed {seed})", tenant.summary())?;
    Ok(Outcome::Ok)
}

pub(crate) fn inventory(
    store: &mut dyn Store,
    file: &Path,
    replace: &provkit_store::Replace,
    dry_run: bool,
    at: DateTime<Utc>,
) -> Result<Outcome> {
    let text = String::from_utf8(crate::output::read_input(file)?)
        .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let parsed = if csv {
        Inventory::from_csv(text)
    } else {
        serde_json::from_str(text).map_err(|e| e.to_string())
    };
    let inv: Inventory = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}: not an inventory: {e}", file.display());
            return Ok(Outcome::Unreadable);
        }
    };
    let change = match store.apply_inventory(&inv, replace, dry_run, at, &actor()) {
        Ok(c) => c,
        Err(e @ (StoreError::UnknownReference { .. } | StoreError::Invalid(_))) => {
            eprintln!("{}: {e}", file.display());
            return Ok(Outcome::Unreadable);
        }
        Err(e) => return Err(e.into()),
    };
    let verb = if change.written {
        "imported"
    } else {
        "would import (dry run, nothing written)"
    };
    outln!(
        "{verb}: {} new user(s), {} new device(s), {} device(s) updated, {} group(s) changed",
        change.users_added.len(),
        change.devices_added.len(),
        change.devices_updated.len(),
        change.groups.len()
    )?;
    for g in &change.groups {
        let mut parts = Vec::new();
        if g.created {
            parts.push("new".to_owned());
        }
        for (label, list) in [
            ("members added", &g.members_added),
            ("members removed", &g.members_removed),
            ("subgroups added", &g.subgroups_added),
            ("subgroups removed", &g.subgroups_removed),
        ] {
            if !list.is_empty() {
                parts.push(format!("{label}: {}", list.join(", ")));
            }
        }
        outln!("  group {}: {}", g.name, parts.join("; "))?;
    }
    if !change.desired.is_empty() {
        outln!(
            "  {} device(s) change desired profiles:",
            change.desired.len()
        )?;
        for d in &change.desired {
            outln!(
                "    {}: gains [{}], loses [{}]",
                d.udid,
                d.gained.join(", "),
                d.lost.join(", ")
            )?;
        }
    }
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
    let cert = Certificate::from_pem_or_der(&bytes)
        .with_context(|| format!("{} is not a certificate", certificate.display()))?;
    let app = AppRecord {
        bundle_id: bundle_id.into(),
        version: version.into(),
        team: cert.subject_ou().unwrap_or_default().into(),
        profile_uuid: Some(profile.into()),
        certificate_sha256: hex(&cert.sha256_fingerprint()),
        certificate_not_after: cert.not_after(),
        report: None,
    };
    store.add_app(&app, &actor())?;
    outln!("app {bundle_id} {version} linked to profile {profile}")?;
    Ok(Outcome::Ok)
}

pub(crate) fn assign(
    store: &mut dyn Store,
    profile: &str,
    edit: &provkit_store::AssignmentEdit,
    at: DateTime<Utc>,
) -> Result<Outcome> {
    let c = store.edit_assignments(profile, edit, at, &actor())?;
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

/// A deterministic command UUID for (device, request, profile, instant).
fn command_uuid(udid: &str, request: &str, profile: &str, at: DateTime<Utc>) -> String {
    let h =
        sha2::Sha256::digest(format!("{udid}|{request}|{profile}|{}", at.timestamp()).as_bytes());
    let x = hex(&h[..16]).to_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

struct Named<'a> {
    t: &'a Tenant,
}

impl Named<'_> {
    fn profile(&self, p: provkit_policy::ProfileId) -> String {
        self.t.profiles[p.index()].uuid.clone()
    }
    fn app(&self, a: provkit_policy::AppId) -> String {
        let app = &self.t.apps[a.index()];
        format!("{} {}", app.bundle_id, app.version)
    }
    fn blocker(&self, b: &Blocker) -> serde_json::Value {
        match b {
            Blocker::ResignRequired {
                app,
                profile,
                reason,
                devices,
            } => json!({
                "kind": "resign-required", "app": self.app(*app), "profile": profile.map(|p| self.profile(p)),
                "reason": reason, "devices": devices,
                "message": format!("{} must be re-signed ({reason:?}); renewing the profile cannot help; {devices} device(s)", self.app(*app))}),
            Blocker::NotProvisioned { device, profile } => json!({
                "kind": "not-provisioned", "device": self.t.devices[device.index()].udid, "profile": self.profile(*profile),
                "message": format!("{} does not list device {}: the install would fail", self.profile(*profile), self.t.devices[device.index()].udid)}),
            Blocker::UncoveredApp { app, devices } => json!({
                "kind": "uncovered-app", "app": self.app(*app), "devices": devices,
                "message": format!("no profile covers {} ({devices} device(s))", self.app(*app))}),
            Blocker::ExpiringWithoutSuccessor {
                profile,
                app,
                devices,
                at,
            } => json!({
                "kind": "expiring-without-successor", "profile": self.profile(*profile), "app": app.map(|a| self.app(a)),
                "devices": devices, "at": rfc3339(*at),
                "message": format!("{devices} device(s) lose {} at {} (profile {} has no successor)",
                    app.map_or_else(|| "their apps".to_owned(), |a| self.app(a)), rfc3339(*at), self.profile(*profile))}),
        }
    }
    fn warning(&self, w: &Warning) -> serde_json::Value {
        match w {
            Warning::MixedKindExclusion { assignment } => {
                let a = &self.t.assignments[assignment.index()];
                json!({"kind": "mixed-kind-exclusion", "profile": self.profile(a.profile), "target": target_name(self.t, &a.target),
                    "message": "this exclusion has no include of its kind to cancel: it has no effect"})
            }
            Warning::MissingGroup { name, assignment } => {
                let a = &self.t.assignments[assignment.index()];
                json!({"kind": "missing-group", "profile": self.profile(a.profile), "target": name,
                    "message": format!("assignment to group {name:?}, which does not exist")})
            }
        }
    }
}

fn target_name(t: &Tenant, target: &Target) -> String {
    match target {
        Target::AllUsers => "all-users".into(),
        Target::AllDevices => "all-devices".into(),
        Target::Group(g) => t.groups[g.index()].name.clone(),
        Target::MissingGroup(n) => n.clone(),
    }
}

fn plan_json(t: &Tenant, plan: &Plan) -> serde_json::Value {
    let n = Named { t };
    let commands: Vec<serde_json::Value> = plan
        .devices
        .iter()
        .flat_map(|d| {
            d.commands.iter().map(move |c| {
                let (request, uuid) = match c {
                    Command::InstallProvisioningProfile { profile } => (
                        "InstallProvisioningProfile",
                        t.profiles[profile.index()].uuid.clone(),
                    ),
                    Command::RemoveProvisioningProfile { uuid } => {
                        ("RemoveProvisioningProfile", uuid.to_string())
                    }
                };
                json!({"udid": d.udid, "request_type": request, "profile_uuid": uuid,
                       "command_uuid": command_uuid(&d.udid, request, &uuid, plan.at)})
            })
        })
        .collect();
    json!({
        "at": rfc3339(plan.at),
        "commands": commands,
        "notifications": plan.notifications.iter().map(|x| json!({
            "profile": x.uuid, "name": t.profiles[x.profile.index()].name, "stage_days": x.stage_days,
            "death": rfc3339(x.death), "days_left": x.days_left,
            "apps": x.apps.iter().map(|a| n.app(*a)).collect::<Vec<_>>(), "devices": x.devices})).collect::<Vec<_>>(),
        "user_notices": plan.user_notices.iter().map(|u| json!({
            "user": t.users[u.user.index()].name, "device": t.devices[u.device.index()].udid,
            "app": n.app(u.app), "death": rfc3339(u.death)})).collect::<Vec<_>>(),
        "blockers": plan.blockers.iter().map(|b| n.blocker(b)).collect::<Vec<_>>(),
        "warnings": plan.warnings.iter().map(|w| n.warning(w)).collect::<Vec<_>>(),
    })
}

pub(crate) fn plan(
    store: &mut dyn Store,
    at: DateTime<Utc>,
    as_json: bool,
    enqueue: bool,
    style: Style,
) -> Result<Outcome> {
    let tenant = store.load_tenant()?;
    let plan = Engine::new(tenant.clone(), at).plan();
    let v = plan_json(&tenant, &plan);
    if enqueue {
        let now = Utc::now();
        let entries: Vec<OutboxEntry> = v["commands"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| OutboxEntry {
                command_uuid: c["command_uuid"].as_str().unwrap_or_default().into(),
                udid: c["udid"].as_str().unwrap_or_default().into(),
                request_type: c["request_type"].as_str().unwrap_or_default().into(),
                profile_uuid: c["profile_uuid"].as_str().unwrap_or_default().into(),
                status: CommandStatus::Planned,
                error_chain: None,
                retries: 0,
                created_at: now,
                updated_at: now,
            })
            .collect();
        store.enqueue(&entries)?;
        for n in &plan.notifications {
            store.mark_notified(&n.uuid, n.stage_days, now)?;
        }
    }
    if as_json {
        outln!("{v}")?;
        return Ok(Outcome::Ok);
    }
    outln!("Plan at {}", style.date(plan.at))?;
    let cmds = v["commands"].as_array().cloned().unwrap_or_default();
    outln!(
        "\nCommands ({} for {} devices{}):",
        cmds.len(),
        plan.devices.len(),
        if enqueue {
            ", queued in the outbox"
        } else {
            ""
        }
    )?;
    for c in &cmds {
        outln!(
            "  {:<28} {:<28} {}",
            c["udid"].as_str().unwrap_or_default(),
            c["request_type"].as_str().unwrap_or_default(),
            c["profile_uuid"].as_str().unwrap_or_default()
        )?;
    }
    let section =
        |title: &str, items: &serde_json::Value, line: &dyn Fn(&serde_json::Value) -> String| {
            let items = items.as_array().cloned().unwrap_or_default();
            outln!("\n{title} ({}):", items.len())?;
            for i in &items {
                outln!("  {}", line(i))?;
            }
            std::io::Result::Ok(())
        };
    section("Admin notifications", &v["notifications"], &|n| {
        format!(
            "{} ({}): {}-day stage, apps die {} ({} days), {} device(s), apps {}",
            n["profile"].as_str().unwrap_or_default(),
            n["name"].as_str().unwrap_or_default(),
            n["stage_days"],
            n["death"].as_str().unwrap_or_default(),
            n["days_left"],
            n["devices"],
            n["apps"]
        )
    })?;
    section("Device-user notices", &v["user_notices"], &|n| {
        format!(
            "{} on {}: {} stops launching at {}",
            n["user"].as_str().unwrap_or_default(),
            n["device"].as_str().unwrap_or_default(),
            n["app"].as_str().unwrap_or_default(),
            n["death"].as_str().unwrap_or_default()
        )
    })?;
    section("Blockers", &v["blockers"], &|b| {
        format!(
            "{}: {}",
            b["kind"].as_str().unwrap_or_default(),
            b["message"].as_str().unwrap_or_default()
        )
    })?;
    section("Warnings", &v["warnings"], &|w| {
        format!(
            "{}: {} ({} → {})",
            w["kind"].as_str().unwrap_or_default(),
            w["message"].as_str().unwrap_or_default(),
            w["profile"].as_str().unwrap_or_default(),
            w["target"].as_str().unwrap_or_default()
        )
    })?;
    Ok(Outcome::Ok)
}

/// Acknowledges queued commands as the devices would (all pending, or the
/// given command UUIDs, each of which must be queued).
pub(crate) fn ack(store: &mut dyn Store, only: &[String]) -> Result<Outcome> {
    use provkit_service::outbox::{Acknowledge, acknowledge};
    let which = if only.is_empty() {
        Acknowledge::AllPending
    } else {
        Acknowledge::Only(only.to_vec())
    };
    let done = match acknowledge(store, &which, Utc::now()) {
        Ok(done) => done,
        Err(e @ provkit_service::ServiceError::Unknown { .. }) => {
            eprintln!("provkit: {e}; nothing acknowledged");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    outln!(
        "acknowledged {} command(s) on {} device(s)",
        done.commands,
        done.devices
    )?;
    Ok(Outcome::Ok)
}

pub(crate) fn renew(
    store: &mut dyn Store,
    old: &str,
    new_file: &Path,
    allow_untrusted: bool,
) -> Result<Outcome> {
    let bytes = crate::output::read_input(new_file)?;
    let parsed = match ProvisioningProfile::from_der(&bytes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", new_file.display());
            return Ok(Outcome::Unreadable);
        }
    };
    let a = actor();
    // The successor must be genuine and trusted, then qualify; nothing is
    // written before both checks pass.
    let verifier = provkit_service::trust::tenant_verifier(store)?;
    let failures = provkit_service::trust::trust_failures(&parsed, &verifier, a.at);
    if !failures.is_empty() && !allow_untrusted {
        eprintln!(
            "cannot renew {old} with {}: it is not trusted ({}); trust its CA with \
             `provkit trust add`, or pass --allow-untrusted (recorded in the audit log)",
            parsed.profile().uuid,
            failures.join(", ")
        );
        return Ok(Outcome::Invalid);
    }
    let mut tenant = store.load_tenant()?;
    let Some(old_id) = tenant.profile_by_uuid(old) else {
        return Err(unknown("profile", old, "renew"));
    };
    tenant
        .profiles
        .push(provkit_policy::ProfileFacts::from_profile(parsed.profile()));
    let new_id = provkit_policy::ProfileId(u32::try_from(tenant.profiles.len() - 1)?);
    let renewal = match provkit_policy::renew(&mut tenant, old_id, new_id) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot renew {old} with {}: {e}", parsed.profile().uuid);
            return Ok(Outcome::Invalid);
        }
    };
    let rec = if failures.is_empty() {
        store.add_profile(&bytes, &a)?
    } else {
        store.add_untrusted_profile(&bytes, &failures, &a)?
    };
    store.renew(old, &rec.uuid, &a)?;
    outln!(
        "{} renews {old}: {} app(s) and {} assignment(s) moved",
        rec.uuid,
        renewal.apps.len(),
        renewal.assignments.len()
    )?;
    for app in &renewal.resign_required {
        let app = &tenant.apps[app.index()];
        outln!(
            "  re-sign required: {} {} (its certificate is not in the new profile)",
            app.bundle_id,
            app.version
        )?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn trust_add(store: &mut dyn Store, cert: &Path) -> Result<Outcome> {
    let bytes = crate::output::read_input(cert)?;
    let rec = provkit_service::trust::add_anchor(store, &bytes, &actor())?;
    outln!(
        "trusted {} ({}), valid until {}",
        rec.subject.as_deref().unwrap_or("unnamed certificate"),
        rec.sha256,
        rfc3339(rec.not_after)
    )?;
    Ok(Outcome::Ok)
}

pub(crate) fn trust_list(store: &mut dyn Store, style: Style) -> Result<Outcome> {
    outln!("Apple's roots (always trusted)")?;
    for a in store.trust_anchors()? {
        outln!(
            "{}  {}  valid until {}  added by {} at {}",
            a.sha256,
            a.subject.as_deref().unwrap_or("-"),
            style.date(a.not_after),
            a.added_by,
            style.date(a.added_at)
        )?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn trust_remove(store: &mut dyn Store, sha256: &str) -> Result<Outcome> {
    let rec = store.remove_trust_anchor(sha256, &actor())?;
    outln!(
        "no longer trusted: {} ({})",
        rec.subject.as_deref().unwrap_or("unnamed certificate"),
        rec.sha256
    )?;
    Ok(Outcome::Ok)
}

pub(crate) fn delete(store: &mut dyn Store, uuid: &str) -> Result<Outcome> {
    let tenant = store.load_tenant()?;
    let Some(id) = tenant.profile_by_uuid(uuid) else {
        return Err(unknown("profile", uuid, "delete"));
    };
    if let Err(refused) = provkit_policy::check_delete(&tenant, id) {
        eprintln!("refused: {refused}");
        for a in &refused.apps {
            let app = &tenant.apps[a.index()];
            eprintln!("  linked app {} {}", app.bundle_id, app.version);
        }
        for a in &refused.assignments {
            eprintln!(
                "  active assignment to {}",
                target_name(&tenant, &tenant.assignments[a.index()].target)
            );
        }
        return Ok(Outcome::Invalid);
    }
    store.retire_profile(uuid, &actor())?;
    outln!(
        "deleted {uuid}; devices still holding it get RemoveProvisioningProfile in the next plan"
    )?;
    Ok(Outcome::Ok)
}

pub(crate) fn explain(
    store: &mut dyn Store,
    device: &str,
    profile: &str,
    at: DateTime<Utc>,
    as_json: bool,
) -> Result<Outcome> {
    let tenant = store.load_tenant()?;
    let Some(d) = tenant
        .devices
        .iter()
        .position(|x| x.udid.eq_ignore_ascii_case(device))
    else {
        return Err(unknown("device", device, "explain"));
    };
    let Some(p) = tenant.profile_by_uuid(profile) else {
        return Err(unknown("profile", profile, "explain"));
    };
    let engine = Engine::new(tenant, at);
    let why = engine.explain(provkit_policy::DeviceId(u32::try_from(d)?), p);
    if as_json {
        outln!(
            "{}",
            json!({"device": device, "profile": profile, "desired": why.desired, "steps": why.steps})
        )?;
    } else {
        outln!(
            "{device} {} {profile}:",
            if why.desired { "gets" } else { "does not get" }
        )?;
        for s in &why.steps {
            outln!("  - {s}")?;
        }
    }
    Ok(Outcome::Ok)
}

/// One row of the expiry report.
struct Expiring {
    what: &'static str,
    name: String,
    id: String,
    death: DateTime<Utc>,
    apps: Vec<String>,
    devices: usize,
}

pub(crate) fn expiring(
    store: &mut dyn Store,
    at: DateTime<Utc>,
    within_days: i64,
    as_json: bool,
    svg: Option<&Path>,
    style: Style,
) -> Result<Outcome> {
    let tenant = store.load_tenant()?;
    let engine = Engine::new(tenant.clone(), at);
    let mut holders = vec![0usize; tenant.profiles.len()];
    for d in 0..tenant.devices.len() {
        for p in engine.desired(provkit_policy::DeviceId(u32::try_from(d)?)) {
            holders[p.index()] += 1;
        }
    }
    let horizon = at + TimeDelta::days(within_days);
    // One pass over the devices and one over the apps, not one per app or profile.
    let mut installs = vec![0usize; tenant.apps.len()];
    for d in &tenant.devices {
        for a in &d.apps {
            installs[a.index()] += 1;
        }
    }
    let mut apps_of: Vec<Vec<String>> = vec![Vec::new(); tenant.profiles.len()];
    for a in &tenant.apps {
        if let Some(p) = a.profile {
            apps_of[p.index()].push(format!("{} {}", a.bundle_id, a.version));
        }
    }
    let mut rows = Vec::new();
    for (i, p) in tenant.profiles.iter().enumerate() {
        if p.retired || p.superseded_by.is_some() {
            continue;
        }
        rows.push(Expiring {
            what: "profile",
            name: p.name.clone(),
            id: p.uuid.clone(),
            death: p.expires,
            apps: apps_of[i].clone(),
            devices: holders[i],
        });
    }
    for (i, a) in tenant.apps.iter().enumerate() {
        rows.push(Expiring {
            what: "certificate",
            name: format!("signing certificate of {} {}", a.bundle_id, a.version),
            id: hex(&a.certificate),
            death: a.certificate_not_after,
            apps: vec![format!("{} {}", a.bundle_id, a.version)],
            devices: installs[i],
        });
    }
    rows.retain(|r| r.death <= horizon);
    rows.sort_by(|a, b| a.death.cmp(&b.death).then(a.id.cmp(&b.id)));
    if let Some(path) = svg {
        std::fs::write(path, timeline_svg(&rows, at, within_days))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("timeline written to {}", path.display());
    }
    if as_json {
        for r in &rows {
            outln!(
                "{}",
                json!({"kind": r.what, "name": r.name, "id": r.id, "death": rfc3339(r.death),
                "days_left": provkit_profile::days_left(r.death, at), "apps": r.apps, "devices": r.devices})
            )?;
        }
        return Ok(Outcome::Ok);
    }
    outln!(
        "Dying within {within_days} days of {} ({} item(s)):",
        style.date(at),
        rows.len()
    )?;
    for r in &rows {
        let days = provkit_profile::days_left(r.death, at);
        let state = if days < 0 {
            format!("dead {} days", -days)
        } else {
            format!("{days} days left")
        };
        outln!(
            "  {:<11} {:<40} {}  {:<16} {:>6} device(s)  {}",
            r.what,
            truncate(&r.name, 40),
            style.date(r.death),
            state,
            r.devices,
            r.apps.join(", ")
        )?;
    }
    // A terminal chart: items dying per month.
    outln!("\nBy month:")?;
    let mut months: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for r in &rows {
        *months
            .entry(r.death.format("%Y-%m").to_string())
            .or_default() += 1;
    }
    for (m, n) in months {
        outln!("  {m} {:<40} {n}", "█".repeat(n.min(40)))?;
    }
    Ok(Outcome::Ok)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A timeline of the coming months as SVG: one row per item, a dot at its death date.
fn timeline_svg(rows: &[Expiring], at: DateTime<Utc>, within_days: i64) -> String {
    let (left, width, row_h) = (360.0_f64, 720.0_f64, 22.0_f64);
    #[allow(clippy::cast_precision_loss)]
    let span = within_days.max(1) as f64;
    #[allow(clippy::cast_precision_loss)]
    let height = 60.0 + row_h * rows.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\">provkit: what dies in the next {within_days} days (from {})</text>\n",
        left + width + 40.0,
        at.format("%Y-%m-%d")
    );
    let mut day = 0;
    while day <= within_days {
        #[allow(clippy::cast_precision_loss)]
        let x = left + width * day as f64 / span;
        let label = (at + TimeDelta::days(day)).format("%b %d");
        s.push_str(&format!("<line x1=\"{x}\" y1=\"35\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"32\" text-anchor=\"middle\" fill=\"#666\">{label}</text>\n", height - 10.0));
        day += (within_days / 6).max(1);
    }
    for (i, r) in rows.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let y = 50.0 + row_h * i as f64;
        #[allow(clippy::cast_precision_loss)]
        let days = ((r.death - at).num_seconds() as f64 / 86_400.0).clamp(0.0, span);
        let x = left + width * days / span;
        let color = if r.death < at {
            "#b00020"
        } else if days <= 30.0 {
            "#e08000"
        } else {
            "#1565c0"
        };
        s.push_str(&format!(
            "<text x=\"10\" y=\"{}\">{}</text><line x1=\"{left}\" y1=\"{y}\" x2=\"{x}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"3\"/><circle cx=\"{x}\" cy=\"{y}\" r=\"5\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" fill=\"#333\">{} device(s)</text>\n",
            y + 4.0,
            xml_escape(&truncate(&format!("{}: {}", r.what, r.name), 52)),
            x + 8.0,
            y + 4.0,
            r.devices
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// Parses `60d`, `8w` or a plain number of days.
/// The longest duration a user may give: 100 years.
const MAX_DAYS: i64 = 36_525;

/// A duration a user typed for `--within`: days (`60d`, or a bare `60`) or
/// weeks (`8w`), from 0 to 100 years.
pub(crate) fn parse_days(s: &str) -> Result<i64> {
    let (num, mult) = if let Some(n) = s.strip_suffix('d') {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('w') {
        (n, 7)
    } else {
        (s, 1)
    };
    let days = num
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .with_context(|| format!("--within {s:?}: expected days or weeks like 60d or 8w"))?;
    if !(0..=MAX_DAYS).contains(&days) {
        anyhow::bail!("--within {s:?}: give a duration from 0d to {MAX_DAYS}d (100 years)");
    }
    Ok(days)
}

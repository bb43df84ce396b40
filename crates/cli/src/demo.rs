//! `provkit demo`: the main job on a fresh machine with nothing but this
//! binary. It writes a sample tenant (profiles signed by the project's test
//! CA, an inventory, apps), stores it in a new SQLite file, and runs the
//! same steps an admin would: import, inventory import, app add, assign,
//! plan, expiring. Every date is relative to the chosen instant.

use crate::output::outln;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use provkit_profile::fixtures::{self, CmsOptions, KeySource, ProfileSpec, TestCa};
use provkit_profile::plist::Value;
use serde_json::json;

use crate::output::Style;
use crate::profile_cmd::Outcome;
use crate::tenant_cmd;

const FIELD: &str = "D3A10000-0000-4000-8000-00000000F1E1";
const FIELD_RENEWED: &str = "D3A10000-0000-4000-8000-00000000F1E2";
const SALES: &str = "D3A10000-0000-4000-8000-0000000005A1";
const BETA: &str = "D3A10000-0000-4000-8000-00000000BE7A";

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn run(dir: &Path, at: DateTime<Utc>, style: Style) -> Result<Outcome> {
    let at = at.trunc_subsecs(0);
    let days = TimeDelta::days;
    std::fs::create_dir_all(dir.join("profiles"))
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("renewal"))?;
    let ca = TestCa::rsa();
    // A second developer certificate that dies in 25 days: the beta app must be re-signed soon.
    let beta_dev = ca.issue_developer(
        "iPhone Distribution: provkit Beta (PROVKIT01)",
        fixtures::TEST_TEAM,
        at + days(25),
        KeySource::P256,
    );
    write(&dir.join("test-root-ca.cer"), ca.root.cert.der())?;
    write(&dir.join("developer.cer"), ca.developer.cert.der())?;
    write(&dir.join("beta-developer.cer"), beta_dev.cert.der())?;

    let enterprise = |uuid: &str, name: &str, bundle: &str, expires_in: i64| ProfileSpec {
        name: name.into(),
        uuid: uuid.into(),
        bundle_id: bundle.into(),
        devices: None,
        all_devices: true,
        creation: at - days((365 - expires_in).max(1)),
        expiration: at + days(expires_in),
        cms: CmsOptions {
            signing_time: at - days(30),
            ..CmsOptions::default()
        },
        ..ProfileSpec::default()
    };
    write(
        &dir.join("profiles/field.mobileprovision"),
        &fixtures::signed_profile(
            &ca,
            &enterprise(FIELD, "Field Service In House", "com.example.field", 45),
        ),
    )?;
    write(
        &dir.join("profiles/sales.mobileprovision"),
        &fixtures::signed_profile(
            &ca,
            &enterprise(SALES, "Sales In House", "com.example.sales", 200),
        ),
    )?;
    write(
        &dir.join("renewal/field-renewed.mobileprovision"),
        &fixtures::signed_profile(
            &ca,
            &enterprise(
                FIELD_RENEWED,
                "Field Service In House (renewed)",
                "com.example.field",
                410,
            ),
        ),
    )?;
    // An ad hoc beta profile for two devices, listing both developer certificates.
    let beta_spec = ProfileSpec {
        name: "Beta Ad Hoc: com.example.beta".into(),
        uuid: BETA.into(),
        bundle_id: "com.example.beta".into(),
        devices: Some(2),
        creation: at - days(340),
        expiration: at + days(20),
        cms: CmsOptions {
            signing_time: at - days(340),
            ..CmsOptions::default()
        },
        ..ProfileSpec::default()
    };
    let mut d = fixtures::profile_dictionary(&beta_spec, &[&ca.developer.cert, &beta_dev.cert]);
    d.insert(
        "ProvisionedDevices",
        Value::Array(vec![
            Value::String(fixtures::udid(1)),
            Value::String(fixtures::udid(2)),
        ]),
    );
    write(
        &dir.join("profiles/beta.mobileprovision"),
        &fixtures::sign_plist(&ca, d, false, &beta_spec.cms),
    )?;

    let u = fixtures::udid;
    let inventory = json!({
        "users": ["alice", "bob", "carol", "dave"],
        "devices": [
            {"udid": u(0), "user": "alice", "apps": [{"bundle_id": "com.example.field", "version": "3.2"}]},
            {"udid": u(1), "user": "bob", "apps": [{"bundle_id": "com.example.field", "version": "3.2"}, {"bundle_id": "com.example.beta", "version": "0.9"}],
             "reported": [{"uuid": FIELD, "expires": (at + days(45)).to_rfc3339(), "managed": true}]},
            {"udid": u(2), "user": "carol", "apps": [{"bundle_id": "com.example.sales", "version": "1.0"}]},
            {"udid": u(3), "user": "dave", "apps": [{"bundle_id": "com.example.sales", "version": "1.0"}, {"bundle_id": "com.example.beta", "version": "0.9"}]},
            {"udid": u(4), "user": "bob"},
            {"udid": u(5)}
        ],
        "groups": [
            {"name": "Field", "kind": "user", "members": ["alice", "bob"]},
            {"name": "Executives", "kind": "user", "members": ["bob"]},
            {"name": "Sales", "kind": "user", "members": ["carol"], "subgroups": ["Sales EU"]},
            {"name": "Sales EU", "kind": "user", "members": ["dave"]},
            {"name": "Kiosks", "kind": "device", "members": [u(5)]}
        ]
    });
    let inv_path = dir.join("inventory.json");
    write(
        &inv_path,
        serde_json::to_string_pretty(&inventory)?.as_bytes(),
    )?;

    let db_path = dir.join("provkit.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    let mut store = provkit_store::SqliteStore::open(&db_path)?;
    let store: &mut dyn provkit_store::Store = &mut store;
    let db = format!("--db {}", db_path.display());

    outln!(
        "== A sample tenant in {} (profiles signed by a test CA, dates relative to {})\n",
        dir.display(),
        style.date(at)
    )?;
    let root = dir.join("test-root-ca.cer");
    write(&root, ca.root.cert.der())?;
    outln!("$ provkit {db} trust add {}", root.display())?;
    crate::trust_cmd::add(store, &root)?;
    outln!("\n$ provkit {db} import {}/profiles", dir.display())?;
    tenant_cmd::import(
        store,
        &[dir.join("profiles")],
        false,
        &provkit_store::ProfileLabel::default(),
    )?;
    outln!("\n$ provkit {db} inventory import {}", inv_path.display())?;
    crate::inventory_cmd::import(
        store,
        &inv_path,
        &provkit_store::Replace::Nothing,
        false,
        at,
    )?;
    for (bundle, version, profile, cert) in [
        ("com.example.field", "3.2", FIELD, "developer.cer"),
        ("com.example.sales", "1.0", SALES, "developer.cer"),
        ("com.example.beta", "0.9", BETA, "beta-developer.cer"),
    ] {
        outln!(
            "\n$ provkit {db} app add --bundle-id {bundle} --version {version} --profile {profile} --certificate {}",
            dir.join(cert).display()
        )?;
        tenant_cmd::app_add(store, bundle, version, profile, &dir.join(cert))?;
    }
    outln!("\n$ provkit {db} assign {FIELD} --include Field --exclude Executives")?;
    let add = |inc: &str, exc: &str| provkit_store::AssignmentEdit::Add {
        include: vec![provkit_store::TargetName::parse(inc)],
        exclude: vec![provkit_store::TargetName::parse(exc)],
    };
    tenant_cmd::assign(store, FIELD, &add("Field", "Executives"), at)?;
    outln!("\n$ provkit {db} assign {SALES} --include Sales --exclude Kiosks")?;
    tenant_cmd::assign(store, SALES, &add("Sales", "Kiosks"), at)?;

    outln!("\n$ provkit {db} plan")?;
    crate::plan_cmd::plan(
        store,
        &crate::plan_cmd::PlanArgs {
            at,
            format: "text",
            enqueue: false,
            device: None,
            profile: None,
        },
        style,
    )?;
    let svg = dir.join("expiring.svg");
    outln!(
        "\n$ provkit {db} expiring --within 60d --svg {}",
        svg.display()
    )?;
    let args = crate::expiry_cmd::ExpiringArgs {
        at,
        within_days: 60,
        json: false,
        svg: Some(&svg),
        filter: provkit_service::expiry::ExpiryFilter::default(),
        fail_if_any: false,
    };
    crate::expiry_cmd::expiring(store, &args, style)?;
    outln!(
        "\nNext: `provkit {db} renew {FIELD} {}` renews the field app's profile for every device that runs it;\n`provkit {db} explain {} {FIELD}` shows why bob's tablet does (or does not) get it.",
        dir.join("renewal/field-renewed.mobileprovision").display(),
        u(4)
    )?;
    Ok(Outcome::Ok)
}

/// `provkit demo --serve`: the demo tenant's console on `listen`, with an
/// admin console user whose password is drawn now and printed once.
pub(crate) fn serve(dir: &Path, listen: &str) -> Result<Outcome> {
    let db_path = dir.join("provkit.db");
    let password = provkit_profile::hex(&crate::serve_cmd::random::<12>()?);
    {
        let mut store = provkit_store::SqliteStore::open(&db_path)?;
        provkit_service::console::create_user(
            &mut store,
            "admin",
            provkit_service::tokens::Role::Admin,
            None,
            &password,
            &crate::serve_cmd::random()?,
            &tenant_cmd::actor(),
        )?;
    }
    outln!(
        "\n== The console: open http://{listen}/console/ and sign in as admin with password {password}\n   (Ctrl-C stops it.)"
    )?;
    let db = crate::db::DbArgs {
        db: Some(db_path),
        database_url: None,
    };
    crate::serve_cmd::serve(
        &db,
        &crate::serve_cmd::ServeArgs {
            listen,
            connections: 4,
            limits: provkit_server::Limits::default(),
            schedule: provkit_server::Schedule::new(crate::serve_cmd::holder()?),
            tls: None,
        },
    )
}

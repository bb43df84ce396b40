//! `provkit serve` and `provkit token`: the HTTP API over the database, and
//! the tokens that may call it.

use anyhow::{Context, Result};
use provkit_server::state::{AppState, StorePool};
use provkit_service::tokens::{self, Role};
use provkit_store::Store;

use crate::output::{Style, outln};
use crate::profile_cmd::Outcome;
use crate::tenant_cmd::actor;

/// `provkit serve`'s settings.
pub(crate) struct ServeArgs<'a> {
    pub(crate) listen: &'a str,
    pub(crate) connections: usize,
    pub(crate) limits: provkit_server::Limits,
    pub(crate) schedule: provkit_server::Schedule,
    /// PEM certificate chain and key, for HTTPS.
    pub(crate) tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// This process's id for the scheduler lease: host, process id and a
/// random part.
pub(crate) fn holder() -> Result<String> {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let r = random::<4>()?;
    Ok(format!(
        "{host}-{}-{}",
        std::process::id(),
        provkit_profile::hex(&r)
    ))
}

pub(crate) fn serve(db: &crate::db::DbArgs, args: &ServeArgs<'_>) -> Result<Outcome> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let opener = db.opener();
    let pool = StorePool::open(&*opener, args.connections.max(1))
        .with_context(|| format!("opening {}", db.describe()))?;
    let tls = match &args.tls {
        Some((cert, key)) => Some(provkit_server::tls::server_config(cert, key)?),
        None => None,
    };
    let state = AppState::new(pool, args.limits).with_secure_cookies(tls.is_some());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%addr, db = %db.describe(), "provkit serve listening");
        eprintln!(
            "provkit serve: listening on {scheme}://{addr} ({})",
            db.describe()
        );
        let schedule = Some(args.schedule.clone());
        let stop = provkit_server::shutdown_signal();
        match tls {
            Some(config) => {
                let listener = provkit_server::tls::TlsListener::new(listener, config)?;
                provkit_server::run(listener, state, schedule, stop).await
            }
            None => provkit_server::run(listener, state, schedule, stop).await,
        }
        .context("serving")
    })?;
    Ok(Outcome::Ok)
}

/// Bytes from the operating system's generator.
pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(b)
}

pub(crate) fn create(
    store: &mut dyn Store,
    name: &str,
    role: &str,
    org_group: Option<&str>,
) -> Result<Outcome> {
    let role = Role::parse(role).map_err(|e| anyhow::anyhow!("{e}"))?;
    let made = tokens::create(store, name, role, org_group, &random()?, &actor())?;
    eprintln!(
        "token {:?} ({}, {}): shown once, keep it now",
        made.record.name, made.record.role, made.record.org_group
    );
    outln!("{}", made.token)?;
    Ok(Outcome::Ok)
}

pub(crate) fn list(store: &mut dyn Store, style: Style) -> Result<Outcome> {
    for t in tokens::list(store)? {
        let revoked = t
            .revoked_at
            .map_or_else(String::new, |r| format!("  revoked {}", style.date(r)));
        outln!(
            "{}  {}  {}  created by {} at {}{revoked}",
            t.name,
            t.role,
            t.org_group,
            t.created_by,
            style.date(t.created_at)
        )?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn revoke(store: &mut dyn Store, name: &str) -> Result<Outcome> {
    let t = tokens::revoke(store, name, &actor())?;
    outln!("revoked token {}", t.name)?;
    Ok(Outcome::Ok)
}

pub(crate) fn org_group_create(store: &mut dyn Store, path: &str) -> Result<Outcome> {
    let made = store.add_org_group(path, &actor())?;
    if made.is_empty() {
        outln!("{path} exists")?;
    }
    for p in made {
        outln!("created {p}")?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn org_group_list(store: &mut dyn Store) -> Result<Outcome> {
    for g in store.org_groups()? {
        let depth = g.path.matches('/').count();
        let name = g.path.rsplit('/').next().unwrap_or(&g.path);
        outln!("{}{name}  ({})", "  ".repeat(depth), g.path)?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn console_user_create(
    store: &mut dyn Store,
    name: &str,
    role: &str,
    org_group: Option<&str>,
    password_env: &str,
) -> Result<Outcome> {
    let role = Role::parse(role).map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = std::env::var(password_env)
        .with_context(|| format!("reading the password from ${password_env}"))?;
    let user = provkit_service::console::create_user(
        store,
        name,
        role,
        org_group,
        &password,
        &random()?,
        &actor(),
    )?;
    outln!(
        "console user {} ({}, {}) created",
        user.name,
        user.role,
        user.org_group
    )?;
    Ok(Outcome::Ok)
}

pub(crate) fn console_user_list(store: &mut dyn Store, style: Style) -> Result<Outcome> {
    for u in store.console_users()? {
        outln!(
            "{}  {}  {}  created by {} at {}",
            u.name,
            u.role,
            u.org_group,
            u.created_by,
            style.date(u.created_at)
        )?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn console_user_remove(store: &mut dyn Store, name: &str) -> Result<Outcome> {
    let u = store.remove_console_user(name, &actor())?;
    outln!("removed console user {} and ended their sessions", u.name)?;
    Ok(Outcome::Ok)
}

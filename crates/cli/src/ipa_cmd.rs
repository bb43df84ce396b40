//! `provkit ipa verify` and `provkit ipa info`: an app's signature, checked
//! the way a device does, and what it holds.

use crate::output::outln;
use std::path::Path;

use anyhow::Result;
use provkit_codesign::{At as CodeAt, Options, Report, VerifyError, verify_path};
use serde_json::json;

use crate::output::Style;
use crate::profile_cmd::{At, Outcome, verifier};

fn run_verify(
    path: &Path,
    at: At,
    device: Option<&str>,
    verifier: &provkit_profile::Verifier,
) -> Result<Report, VerifyError> {
    let at = match at {
        At::Instant(t) => CodeAt::Instant(t),
        At::SigningTime => CodeAt::SigningTime,
    };
    let mut options = Options::new(verifier, at);
    options.device = device;
    verify_path(path, &options)
}

fn unreadable(path: &Path, e: &VerifyError, as_json: bool) -> std::io::Result<Outcome> {
    eprintln!("{}: not readable as an app: {e}", path.display());
    if as_json {
        outln!(
            "{}",
            json!({"file": path.display().to_string(), "valid": false, "error": e.to_string(), "findings": []})
        )?;
    }
    Ok(Outcome::Unreadable)
}

/// How `provkit ipa verify` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Sentences for people.
    Text,
    /// One JSON object per app.
    Json,
    /// JUnit XML, one test case per app.
    Junit,
    /// SARIF 2.1.0, one result per finding.
    Sarif,
}

/// Arguments of `provkit ipa verify`.
pub(crate) struct VerifyArgs<'a> {
    pub(crate) at: Option<&'a str>,
    pub(crate) device: Option<&'a str>,
    pub(crate) format: Format,
    pub(crate) anchors: &'a [std::path::PathBuf],
    pub(crate) no_apple_roots: bool,
}

/// Verifies every path; the exit code is the worst: 2 if one is not an
/// app, else 1 if one is invalid.
pub(crate) fn verify(
    paths: &[std::path::PathBuf],
    args: &VerifyArgs<'_>,
    style: Style,
) -> Result<Outcome> {
    let at = crate::profile_cmd::parse_at(args.at)?;
    let verifier = verifier(args.anchors, args.no_apple_roots)?;
    let mut verdicts: Vec<crate::report_fmt::Verdict> = Vec::new();
    let mut worst = Outcome::Ok;
    for path in paths {
        let shown = path.display().to_string();
        match run_verify(path, at, args.device, &verifier) {
            Ok(report) => {
                if !report.valid && worst == Outcome::Ok {
                    worst = Outcome::Invalid;
                }
                match args.format {
                    Format::Text => print_text(&shown, &report, at, style)?,
                    Format::Json => {
                        let mut v = serde_json::to_value(&report)?;
                        v["file"] = json!(shown);
                        outln!("{v}")?;
                    }
                    Format::Junit | Format::Sarif => {}
                }
                verdicts.push((shown, Ok(report)));
            }
            Err(e) => {
                worst = Outcome::Unreadable;
                if matches!(args.format, Format::Text | Format::Json) {
                    unreadable(path, &e, args.format == Format::Json)?;
                }
                verdicts.push((shown, Err(e.to_string())));
            }
        }
    }
    match args.format {
        Format::Junit => outln!("{}", crate::report_fmt::junit(&verdicts).trim_end())?,
        Format::Sarif => outln!("{}", crate::report_fmt::sarif(&verdicts))?,
        Format::Text | Format::Json => {}
    }
    Ok(worst)
}

fn print_text(path: &str, report: &Report, at: At, style: Style) -> std::io::Result<()> {
    let verdict = if report.valid { "valid" } else { "INVALID" };
    let when = match at {
        At::Instant(t) => style.date(t),
        At::SigningTime => "each signature's signing time".to_owned(),
    };
    outln!("{path}: {verdict} at {when}")?;
    for f in &report.findings {
        let mut place = f.bundle.clone();
        if let Some(arch) = &f.arch {
            place.push_str(&format!(" [{arch}]"));
        }
        if let Some(p) = &f.path {
            place.push_str(&format!(" {p}"));
        }
        outln!("  {} {} at {place}: {}", f.severity, f.code, f.message)?;
        match f.class {
            Some(class) => outln!("      {class}; fix: {}", f.fix)?,
            None => outln!("      fix: {}", f.fix)?,
        }
    }
    Ok(())
}

pub(crate) fn info(path: &Path, as_json: bool, style: Style) -> Result<Outcome> {
    let verifier = provkit_profile::Verifier::default();
    let report = match run_verify(path, At::SigningTime, None, &verifier) {
        Ok(r) => r,
        Err(e) => return Ok(unreadable(path, &e, as_json)?),
    };
    if as_json {
        let v = json!({
            "file": path.display().to_string(),
            "bundles": serde_json::to_value(&report.bundles)?,
        });
        outln!("{v}")?;
        return Ok(Outcome::Ok);
    }
    outln!("{}", path.display())?;
    for b in &report.bundles {
        outln!(
            "{} ({}): {} version {} ({}), minimum iOS {}",
            b.path,
            b.kind,
            b.bundle_id.as_deref().unwrap_or("-"),
            b.version.as_deref().unwrap_or("-"),
            b.build.as_deref().unwrap_or("-"),
            b.minimum_os.as_deref().unwrap_or("-"),
        )?;
        for s in &b.slices {
            outln!(
                "  {}: CodeDirectories {} (versions {}), team {}, signer {}{}",
                s.arch,
                s.hash_types.join("+"),
                s.versions.join(", "),
                s.team_id.as_deref().unwrap_or("-"),
                s.signer.as_deref().unwrap_or("(none)"),
                s.signer_not_after
                    .map(|t| format!(", valid until {}", style.date(t)))
                    .unwrap_or_default(),
            )?;
        }
        if let Some((v, n)) = b.resources {
            outln!("  resources: version {v} seal, {n} paths")?;
        }
        if let Some(p) = &b.profile {
            outln!(
                "  profile: {} {:?} ({}), team {}, {}, expires {}{}",
                p.uuid,
                p.name.as_deref().unwrap_or(""),
                p.kind,
                p.team_id.as_deref().unwrap_or("-"),
                p.application_identifier.as_deref().unwrap_or("-"),
                style.date(p.expiration_date),
                p.devices
                    .map(|n| format!(", {n} devices"))
                    .unwrap_or_default(),
            )?;
        }
        if let Some(e) = &b.entitlements {
            for (k, v) in e.iter() {
                outln!(
                    "  entitlement {k} = {}",
                    provkit_codesign::entitlements::show(v)
                )?;
            }
        }
    }
    Ok(Outcome::Ok)
}

/// Arguments of `provkit ipa resign`.
pub(crate) struct ResignArgs<'a> {
    pub(crate) input: &'a Path,
    pub(crate) output: &'a Path,
    pub(crate) identity: Option<&'a Path>,
    pub(crate) password_env: &'a str,
    pub(crate) certificate: Option<&'a Path>,
    pub(crate) key: Option<&'a Path>,
    pub(crate) chain: &'a [std::path::PathBuf],
    pub(crate) profiles: &'a [std::path::PathBuf],
    pub(crate) entitlements: Option<&'a Path>,
    pub(crate) bundle_id: Option<&'a str>,
    pub(crate) force: bool,
    pub(crate) anchors: &'a [std::path::PathBuf],
    pub(crate) no_apple_roots: bool,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    Ok(crate::output::read_input(path)?)
}

pub(crate) fn resign(args: &ResignArgs<'_>) -> Result<Outcome> {
    use provkit_codesign::Identity;
    use provkit_codesign::resign::{ResignError, ResignOptions, resign_path};
    let mut chain = Vec::new();
    for c in args.chain {
        chain.push(
            provkit_profile::Certificate::from_pem_or_der(&read(c)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", c.display()))?,
        );
    }
    let identity = match (args.identity, args.certificate, args.key) {
        (Some(p12), None, None) => {
            let password = std::env::var(args.password_env).unwrap_or_default();
            let mut id = Identity::from_pkcs12(&read(p12)?, &password)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p12.display()))?;
            id.chain.extend(chain);
            id
        }
        (None, Some(cert), Some(key)) => Identity::new(&read(cert)?, &read(key)?, chain)
            .map_err(|e| anyhow::anyhow!("{} / {}: {e}", cert.display(), key.display()))?,
        _ => anyhow::bail!("give --identity ID.p12, or --certificate and --key"),
    };
    let profiles = args
        .profiles
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>>>()?;
    let entitlements = match args.entitlements {
        None => None,
        Some(p) => match provkit_profile::plist::parse(&read(p)?) {
            Ok((provkit_profile::Value::Dictionary(d), _)) => Some(d),
            _ => anyhow::bail!("{}: not a plist dictionary", p.display()),
        },
    };
    // The output is written only when its own verifier accepts it now.
    let verifier = crate::profile_cmd::verifier(args.anchors, args.no_apple_roots)?;
    let now = chrono::Utc::now();
    let mut opts = ResignOptions::new(&identity, &profiles, now);
    opts.entitlements = entitlements;
    opts.bundle_id = args.bundle_id.map(str::to_owned);
    opts.check = Some((&verifier, now));
    opts.overwrite = args.force;
    match resign_path(args.input, args.output, &opts) {
        Ok(done) => {
            for (bundle, id) in &done.signed {
                outln!("signed {bundle} ({id})")?;
            }
            outln!("wrote {}", args.output.display())?;
            Ok(Outcome::Ok)
        }
        Err(ResignError::Refused(reasons)) => {
            for r in reasons {
                eprintln!("{}: refused: {r}", args.input.display());
            }
            Ok(Outcome::Invalid)
        }
        Err(ResignError::Archive(e)) => {
            eprintln!("{}: not readable as an app: {e}", args.input.display());
            Ok(Outcome::Unreadable)
        }
        Err(e) => Err(e.into()),
    }
}

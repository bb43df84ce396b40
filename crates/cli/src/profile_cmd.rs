//! `provkit profile inspect | verify`, and the instants and anchors every
//! verifying command parses.

use crate::output::outln;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use provkit_profile::{Certificate, ProvisioningProfile, TrustAnchors, Verifier, hex};
use serde_json::json;

use crate::output::{Style, rfc3339};

/// The result of a command, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// Everything read and valid.
    Ok = 0,
    /// Some input is invalid.
    Invalid = 1,
    /// Some input could not be read as what it should be.
    Unreadable = 2,
}

fn load(path: &Path) -> Result<ProvisioningProfile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    ProvisioningProfile::from_der(&bytes).map_err(|e| e.to_string())
}

/// The JSON summary of a profile (the `inspect --json` schema).
pub(crate) fn profile_json(file: &Path, parsed: &ProvisioningProfile) -> serde_json::Value {
    let p = parsed.profile();
    json!({
        "file": file.display().to_string(),
        "uuid": p.uuid,
        "name": p.name,
        "team_identifier": p.team_id(),
        "team_name": p.team_name,
        "app_id_name": p.app_id_name,
        "application_identifier": p.application_identifier(),
        "creation_date": rfc3339(p.creation_date),
        "expiration_date": rfc3339(p.expiration_date),
        "death_date": rfc3339(p.death_date()),
        "kind": p.kind().as_str(),
        "platforms": p.platforms,
        "devices": p.devices(),
        "provisions_all_devices": p.provisions_all_devices.unwrap_or(false),
        "developer_certificates": p.developer_certificates,
        "entitlements": p.entitlements(),
        "plist_format": parsed.plist_format(),
        "has_der_encoded_profile": p.der_encoded_profile.is_some(),
        "is_xcode_managed": p.is_xcode_managed,
        "time_to_live": p.time_to_live,
        "version": p.version,
    })
}

fn print_profile(file: &Path, parsed: &ProvisioningProfile, style: Style) -> std::io::Result<()> {
    let p = parsed.profile();
    outln!("{}", file.display())?;
    outln!("  Name:         {}", p.name.as_deref().unwrap_or("-"))?;
    outln!("  UUID:         {}", p.uuid)?;
    outln!(
        "  Team:         {} ({})",
        p.team_id().unwrap_or("-"),
        p.team_name.as_deref().unwrap_or("-")
    )?;
    outln!(
        "  App ID:       {}",
        p.application_identifier().unwrap_or("-")
    )?;
    outln!(
        "  Kind:         {}   Platforms: {}",
        p.kind(),
        if p.platforms.is_empty() {
            "-".to_owned()
        } else {
            p.platforms.join(", ")
        }
    )?;
    outln!("  Created:      {}", style.date(p.creation_date))?;
    outln!("  Expires:      {}", style.date(p.expiration_date))?;
    outln!(
        "  Apps die:     {} (earliest of expiry and certificates)",
        style.date(p.death_date())
    )?;
    if p.provisions_all_devices == Some(true) {
        outln!("  Devices:      all")?;
    } else {
        outln!("  Devices:      {}", p.devices().len())?;
    }
    outln!("  Certificates: {}", p.developer_certificates.len())?;
    for c in &p.developer_certificates {
        outln!(
            "    - {} | serial {} | not after {} | sha256 {}",
            c.subject_cn().unwrap_or("-"),
            c.serial_hex(),
            style.date(c.not_after()),
            hex(&c.sha256_fingerprint())
        )?;
    }
    let ent = p.entitlements();
    outln!("  Entitlements: {}", ent.len())?;
    for (k, v) in ent.iter() {
        outln!("    {k} = {}", serde_json::to_string(v).unwrap_or_default())?;
    }
    Ok(())
}

pub(crate) fn inspect(files: &[PathBuf], as_json: bool, style: Style) -> Result<Outcome> {
    let mut outcome = Outcome::Ok;
    for file in files {
        match load(file) {
            Ok(parsed) => {
                if as_json {
                    outln!("{}", profile_json(file, &parsed))?;
                } else {
                    print_profile(file, &parsed, style)?;
                }
            }
            Err(e) => {
                outcome = Outcome::Unreadable;
                eprintln!("{}: {e}", file.display());
                if as_json {
                    outln!(
                        "{}",
                        json!({"file": file.display().to_string(), "error": e})
                    )?;
                }
            }
        }
    }
    Ok(outcome)
}

/// When to verify.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At {
    Instant(DateTime<Utc>),
    SigningTime,
}

pub(crate) fn parse_at(at: Option<&str>) -> Result<At> {
    Ok(match at {
        None => At::Instant(Utc::now()),
        Some("signing-time") => At::SigningTime,
        Some(s) => At::Instant(parse_instant("--at", s)?),
    })
}

/// The instants provkit works with: every profile and certificate date,
/// with room for the stages and validity periods computed from them
/// (X.509 times stop at year 9999).
const EARLIEST: &str = "1970-01-01T00:00:00Z";
const LATEST: &str = "2999-12-31T23:59:59Z";

/// An instant a user typed for `flag`: RFC 3339, or a date alone
/// (`2026-11-22`, midnight UTC), between 1970 and 2999.
pub(crate) fn parse_instant(flag: &str, s: &str) -> Result<DateTime<Utc>> {
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.to_utc(),
        Err(_) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
            .with_context(|| {
                format!(
                    "{flag} {s:?}: expected an RFC 3339 instant (2026-11-22T09:00:00Z) or a date (2026-11-22)"
                )
            })?,
    };
    let (lo, hi) = (bound(EARLIEST), bound(LATEST));
    if t < lo || t > hi {
        anyhow::bail!("{flag} {s:?}: provkit works with instants from {EARLIEST} to {LATEST}");
    }
    Ok(t)
}

fn bound(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

pub(crate) fn verifier(anchor_files: &[PathBuf], no_apple_roots: bool) -> Result<Verifier> {
    let mut anchors = if no_apple_roots {
        TrustAnchors::empty()
    } else {
        TrustAnchors::apple()
    };
    for path in anchor_files {
        let bytes = crate::output::read_input(path)?;
        let cert = Certificate::from_pem_or_der(&bytes)
            .with_context(|| format!("anchor {} is not a certificate", path.display()))?;
        anchors.add(cert);
    }
    if anchors.certificates().is_empty() {
        bail!("no trust anchors: give --anchor or drop --no-apple-roots");
    }
    Ok(Verifier::new(anchors))
}

pub(crate) fn verify(
    files: &[PathBuf],
    at: Option<&str>,
    as_json: bool,
    anchors: &[PathBuf],
    no_apple_roots: bool,
    fail_within_days: Option<i64>,
    style: Style,
) -> Result<Outcome> {
    let at = parse_at(at)?;
    let verifier = verifier(anchors, no_apple_roots)?;
    let mut outcome = Outcome::Ok;
    for file in files {
        let parsed = match load(file) {
            Ok(p) => p,
            Err(e) => {
                outcome = Outcome::Unreadable;
                eprintln!("{}: unreadable: {e}", file.display());
                if as_json {
                    outln!(
                        "{}",
                        json!({"file": file.display().to_string(), "valid": false, "error": e})
                    )?;
                }
                continue;
            }
        };
        let report = match at {
            At::Instant(t) => verifier.verify(&parsed, t),
            At::SigningTime => verifier.verify_at_signing_time(&parsed),
        };
        if !report.valid {
            outcome = outcome.max(Outcome::Invalid);
        }
        // The CI gate: apps under this profile die within the window.
        let days_left = parsed.profile().days_left(report.at);
        let gate = fail_within_days.filter(|d| days_left <= *d);
        if gate.is_some() {
            outcome = outcome.max(Outcome::Invalid);
        }
        if as_json {
            let mut v = serde_json::to_value(&report)?;
            v["file"] = json!(file.display().to_string());
            v["uuid"] = json!(parsed.profile().uuid);
            v["days_left"] = json!(days_left);
            v["expires_within_gate"] = json!(gate.is_some());
            outln!("{v}")?;
        } else {
            let verdict = if report.valid { "valid" } else { "INVALID" };
            outln!("{}: {verdict} at {}", file.display(), style.date(report.at))?;
            for f in &report.findings {
                outln!("  {} {}: {}", f.severity, f.code, f.message)?;
            }
            if let Some(d) = gate {
                outln!(
                    "  gate: apps signed under it die in {days_left} day(s), within --fail-if-expires-within {d}d"
                )?;
            }
        }
    }
    Ok(outcome)
}

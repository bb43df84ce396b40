//! `expiring`: what dies when, as text, JSON lines or an SVG timeline.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use provkit_service::expiry::{ExpiryFilter, ExpiryItem, ItemKind};
use provkit_store::Store;

use crate::output::{Style, outln};
use crate::profile_cmd::Outcome;

/// What `provkit expiring` was asked.
pub(crate) struct ExpiringArgs<'a> {
    pub(crate) at: DateTime<Utc>,
    pub(crate) within_days: i64,
    pub(crate) json: bool,
    pub(crate) svg: Option<&'a Path>,
    pub(crate) filter: ExpiryFilter,
    /// Exit 1 when anything is dead in use or dying within the window.
    pub(crate) fail_if_any: bool,
}

/// Parses `profile` or `certificate`.
pub(crate) fn parse_kind(s: &str) -> Result<ItemKind> {
    match s {
        "profile" => Ok(ItemKind::Profile),
        "certificate" => Ok(ItemKind::Certificate),
        _ => anyhow::bail!("--kind {s:?}: give profile or certificate"),
    }
}

pub(crate) fn expiring(
    store: &mut dyn Store,
    args: &ExpiringArgs<'_>,
    style: Style,
) -> Result<Outcome> {
    let at = args.at;
    let r = provkit_service::expiry::report(store, at, args.within_days, &args.filter)?;
    let all: Vec<&ExpiryItem> = r.dead_in_use.iter().chain(&r.dying).collect();
    if let Some(path) = args.svg {
        std::fs::write(path, timeline_svg(&all, at, args.within_days))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("timeline written to {}", path.display());
    }
    let outcome = if args.fail_if_any && !all.is_empty() {
        Outcome::Invalid
    } else {
        Outcome::Ok
    };
    if args.json {
        for (state, list) in [("dead-in-use", &r.dead_in_use), ("dying", &r.dying)] {
            for item in list {
                let mut v = serde_json::to_value(item)?;
                v["state"] = state.into();
                outln!("{v}")?;
            }
        }
        return Ok(outcome);
    }
    let line = |i: &ExpiryItem| -> std::io::Result<()> {
        let state = if i.days_left < 0 {
            format!("dead {} days", -i.days_left)
        } else {
            format!("{} days left", i.days_left)
        };
        outln!(
            "  {:<11} {:<36} {}  {}  {:<16} {:>6} device(s)  {}: {}  [{}]",
            i.kind.as_str(),
            truncate(&i.name, 36),
            short(&i.id),
            style.date(i.death),
            state,
            i.devices,
            i.action,
            i.apps.join(", "),
            i.cause
        )
    };
    outln!(
        "Already dead but still in use at {} ({} item(s)):",
        style.date(at),
        r.dead_in_use.len()
    )?;
    for i in &r.dead_in_use {
        line(i)?;
    }
    outln!(
        "\nDying within {} days ({} item(s)):",
        args.within_days,
        r.dying.len()
    )?;
    for i in &r.dying {
        line(i)?;
    }
    // A terminal chart: items dying per month.
    outln!("\nBy month:")?;
    let mut months: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for i in &r.dying {
        *months
            .entry(i.death.format("%Y-%m").to_string())
            .or_default() += 1;
    }
    for (m, n) in months {
        outln!("  {m} {:<40} {n}", "█".repeat(n.min(40)))?;
    }
    Ok(outcome)
}

/// A profile UUID in full; a certificate fingerprint's first 16 digits.
fn short(id: &str) -> &str {
    if id.len() == 64 { &id[..16] } else { id }
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
fn timeline_svg(rows: &[&ExpiryItem], at: DateTime<Utc>, within_days: i64) -> String {
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
            xml_escape(&truncate(&format!("{}: {}", r.kind.as_str(), r.name), 52)),
            x + 8.0,
            y + 4.0,
            r.devices
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// The longest duration a user may give: 100 years.
const MAX_DAYS: i64 = 36_525;

/// A duration a user typed for `--within`: days (`60d`, or a bare `60`) or
/// weeks (`8w`), from 0 to 100 years.
pub(crate) fn parse_days(s: &str) -> Result<i64> {
    parse_duration("--within", s)
}

/// A duration a user typed for `flag`, as [`parse_days`].
pub(crate) fn parse_duration(flag: &str, s: &str) -> Result<i64> {
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
        .with_context(|| format!("{flag} {s:?}: expected days or weeks like 60d or 8w"))?;
    if !(0..=MAX_DAYS).contains(&days) {
        anyhow::bail!("{flag} {s:?}: give a duration from 0d to {MAX_DAYS}d (100 years)");
    }
    Ok(days)
}

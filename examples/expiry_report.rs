//! An expiry report over a folder of profiles: when each one's apps stop
//! launching (the earlier of ExpirationDate and the developer certificates),
//! soonest first.
//!
//! ```text
//! cargo run --example expiry_report -- ../shared/corpus/profiles 2026-11-22T00:00:00Z
//! ```

use chrono::{DateTime, Utc};
use provkit::profile::ProvisioningProfile;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    // The instant is explicit: the library never reads the clock.
    let at: DateTime<Utc> = match args.next() {
        Some(s) => DateTime::parse_from_rfc3339(&s)?.to_utc(),
        None => Utc::now(),
    };
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        match ProvisioningProfile::from_der(&bytes) {
            Ok(file) => {
                let p = file.into_profile();
                rows.push((
                    p.death_date(),
                    p.days_left(at),
                    p.kind(),
                    p.name.unwrap_or_default(),
                    path,
                ));
            }
            // Hostile or foreign files are typed errors, reported and skipped.
            Err(e) => eprintln!("{}: {e}", path.display()),
        }
    }
    rows.sort_by_key(|r| r.0);
    for (death, days, kind, name, path) in rows {
        let state = if days < 0 { "dead" } else { "alive" };
        println!(
            "{death}  {days:>6} days  {state:<5}  {:<17} {name}  ({})",
            kind.as_str(),
            path.display()
        );
    }
    Ok(())
}

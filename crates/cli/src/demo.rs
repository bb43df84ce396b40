//! `provkit demo`: the main job on a fresh machine, with nothing but this
//! binary. It writes sample profiles signed by a test CA, inspects one, and
//! verifies all of them now against that CA.

use std::path::Path;

use anyhow::Result;

use crate::output::Style;
use crate::profile_cmd::{self, Outcome};

pub(crate) fn run(dir: &Path, style: Style) -> Result<Outcome> {
    println!(
        "== Writing sample profiles signed by a test CA to {}",
        dir.display()
    );
    let written = profile_cmd::write_samples(dir)?;
    let (profiles, root): (Vec<_>, Vec<_>) = written
        .into_iter()
        .partition(|p| p.extension().is_some_and(|e| e == "mobileprovision"));
    println!();
    println!("== provkit profile inspect {}", profiles[0].display());
    profile_cmd::inspect(&profiles[..1], false, style)?;
    println!();
    println!(
        "== provkit profile verify --anchor {} {}/*.mobileprovision",
        root[0].display(),
        dir.display()
    );
    let outcome = profile_cmd::verify(&profiles, None, false, &root, false, style)?;
    println!();
    println!(
        "The expired sample is reported invalid on purpose (exit code {} from verify).",
        outcome as u8
    );
    Ok(Outcome::Ok)
}

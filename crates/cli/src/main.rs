//! `provkit`: the command line over the provkit crates.
//!
//! This file parses flags, hands them to `dispatch`, and maps outcomes to
//! exit codes:
//! 0 success (every file valid), 1 a check failed (some file invalid),
//! 2 an input could not be read as what it should be, 3 usage or I/O error.

mod args;
mod catalog_cmd;
mod db;
mod demo;
mod dispatch;
mod expiry_cmd;
mod inventory_cmd;
mod ipa_cmd;
mod lifecycle_cmd;
mod mdm_cmd;
mod notify_cmd;
mod output;
mod plan_cmd;
mod profile_cmd;
mod report_fmt;
mod sample_cmd;
mod serve_cmd;
mod serve_config;
mod subargs;
mod tenant_cmd;
mod trust_cmd;

use std::process::ExitCode;

use args::Cli;
use clap::Parser;

/// Planning a large tenant makes millions of small allocations; mimalloc
/// handles them better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Argument errors are usage errors: exit 3, as the table says (clap's
    // own exit code would be 2, the code for unreadable input).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 3,
            });
        }
    };
    let style = output::Style { utc: cli.utc };
    match dispatch::run(cli, style) {
        Ok(outcome) => ExitCode::from(outcome as u8),
        // Output piped into `head` (or any reader that stops early): the
        // reader has what it wanted; end quietly, as ripgrep does.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<output::Unreadable>().is_some() => {
            eprintln!("provkit: {e:#}");
            ExitCode::from(profile_cmd::Outcome::Unreadable as u8)
        }
        Err(e) => {
            eprintln!("provkit: {e:#}");
            // A refused change (unknown name, broken rule) is a refusal, not a failure.
            let store_refusal = |s: &provkit_store::StoreError| {
                matches!(
                    s,
                    provkit_store::StoreError::UnknownReference { .. }
                        | provkit_store::StoreError::Invalid(_)
                )
            };
            let refused = e
                .downcast_ref::<provkit_store::StoreError>()
                .is_some_and(store_refusal)
                || e.downcast_ref::<provkit_service::ServiceError>()
                    .is_some_and(|s| match s {
                        provkit_service::ServiceError::Store(s) => store_refusal(s),
                        _ => true,
                    });
            ExitCode::from(if refused { 1 } else { 3 })
        }
    }
}

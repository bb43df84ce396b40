//! `provkit`: the command line over the provkit crates.
//!
//! This file parses flags, dispatches, and maps outcomes to exit codes:
//! 0 success (every file valid), 1 a check failed (some file invalid),
//! 2 an input could not be read as what it should be, 3 usage or I/O error.

mod demo;
mod output;
mod profile_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Provisioning profiles and iOS app signatures: inspect, verify, plan.
#[derive(Debug, Parser)]
#[command(name = "provkit", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Show dates in UTC instead of the local time zone.
    #[arg(long, global = true)]
    utc: bool,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  provkit demo
  provkit profile inspect --json app.mobileprovision
  provkit profile verify --at 2026-11-22T00:00:00Z profiles/*.mobileprovision
  provkit profile verify --at signing-time app.mobileprovision

Exit codes: 0 all valid, 1 some file invalid, 2 some file unreadable, 3 usage or I/O error.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Provisioning profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Build sample profiles with a test CA, then inspect and verify them.
    Demo {
        /// Folder for the sample files.
        #[arg(long, default_value = "provkit-demo")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Print what a profile holds.
    Inspect {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Profile files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Verify signature, chain and dates at an instant.
    Verify {
        /// RFC 3339 instant, or `signing-time` for each file's own CMS signingTime (default: now).
        #[arg(long)]
        at: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Extra trust anchor (DER or PEM certificate), e.g. a test CA.
        #[arg(long = "anchor")]
        anchors: Vec<PathBuf>,
        /// Trust only the --anchor certificates, not Apple's roots.
        #[arg(long)]
        no_apple_roots: bool,
        /// Profile files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write sample profiles signed by a test CA (and the CA's root) to a folder.
    Sample {
        /// Output folder.
        #[arg(long, default_value = "provkit-sample")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = output::Style { utc: cli.utc };
    let result = match cli.command {
        Command::Profile { command } => match command {
            ProfileCommand::Inspect { json, files } => profile_cmd::inspect(&files, json, style),
            ProfileCommand::Verify {
                at,
                json,
                anchors,
                no_apple_roots,
                files,
            } => profile_cmd::verify(&files, at.as_deref(), json, &anchors, no_apple_roots, style),
            ProfileCommand::Sample { out } => {
                profile_cmd::sample(&out).map(|()| profile_cmd::Outcome::Ok)
            }
        },
        Command::Demo { dir } => demo::run(&dir, style),
    };
    match result {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(e) => {
            eprintln!("provkit: {e:#}");
            ExitCode::from(3)
        }
    }
}

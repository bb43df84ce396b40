//! Running the built `provkit` binary, shared by the CLI tests.
#![allow(dead_code)] // each test crate uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `provkit` with `args` and no database from the environment;
/// returns the exit code, stdout and stderr.
pub(crate) fn provkit(args: &[&str]) -> (i32, String, String) {
    provkit_with(args, &[])
}

/// As [`provkit`], with extra environment variables.
pub(crate) fn provkit_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provkit"))
        .args(args)
        .env_remove("PROVKIT_DATABASE_URL")
        .env_remove("PROVKIT_DB")
        .envs(env.iter().copied())
        .output()
        .expect("run provkit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `provkit` with the `--db ...` arguments `db` before `args`.
pub(crate) fn provkit_in(db: &[String], args: &[&str]) -> (i32, String, String) {
    let all: Vec<&str> = db
        .iter()
        .map(String::as_str)
        .chain(args.iter().copied())
        .collect();
    provkit(&all)
}

/// The corpus folder from `PROVKIT_CORPUS`, or `None` (with a notice).
pub(crate) fn corpus() -> Option<PathBuf> {
    provkit_profile::fixtures::corpus_dir()
}

/// A fresh temporary folder for one test.
pub(crate) fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("provkit-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A path as a `&str` argument.
pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

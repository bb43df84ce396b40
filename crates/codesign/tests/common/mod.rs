//! Helpers shared by the corpus tests.
#![allow(dead_code)] // each test crate uses part of it

use std::collections::HashMap;
use std::path::PathBuf;

/// The rows of a corpus TSV table, each keyed by the header.
pub(crate) fn rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The corpus folder from `PROVKIT_CORPUS`, or `None` (with a notice).
pub(crate) fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("PROVKIT_CORPUS").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("PROVKIT_CORPUS is not set: skipped");
    }
    dir
}

//! Presentation helpers: output that survives a closed pipe, dates in the
//! local zone or UTC.

use chrono::{DateTime, Local, SecondsFormat, Utc};

/// How to show things.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) utc: bool,
}

impl Style {
    /// A date for people, in the one format of every output: RFC 3339 in
    /// the local time zone (`2026-11-22T09:00:00+01:00`), or in UTC with
    /// `--utc` (`2026-11-22T08:00:00Z`).
    pub(crate) fn date(self, t: DateTime<Utc>) -> String {
        if self.utc {
            rfc3339(t)
        } else {
            t.with_timezone(&Local)
                .to_rfc3339_opts(SecondsFormat::Secs, false)
        }
    }
}

/// A date for machines: RFC 3339 in UTC.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `println!` that hands back the write error instead of panicking, so
/// that output piped into `head` ends the command quietly (see
/// [`is_broken_pipe`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}
pub(crate) use outln;

/// Whether an error is (or was caused by) writing to a closed pipe.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An input file that is missing or unreadable: exit code 2, like a file
/// that is not what it should be.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot read: {source}")]
pub(crate) struct Unreadable {
    path: String,
    source: std::io::Error,
}

/// Reads an input file named by the user.
pub(crate) fn read_input(path: &std::path::Path) -> Result<Vec<u8>, Unreadable> {
    std::fs::read(path).map_err(|source| Unreadable {
        path: path.display().to_string(),
        source,
    })
}

//! Helpers shared by the corpus tests.
#![allow(dead_code)] // each test crate uses part of it

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

use zip::write::SimpleFileOptions;

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
    provkit_profile::fixtures::corpus_dir()
}

/// An IPA's entries, in order: (name, bytes, symlink).
pub(crate) type Entries = Vec<(String, Vec<u8>, bool)>;

pub(crate) fn read_entries(bytes: &[u8]) -> Entries {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).expect("entry");
            let mut b = Vec::new();
            f.read_to_end(&mut b).expect("read");
            (
                String::from_utf8_lossy(f.name_raw()).into_owned(),
                b,
                f.is_symlink(),
            )
        })
        .filter(|(n, _, _)| !n.ends_with('/'))
        .collect()
}

pub(crate) fn write_entries(entries: &Entries) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes, link) in entries {
        if *link {
            w.add_symlink(name, String::from_utf8_lossy(bytes), opts)
                .expect("symlink");
        } else {
            w.start_file(name, opts).expect("start");
            w.write_all(bytes).expect("write");
        }
    }
    w.finish().expect("finish").into_inner()
}

/// A profile of the test CA for all devices covering `bundle_id` (a
/// wildcard where it ends in `*`), valid through 2026.
pub(crate) fn wildcard_profile(ca: &provkit_profile::fixtures::TestCa, bundle_id: &str) -> Vec<u8> {
    use provkit_profile::fixtures::{ProfileSpec, signed_profile, utc};
    signed_profile(
        ca,
        &ProfileSpec {
            bundle_id: bundle_id.into(),
            all_devices: true,
            devices: None,
            creation: utc(2026, 1, 1),
            expiration: utc(2027, 1, 1),
            ..ProfileSpec::default()
        },
    )
}

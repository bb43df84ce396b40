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

/// Verifies an `.ipa` held in memory (executables read whole), and again
/// from a file with every executable stored as is checked by parts
/// (`Limits::stream_min` 0); the two reports must be the same.
pub(crate) fn verify_both(
    ipa: Vec<u8>,
    options: &provkit_codesign::Options<'_>,
) -> provkit_codesign::Report {
    use provkit_codesign::archive::{Archive, Limits};
    use provkit_codesign::verify_archive;
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "provkit-both-{}-{}.ipa",
        std::process::id(),
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&file, &ipa).expect("write");
    let mut streaming = Limits::default();
    streaming.stream_min = 0;
    let streamed = Archive::open(&file, streaming).expect("archive");
    let streamed = verify_archive(&streamed, options).expect("an app");
    std::fs::remove_file(&file).expect("remove");
    let archive = Archive::from_bytes(ipa, Limits::default()).expect("archive");
    let whole = verify_archive(&archive, options).expect("an app");
    assert_eq!(whole, streamed, "read whole and streamed disagree");
    whole
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

//! Differential: an app's executable checked by parts (stored as is,
//! streamed a run at a time) and read whole must give the same report,
//! whatever the executable's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkit_codesign::{At, Options, archive::Archive, archive::Limits, verify_archive};
use provkit_profile::Verifier;

const INFO: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CFBundleIdentifier</key><string>com.example.fuzz</string>
<key>CFBundleExecutable</key><string>A</string>
</dict></plist>"#;

/// A zip of stored entries.
fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        w.start_file(*name, opts).expect("start");
        w.write_all(data).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

fuzz_target!(|data: &[u8]| {
    let ipa = stored_zip(&[
        ("Payload/A.app/Info.plist", INFO),
        ("Payload/A.app/A", data),
    ]);
    let verifier = Verifier::default();
    let report = |stream_min: u64| {
        let mut limits = Limits::default();
        limits.max_read = 16 << 20;
        limits.stream_min = stream_min;
        let archive = Archive::from_bytes(ipa.clone(), limits).map_err(|e| e.to_string())?;
        let mut options = Options::new(&verifier, At::SigningTime);
        options.limits = limits;
        verify_archive(&archive, &options).map_err(|e| e.to_string())
    };
    assert_eq!(
        report(u64::MAX),
        report(0),
        "read whole and by parts disagree"
    );
});

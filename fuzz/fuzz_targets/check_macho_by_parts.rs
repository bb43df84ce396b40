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

/// A zip of stored entries, written by hand (no data descriptors).
fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let le16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let le32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let (len, name_len) = (data.len() as u32, name.len() as u16);
        le32(&mut out, 0x0403_4b50);
        for v in [20u16, 0, 0, 0, 0] {
            le16(&mut out, v);
        }
        for v in [crc, len, len] {
            le32(&mut out, v);
        }
        le16(&mut out, name_len);
        le16(&mut out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        le32(&mut central, 0x0201_4b50);
        for v in [20u16, 20, 0, 0, 0, 0] {
            le16(&mut central, v);
        }
        for v in [crc, len, len] {
            le32(&mut central, v);
        }
        for v in [name_len, 0, 0, 0, 0] {
            le16(&mut central, v);
        }
        le32(&mut central, 0);
        le32(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let (at, size) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    le32(&mut out, 0x0605_4b50);
    for v in [0u16, 0, entries.len() as u16, entries.len() as u16] {
        le16(&mut out, v);
    }
    le32(&mut out, size);
    le32(&mut out, at);
    le16(&mut out, 0);
    out
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

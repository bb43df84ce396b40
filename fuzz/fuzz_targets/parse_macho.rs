//! Mach-O slices, SuperBlobs, CodeDirectories and page checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkit_codesign::{CodeDirectory, SuperBlob, Where, slices};

fuzz_target!(|data: &[u8]| {
    let Ok(all) = slices(data) else { return };
    for slice in all {
        let at = Where::default();
        let Some(sig) = slice.signature else { continue };
        let Ok(sb) = SuperBlob::parse(sig, &at) else { continue };
        for (_, blob) in sb.code_directories() {
            if let Ok(cd) = CodeDirectory::parse(blob, &at) {
                let _ = (cd.check_pages(slice.data, &at), cd.cdhash(), cd.special_hash(1));
            }
        }
    }
});

//! CodeResources (XML or binary plist): parse, then resolve rules for a few
//! paths; never a panic, a hang or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkit_codesign::seal::CodeResources;

fuzz_target!(|data: &[u8]| {
    if let Ok(cr) = CodeResources::parse(data) {
        for path in ["Info.plist", "a/b.png", "Frameworks/X.framework/X", "en.lproj/x"] {
            let _ = cr.rule_for(path);
            let _ = cr.sealed(path);
        }
    }
});

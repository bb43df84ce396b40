//! XML and binary property lists; and the typed profile read straight from
//! the same bytes, which must agree with the profile built from the tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provkit_profile::plist::{self, Value};
use provkit_profile::{ParseError, Profile};

fuzz_target!(|data: &[u8]| {
    let tree = plist::parse(data);
    let through_tree = match tree {
        Err(e) => Err(ParseError::from(e)),
        Ok((Value::Dictionary(d), format)) => Profile::from_owned_dictionary(d).map(|p| (p, format)),
        Ok((other, _)) => Err(ParseError::RootNotDictionary(other.type_name())),
    };
    assert_eq!(Profile::from_plist(data), through_tree);
});

//! Writing a resource seal as Apple's signer does: the iOS rules, and a
//! version-2 CodeResources (with the version-1 `files`) over a bundle's
//! files and their digests.

use std::collections::BTreeMap;

use provkit_profile::plist::{self, Dictionary, Value};
use sha1::Digest as _;

/// Apple's iOS resource rules, as version 1 `rules` and version 2 `rules2`.
pub fn standard_rules() -> (Dictionary, Dictionary) {
    let rule = |weight: f64, flags: &[&str]| {
        let mut d = Dictionary::new();
        for f in flags {
            d.insert(*f, Value::Boolean(true));
        }
        d.insert("weight", Value::Real(weight));
        Value::Dictionary(d)
    };
    let mut v1 = Dictionary::new();
    v1.insert("^.*", Value::Boolean(true));
    v1.insert("^.*\\.lproj/", rule(1000.0, &["optional"]));
    v1.insert("^.*\\.lproj/locversion.plist$", rule(1100.0, &["omit"]));
    v1.insert("^Base\\.lproj/", rule(1010.0, &[]));
    v1.insert("^version.plist$", Value::Boolean(true));
    let mut v2 = Dictionary::new();
    v2.insert(".*\\.dSYM($|/)", rule(11.0, &[]));
    v2.insert("^", rule(20.0, &[]));
    v2.insert("^(.*/)?\\.DS_Store$", rule(2000.0, &["omit"]));
    v2.insert(
        "^(Frameworks|SharedFrameworks|PlugIns|Plug-ins|XPCServices|Helpers|MacOS|Library/(Automator|Spotlight|LoginItems))/",
        rule(10.0, &["nested"]),
    );
    v2.insert("^.*", Value::Boolean(true));
    v2.insert("^.*\\.lproj/", rule(1000.0, &["optional"]));
    v2.insert("^.*\\.lproj/locversion.plist$", rule(1100.0, &["omit"]));
    v2.insert("^Base\\.lproj/", rule(1010.0, &[]));
    v2.insert("^Info\\.plist$", rule(20.0, &["omit"]));
    v2.insert("^PkgInfo$", rule(20.0, &["omit"]));
    v2.insert("^[^/]+$", rule(10.0, &["nested"]));
    v2.insert("^embedded\\.provisionprofile$", rule(20.0, &[]));
    v2.insert("^version\\.plist$", rule(20.0, &[]));
    (v1, v2)
}

/// A file's content for sealing: its digests (or a symlink target).
#[derive(Debug, Clone)]
pub enum Sealable {
    /// SHA-1 and SHA-256 of a regular file.
    File([u8; 20], [u8; 32]),
    /// A symbolic link's target.
    Symlink(String),
}

impl Sealable {
    /// The digests of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let (a, b) = rayon::join(|| sha1::Sha1::digest(bytes), || sha2::Sha256::digest(bytes));
        Sealable::File(a.into(), b.into())
    }
}

/// A version-2 CodeResources (with the version-1 `files` too) over a
/// bundle's files (bundle-relative path → content), as Apple's signer
/// writes it with [`standard_rules`]: `.DS_Store` files left out, Info.plist
/// and PkgInfo in the version-1 `files` only (the version-2 rules omit
/// them), `.lproj` files optional.
pub fn code_resources(files: &BTreeMap<String, Sealable>) -> Vec<u8> {
    let (rules1, rules2) = standard_rules();
    let mut v1 = Dictionary::new();
    let mut v2 = Dictionary::new();
    for (path, content) in files {
        if path.ends_with(".DS_Store") {
            continue;
        }
        let optional = path.contains(".lproj/");
        let v2_omits = path == "Info.plist" || path == "PkgInfo";
        match content {
            Sealable::File(sha1, sha256) => {
                if optional {
                    let mut d = Dictionary::new();
                    d.insert("hash", Value::Data(sha1.to_vec()));
                    d.insert("optional", Value::Boolean(true));
                    v1.insert(path.clone(), Value::Dictionary(d));
                } else {
                    v1.insert(path.clone(), Value::Data(sha1.to_vec()));
                }
                if v2_omits {
                    continue;
                }
                let mut d = Dictionary::new();
                d.insert("hash", Value::Data(sha1.to_vec()));
                d.insert("hash2", Value::Data(sha256.to_vec()));
                if optional {
                    d.insert("optional", Value::Boolean(true));
                }
                v2.insert(path.clone(), Value::Dictionary(d));
            }
            Sealable::Symlink(_) if v2_omits => {}
            Sealable::Symlink(t) => {
                let mut d = Dictionary::new();
                d.insert("symlink", Value::String(t.clone()));
                v2.insert(path.clone(), Value::Dictionary(d));
            }
        }
    }
    let mut root = Dictionary::new();
    root.insert("files", Value::Dictionary(v1));
    root.insert("files2", Value::Dictionary(v2));
    root.insert("rules", Value::Dictionary(rules1));
    root.insert("rules2", Value::Dictionary(rules2));
    plist::to_xml(&Value::Dictionary(root)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Sealable, code_resources};
    use crate::seal::CodeResources;

    #[test]
    fn rules_omit_and_make_optional() {
        let mut files = BTreeMap::new();
        files.insert("Info.plist".to_owned(), Sealable::of(b"x"));
        files.insert("en.lproj/a.strings".to_owned(), Sealable::of(b"y"));
        files.insert("a.png".to_owned(), Sealable::of(b"z"));
        let cr = CodeResources::parse(&code_resources(&files)).unwrap();
        assert!(cr.sealed("Info.plist").is_none());
        assert!(cr.sealed("en.lproj/a.strings").unwrap().optional);
        assert!(!cr.sealed("a.png").unwrap().optional);
        assert!(cr.rule_for("Info.plist").unwrap().omit);
    }
}

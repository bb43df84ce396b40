//! `_CodeSignature/CodeResources`: the seal over a bundle's files, read,
//! checked against the bundle (`check`) and written ([`code_resources`]).
//!
//! Version 2 (`files2`/`rules2`) is used when present, else version 1
//! (`files`/`rules`). Each rule is a regular expression searched in the
//! bundle-relative path; the matching rule with the highest weight decides
//! whether a file is omitted, optional or nested code. When two matching
//! rules have the same weight, an `omit` rule wins, then the one listed
//! first (Apple's own iOS rules put `^` and `^Info\.plist$` both at 20; the
//! omission is what every signer means there).

use provkit_profile::plist::{self, Dictionary, Value};
use regex::{Regex, RegexBuilder};

use crate::archive::EntryKind;

mod check;
#[cfg(feature = "sign")]
mod write;

#[cfg(feature = "sign")]
pub use write::{Sealable, code_resources, standard_rules};

/// Largest CodeResources file read.
pub const MAX_CODE_RESOURCES: u64 = 64 << 20;
/// Most rules a CodeResources may have.
const MAX_RULES: usize = 512;

/// Why a CodeResources file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourcesError {
    /// Not a plist.
    #[error("CodeResources is not a property list: {0}")]
    Plist(String),
    /// A key of the wrong type or shape.
    #[error("CodeResources: {0}")]
    Shape(String),
    /// A rule whose pattern does not compile.
    #[error("CodeResources rule {0:?} is not a usable regular expression")]
    BadRule(String),
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The pattern as written.
    pub pattern: String,
    re: Regex,
    /// Weight (default 1).
    pub weight: f64,
    /// Matching files are not sealed.
    pub omit: bool,
    /// Matching files may be missing.
    pub optional: bool,
    /// Matching code is sealed as nested code.
    pub nested: bool,
}

/// How one path is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seal {
    /// File content digests: `hash` (SHA-1) and `hash2` (SHA-256).
    File {
        /// SHA-1.
        sha1: Option<Vec<u8>>,
        /// SHA-256.
        sha256: Option<Vec<u8>>,
    },
    /// A symbolic link and its target.
    Symlink(String),
    /// Nested code, sealed by its cdhash and designated requirement.
    Nested {
        /// The nested code's cdhash.
        cdhash: Option<Vec<u8>>,
        /// The requirement, as text.
        requirement: Option<String>,
    },
}

/// One sealed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Path relative to the bundle.
    pub path: String,
    /// What is sealed.
    pub seal: Seal,
    /// May be missing.
    pub optional: bool,
}

/// A parsed CodeResources.
#[derive(Debug, Clone)]
pub struct CodeResources {
    /// 2 when `files2` is used, else 1.
    pub version: u8,
    /// The rules of that version, in file order.
    pub rules: Vec<Rule>,
    /// The sealed paths, sorted by path.
    pub files: Vec<Sealed>,
}

fn shape(what: impl Into<String>) -> ResourcesError {
    ResourcesError::Shape(what.into())
}

fn data(v: &Value, key: &str) -> Result<Vec<u8>, ResourcesError> {
    match v {
        Value::Data(d) => Ok(d.clone()),
        _ => Err(shape(format!("{key} is not data"))),
    }
}

fn parse_rule(pattern: &str, v: &Value) -> Result<Rule, ResourcesError> {
    let re = RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|_| ResourcesError::BadRule(pattern.to_owned()))?;
    let mut rule = Rule {
        pattern: pattern.to_owned(),
        re,
        weight: 1.0,
        omit: false,
        optional: false,
        nested: false,
    };
    match v {
        Value::Boolean(_) => {}
        Value::Dictionary(d) => {
            let flag = |k: &str| d.get(k).and_then(Value::as_bool).unwrap_or(false);
            rule.omit = flag("omit");
            rule.optional = flag("optional");
            rule.nested = flag("nested");
            rule.weight = match d.get("weight") {
                None => 1.0,
                Some(Value::Real(w)) => *w,
                #[allow(clippy::cast_precision_loss)]
                Some(Value::Integer(i)) => *i as f64,
                Some(_) => return Err(shape(format!("rule {pattern:?}: weight is not a number"))),
            };
        }
        _ => {
            return Err(shape(format!(
                "rule {pattern:?} is neither true nor a dictionary"
            )));
        }
    }
    Ok(rule)
}

fn parse_entry(path: &str, v: &Value) -> Result<Sealed, ResourcesError> {
    let mut sealed = Sealed {
        path: path.to_owned(),
        seal: Seal::File {
            sha1: None,
            sha256: None,
        },
        optional: false,
    };
    match v {
        Value::Data(d) => {
            sealed.seal = Seal::File {
                sha1: Some(d.clone()),
                sha256: None,
            };
        }
        Value::Dictionary(d) => {
            sealed.optional = d.get("optional").and_then(Value::as_bool).unwrap_or(false);
            if let Some(t) = d.get("symlink") {
                let t = t
                    .as_str()
                    .ok_or_else(|| shape(format!("{path}: symlink is not a string")))?;
                sealed.seal = Seal::Symlink(t.to_owned());
            } else if d.get("cdhash").is_some() || d.get("requirement").is_some() {
                sealed.seal = Seal::Nested {
                    cdhash: d.get("cdhash").map(|v| data(v, "cdhash")).transpose()?,
                    requirement: d
                        .get("requirement")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                };
            } else {
                let sha1 = d.get("hash").map(|v| data(v, "hash")).transpose()?;
                let sha256 = d.get("hash2").map(|v| data(v, "hash2")).transpose()?;
                if sha1.is_none() && sha256.is_none() {
                    return Err(shape(format!("{path}: no hash, hash2, symlink or cdhash")));
                }
                sealed.seal = Seal::File { sha1, sha256 };
            }
        }
        _ => {
            return Err(shape(format!(
                "{path}: entry is neither data nor a dictionary"
            )));
        }
    }
    Ok(sealed)
}

fn dict<'a>(root: &'a Dictionary, key: &str) -> Result<Option<&'a Dictionary>, ResourcesError> {
    match root.get(key) {
        None => Ok(None),
        Some(Value::Dictionary(d)) => Ok(Some(d)),
        Some(_) => Err(shape(format!("{key} is not a dictionary"))),
    }
}

impl CodeResources {
    /// Parses a CodeResources file (XML or binary plist).
    ///
    /// # Errors
    /// [`ResourcesError`] saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, ResourcesError> {
        let (root, _) = plist::parse(bytes).map_err(|e| ResourcesError::Plist(e.to_string()))?;
        let Value::Dictionary(root) = root else {
            return Err(shape("the root is not a dictionary"));
        };
        let (version, files, rules) = match dict(&root, "files2")? {
            Some(f) => (2, f, dict(&root, "rules2")?),
            None => (
                1,
                dict(&root, "files")?.ok_or_else(|| shape("neither files2 nor files"))?,
                dict(&root, "rules")?,
            ),
        };
        let rules = rules.map_or(Ok(Vec::new()), |r| {
            if r.len() > MAX_RULES {
                return Err(shape("too many rules"));
            }
            r.iter().map(|(k, v)| parse_rule(k, v)).collect()
        })?;
        let mut files = files
            .iter()
            .map(|(k, v)| parse_entry(k, v))
            .collect::<Result<Vec<_>, _>>()?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(CodeResources {
            version,
            rules,
            files,
        })
    }

    /// The rule that decides `path` (bundle-relative), if any matches.
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        let mut best: Option<&Rule> = None;
        for rule in &self.rules {
            if !rule.re.is_match(path) {
                continue;
            }
            best = match best {
                None => Some(rule),
                Some(b)
                    if rule.weight > b.weight
                        || (rule.weight == b.weight && rule.omit && !b.omit) =>
                {
                    Some(rule)
                }
                keep => keep,
            };
        }
        best
    }

    /// The seal of `path`, if listed.
    pub fn sealed(&self, path: &str) -> Option<&Sealed> {
        self.files
            .binary_search_by(|s| s.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// Whether a bundle's path (relative to the bundle) stands outside its
/// resource seal by construction, as Apple's resource builder leaves it
/// out: the `_CodeSignature/` folder, and the legacy root link
/// `CodeResources -> _CodeSignature/CodeResources` that apps sealed with
/// version 1 ship (excluded for both seal versions).
pub(crate) fn outside_seal(path: &str, kind: &EntryKind) -> bool {
    path.starts_with("_CodeSignature/")
        || (path == "CodeResources"
            && matches!(kind, EntryKind::Symlink(t) if t == "_CodeSignature/CodeResources"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>files</key><dict><key>a.png</key><data>AAAAAAAAAAAAAAAAAAAAAAAAAAA=</data></dict>
<key>files2</key><dict>
 <key>a.png</key><dict><key>hash2</key><data>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</data></dict>
 <key>Frameworks/X.framework</key><dict><key>cdhash</key><data>AAAAAAAAAAAAAAAAAAAAAAAAAAA=</data><key>requirement</key><string>cdhash H"00"</string></dict>
 <key>link</key><dict><key>symlink</key><string>a.png</string></dict>
 <key>en.lproj/x.strings</key><dict><key>hash2</key><data>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</data><key>optional</key><true/></dict>
</dict>
<key>rules2</key><dict>
 <key>^.*</key><true/>
 <key>^</key><dict><key>weight</key><real>20</real></dict>
 <key>^Info\.plist$</key><dict><key>omit</key><true/><key>weight</key><real>20</real></dict>
 <key>^(.*/)?\.DS_Store$</key><dict><key>omit</key><true/><key>weight</key><real>2000</real></dict>
 <key>^.*\.lproj/</key><dict><key>optional</key><true/><key>weight</key><real>1000</real></dict>
</dict></dict></plist>"#;

    #[test]
    fn version_two_with_rules() {
        let cr = CodeResources::parse(V2.as_bytes()).unwrap();
        assert_eq!(cr.version, 2);
        assert_eq!(cr.files.len(), 4);
        assert!(cr.rule_for("Info.plist").unwrap().omit, "omit wins a tie");
        assert!(!cr.rule_for("a.png").unwrap().omit);
        assert!(cr.rule_for("x/.DS_Store").unwrap().omit);
        assert!(cr.rule_for("en.lproj/y").unwrap().optional);
        assert!(matches!(
            cr.sealed("Frameworks/X.framework").unwrap().seal,
            Seal::Nested { .. }
        ));
        assert_eq!(
            cr.sealed("link").unwrap().seal,
            Seal::Symlink("a.png".into())
        );
        assert!(cr.sealed("en.lproj/x.strings").unwrap().optional);
    }

    #[test]
    fn hostile_shapes_are_errors() {
        assert!(CodeResources::parse(b"").is_err());
        assert!(CodeResources::parse(b"<plist><array/></plist>").is_err());
        let bad_rule = V2.replace("^.*\\.lproj/", "(unclosed");
        assert!(matches!(
            CodeResources::parse(bad_rule.as_bytes()),
            Err(ResourcesError::BadRule(_))
        ));
    }
}

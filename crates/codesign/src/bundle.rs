//! The bundle model: which folders of an app hold code of their own, and of
//! what kind. Discovery goes by evidence, not only by extension: any nested
//! folder with a `_CodeSignature/`, or with an Info.plist whose
//! `CFBundleExecutable` is present, is code that iOS verifies on its own
//! (`.xctest`, `.xpc`, a `.bundle` with an executable, plug-ins under
//! `Library/`, Watch apps), so it is verified with its own seal.

use std::collections::{BTreeMap, BTreeSet};

use provkit_profile::plist::{self, Value};
use serde::Serialize;

/// What a piece of nested (or top-level) code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BundleKind {
    /// An application (the app itself, a nested `.app`, a Watch app).
    App,
    /// An app extension (`.appex`).
    Appex,
    /// A framework (`.framework`).
    Framework,
    /// A test bundle (`.xctest`), loaded by its runner app.
    Xctest,
    /// An XPC service (`.xpc`).
    Xpc,
    /// Any other bundle with code of its own (`.bundle`, `.plugin`, ...).
    Bundle,
    /// A standalone dynamic library (`.dylib`).
    Dylib,
}

impl BundleKind {
    /// The stable lowercase name (`app`, `appex`, `framework`, `xctest`,
    /// `xpc`, `bundle`, `dylib`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Appex => "appex",
            Self::Framework => "framework",
            Self::Xctest => "xctest",
            Self::Xpc => "xpc",
            Self::Bundle => "bundle",
            Self::Dylib => "dylib",
        }
    }

    /// The kind a folder's extension names, if it names one.
    pub fn from_extension(dir: &str) -> Option<Self> {
        let name = dir.rsplit('/').next().unwrap_or(dir);
        let (_, ext) = name.rsplit_once('.')?;
        Some(match ext {
            "app" => Self::App,
            "appex" => Self::Appex,
            "framework" => Self::Framework,
            "xctest" => Self::Xctest,
            "xpc" => Self::Xpc,
            "bundle" | "plugin" | "qlgenerator" | "mdimporter" => Self::Bundle,
            _ => return None,
        })
    }

    /// Whether code of this kind runs as its own process with its own
    /// embedded provisioning profile (apps and extensions); other code runs
    /// inside its host and is covered by the host's profile.
    pub fn has_own_profile(self) -> bool {
        matches!(self, Self::App | Self::Appex)
    }

    /// Whether the executable is a main binary: Apple's signer sets the
    /// `CS_EXECSEG_MAIN_BINARY` flag on apps' and extensions' executables.
    pub fn is_main_binary(self) -> bool {
        matches!(self, Self::App | Self::Appex)
    }

    /// Whether every folder of this extension is code even without other
    /// evidence (a missing Info.plist is then a finding, not a resource).
    fn always_code(self) -> bool {
        matches!(self, Self::App | Self::Appex | Self::Framework)
    }
}

impl std::fmt::Display for BundleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Largest Info.plist read while deciding whether a folder holds code.
const MAX_PROBE: u64 = 1 << 20;

/// The nested folders of an app (paths relative to its root, `""` being the
/// root) that hold code, with their kind. `dirs` lists every folder,
/// `is_file` tells whether a relative path is a regular file and
/// `read_info` reads a folder's Info.plist (at most `MAX_PROBE` bytes).
pub(crate) fn discover(
    dirs: &BTreeSet<String>,
    is_file: impl Fn(&str) -> bool,
    read_info: impl Fn(&str, u64) -> Option<Vec<u8>>,
) -> BTreeMap<String, BundleKind> {
    let mut found = BTreeMap::new();
    for dir in dirs {
        // A seal folder itself is never a bundle.
        if dir.rsplit('/').next() == Some("_CodeSignature") {
            continue;
        }
        let kind = BundleKind::from_extension(dir);
        if kind.is_some_and(BundleKind::always_code) {
            found.insert(dir.clone(), kind.unwrap_or(BundleKind::Bundle));
            continue;
        }
        let signed = dirs.contains(&format!("{dir}/_CodeSignature"));
        let info = format!("{dir}/Info.plist");
        let has_executable = || {
            is_file(&info)
                && read_info(&info, MAX_PROBE)
                    .and_then(|b| plist::parse(&b).ok())
                    .and_then(|(v, _)| {
                        v.as_dictionary()?
                            .get("CFBundleExecutable")
                            .and_then(Value::as_str)
                            .map(|exe| is_file(&format!("{dir}/{exe}")))
                    })
                    .unwrap_or(false)
        };
        if signed || (kind.is_some() && has_executable()) {
            found.insert(dir.clone(), kind.unwrap_or(BundleKind::Bundle));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_extension_and_by_evidence() {
        let dirs: BTreeSet<String> = [
            "Frameworks/A.framework",
            "PlugIns/T.xctest",
            "PlugIns/T.xctest/_CodeSignature",
            "Res.bundle",
            "Code.bundle",
            "Library/Thing/Helper",
            "Library/Thing/Helper/_CodeSignature",
            "Watch/W.app",
            "en.lproj",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let files = [
            "Res.bundle/Info.plist",
            "Code.bundle/Info.plist",
            "Code.bundle/Code",
        ];
        let info = |p: &str, _| {
            let exe = if p.starts_with("Code.") {
                "Code"
            } else {
                "Missing"
            };
            let mut d = provkit_profile::Dictionary::new();
            d.insert("CFBundleExecutable", Value::String(exe.into()));
            plist::to_xml(&Value::Dictionary(d)).ok()
        };
        let found = discover(&dirs, |p| files.contains(&p), info);
        let got: Vec<(&str, BundleKind)> = found.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            got,
            [
                ("Code.bundle", BundleKind::Bundle),
                ("Frameworks/A.framework", BundleKind::Framework),
                ("Library/Thing/Helper", BundleKind::Bundle),
                ("PlugIns/T.xctest", BundleKind::Xctest),
                ("Watch/W.app", BundleKind::App),
            ]
        );
    }
}

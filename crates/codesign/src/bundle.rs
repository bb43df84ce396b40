//! The bundle model: which folders of an app hold code of their own, and of
//! what kind. Discovery goes by evidence, not only by extension: any nested
//! folder with a `_CodeSignature/`, or with an Info.plist whose
//! `CFBundleExecutable` is present, is code that iOS verifies on its own
//! (`.xctest`, `.xpc`, a `.bundle` with an executable, plug-ins under
//! `Library/`, Watch apps), so it is verified with its own seal.

use std::collections::{BTreeMap, BTreeSet};

use provkit_profile::plist::{self, Value};
use serde::Serialize;

use crate::archive::{Archive, ArchiveError, Entry, EntryKind};
use crate::error::VerifyError;
use crate::report::{Code, Finding};

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

/// A piece of code to verify: a bundle or a standalone dylib.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    /// Path relative to the app root ("" for the app).
    pub(crate) rel: String,
    pub(crate) kind: BundleKind,
}

/// An app opened from its archive: the root bundle's files and folders,
/// and every nested folder that holds code, with its kind.
pub(crate) struct App<'a> {
    pub(crate) archive: &'a Archive,
    /// `Payload/<Name>.app`.
    pub(crate) root: String,
    /// Every non-directory entry under the root, by path relative to it.
    pub(crate) files: BTreeMap<String, &'a Entry>,
    /// Every directory under the root (declared or implied).
    pub(crate) dirs: BTreeSet<String>,
    /// Every nested folder that holds code, with its kind.
    pub(crate) bundles: BTreeMap<String, BundleKind>,
}

/// `dir/name`, either side possibly empty.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if name.is_empty() {
        dir.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

impl<'a> App<'a> {
    pub(crate) fn locate(archive: &'a Archive) -> Result<Self, VerifyError> {
        let mut roots = BTreeSet::new();
        for e in archive.entries() {
            let mut parts = e.path.splitn(3, '/');
            if let (Some("Payload"), Some(name)) = (parts.next(), parts.next())
                && name.ends_with(".app")
                && (parts.next().is_some() || e.kind == EntryKind::Dir)
            {
                roots.insert(name.to_owned());
            }
        }
        let name = match roots.len() {
            0 => return Err(VerifyError::NotAnApp("no Payload/<Name>.app folder".into())),
            1 => roots.pop_first().unwrap_or_default(),
            n => {
                return Err(VerifyError::NotAnApp(format!(
                    "{n} apps in Payload/, expected one"
                )));
            }
        };
        let root = format!("Payload/{name}");
        let prefix = format!("{root}/");
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        for e in archive.entries() {
            let Some(rel) = e.path.strip_prefix(&prefix) else {
                continue;
            };
            let mut parent = rel;
            while let Some((p, _)) = parent.rsplit_once('/') {
                if !dirs.insert(p.to_owned()) {
                    break;
                }
                parent = p;
            }
            if e.kind == EntryKind::Dir {
                dirs.insert(rel.to_owned());
            } else {
                files.insert(rel.to_owned(), e);
            }
        }
        if !files.contains_key("Info.plist") {
            return Err(VerifyError::NotAnApp(format!("{root} has no Info.plist")));
        }
        let bundles = discover(
            &dirs,
            |rel| files.get(rel).is_some_and(|e| e.kind == EntryKind::File),
            |rel, cap| {
                let e = files.get(rel)?;
                archive.read(e, cap).ok()
            },
        );
        Ok(App {
            archive,
            root,
            files,
            dirs,
            bundles,
        })
    }

    /// Every bundle and standalone dylib, deepest first, the app last.
    pub(crate) fn units(&self) -> Vec<Unit> {
        let mut units: Vec<Unit> = self
            .bundles
            .iter()
            .map(|(d, kind)| Unit {
                rel: d.clone(),
                kind: *kind,
            })
            .collect();
        units.extend(
            self.files
                .iter()
                .filter(|(p, e)| p.ends_with(".dylib") && e.kind == EntryKind::File)
                .map(|(p, _)| Unit {
                    rel: p.clone(),
                    kind: BundleKind::Dylib,
                }),
        );
        units.sort_by_key(|u| std::cmp::Reverse(u.rel.matches('/').count()));
        units.push(Unit {
            rel: String::new(),
            kind: BundleKind::App,
        });
        units
    }

    pub(crate) fn archive_path(&self, rel: &str) -> String {
        join(&self.root, rel)
    }

    /// A regular file's bytes by path relative to the app, at most `cap`
    /// (`None`: absent, or not a regular file).
    pub(crate) fn read_rel(&self, rel: &str, cap: u64) -> Result<Option<Vec<u8>>, ArchiveError> {
        match self.files.get(rel) {
            Some(e) if e.kind == EntryKind::File => self.archive.read(e, cap).map(Some),
            _ => Ok(None),
        }
    }

    /// A regular file's bytes by path relative to the app, a corrupt entry
    /// reported as a finding (`None`: absent or unreadable).
    pub(crate) fn read(
        &self,
        rel: &str,
        cap: u64,
        bundle: &str,
        out: &mut Vec<Finding>,
    ) -> Option<Vec<u8>> {
        match self.read_rel(rel, cap) {
            Ok(b) => b,
            Err(err) => {
                out.push(
                    Finding::new(Code::ArchiveCorruptEntry, bundle, err.to_string()).path(rel),
                );
                None
            }
        }
    }
}

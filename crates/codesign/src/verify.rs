//! The whole app: find the bundles, verify each inside-out (nested code
//! first, so the outer seals can check their cdhashes), check each bundle's
//! resource seal and, for apps and extensions, its embedded profile.

//!
//! Orchestration only: the bundle model is in [`crate::bundle`], the code
//! checks in [`crate::signature`], the seal in [`crate::seal`], the profile
//! in `profile_check`.

use std::collections::HashMap;
use std::path::Path;

use provkit_profile::plist::{self, Value};
use provkit_profile::{Severity, Verifier};

use crate::archive::{Archive, Limits, Refusal};
use crate::bundle::{App, BundleKind, Unit, join};
use crate::error::VerifyError;
use crate::report::{BundleInfo, Code, Finding, Report};
use crate::seal::MAX_CODE_RESOURCES;
use crate::signature::At;
use crate::signature::code::{CodeInput, CodeOutcome, Exe, check_code};
use crate::signature::stream::stream;

/// Largest Info.plist or embedded profile read.
pub(crate) const MAX_SMALL: u64 = 16 << 20;

/// How to verify.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Options<'a> {
    /// Trust anchors and issuer cache (Apple's roots by default).
    pub verifier: &'a Verifier,
    /// The instant, or each signature's own signingTime.
    pub at: At,
    /// Check that this device's UDID is provisioned.
    pub device: Option<&'a str>,
    /// Bounds on the archive.
    pub limits: Limits,
}

impl<'a> Options<'a> {
    /// Verify with `verifier` at `at`, no device, the default limits.
    pub fn new(verifier: &'a Verifier, at: At) -> Self {
        Options {
            verifier,
            at,
            device: None,
            limits: Limits::default(),
        }
    }
}

/// Verifies an `.ipa` file or an unpacked `.app` folder.
///
/// # Errors
/// [`VerifyError`] when the input is not readable as an app; every problem
/// of an app that can be read is a finding in the [`Report`].
pub fn verify_path(path: &Path, opts: &Options<'_>) -> Result<Report, VerifyError> {
    let archive = Archive::open(path, opts.limits)?;
    verify_archive(&archive, opts)
}

/// Verifies an opened archive.
///
/// # Errors
/// As [`verify_path`].
pub fn verify_archive(archive: &Archive, opts: &Options<'_>) -> Result<Report, VerifyError> {
    let app = App::locate(archive)?;
    let mut findings = Vec::new();
    for r in archive.refused() {
        let code = match r.why {
            Refusal::PathTraversal | Refusal::AbsolutePath => Code::ArchivePathTraversal,
            Refusal::Duplicate => Code::ArchiveDuplicateEntry,
            Refusal::Encrypted => Code::ArchiveEncryptedEntry,
            Refusal::UnsupportedMethod => Code::ArchiveUnsupportedMethod,
            Refusal::TooLarge => Code::ArchiveEntryTooLarge,
            Refusal::Overlapping => Code::ArchiveOverlappingEntries,
            Refusal::SymlinkEscapes => Code::SymlinkEscapesBundle,
        };
        let mut f = Finding::new(code, &app.root, format!("{}: {}", r.path, r.detail));
        if !r.path.is_empty() {
            f.path = Some(
                r.path
                    .strip_prefix(&format!("{}/", app.root))
                    .unwrap_or(&r.path)
                    .to_owned(),
            );
        }
        findings.push(f);
    }
    let mut bundles = Vec::new();
    // Verified code by path relative to the app: its cdhashes.
    let mut nested: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for unit in app.units() {
        let (info, cdhashes) = app.verify_unit(&unit, opts, &nested, &mut findings);
        nested.insert(unit.rel.clone(), cdhashes);
        bundles.push(info);
    }
    bundles.reverse();
    let valid = !findings.iter().any(|f| f.severity == Severity::Error);
    Ok(Report {
        valid,
        bundles,
        findings,
    })
}

/// Verifies one Mach-O file alone, as `rcodesign verify` does but for every
/// slice and every CodeDirectory: page hashes, the special slots held inside
/// the file (requirements, entitlements, an embedded `__info_plist`), the
/// CMS with its hash-agility attributes and the team. Returns the findings
/// (bundle `""`, path `name`) and a summary of each slice.
pub fn verify_macho(
    bytes: &[u8],
    name: &str,
    verifier: &Verifier,
    at: At,
) -> (Vec<Finding>, Vec<crate::report::SliceInfo>) {
    let mut out = Vec::new();
    let outcome = check_code(
        Exe::Whole(bytes),
        &CodeInput {
            bundle: "",
            path: name,
            info_plist: None,
            code_resources: None,
            verifier,
            at,
            standalone: true,
        },
        &mut out,
    );
    (out, outcome.slices)
}

impl App<'_> {
    /// Verifies one bundle or dylib; returns its summary and its cdhashes
    /// (for the enclosing bundle's seal).
    fn verify_unit(
        &self,
        unit: &Unit,
        opts: &Options<'_>,
        nested: &HashMap<String, Vec<Vec<u8>>>,
        out: &mut Vec<Finding>,
    ) -> (BundleInfo, Vec<Vec<u8>>) {
        // A dylib belongs to the innermost bundle that contains it.
        let owner = if unit.kind == BundleKind::Dylib {
            let mut dir = unit.rel.as_str();
            loop {
                match dir.rsplit_once('/') {
                    Some((parent, _)) if self.bundles.contains_key(parent) => break parent,
                    Some((parent, _)) => dir = parent,
                    None => break "",
                }
            }
        } else {
            unit.rel.as_str()
        };
        let bundle = self.archive_path(owner);
        let mut info = BundleInfo {
            path: self.archive_path(&unit.rel),
            kind: unit.kind,
            bundle_id: None,
            version: None,
            build: None,
            minimum_os: None,
            executable: None,
            slices: Vec::new(),
            resources: None,
            profile: None,
            entitlements: None,
            checked_at: None,
        };
        if unit.kind == BundleKind::Dylib {
            let rel_in_bundle = unit.rel[owner.len()..].trim_start_matches('/').to_owned();
            let Some(outcome) = self.check_file(
                &unit.rel,
                &bundle,
                &CodeInput {
                    bundle: &bundle,
                    path: &rel_in_bundle,
                    info_plist: None,
                    code_resources: None,
                    verifier: opts.verifier,
                    at: opts.at,
                    standalone: false,
                },
                out,
            ) else {
                return (info, Vec::new());
            };
            info.executable = Some(rel_in_bundle);
            info.slices = outcome.slices;
            info.checked_at = outcome.checked_at;
            return (info, outcome.cdhashes);
        }
        let inner = |name: &str| join(&unit.rel, name);
        let Some(plist_bytes) = self.read(&inner("Info.plist"), MAX_SMALL, &bundle, out) else {
            out.push(
                Finding::new(
                    Code::InfoPlistInvalid,
                    &bundle,
                    "the bundle has no Info.plist",
                )
                .path("Info.plist"),
            );
            return (info, Vec::new());
        };
        let dict = match plist::parse(&plist_bytes) {
            Ok((Value::Dictionary(d), _)) => d,
            parsed => {
                let why = match parsed {
                    Err(e) => format!("Info.plist cannot be read: {e}"),
                    Ok(_) => "Info.plist is not a dictionary plist".to_owned(),
                };
                out.push(Finding::new(Code::InfoPlistInvalid, &bundle, why).path("Info.plist"));
                return (info, Vec::new());
            }
        };
        let text = |k: &str| dict.get(k).and_then(Value::as_str).map(str::to_owned);
        info.bundle_id = text("CFBundleIdentifier");
        info.version = text("CFBundleShortVersionString");
        info.build = text("CFBundleVersion");
        info.minimum_os = text("MinimumOSVersion");
        info.executable = text("CFBundleExecutable");
        let Some(exe) = info.executable.clone() else {
            out.push(
                Finding::new(
                    Code::InfoPlistInvalid,
                    &bundle,
                    "Info.plist has no CFBundleExecutable",
                )
                .path("Info.plist"),
            );
            return (info, Vec::new());
        };
        let resources_bytes = self.read(
            &inner("_CodeSignature/CodeResources"),
            MAX_CODE_RESOURCES,
            &bundle,
            out,
        );
        // The executable (inflate, page hashes) and the resource seal (every
        // other file) run side by side; each byte is inflated once.
        let (code_part, seal_part) = rayon::join(
            || {
                let mut found = Vec::new();
                let checked = self.check_file(
                    &inner(&exe),
                    &bundle,
                    &CodeInput {
                        bundle: &bundle,
                        path: &exe,
                        info_plist: Some(&plist_bytes),
                        code_resources: resources_bytes.as_deref(),
                        verifier: opts.verifier,
                        at: opts.at,
                        standalone: false,
                    },
                    &mut found,
                );
                let Some(outcome) = checked else {
                    found.push(
                        Finding::new(
                            Code::ExecutableMissing,
                            &bundle,
                            format!("the executable {exe} is missing"),
                        )
                        .path(&exe),
                    );
                    return (None, found);
                };
                (Some(outcome), found)
            },
            || {
                let mut found = Vec::new();
                let resources = self.seal(
                    &unit.rel,
                    &bundle,
                    &exe,
                    resources_bytes.as_deref(),
                    nested,
                    &mut found,
                );
                (resources, found)
            },
        );
        let (outcome, code_findings) = code_part;
        out.extend(code_findings);
        let (resources, seal_findings) = seal_part;
        info.resources = resources;
        out.extend(seal_findings);
        let Some(outcome) = outcome else {
            return (info, Vec::new());
        };
        info.slices.clone_from(&outcome.slices);
        info.checked_at = outcome.checked_at;
        if unit.kind == BundleKind::Appex {
            check_main_binary_flag(&bundle, &exe, &outcome, out);
        }
        info.entitlements = outcome.entitlements.first().map(|(_, d)| d.clone());
        if unit.kind.has_own_profile() {
            let bundle_id = info.bundle_id.clone().unwrap_or_default();
            info.profile = self.check_profile(
                &inner("embedded.mobileprovision"),
                &bundle,
                &bundle_id,
                &outcome,
                opts,
                out,
            );
        }
        (info, outcome.cdhashes)
    }
}

impl App<'_> {
    /// Checks a file of code: by parts when it is stored as is and at least
    /// [`Limits::stream_min`] bytes, else read whole (`None`: absent or
    /// unreadable, with a finding for the latter).
    fn check_file(
        &self,
        rel: &str,
        bundle: &str,
        input: &CodeInput<'_>,
        out: &mut Vec<Finding>,
    ) -> Option<CodeOutcome> {
        let streamed = self
            .files
            .get(rel)
            .filter(|e| e.size >= self.archive.limits().stream_min)
            .and_then(|e| self.archive.direct(e))
            .and_then(|d| stream(&d));
        if let Some(s) = streamed {
            return Some(check_code(Exe::Streamed(&s), input, out));
        }
        let bytes = self.read(rel, self.archive.limits().max_read, bundle, out)?;
        Some(check_code(Exe::Whole(&bytes), input, out))
    }
}

/// An extension's executable must be marked as a main binary in its exec
/// segment, as Apple's signer marks every main executable (a warning: iOS 26
/// reportedly stops extensions without it).
fn check_main_binary_flag(bundle: &str, exe: &str, code: &CodeOutcome, out: &mut Vec<Finding>) {
    for s in code.slices.iter().filter(|s| !s.hash_types.is_empty()) {
        let why = match s.exec_segment_flags {
            Some(flags) if flags & CS_EXECSEG_MAIN_BINARY != 0 => continue,
            Some(flags) => {
                format!("its exec-segment flags are {flags:#x}, without main-binary (0x1)")
            }
            None => "its CodeDirectory predates exec segments (version 0x20400)".to_owned(),
        };
        out.push(
            Finding::new(
                Code::ExecSegmentNotMainBinary,
                bundle,
                format!("the extension's executable is not marked as a main binary: {why}"),
            )
            .path(exe)
            .arch(&s.arch),
        );
    }
}

/// `CS_EXECSEG_MAIN_BINARY`: the executable is a process's main binary.
const CS_EXECSEG_MAIN_BINARY: u64 = 0x1;

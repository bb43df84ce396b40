//! The whole app: find the bundles, verify each inside-out (nested code
//! first, so the outer seals can check their cdhashes), check each bundle's
//! resource seal and, for apps and extensions, its embedded profile.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use provkit_profile::plist::{self, Value};
use provkit_profile::{FindingCode, ProvisioningProfile, Severity, Verifier};
use rayon::prelude::*;
use sha1::Digest as _;

use crate::archive::{Archive, ArchiveError, Entry, EntryKind, Limits, Refusal};
use crate::bundle::{self, BundleKind};
use crate::cms::At;
use crate::code::{CodeInput, CodeOutcome, check_code, is_apple_signed};
use crate::entitlements;
use crate::report::{BundleInfo, Code, Finding, ProfileInfo, Report};
use crate::resources::{CodeResources, MAX_CODE_RESOURCES, Seal, outside_seal};

/// Largest Info.plist or embedded profile read.
const MAX_SMALL: u64 = 16 << 20;

/// How to verify.
#[derive(Debug, Clone, Copy)]
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

/// Why an input is not readable as an app at all (exit status 2 in the CLI).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// No single `Payload/<Name>.app/` with an Info.plist.
    #[error("not an app: {0}")]
    NotAnApp(String),
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
        bytes,
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

/// A piece of code to verify: a bundle or a standalone dylib.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    /// Path relative to the app root ("" for the app).
    pub(crate) rel: String,
    pub(crate) kind: BundleKind,
}

pub(crate) struct App<'a> {
    pub(crate) archive: &'a Archive,
    /// `Payload/<Name>.app`.
    root: String,
    /// Every non-directory entry under the root, by path relative to it.
    pub(crate) files: BTreeMap<String, &'a Entry>,
    /// Every directory under the root (declared or implied).
    dirs: BTreeSet<String>,
    /// Every nested folder that holds code, with its kind.
    bundles: BTreeMap<String, BundleKind>,
}

fn join(dir: &str, name: &str) -> String {
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
        let bundles = bundle::discover(
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
    fn read(&self, rel: &str, cap: u64, bundle: &str, out: &mut Vec<Finding>) -> Option<Vec<u8>> {
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
            let Some(bytes) = self.read(&unit.rel, self.archive.limits().max_read, &bundle, out)
            else {
                return (info, Vec::new());
            };
            let outcome = check_code(
                &bytes,
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
            );
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
                let Some(exe_bytes) = self.read(
                    &inner(&exe),
                    self.archive.limits().max_read,
                    &bundle,
                    &mut found,
                ) else {
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
                let outcome = check_code(
                    &exe_bytes,
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

    /// The resource seal of a bundle: parse CodeResources and compare; returns
    /// its version and size.
    fn seal(
        &self,
        rel: &str,
        bundle: &str,
        exe: &str,
        bytes: Option<&[u8]>,
        nested: &HashMap<String, Vec<Vec<u8>>>,
        out: &mut Vec<Finding>,
    ) -> Option<(u8, usize)> {
        match bytes.map(CodeResources::parse) {
            Some(Ok(cr)) => {
                if cr.version == 1 {
                    out.push(Finding::new(
                        Code::ResourcesVersion1,
                        bundle,
                        "the resource seal is version 1 (files/rules); strict verification wants version 2",
                    )
                    .path("_CodeSignature/CodeResources"));
                }
                self.check_seal(rel, bundle, exe, &cr, nested, out);
                Some((cr.version, cr.files.len()))
            }
            Some(Err(e)) => {
                out.push(
                    Finding::new(Code::CodeResourcesMalformed, bundle, e.to_string())
                        .path("_CodeSignature/CodeResources"),
                );
                None
            }
            None => {
                let has_resources = self.files.keys().any(|p| {
                    p.strip_prefix(&format!("{rel}/"))
                        .or(rel.is_empty().then_some(p.as_str()))
                        .is_some_and(|r| {
                            r != exe
                                && r != "Info.plist"
                                && !self.files.get(p).is_some_and(|e| outside_seal(r, &e.kind))
                        })
                });
                if has_resources {
                    out.push(
                        Finding::new(
                            Code::CodeResourcesMissing,
                            bundle,
                            "the bundle has files but no resource seal",
                        )
                        .path("_CodeSignature/CodeResources"),
                    );
                }
                None
            }
        }
    }

    /// Compares a bundle's files with its CodeResources.
    fn check_seal(
        &self,
        rel: &str,
        bundle: &str,
        exe: &str,
        cr: &CodeResources,
        nested: &HashMap<String, Vec<Vec<u8>>>,
        out: &mut Vec<Finding>,
    ) {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let mine: BTreeMap<&str, &Entry> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, e)| (&p[prefix.len()..], *e))
            .collect();
        let nested_dirs: Vec<&str> = cr
            .files
            .iter()
            .filter(|s| matches!(s.seal, Seal::Nested { .. }))
            .map(|s| s.path.as_str())
            .filter(|p| self.dirs.contains(&join(rel, p)))
            .collect();
        let mut jobs: Vec<(&str, &Entry, &Seal)> = Vec::new();
        for (&path, &entry) in &mine {
            if path == exe || outside_seal(path, &entry.kind) {
                continue;
            }
            if nested_dirs.iter().any(|d| {
                path.len() > d.len() && path.starts_with(d) && path.as_bytes()[d.len()] == b'/'
            }) {
                continue;
            }
            let Some(rule) = cr.rule_for(path) else {
                continue;
            };
            if rule.omit {
                continue;
            }
            let Some(sealed) = cr.sealed(path) else {
                out.push(
                    Finding::new(
                        Code::ResourceAdded,
                        bundle,
                        format!("{path} is not in the resource seal"),
                    )
                    .path(path),
                );
                continue;
            };
            match (&sealed.seal, &entry.kind) {
                (Seal::File { .. }, EntryKind::File) => jobs.push((path, entry, &sealed.seal)),
                (Seal::Symlink(want), EntryKind::Symlink(got)) => {
                    if want != got {
                        out.push(
                            Finding::new(
                                Code::ResourceModified,
                                bundle,
                                format!("{path} points to {got}, sealed as pointing to {want}"),
                            )
                            .path(path),
                        );
                    }
                }
                (Seal::Nested { cdhash, .. }, EntryKind::File) => {
                    check_nested(
                        cdhash.as_deref(),
                        nested.get(&join(rel, path)),
                        bundle,
                        path,
                        out,
                    );
                }
                _ => out.push(
                    Finding::new(
                        Code::ResourceModified,
                        bundle,
                        format!(
                            "{path} is sealed as another kind of file (file, symlink, nested code)"
                        ),
                    )
                    .path(path),
                ),
            }
        }
        for d in &nested_dirs {
            if let Some(Seal::Nested { cdhash, .. }) = cr.sealed(d).map(|s| &s.seal) {
                check_nested(cdhash.as_deref(), nested.get(&join(rel, d)), bundle, d, out);
            }
        }
        // Hash every sealed file once, files in parallel.
        let archive = self.archive;
        let results: Vec<(&str, Result<bool, String>)> = jobs
            .par_iter()
            .map(|(path, entry, seal)| (*path, file_matches(archive, entry, seal)))
            .collect();
        for (path, r) in results {
            match r {
                Ok(true) => {}
                Ok(false) => out.push(
                    Finding::new(
                        Code::ResourceModified,
                        bundle,
                        format!("{path} differs from its sealed digest"),
                    )
                    .path(path),
                ),
                Err(e) => out.push(Finding::new(Code::ArchiveCorruptEntry, bundle, e).path(path)),
            }
        }
        // Missing: sealed, not optional, and absent.
        for s in &cr.files {
            let present =
                mine.contains_key(s.path.as_str()) || nested_dirs.contains(&s.path.as_str());
            if !present && !s.optional && !cr.rule_for(&s.path).is_some_and(|r| r.optional) {
                out.push(
                    Finding::new(
                        Code::ResourceMissing,
                        bundle,
                        format!("{} is sealed but missing", s.path),
                    )
                    .path(&s.path),
                );
            }
        }
    }

    fn check_profile(
        &self,
        rel: &str,
        bundle: &str,
        bundle_id: &str,
        code: &CodeOutcome,
        opts: &Options<'_>,
        out: &mut Vec<Finding>,
    ) -> Option<ProfileInfo> {
        let file = "embedded.mobileprovision";
        let push = |out: &mut Vec<Finding>, c: Code, m: String| {
            out.push(Finding::new(c, bundle, m).path(file))
        };
        let Some(bytes) = self.read(rel, MAX_SMALL, bundle, out) else {
            if !code.leaf.as_ref().is_some_and(is_apple_signed) {
                push(
                    out,
                    Code::ProfileMissing,
                    "no embedded provisioning profile".into(),
                );
            }
            return None;
        };
        let pp = match ProvisioningProfile::from_der(&bytes) {
            Ok(pp) => pp,
            Err(e) => {
                push(out, Code::ProfileMalformed, e.to_string());
                return None;
            }
        };
        let p = pp.profile();
        let t = match (opts.at, code.checked_at) {
            (At::Instant(t), _) => t,
            (At::SigningTime, Some(t)) => t,
            (At::SigningTime, None) => pp
                .signed_data()
                .signers
                .first()
                .and_then(provkit_profile::SignerInfo::signing_time)
                .unwrap_or(p.creation_date),
        };
        let report = opts.verifier.verify(&pp, t);
        for f in report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
        {
            let c = match f.code {
                FindingCode::ProfileExpired | FindingCode::ProfileNotYetValid => {
                    Code::ProfileExpired
                }
                _ => Code::ProfileSignatureInvalid,
            };
            push(out, c, f.message.clone());
        }
        if !p.provisions_ios() {
            push(
                out,
                Code::ProfilePlatformMismatch,
                format!("the profile is for {}", p.platforms.join(", ")),
            );
        }
        if let Some(leaf) = &code.leaf
            && !p
                .developer_certificates
                .iter()
                .any(|c| c.der() == leaf.der())
        {
            push(
                out,
                Code::SignerNotInProfile,
                format!(
                    "the signing certificate {} is not among the profile's {} DeveloperCertificates",
                    leaf.subject_cn().unwrap_or("(no name)"),
                    p.developer_certificates.len()
                ),
            );
        }
        let app_id = p.application_identifier().unwrap_or_default();
        let prefix = app_id.split_once('.').map_or("", |(t, _)| t);
        if !p.covers_bundle_id(bundle_id) {
            out.push(
                Finding::new(
                    Code::BundleIdNotCovered,
                    bundle,
                    format!("application-identifier {app_id} does not cover {bundle_id}"),
                )
                .path(file)
                .item("application-identifier"),
            );
        }
        let profile_team = p.team_id().unwrap_or(prefix);
        if let Some(team) = &code.team_id
            && team != profile_team
        {
            push(
                out,
                Code::ProfileTeamMismatch,
                format!("the profile belongs to team {profile_team}, the signature to {team}"),
            );
        }
        let allowed = p.entitlements();
        for (blob, claimed) in &code.entitlements {
            for (key, why) in entitlements::not_allowed(claimed, allowed) {
                out.push(
                    Finding::new(
                        Code::EntitlementNotAllowed,
                        bundle,
                        format!("{key} ({blob} blob): {why}"),
                    )
                    .item(key),
                );
            }
        }
        if let Some(udid) = opts.device {
            let all = p.provisions_all_devices == Some(true);
            let listed = p
                .provisioned_devices
                .as_ref()
                .is_some_and(|d| d.iter().any(|x| x.eq_ignore_ascii_case(udid)));
            if !all && !listed {
                out.push(
                    Finding::new(
                        Code::DeviceNotProvisioned,
                        bundle,
                        format!("device {udid} is not in the profile's ProvisionedDevices"),
                    )
                    .path(file)
                    .item(udid),
                );
            }
        }
        Some(ProfileInfo {
            uuid: p.uuid.clone(),
            name: p.name.clone(),
            kind: p.kind().as_str().to_owned(),
            team_id: p.team_id().map(str::to_owned),
            application_identifier: p.application_identifier().map(str::to_owned),
            expiration_date: p.expiration_date,
            devices: p.provisioned_devices.as_ref().map(Vec::len),
        })
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

/// Nested code sealed by its cdhash: the code, verified on its own, must
/// have a CodeDirectory with that cdhash. A seal that names only a
/// designated requirement fails closed: provkit does not evaluate
/// requirements.
fn check_nested(
    sealed: Option<&[u8]>,
    have: Option<&Vec<Vec<u8>>>,
    bundle: &str,
    path: &str,
    out: &mut Vec<Finding>,
) {
    let why = match (sealed, have) {
        (Some(want), Some(have)) if have.iter().any(|h| h == want) => return,
        (Some(_), Some(_)) => "its cdhash is not the sealed one",
        (Some(_), None) => "it is not code this verifier could read",
        (None, _) => "the seal names only a requirement, which is not evaluated",
    };
    out.push(
        Finding::new(
            Code::NestedCodeModified,
            bundle,
            format!("{path}: nested code: {why}"),
        )
        .path(path),
    );
}

/// Whether an archived file matches its seal: `hash2` (SHA-256) when
/// present, else `hash` (SHA-1); each byte is inflated once and hashed once.
fn file_matches(archive: &Archive, entry: &Entry, seal: &Seal) -> Result<bool, String> {
    let Seal::File { sha1, sha256 } = seal else {
        return Ok(false);
    };
    if let Some(want) = sha256 {
        let mut h = sha2::Sha256::new();
        archive
            .stream(entry, &mut |c| h.update(c))
            .map_err(|e| e.to_string())?;
        return Ok(h.finalize().as_slice() == want.as_slice());
    }
    if let Some(want) = sha1 {
        let mut h = sha1::Sha1::new();
        archive
            .stream(entry, &mut |c| h.update(c))
            .map_err(|e| e.to_string())?;
        return Ok(h.finalize().as_slice() == want.as_slice());
    }
    Ok(false)
}

//! Checking a bundle's files against its resource seal: every sealed file
//! present and unmodified (hashed in parallel, each byte inflated once),
//! nothing added, symlinks pointing where they were sealed to, nested code
//! matching its sealed cdhash.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use sha1::Digest as _;

use crate::archive::{Archive, Entry, EntryKind};
use crate::bundle::{App, join};
use crate::report::{Code, Finding};
use crate::seal::{CodeResources, Seal, outside_seal};

impl App<'_> {
    /// The resource seal of a bundle: parse CodeResources and compare; returns
    /// its version and size.
    pub(crate) fn seal(
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
}

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

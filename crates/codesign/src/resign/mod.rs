//! Re-signing an app with a new identity and profile: nested code first,
//! then the app; each `embedded.mobileprovision` replaced; a version-2
//! CodeResources with Apple's iOS rules; new signatures on every Mach-O
//! slice, growing `__LINKEDIT` when the signature does not fit. Every other
//! archive entry is copied byte for byte (its compressed form, untouched);
//! the new archive is written beside the target and renamed into place.
//!
//! Two steps: `plan` checks every precondition and decides, per bundle, its
//! bundle id and profile (refusing with every [`ResignRefusal`] at once,
//! before anything is signed); `apply` signs inside-out; `write` writes.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use provkit_profile::plist::Dictionary;

use crate::archive::{Archive, ArchiveError, Limits};
use crate::report::Code;
use crate::signature::sign::{Identity, KeyError};

mod apply;
mod plan;
mod sync_behind;
mod write;

pub use apply::{effective_entitlements, resign_macho};
pub use write::write_ipa;

/// Why an app was not re-signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResignError {
    /// The input could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Preconditions that do not hold, every one of them; nothing was
    /// written.
    #[error("refused: {}", join(.0))]
    Refused(Vec<ResignRefusal>),
    /// A Mach-O this signer cannot rewrite.
    #[error("{path}: {reason}")]
    Macho {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Writing the output failed.
    #[error("writing {path}: {reason}")]
    Write {
        /// The output.
        path: String,
        /// Why.
        reason: String,
    },
}

fn join(r: &[ResignRefusal]) -> String {
    r.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One precondition of re-signing that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResignRefusal {
    /// The signing certificate names no team (no OU).
    #[error("the signing certificate has no OU (team id)")]
    NoTeam,
    /// The archive reader set an entry aside; it would be copied as it is.
    #[error("archive entry {path:?} set aside: {detail}")]
    EntrySetAside {
        /// The entry.
        path: String,
        /// Why the reader set it aside.
        detail: String,
    },
    /// The input is not one app.
    #[error("{0}")]
    NotAnApp(String),
    /// A profile given to sign with does not parse.
    #[error("a profile does not parse: {0}")]
    ProfileUnreadable(String),
    /// No profile given covers a bundle's (new) bundle id.
    #[error("no profile covers {bundle_id} ({bundle})")]
    NoProfileCovers {
        /// The bundle id it would be signed with.
        bundle_id: String,
        /// The bundle's path in the archive.
        bundle: String,
    },
    /// The chosen profile does not list the signing certificate.
    #[error(
        "the signing certificate is not among the DeveloperCertificates of profile {profile} ({name})"
    )]
    CertificateNotInProfile {
        /// The profile's UUID.
        profile: String,
        /// Its name.
        name: String,
    },
    /// The chosen profile belongs to another team than the certificate.
    #[error("profile {profile} belongs to team {profile_team}, the certificate to {team}")]
    TeamMismatch {
        /// The profile's UUID.
        profile: String,
        /// Its team.
        profile_team: String,
        /// The certificate's team.
        team: String,
    },
    /// A bundle has no Info.plist.
    #[error("{bundle} has no Info.plist")]
    NoInfoPlist {
        /// The bundle's path in the archive.
        bundle: String,
    },
    /// A bundle's Info.plist is not a dictionary plist.
    #[error("{path} is not a dictionary plist")]
    InfoPlistUnreadable {
        /// The Info.plist's path in the archive.
        path: String,
    },
    /// The output path is the input.
    #[error("the output {path} is the input; write the re-signed app to another file")]
    OutputIsInput {
        /// The output path.
        path: String,
    },
    /// The output exists and overwriting was not allowed.
    #[error("{path} exists; pass --force to replace it")]
    OutputExists {
        /// The output path.
        path: String,
    },
    /// The re-signed app does not verify at the instant asked for (the
    /// output is not written): a finding of the verifier, with what to do.
    #[error("{bundle}: {code}: {message} ({hint})")]
    NotValid {
        /// The bundle.
        bundle: String,
        /// The verifier's finding code.
        code: Code,
        /// The finding.
        message: String,
        /// What to do: the finding's fix, or for an untrusted chain which
        /// issuer to add or which root to trust.
        hint: String,
    },
}

/// What to re-sign with.
#[derive(Debug)]
#[non_exhaustive]
pub struct ResignOptions<'a> {
    /// The signing identity.
    pub identity: &'a Identity,
    /// Profiles (file bytes); each bundle gets the one covering its bundle id
    /// (an exact application-identifier before a wildcard).
    pub profiles: &'a [Vec<u8>],
    /// Entitlements for the main app instead of its current ones.
    pub entitlements: Option<Dictionary>,
    /// A new bundle id for the main app (extensions under it follow).
    pub bundle_id: Option<String>,
    /// The CMS signingTime.
    pub signing_time: DateTime<Utc>,
    /// Before [`resign_path`] puts the output in place, verify it with this
    /// verifier at this instant and refuse (writing nothing) unless it is
    /// valid; `None` skips the check.
    pub check: Option<(&'a provkit_profile::Verifier, DateTime<Utc>)>,
    /// Whether [`resign_path`] may replace an existing output file (never
    /// the input).
    pub overwrite: bool,
}

impl<'a> ResignOptions<'a> {
    /// Options to sign with `identity` and `profiles` at `signing_time`,
    /// keeping entitlements and bundle ids, with no output check and no
    /// overwriting.
    pub fn new(
        identity: &'a Identity,
        profiles: &'a [Vec<u8>],
        signing_time: DateTime<Utc>,
    ) -> Self {
        ResignOptions {
            identity,
            profiles,
            entitlements: None,
            bundle_id: None,
            signing_time,
            check: None,
            overwrite: false,
        }
    }
}

/// The new content of the archive's changed files.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Resigned {
    /// Archive path → new bytes: every changed or added file from
    /// [`resign`]; from [`resign_path`], all but the Mach-O files in
    /// [`Resigned::streamed`].
    pub files: BTreeMap<String, Vec<u8>>,
    /// Re-signed Mach-O files that [`resign_path`] wrote to the output as
    /// soon as they were signed, with their new sizes, so that memory holds
    /// one executable at a time (empty from [`resign`]).
    pub streamed: BTreeMap<String, u64>,
    /// Bundles signed, inside-out, with their bundle ids.
    pub signed: Vec<(String, String)>,
    /// The streamed files' digests, for the seals of the bundles around
    /// them.
    digests: BTreeMap<String, crate::seal::Sealable>,
}

impl Resigned {
    /// Whether the file at archive path `path` was changed or added.
    pub fn changed(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.streamed.contains_key(path)
    }

    /// Every changed or added file's archive path, in order.
    pub fn changed_paths(&self) -> impl Iterator<Item = &str> {
        let mut all: Vec<&str> = self
            .files
            .keys()
            .chain(self.streamed.keys())
            .map(String::as_str)
            .collect();
        all.sort_unstable();
        all.into_iter()
    }
}

/// Re-signs the app in `archive` in memory: checks the preconditions, then
/// signs nested code first. Returns the changed and added files.
///
/// # Errors
/// [`ResignError::Refused`] naming every precondition that fails (nothing
/// is signed then), or the first file that cannot be rewritten.
pub fn resign(archive: &Archive, opts: &ResignOptions<'_>) -> Result<Resigned, ResignError> {
    let plan = plan::plan(archive, opts)?;
    apply::apply(&plan, opts, None)
}

/// Re-signs the app at `input` (an `.ipa` or `.app` folder) and writes an
/// `.ipa` to `output` atomically.
///
/// # Errors
/// As [`resign`] and [`write_ipa`].
pub fn resign_path(
    input: &Path,
    output: &Path,
    opts: &ResignOptions<'_>,
) -> Result<Resigned, ResignError> {
    check_output(input, output, opts.overwrite)?;
    let archive = Archive::open(input, Limits::default())?;
    // Every precondition checked before a file is created.
    let plan = plan::plan(&archive, opts)?;
    let write = |target: &Path| -> Result<Resigned, ResignError> {
        let mut w = write::IpaWriter::create(target)?;
        let changes = apply::apply(&plan, opts, Some(&mut w))?;
        w.complete(input, &archive, &changes)?;
        Ok(changes)
    };
    let Some((verifier, at)) = opts.check else {
        return write(output);
    };
    // Written beside the output, verified, and only then put in place.
    let staged = output.with_extension(format!("check-{}", std::process::id()));
    let changes = write(&staged)?;
    let verdict = Archive::open(&staged, Limits::default())
        .map_err(ResignError::from)
        .and_then(|a| {
            crate::verify_archive(
                &a,
                &crate::Options::new(verifier, crate::signature::At::Instant(at)),
            )
            .map_err(|e| ResignError::Write {
                path: output.display().to_string(),
                reason: format!("the re-signed app does not read back: {e}"),
            })
        });
    let report = match verdict {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    if !report.valid {
        let _ = std::fs::remove_file(&staged);
        return Err(ResignError::Refused(refusal_reasons(
            &report,
            opts.identity,
        )));
    }
    std::fs::rename(&staged, output).map_err(|e| ResignError::Write {
        path: output.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(changes)
}

/// Never onto the input; onto an existing file only when allowed.
fn check_output(input: &Path, output: &Path, overwrite: bool) -> Result<(), ResignError> {
    let same = match (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let path = output.display().to_string();
    if same {
        return Err(ResignError::Refused(vec![ResignRefusal::OutputIsInput {
            path,
        }]));
    }
    if output.exists() && !overwrite {
        return Err(ResignError::Refused(vec![ResignRefusal::OutputExists {
            path,
        }]));
    }
    Ok(())
}

/// Why a re-signed app did not verify, in the signer's terms: an untrusted
/// chain names the missing issuer and what to pass.
fn refusal_reasons(report: &crate::Report, identity: &Identity) -> Vec<ResignRefusal> {
    let mut out: Vec<ResignRefusal> = Vec::new();
    for f in report
        .findings
        .iter()
        .filter(|f| f.severity == provkit_profile::Severity::Error)
    {
        let hint = match f.code {
            Code::ChainUntrusted => {
                let issuer = identity.certificate.issuer_cn().unwrap_or("its issuer");
                if identity.chain.is_empty() {
                    format!(
                        "the identity carries no chain: add the certificate of {issuer} with --chain, \
                         and trust the root with --anchor if it is not Apple's"
                    )
                } else {
                    "the chain does not reach a trusted root: add the missing intermediate with \
                     --chain, or trust the root with --anchor"
                        .to_owned()
                }
            }
            _ => f.fix.to_owned(),
        };
        let r = ResignRefusal::NotValid {
            bundle: f.bundle.clone(),
            code: f.code,
            message: f.message.clone(),
            hint,
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

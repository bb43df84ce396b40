//! Re-signing an app with a new identity and profile: nested code first,
//! then the app; each `embedded.mobileprovision` replaced; a version-2
//! CodeResources with Apple's iOS rules; new signatures on every Mach-O
//! slice, growing `__LINKEDIT` when the signature does not fit. Every other
//! archive entry is copied byte for byte (its compressed form, untouched);
//! the new archive is written beside the target and renamed into place.

use std::collections::{BTreeMap, HashMap};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use provkit_profile::plist::{self, Dictionary, Value};
use provkit_profile::{Profile, ProvisioningProfile};
use rayon::prelude::*;
use sha1::Digest as _;

use crate::archive::{Archive, ArchiveError, Entry, EntryKind, Limits};
use crate::bundle::BundleKind;
use crate::entitlements::{parse_blob, value_allowed};
use crate::macho::slices;
use crate::resources::outside_seal;
use crate::sign::{CodeSpec, Identity, KeyError, signature, signature_len};

/// Why an app was not re-signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResignError {
    /// The input could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A precondition does not hold; nothing was written.
    #[error("refused: {}", .0.join("; "))]
    Refused(Vec<String>),
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

/// What to re-sign with.
#[derive(Debug)]
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

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Re-signs one thin slice (as [`slices`] read it); returns its new bytes.
fn resign_slice(
    slice: &crate::macho::Slice<'_>,
    spec: &CodeSpec,
    id: &Identity,
    path: &str,
) -> Result<Vec<u8>, ResignError> {
    let bad = |reason: &str| ResignError::Macho {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let layout = &slice.layout;
    let sig_cmd = layout.code_signature_command.ok_or(bad(
        "no LC_CODE_SIGNATURE: sign it with codesign once first",
    ))?;
    // `slices` checked that the signature lies in __LINKEDIT, the last
    // segment, after the load commands.
    let (linkedit, link_off) = layout
        .last_segment_command
        .ok_or(bad("no __LINKEDIT segment"))?;
    let dataoff = slice.signature_offset;
    let datasize = slice.signature.map_or(0, <[u8]>::len);
    // The fields rewritten below must lie inside the load commands.
    let segment_fields_end = linkedit + if layout.wide { 56 } else { 40 };
    if sig_cmd + 16 > layout.commands_end || segment_fields_end > layout.commands_end {
        return Err(bad("a load command is shorter than its fields"));
    }
    let exec = layout.text.unwrap_or((0, 0));
    let mut spec = spec.clone();
    spec.main_binary = spec.main_binary && layout.filetype == 2;
    let code = &slice.data[..dataoff];
    let need = (signature_len(code, &spec, id, exec)? + 512).div_ceil(16) * 16;
    let new_size = need.max(datasize);
    let mut out = code.to_vec();
    if new_size != datasize {
        // Grow LC_CODE_SIGNATURE and __LINKEDIT to hold it.
        put32(
            &mut out,
            sig_cmd + 12,
            u32::try_from(new_size).map_err(|_| bad("signature too large"))?,
        );
        let file_size = (dataoff + new_size - link_off) as u64;
        let page: u64 = if layout.wide { 0x4000 } else { 0x1000 };
        let vm_size = file_size.div_ceil(page) * page;
        if layout.wide {
            put64(&mut out, linkedit + 48, file_size);
            let vm = u64::from_le_bytes(
                out[linkedit + 32..linkedit + 40]
                    .try_into()
                    .unwrap_or_default(),
            );
            put64(&mut out, linkedit + 32, vm.max(vm_size));
        } else {
            let fs = u32::try_from(file_size).map_err(|_| bad("__LINKEDIT too large"))?;
            put32(&mut out, linkedit + 36, fs);
            let vm = u32::from_le_bytes(
                out[linkedit + 28..linkedit + 32]
                    .try_into()
                    .unwrap_or_default(),
            );
            put32(
                &mut out,
                linkedit + 28,
                vm.max(u32::try_from(vm_size).unwrap_or(u32::MAX)),
            );
        }
    }
    let sig = signature(&out, &spec, id, exec)?;
    if sig.len() > new_size {
        return Err(bad("the signature outgrew its reserve"));
    }
    out.extend_from_slice(&sig);
    out.resize(dataoff + new_size, 0);
    Ok(out)
}

/// Re-signs a Mach-O file (thin or fat); for a standalone file without a
/// bundle Info.plist, each slice's `__info_plist` section is sealed.
///
/// # Errors
/// [`ResignError::Macho`] for a file this signer cannot rewrite.
pub fn resign_macho(
    file: &[u8],
    spec: &CodeSpec,
    id: &Identity,
    path: &str,
) -> Result<Vec<u8>, ResignError> {
    let list = slices(file).map_err(|e| ResignError::Macho {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let per_slice = |s: &crate::macho::Slice<'_>| {
        let mut spec = spec.clone();
        if spec.info_plist.is_none() {
            spec.info_plist = s.info_plist.map(<[u8]>::to_vec);
        }
        resign_slice(s, &spec, id, path)
    };
    let magic = u32::from_be_bytes(
        file.get(..4)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default(),
    );
    if magic != 0xcafe_babe && magic != 0xcafe_babf {
        return per_slice(&list[0]);
    }
    let wide = magic == 0xcafe_babf;
    let entry = if wide { 32 } else { 20 };
    let news = list.iter().map(per_slice).collect::<Result<Vec<_>, _>>()?;
    let mut out = file[..8 + entry * list.len()].to_vec();
    let mut off = out.len();
    for (i, n) in news.iter().enumerate() {
        let at = 8 + i * entry;
        let align_at = if wide { at + 24 } else { at + 16 };
        let align =
            u32::from_be_bytes(out[align_at..align_at + 4].try_into().unwrap_or_default()).min(16);
        let a = 1usize << align;
        off = off.div_ceil(a) * a;
        if wide {
            out[at + 8..at + 16].copy_from_slice(&(off as u64).to_be_bytes());
            out[at + 16..at + 24].copy_from_slice(&(n.len() as u64).to_be_bytes());
        } else {
            let o = u32::try_from(off).map_err(|_| ResignError::Macho {
                path: path.into(),
                reason: "fat file too large".into(),
            })?;
            let l = u32::try_from(n.len()).map_err(|_| ResignError::Macho {
                path: path.into(),
                reason: "slice too large".into(),
            })?;
            out[at + 8..at + 12].copy_from_slice(&o.to_be_bytes());
            out[at + 12..at + 16].copy_from_slice(&l.to_be_bytes());
        }
        off += n.len();
    }
    let mut cursor = out.len();
    for (i, n) in news.iter().enumerate() {
        let at = 8 + i * entry;
        let o = if wide {
            usize::try_from(u64::from_be_bytes(
                out[at + 8..at + 16].try_into().unwrap_or_default(),
            ))
            .unwrap_or(usize::MAX)
        } else {
            u32::from_be_bytes(out[at + 8..at + 12].try_into().unwrap_or_default()) as usize
        };
        out.resize(o.max(cursor), 0);
        out.extend_from_slice(n);
        cursor = out.len();
    }
    Ok(out)
}

/// The profile, parsed, with its bytes.
struct Candidate<'a> {
    bytes: &'a [u8],
    profile: Profile,
}

/// The entitlements a bundle gets: `claimed` restricted to what the profile
/// allows, with application-identifier and team rewritten for `team`.
pub fn effective_entitlements(
    claimed: &Dictionary,
    profile: &Profile,
    team: &str,
    bundle_id: &str,
) -> Dictionary {
    let allowed = profile.entitlements();
    let mut out = Dictionary::new();
    let rewrite = |v: &Value| -> Value {
        // Old team prefixes in identifiers and groups become the new team's.
        match v {
            Value::String(s) => match s.split_once('.') {
                Some((p, rest))
                    if p.len() == 10 && p.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    Value::String(format!("{team}.{rest}"))
                }
                _ => v.clone(),
            },
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| match x {
                        Value::String(s) => match s.split_once('.') {
                            Some((p, rest))
                                if p.len() == 10
                                    && p.chars().all(|c| c.is_ascii_alphanumeric()) =>
                            {
                                Value::String(format!("{team}.{rest}"))
                            }
                            _ => x.clone(),
                        },
                        _ => x.clone(),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    };
    for (k, v) in claimed.iter() {
        let v = match k {
            "application-identifier" => Value::String(format!("{team}.{bundle_id}")),
            "com.apple.developer.team-identifier" => Value::String(team.to_owned()),
            _ => rewrite(v),
        };
        if allowed.get(k).is_some_and(|a| value_allowed(&v, a)) {
            out.insert(k, v);
        }
    }
    if out.get("application-identifier").is_none() {
        out.insert(
            "application-identifier",
            Value::String(format!("{team}.{bundle_id}")),
        );
    }
    if out.get("com.apple.developer.team-identifier").is_none()
        && allowed.get("com.apple.developer.team-identifier").is_some()
    {
        out.insert(
            "com.apple.developer.team-identifier",
            Value::String(team.to_owned()),
        );
    }
    out
}

/// The new content of the archive's changed files.
#[derive(Debug, Default)]
pub struct Resigned {
    /// Archive path → new bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Bundles signed, inside-out, with their bundle ids.
    pub signed: Vec<(String, String)>,
}

/// Re-signs the app in `archive` in memory: checks the preconditions, then
/// signs nested code first. Returns the changed and added files.
///
/// # Errors
/// [`ResignError::Refused`] naming every precondition that fails (nothing
/// is signed then), or the first file that cannot be rewritten.
pub fn resign(archive: &Archive, opts: &ResignOptions<'_>) -> Result<Resigned, ResignError> {
    let id = opts.identity;
    let team = id
        .team()
        .ok_or_else(|| {
            ResignError::Refused(vec!["the signing certificate has no OU (team id)".into()])
        })?
        .to_owned();
    // Entries the reader set aside would be copied into the output as they
    // are: refuse instead.
    if !archive.refused().is_empty() {
        return Err(ResignError::Refused(
            archive
                .refused()
                .iter()
                .map(|r| format!("archive entry {:?} set aside: {}", r.path, r.detail))
                .collect(),
        ));
    }
    let app = crate::verify::App::locate(archive)
        .map_err(|e| ResignError::Refused(vec![e.to_string()]))?;
    let candidates = opts
        .profiles
        .iter()
        .map(|b| {
            ProvisioningProfile::from_der(b)
                .map(|p| Candidate {
                    bytes: b,
                    profile: p.into_profile(),
                })
                .map_err(|e| format!("a profile does not parse: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ResignError::Refused(vec![e]))?;
    let units = app.units();
    // Bundle ids (after renaming) and the profile of each app/extension.
    let main_id = read_info(&app, "")?
        .get("CFBundleIdentifier")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let rename = |old: &str| match &opts.bundle_id {
        Some(new) if old == main_id => new.clone(),
        Some(new) => old
            .strip_prefix(&format!("{main_id}."))
            .map_or(old.to_owned(), |r| format!("{new}.{r}")),
        None => old.to_owned(),
    };
    let mut refusals = Vec::new();
    let mut plan: Vec<(usize, String, Option<usize>)> = Vec::new(); // unit index, bundle id, profile index
    for (i, u) in units.iter().enumerate() {
        if u.kind == BundleKind::Dylib {
            plan.push((i, String::new(), None));
            continue;
        }
        let info = read_info(&app, &u.rel)?;
        let old = info
            .get("CFBundleIdentifier")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let bid = rename(old);
        let profile = if !u.kind.has_own_profile() {
            None
        } else {
            let best = candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| c.profile.covers_bundle_id(&bid))
                .max_by_key(|(_, c)| {
                    !c.profile
                        .application_identifier()
                        .unwrap_or_default()
                        .ends_with('*')
                })
                .map(|(k, _)| k);
            match best {
                None => refusals.push(format!(
                    "no profile covers {bid} ({})",
                    app.archive_path(&u.rel)
                )),
                Some(k) => {
                    let p = &candidates[k].profile;
                    if !p
                        .developer_certificates
                        .iter()
                        .any(|c| c.der() == id.certificate.der())
                    {
                        refusals.push(format!(
                            "the signing certificate is not among the DeveloperCertificates of profile {} ({})",
                            p.uuid,
                            p.name.as_deref().unwrap_or("")
                        ));
                    }
                    if p.team_id().is_some_and(|t| t != team) {
                        refusals.push(format!(
                            "profile {} belongs to team {}, the certificate to {team}",
                            p.uuid,
                            p.team_id().unwrap_or("")
                        ));
                    }
                }
            }
            best
        };
        plan.push((i, bid, profile));
    }
    if !refusals.is_empty() {
        refusals.dedup();
        return Err(ResignError::Refused(refusals));
    }
    let mut out = Resigned::default();
    for (i, bid, profile) in plan {
        let u = &units[i];
        let path = app.archive_path(&u.rel);
        if u.kind == BundleKind::Dylib {
            let bytes = current(&app, &out, &u.rel)?;
            let name = u.rel.rsplit('/').next().unwrap_or(&u.rel);
            let spec = CodeSpec {
                identifier: name.strip_suffix(".dylib").unwrap_or(name).to_owned(),
                team: team.clone(),
                signing_time: opts.signing_time,
                ..CodeSpec::default()
            };
            let new = resign_macho(&bytes, &spec, id, &path)?;
            out.files.insert(path.clone(), new);
            out.signed.push((path, spec.identifier));
            continue;
        }
        let inner = |n: &str| {
            if u.rel.is_empty() {
                n.to_owned()
            } else {
                format!("{}/{n}", u.rel)
            }
        };
        let mut info = read_info(&app, &u.rel)?;
        let exe = info
            .get("CFBundleExecutable")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let info_bytes = if info.get("CFBundleIdentifier").and_then(Value::as_str)
            == Some(bid.as_str())
        {
            current(&app, &out, &inner("Info.plist"))?
        } else {
            info.insert("CFBundleIdentifier", Value::String(bid.clone()));
            let b = plist::to_xml(&Value::Dictionary(info)).map_err(|e| ResignError::Macho {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            out.files
                .insert(app.archive_path(&inner("Info.plist")), b.clone());
            b
        };
        let exe_bytes = current(&app, &out, &inner(&exe))?;
        let mut entitlements = None;
        if let Some(k) = profile {
            let c = &candidates[k];
            out.files.insert(
                app.archive_path(&inner("embedded.mobileprovision")),
                c.bytes.to_vec(),
            );
            let claimed = match (&opts.entitlements, u.rel.is_empty()) {
                (Some(e), true) => e.clone(),
                _ => claimed_entitlements(&exe_bytes),
            };
            entitlements = Some(effective_entitlements(&claimed, &c.profile, &team, &bid));
        }
        let sealed = seal_inputs(&app, &out, &u.rel, &exe)?;
        let resources = code_resources(&sealed);
        out.files.insert(
            app.archive_path(&inner("_CodeSignature/CodeResources")),
            resources.clone(),
        );
        let spec = CodeSpec {
            identifier: bid.clone(),
            team: team.clone(),
            entitlements,
            info_plist: Some(info_bytes),
            code_resources: Some(resources),
            // Apple marks every MH_EXECUTE main executable; resign_macho
            // keeps the flag only for that file type.
            main_binary: true,
            signing_time: opts.signing_time,
        };
        let new = resign_macho(&exe_bytes, &spec, id, &app.archive_path(&inner(&exe)))?;
        out.files.insert(app.archive_path(&inner(&exe)), new);
        out.signed.push((path, bid));
    }
    Ok(out)
}

fn claimed_entitlements(exe: &[u8]) -> Dictionary {
    let Ok(list) = slices(exe) else {
        return Dictionary::new();
    };
    list.iter()
        .filter_map(|s| s.signature)
        .filter_map(|sig| crate::blob::SuperBlob::parse(sig, &crate::error::Where::default()).ok())
        .find_map(|sb| {
            sb.slot(crate::blob::SLOT_ENTITLEMENTS)
                .and_then(|b| parse_blob(b).ok())
        })
        .unwrap_or_default()
}

fn read_info(app: &crate::verify::App<'_>, rel: &str) -> Result<Dictionary, ResignError> {
    let path = if rel.is_empty() {
        "Info.plist".to_owned()
    } else {
        format!("{rel}/Info.plist")
    };
    let bytes = app
        .read_rel(&path, app.archive.limits().max_read)?
        .ok_or_else(|| {
            ResignError::Refused(vec![format!("{} has no Info.plist", app.archive_path(rel))])
        })?;
    match plist::parse(&bytes) {
        Ok((Value::Dictionary(d), _)) => Ok(d),
        _ => Err(ResignError::Refused(vec![format!(
            "{} is not a dictionary plist",
            app.archive_path(&path)
        )])),
    }
}

/// A file's current bytes: re-signed already, or from the archive.
fn current(
    app: &crate::verify::App<'_>,
    out: &Resigned,
    rel: &str,
) -> Result<Vec<u8>, ResignError> {
    if let Some(b) = out.files.get(&app.archive_path(rel)) {
        return Ok(b.clone());
    }
    app.read_rel(rel, app.archive.limits().max_read)?
        .ok_or_else(|| ResignError::Macho {
            path: app.archive_path(rel),
            reason: "missing".into(),
        })
}

/// Every file of a bundle to seal, with its digests (new content where
/// re-signed), nested bundles sealed file by file as Apple's iOS rules do.
fn seal_inputs(
    app: &crate::verify::App<'_>,
    out: &Resigned,
    rel: &str,
    exe: &str,
) -> Result<BTreeMap<String, Sealable>, ResignError> {
    let prefix = if rel.is_empty() {
        String::new()
    } else {
        format!("{rel}/")
    };
    let mut list: BTreeMap<String, Option<&Entry>> = app
        .files
        .iter()
        .filter_map(|(p, e)| p.strip_prefix(&prefix).map(|r| (r.to_owned(), Some(*e))))
        .collect();
    // Files the re-signing adds (a profile, a CodeResources) that the archive lacks.
    let root = format!("{}/", app.archive_path(rel));
    for path in out.files.keys() {
        if let Some(r) = path.strip_prefix(&root) {
            list.entry(r.to_owned()).or_insert(None);
        }
    }
    list.retain(|r, e| {
        r != exe
            && !r.starts_with("_CodeSignature/")
            && !e.is_some_and(|e| outside_seal(r, &e.kind))
    });
    let list: Vec<(String, Option<&Entry>)> = list.into_iter().collect();
    let digests: Vec<(String, Result<Sealable, ResignError>)> = list
        .par_iter()
        .map(|(r, e)| {
            let full = app.archive_path(&format!("{prefix}{r}"));
            let d = if let Some(b) = out.files.get(&full) {
                Ok(Sealable::of(b))
            } else if let Some(Entry {
                kind: EntryKind::Symlink(t),
                ..
            }) = e
            {
                Ok(Sealable::Symlink(t.clone()))
            } else if let Some(e) = e {
                let mut s1 = sha1::Sha1::new();
                let mut s2 = sha2::Sha256::new();
                app.archive
                    .stream(e, &mut |c| {
                        s1.update(c);
                        s2.update(c);
                    })
                    .map(|()| Sealable::File(s1.finalize().into(), s2.finalize().into()))
                    .map_err(ResignError::from)
            } else {
                Err(ResignError::Macho {
                    path: full.clone(),
                    reason: "neither in the archive nor written".into(),
                })
            };
            (r.clone(), d)
        })
        .collect();
    digests
        .into_iter()
        .map(|(r, d)| d.map(|d| (r, d)))
        .collect()
}

/// Writes the re-signed archive: every entry of the input in order, changed
/// ones replaced (Mach-O stored, others deflated), unchanged ones copied in
/// their compressed form, new ones appended; written to a temporary file
/// beside `out` and renamed into place.
///
/// # Errors
/// [`ResignError::Write`] on I/O failure (the target is then untouched).
pub fn write_ipa(input: &Path, changes: &Resigned, out: &Path) -> Result<(), ResignError> {
    let werr = |e: &dyn std::fmt::Display| ResignError::Write {
        path: out.display().to_string(),
        reason: e.to_string(),
    };
    let tmp: PathBuf = out.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| -> Result<(), ResignError> {
        let src = std::fs::File::open(input).map_err(|e| werr(&e))?;
        let mut zin = zip::ZipArchive::new(std::io::BufReader::new(src)).map_err(|e| werr(&e))?;
        let file = std::fs::File::create(&tmp).map_err(|e| werr(&e))?;
        let mut w = zip::ZipWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
        let mut written = std::collections::HashSet::new();
        for i in 0..zin.len() {
            // The name from the central directory (no read of the local header).
            let name =
                String::from_utf8_lossy(zin.by_index_data(i).map_err(|e| werr(&e))?.name_raw())
                    .into_owned();
            let key = name.trim_end_matches('/').to_owned();
            if let Some(bytes) = changes.files.get(&key) {
                write_new(&mut w, &key, bytes).map_err(|e| werr(&e))?;
                written.insert(key);
            } else {
                let f = zin.by_index_raw(i).map_err(|e| werr(&e))?;
                w.raw_copy_file(f).map_err(|e| werr(&e))?;
            }
        }
        for (path, bytes) in &changes.files {
            if !written.contains(path) {
                write_new(&mut w, path, bytes).map_err(|e| werr(&e))?;
            }
        }
        let mut inner = w.finish().map_err(|e| werr(&e))?;
        inner.flush().map_err(|e| werr(&e))?;
        let file = inner.into_inner().map_err(|e| werr(&e))?;
        file.sync_all().map_err(|e| werr(&e))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| werr(&e))
}

fn write_new<W: Write + Seek>(
    w: &mut zip::ZipWriter<W>,
    name: &str,
    bytes: &[u8],
) -> zip::result::ZipResult<()> {
    let macho = bytes.len() >= 4
        && matches!(
            u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            0xcafe_babe | 0xcafe_babf | 0xcffa_edfe | 0xcefa_edfe
        );
    let method = if macho {
        zip::CompressionMethod::Stored
    } else {
        zip::CompressionMethod::Deflated
    };
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(bytes.len() as u64 >= u64::from(u32::MAX))
        .unix_permissions(if macho { 0o755 } else { 0o644 });
    w.start_file(name, opts)?;
    w.write_all(bytes)?;
    Ok(())
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
    let changes = resign(&archive, opts)?;
    let Some((verifier, at)) = opts.check else {
        write_to(input, &archive, &changes, output)?;
        return Ok(changes);
    };
    // Written beside the output, verified, and only then put in place.
    let staged = output.with_extension(format!("check-{}", std::process::id()));
    write_to(input, &archive, &changes, &staged)?;
    let verdict = Archive::open(&staged, Limits::default())
        .map_err(ResignError::from)
        .and_then(|a| {
            crate::verify_archive(
                &a,
                &crate::Options::new(verifier, crate::cms::At::Instant(at)),
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

fn write_to(
    input: &Path,
    archive: &Archive,
    changes: &Resigned,
    out: &Path,
) -> Result<(), ResignError> {
    if input.is_dir() {
        write_folder_ipa(archive, changes, out)
    } else {
        write_ipa(input, changes, out)
    }
}

/// Never onto the input; onto an existing file only when allowed.
fn check_output(input: &Path, output: &Path, overwrite: bool) -> Result<(), ResignError> {
    let same = match (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(ResignError::Refused(vec![format!(
            "the output {} is the input; write the re-signed app to another file",
            output.display()
        )]));
    }
    if output.exists() && !overwrite {
        return Err(ResignError::Refused(vec![format!(
            "{} exists; pass --force to replace it",
            output.display()
        )]));
    }
    Ok(())
}

/// Why a re-signed app did not verify, in the signer's terms: an untrusted
/// chain names the missing issuer and what to pass.
fn refusal_reasons(report: &crate::Report, identity: &Identity) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in report.findings.iter().filter(|f| f.severity == provkit_profile::Severity::Error) {
        let why = match f.code {
            crate::Code::ChainUntrusted => {
                let issuer = identity.certificate.issuer_cn().unwrap_or("its issuer");
                let hint = if identity.chain.is_empty() {
                    format!(
                        "the identity carries no chain: add the certificate of {issuer} with --chain, \
                         and trust the root with --anchor if it is not Apple's"
                    )
                } else {
                    "the chain does not reach a trusted root: add the missing intermediate with \
                     --chain, or trust the root with --anchor"
                        .to_owned()
                };
                format!("chain-untrusted: {} ({hint})", f.message)
            }
            _ => format!("{}: {} ({})", f.code, f.message, f.fix),
        };
        let line = format!("{}: {why}", f.bundle);
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

fn write_folder_ipa(archive: &Archive, changes: &Resigned, out: &Path) -> Result<(), ResignError> {
    let werr = |e: &dyn std::fmt::Display| ResignError::Write {
        path: out.display().to_string(),
        reason: e.to_string(),
    };
    let tmp = out.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| werr(&e))?;
    let mut w = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let mut seen = HashMap::new();
    for e in archive.entries() {
        seen.insert(e.path.clone(), ());
        match &e.kind {
            EntryKind::Dir => {}
            EntryKind::Symlink(t) => {
                w.add_symlink(&e.path, t, zip::write::SimpleFileOptions::default())
                    .map_err(|x| werr(&x))?;
            }
            EntryKind::File => {
                let bytes = match changes.files.get(&e.path) {
                    Some(b) => b.clone(),
                    None => archive.read(e, archive.limits().max_read)?,
                };
                write_new(&mut w, &e.path, &bytes).map_err(|x| werr(&x))?;
            }
        }
    }
    for (p, b) in &changes.files {
        if !seen.contains_key(p) {
            write_new(&mut w, p, b).map_err(|x| werr(&x))?;
        }
    }
    let mut inner = w.finish().map_err(|e| werr(&e))?;
    inner.flush().map_err(|e| werr(&e))?;
    drop(inner);
    std::fs::rename(&tmp, out).map_err(|e| werr(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_omit_and_make_optional() {
        let mut files = BTreeMap::new();
        files.insert("Info.plist".to_owned(), Sealable::of(b"x"));
        files.insert("en.lproj/a.strings".to_owned(), Sealable::of(b"y"));
        files.insert("a.png".to_owned(), Sealable::of(b"z"));
        let cr = crate::resources::CodeResources::parse(&code_resources(&files)).unwrap();
        assert!(cr.sealed("Info.plist").is_none());
        assert!(cr.sealed("en.lproj/a.strings").unwrap().optional);
        assert!(!cr.sealed("a.png").unwrap().optional);
        assert!(cr.rule_for("Info.plist").unwrap().omit);
    }
}

//! The second step of re-signing: the plan carried out inside-out, each
//! bundle's profile embedded, its entitlements restricted to the profile,
//! its resource seal written and every Mach-O slice signed anew.

use std::collections::BTreeMap;

use provkit_profile::Profile;
use provkit_profile::plist::{self, Dictionary, Value};
use rayon::prelude::*;
use sha1::Digest as _;

use crate::archive::{Entry, EntryKind};
use crate::bundle::{App, BundleKind, join};
use crate::entitlements::{parse_blob, value_allowed};
use crate::error::Where;
use crate::macho::slices;
use crate::macho::write::{SignatureFields, fat_kind, fat_offsets, set_fat_table};
use crate::seal::{Sealable, code_resources, outside_seal};
use crate::signature::blob::{SLOT_ENTITLEMENTS, SuperBlob};
use crate::signature::sign::{CodeSpec, Identity, signature, signature_len};

use super::plan::{Plan, read_info};
use super::write::IpaWriter;
use super::{ResignError, ResignOptions, Resigned};

/// Signs every step of `plan`, inside-out. With a `sink`, each re-signed
/// Mach-O file is written to it at once and only its digests kept (for the
/// seal of the bundle around it), so memory holds one executable at a time;
/// without, every new file is kept in [`Resigned::files`].
///
/// # Errors
/// The first file that cannot be rewritten, or a signing failure.
pub(super) fn apply(
    plan: &Plan<'_>,
    opts: &ResignOptions<'_>,
    mut sink: Option<&mut IpaWriter>,
) -> Result<Resigned, ResignError> {
    let (app, team, id) = (&plan.app, &plan.team, opts.identity);
    let mut out = Resigned::default();
    for (n, step) in plan.steps.iter().enumerate() {
        // The last step is the app itself: nothing seals its executable.
        let sealed_later = n + 1 < plan.steps.len();
        let mut emit = |out: &mut Resigned, path: String, bytes: Vec<u8>| match sink.as_deref_mut()
        {
            Some(w) => {
                if sealed_later {
                    out.digests.insert(path.clone(), Sealable::of(&bytes));
                }
                w.put(&path, &bytes)?;
                out.streamed.insert(path, bytes.len() as u64);
                Ok::<(), ResignError>(())
            }
            None => {
                out.files.insert(path, bytes);
                Ok(())
            }
        };
        let u = &step.unit;
        let path = app.archive_path(&u.rel);
        if u.kind == BundleKind::Dylib {
            let bytes = take_current(app, &mut out, &u.rel)?;
            let name = u.rel.rsplit('/').next().unwrap_or(&u.rel);
            let spec = CodeSpec {
                identifier: name.strip_suffix(".dylib").unwrap_or(name).to_owned(),
                team: team.clone(),
                signing_time: opts.signing_time,
                ..CodeSpec::default()
            };
            let new = resign_macho_owned(bytes, &spec, id, &path)?;
            emit(&mut out, path.clone(), new)?;
            out.signed.push((path, spec.identifier));
            continue;
        }
        let bid = &step.bundle_id;
        let inner = |n: &str| join(&u.rel, n);
        let mut info = read_info(app, &u.rel)?;
        let exe = info
            .get("CFBundleExecutable")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let info_bytes = if info.get("CFBundleIdentifier").and_then(Value::as_str)
            == Some(bid.as_str())
        {
            current(app, &out, &inner("Info.plist"))?
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
        let exe_bytes = take_current(app, &mut out, &inner(&exe))?;
        let mut entitlements = None;
        if let Some(k) = step.profile {
            let c = &plan.candidates[k];
            out.files.insert(
                app.archive_path(&inner("embedded.mobileprovision")),
                c.bytes.to_vec(),
            );
            let claimed = match (&opts.entitlements, u.rel.is_empty()) {
                (Some(e), true) => e.clone(),
                _ => claimed_entitlements(&exe_bytes),
            };
            entitlements = Some(effective_entitlements(&claimed, &c.profile, team, bid));
        }
        let sealed = seal_inputs(app, &out, &u.rel, &exe)?;
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
        let new = resign_macho_owned(exe_bytes, &spec, id, &app.archive_path(&inner(&exe)))?;
        emit(&mut out, app.archive_path(&inner(&exe)), new)?;
        out.signed.push((path, bid.clone()));
    }
    Ok(out)
}

/// One slice's re-signing, planned while the file is still borrowed.
struct SlicePlan {
    /// Where the slice starts now.
    offset: usize,
    /// The code limit: where its signature starts.
    dataoff: usize,
    /// The signature's room now, and the room it gets.
    old_size: usize,
    new_size: usize,
    fields: SignatureFields,
    exec: (u64, u64),
    spec: CodeSpec,
}

/// Plans one thin slice (as [`slices`] read it): its spec and the room its
/// new signature needs.
fn plan_slice(
    slice: &crate::macho::Slice<'_>,
    spec: &CodeSpec,
    id: &Identity,
) -> Result<SlicePlan, ResignError> {
    let layout = &slice.layout;
    let fields = SignatureFields::of(layout).map_err(|r| ResignError::Macho {
        path: String::new(),
        reason: r.to_owned(),
    })?;
    let dataoff = slice.signature_offset;
    let old_size = slice.signature.map_or(0, <[u8]>::len);
    let exec = layout.text.unwrap_or((0, 0));
    let mut spec = spec.clone();
    spec.main_binary = spec.main_binary && layout.filetype == 2;
    if spec.info_plist.is_none() {
        spec.info_plist = slice.info_plist.map(<[u8]>::to_vec);
    }
    let code = &slice.data[..dataoff];
    let need = (signature_len(code, &spec, id, exec)? + 512).div_ceil(16) * 16;
    Ok(SlicePlan {
        offset: slice.offset,
        dataoff,
        old_size,
        new_size: need.max(old_size),
        fields,
        exec,
        spec,
    })
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
    resign_macho_owned(file.to_vec(), spec, id, path)
}

/// [`resign_macho`] in the file's own buffer: each slice's code moves to
/// its new place (last slice first, never backwards, so nothing is read
/// after it is overwritten), its size fields are set, and its signature is
/// computed there and written after it. Memory is the file plus the growth
/// of its signatures.
pub(crate) fn resign_macho_owned(
    mut file: Vec<u8>,
    spec: &CodeSpec,
    id: &Identity,
    path: &str,
) -> Result<Vec<u8>, ResignError> {
    let bad = |reason: &str| ResignError::Macho {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let plans = {
        let list = slices(&file).map_err(|e| bad(&e.to_string()))?;
        list.iter()
            .map(|s| {
                plan_slice(s, spec, id).map_err(|e| match e {
                    ResignError::Macho { reason, .. } => bad(&reason),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let wide = fat_kind(&file);
    let to = match wide {
        None => vec![0],
        Some(w) => {
            let sizes: Vec<(usize, usize)> = plans
                .iter()
                .map(|p| (p.offset, p.dataoff + p.new_size))
                .collect();
            fat_offsets(&file, w, &sizes).map_err(bad)?
        }
    };
    let total = plans
        .iter()
        .zip(&to)
        .map(|(p, t)| t + p.dataoff + p.new_size)
        .max()
        .unwrap_or(0);
    if total > file.len() {
        file.resize(total, 0);
    }
    for (p, &at) in plans.iter().zip(&to).rev() {
        file.copy_within(p.offset..p.offset + p.dataoff, at);
        let code = &mut file[at..at + p.dataoff];
        if p.new_size != p.old_size {
            // Grow LC_CODE_SIGNATURE and __LINKEDIT to hold it.
            p.fields
                .set_size(code, p.dataoff, p.new_size)
                .map_err(bad)?;
        }
        let sig = signature(&file[at..at + p.dataoff], &p.spec, id, p.exec)?;
        if sig.len() > p.new_size {
            return Err(bad("the signature outgrew its reserve"));
        }
        let room = &mut file[at + p.dataoff..at + p.dataoff + p.new_size];
        room[..sig.len()].copy_from_slice(&sig);
        room[sig.len()..].fill(0);
    }
    if let Some(w) = wide {
        let placed: Vec<(usize, usize)> = plans
            .iter()
            .zip(&to)
            .map(|(p, &t)| (t, p.dataoff + p.new_size))
            .collect();
        set_fat_table(&mut file, w, &placed).map_err(bad)?;
    }
    file.truncate(total);
    Ok(file)
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

/// The entitlements the executable's signature claims now (the first slice
/// that has them).
fn claimed_entitlements(exe: &[u8]) -> Dictionary {
    let Ok(list) = slices(exe) else {
        return Dictionary::new();
    };
    list.iter()
        .filter_map(|s| s.signature)
        .filter_map(|sig| SuperBlob::parse(sig, &Where::default()).ok())
        .find_map(|sb| sb.slot(SLOT_ENTITLEMENTS).and_then(|b| parse_blob(b).ok()))
        .unwrap_or_default()
}

/// A file's current bytes: re-signed already, or from the archive.
/// A file about to be rewritten: taken out of the re-signed files (where an
/// inner step wrote it), else read from the archive.
fn take_current(app: &App<'_>, out: &mut Resigned, rel: &str) -> Result<Vec<u8>, ResignError> {
    if let Some(b) = out.files.remove(&app.archive_path(rel)) {
        return Ok(b);
    }
    current(app, out, rel)
}

fn current(app: &App<'_>, out: &Resigned, rel: &str) -> Result<Vec<u8>, ResignError> {
    let path = app.archive_path(rel);
    if let Some(b) = out.files.get(&path) {
        return Ok(b.clone());
    }
    if out.streamed.contains_key(&path) {
        // Each file is signed once; a plan that rewrote one twice would
        // otherwise read its old bytes back.
        return Err(ResignError::Macho {
            path,
            reason: "already re-signed and written".into(),
        });
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
    app: &App<'_>,
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
    for path in out.files.keys().chain(out.streamed.keys()) {
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
            } else if let Some(d) = out.digests.get(&full) {
                Ok(d.clone())
            } else if out.streamed.contains_key(&full) {
                Err(ResignError::Macho {
                    path: full.clone(),
                    reason: "written without its digests".into(),
                })
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

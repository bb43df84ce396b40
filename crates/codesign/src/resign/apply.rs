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
use crate::macho::write::{SignatureFields, assemble_fat, fat_kind};
use crate::seal::{Sealable, code_resources, outside_seal};
use crate::signature::blob::{SLOT_ENTITLEMENTS, SuperBlob};
use crate::signature::sign::{CodeSpec, Identity, signature, signature_len};

use super::plan::{Plan, read_info};
use super::{ResignError, ResignOptions, Resigned};

/// Signs every step of `plan`, inside-out.
///
/// # Errors
/// The first file that cannot be rewritten, or a signing failure.
pub(super) fn apply(plan: &Plan<'_>, opts: &ResignOptions<'_>) -> Result<Resigned, ResignError> {
    let (app, team, id) = (&plan.app, &plan.team, opts.identity);
    let mut out = Resigned::default();
    for step in &plan.steps {
        let u = &step.unit;
        let path = app.archive_path(&u.rel);
        if u.kind == BundleKind::Dylib {
            let bytes = current(app, &out, &u.rel)?;
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
        let exe_bytes = current(app, &out, &inner(&exe))?;
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
        let new = resign_macho(&exe_bytes, &spec, id, &app.archive_path(&inner(&exe)))?;
        out.files.insert(app.archive_path(&inner(&exe)), new);
        out.signed.push((path, bid.clone()));
    }
    Ok(out)
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
    let fields = SignatureFields::of(layout).map_err(bad)?;
    let dataoff = slice.signature_offset;
    let datasize = slice.signature.map_or(0, <[u8]>::len);
    let exec = layout.text.unwrap_or((0, 0));
    let mut spec = spec.clone();
    spec.main_binary = spec.main_binary && layout.filetype == 2;
    let code = &slice.data[..dataoff];
    let need = (signature_len(code, &spec, id, exec)? + 512).div_ceil(16) * 16;
    let new_size = need.max(datasize);
    let mut out = code.to_vec();
    if new_size != datasize {
        // Grow LC_CODE_SIGNATURE and __LINKEDIT to hold it.
        fields.set_size(&mut out, dataoff, new_size).map_err(bad)?;
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
    let bad = |reason: String| ResignError::Macho {
        path: path.to_owned(),
        reason,
    };
    let list = slices(file).map_err(|e| bad(e.to_string()))?;
    let per_slice = |s: &crate::macho::Slice<'_>| {
        let mut spec = spec.clone();
        if spec.info_plist.is_none() {
            spec.info_plist = s.info_plist.map(<[u8]>::to_vec);
        }
        resign_slice(s, &spec, id, path)
    };
    let Some(wide) = fat_kind(file) else {
        return per_slice(&list[0]);
    };
    let news = list.iter().map(per_slice).collect::<Result<Vec<_>, _>>()?;
    assemble_fat(file, wide, &news).map_err(|r| bad(r.to_owned()))
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
fn current(app: &App<'_>, out: &Resigned, rel: &str) -> Result<Vec<u8>, ResignError> {
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

//! One executable's signature, checked the way the kernel and installd do:
//! every slice, every CodeDirectory, every code page, the special slots, the
//! CMS over the CodeDirectory with its hash-agility attributes, and the team.

use chrono::{DateTime, Utc};
use provkit_profile::oid;
use provkit_profile::plist::{self, Dictionary, Value};
use provkit_profile::{Certificate, FindingCode, Severity, Verifier};

use crate::entitlements;
use crate::error::Where;
use crate::macho::{Bytes, parse};
use crate::report::{Code, Finding, SliceInfo};
use crate::signature::blob::{
    CodeDirectory, HashType, SLOT_CODE_DIRECTORY, SLOT_CODE_RESOURCES, SLOT_DER_ENTITLEMENTS,
    SLOT_ENTITLEMENTS, SLOT_INFO_PLIST, SLOT_REQUIREMENTS, SLOT_SIGNATURE, SpecialSlot, SuperBlob,
};
use crate::signature::cms::{At, signed_data};
use crate::signature::stream::Streamed;

/// An executable's bytes: in memory, or checked by parts
/// ([`crate::signature::stream`]).
#[derive(Clone, Copy)]
pub(crate) enum Exe<'a> {
    Whole(&'a [u8]),
    Streamed(&'a Streamed),
}

/// What the checks of one executable found out, besides findings.
#[derive(Debug, Default)]
pub(crate) struct CodeOutcome {
    /// Per slice.
    pub slices: Vec<SliceInfo>,
    /// The truncated cdhash of every CodeDirectory of every slice.
    pub cdhashes: Vec<Vec<u8>>,
    /// Claimed entitlements: (blob name, dictionary), from the first signed slice.
    pub entitlements: Vec<(&'static str, Dictionary)>,
    /// The signing certificate of the first signed slice.
    pub leaf: Option<Certificate>,
    /// The team id of the first signed slice.
    pub team_id: Option<String>,
    /// The instant the first slice was checked at.
    pub checked_at: Option<DateTime<Utc>>,
}

/// What the executable is checked with.
pub(crate) struct CodeInput<'a> {
    pub bundle: &'a str,
    pub path: &'a str,
    pub info_plist: Option<&'a [u8]>,
    pub code_resources: Option<&'a [u8]>,
    pub verifier: &'a Verifier,
    pub at: At,
    /// A file checked alone: components kept outside it (Info.plist,
    /// CodeResources) cannot be compared and are not reported missing.
    pub standalone: bool,
}

fn hash_type_oid(t: HashType) -> &'static [u8] {
    match t {
        HashType::Sha1 => oid::SHA1,
        HashType::Sha256 | HashType::Sha256Truncated => oid::SHA256,
        HashType::Sha384 => oid::SHA384,
    }
}

/// One DER TLV: (tag, content, rest). Short and long definite lengths.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((tag, b.get(head..end)?, b.get(end..)?))
}

fn slot_name(n: u32) -> &'static str {
    match n {
        SLOT_INFO_PLIST => "Info.plist (special slot 1)",
        SLOT_REQUIREMENTS => "requirements (special slot 2)",
        SLOT_CODE_RESOURCES => "CodeResources (special slot 3)",
        SLOT_ENTITLEMENTS => "entitlements (special slot 5)",
        SLOT_DER_ENTITLEMENTS => "DER entitlements (special slot 7)",
        _ => "special slot",
    }
}

fn pages_text(pages: &[u32]) -> String {
    let mut s: Vec<String> = pages.iter().take(8).map(u32::to_string).collect();
    if pages.len() > 8 {
        s.push(format!("and {} more", pages.len() - 8));
    }
    s.join(", ")
}

/// Checks one executable; pushes findings, returns what was learnt.
pub(crate) fn check_code(
    exe: Exe<'_>,
    input: &CodeInput<'_>,
    out: &mut Vec<Finding>,
) -> CodeOutcome {
    let mut outcome = CodeOutcome::default();
    let here = |code: Code, msg: String| Finding::new(code, input.bundle, msg).path(input.path);
    let file: &dyn Bytes = match exe {
        Exe::Whole(ref bytes) => bytes,
        Exe::Streamed(s) => &s.held,
    };
    let list = match parse(file) {
        Ok(l) => l,
        Err(e) => {
            out.push(here(Code::MachoMalformed, e.to_string()));
            return outcome;
        }
    };
    for (index, slice) in list.iter().enumerate() {
        let arch = slice.arch;
        let at = Where {
            bundle: Some(input.bundle.to_owned()),
            path: Some(input.path.to_owned()),
            slice: Some(slice.offset),
        };
        let mut info = SliceInfo {
            arch: arch.to_owned(),
            hash_types: Vec::new(),
            versions: Vec::new(),
            team_id: None,
            identifier: None,
            signer: None,
            signer_not_after: None,
            signer_sha256: None,
            signing_time: None,
            exec_segment_flags: None,
        };
        let push = |out: &mut Vec<Finding>, code: Code, msg: String| {
            out.push(here(code, msg).arch(arch));
        };
        let Some(sig) = slice.part(file, slice.signature) else {
            push(
                out,
                Code::CodeSignatureMissing,
                format!("the {arch} slice is not signed"),
            );
            outcome.slices.push(info);
            continue;
        };
        let sb = match SuperBlob::parse(sig, &at) {
            Ok(sb) => sb,
            Err(e) => {
                push(out, Code::SignatureMalformed, e.to_string());
                outcome.slices.push(info);
                continue;
            }
        };
        let mut cds = Vec::new();
        // Each parsed CodeDirectory's position in the SuperBlob.
        let mut positions = Vec::new();
        for (position, (slot, blob)) in sb.code_directories().into_iter().enumerate() {
            match CodeDirectory::parse(blob, &at) {
                Ok(cd) => {
                    cds.push((slot, cd));
                    positions.push(position);
                }
                Err(e) => push(
                    out,
                    Code::SignatureMalformed,
                    format!("CodeDirectory slot {slot:#x}: {e}"),
                ),
            }
        }
        if cds.is_empty() {
            push(out, Code::SignatureMalformed, "no CodeDirectory".into());
            outcome.slices.push(info);
            continue;
        }
        for (i, (_, cd)) in cds.iter().enumerate() {
            if cds[..i].iter().any(|(_, o)| o.hash_type == cd.hash_type) {
                push(
                    out,
                    Code::DuplicateHashType,
                    format!("two CodeDirectories use {}", cd.hash_type.name()),
                );
            }
        }
        // Components of the special slots.
        let components: [(u32, Option<&[u8]>, Code); 5] = [
            (
                SLOT_INFO_PLIST,
                input.info_plist.or(slice.part(file, slice.info_plist)),
                Code::InfoPlistModified,
            ),
            (
                SLOT_REQUIREMENTS,
                sb.slot(SLOT_REQUIREMENTS),
                Code::RequirementsModified,
            ),
            (
                SLOT_CODE_RESOURCES,
                input.code_resources,
                Code::CodeResourcesModified,
            ),
            (
                SLOT_ENTITLEMENTS,
                sb.slot(SLOT_ENTITLEMENTS),
                Code::EntitlementsModified,
            ),
            (
                SLOT_DER_ENTITLEMENTS,
                sb.slot(SLOT_DER_ENTITLEMENTS),
                Code::DerEntitlementsModified,
            ),
        ];
        // Each CodeDirectory's full digest, once: the cdhash (its first 20
        // bytes) and the hash-agility attributes both come from it.
        let digests: Vec<Vec<u8>> = cds
            .iter()
            .map(|(_, cd)| cd.hash_type.digest(cd.raw))
            .collect();
        info.exec_segment_flags = cds
            .first()
            .and_then(|(_, cd)| cd.exec_segment)
            .map(|(_, _, flags)| flags);
        for (((_, cd), full), position) in cds.iter().zip(&digests).zip(&positions) {
            info.hash_types.push(cd.hash_type.name().to_owned());
            info.versions.push(format!("{:#x}", cd.version));
            outcome.cdhashes.push(full[..20].to_vec());
            let unread = |reason| crate::error::CodesignError::Signature {
                at: at.clone(),
                reason,
            };
            let checked = match exe {
                Exe::Whole(bytes) => match bytes.range(slice.offset, slice.len) {
                    Some(data) => cd.check_pages(data, &at),
                    None => Err(unread("the slice is outside the file")),
                },
                Exe::Streamed(s) => s
                    .pages
                    .get(&(index, *position))
                    .cloned()
                    .unwrap_or(Err("the code pages were not read"))
                    .map_err(unread),
            };
            match checked {
                Ok(bad) if bad.is_empty() => {}
                Ok(bad) => out.push(
                    here(
                        Code::CodePageModified,
                        format!(
                            "{} of {} code pages do not match their {} hash",
                            bad.len(),
                            cd.code_slots,
                            cd.hash_type.name()
                        ),
                    )
                    .arch(arch)
                    .item(format!("pages {}", pages_text(&bad))),
                ),
                Err(e) => push(out, Code::SignatureMalformed, e.to_string()),
            }
            for (slot, component, code) in components {
                match cd.check_special(slot, component) {
                    SpecialSlot::Ok | SpecialSlot::Absent => {}
                    SpecialSlot::Mismatch => out.push(
                        here(
                            code,
                            format!(
                                "{} does not match its {} digest",
                                slot_name(slot),
                                cd.hash_type.name()
                            ),
                        )
                        .arch(arch)
                        .item(slot_name(slot)),
                    ),
                    SpecialSlot::MissingComponent
                        if input.standalone
                            && (slot == SLOT_INFO_PLIST || slot == SLOT_CODE_RESOURCES) => {}
                    SpecialSlot::MissingComponent => out.push(
                        here(
                            Code::SealedComponentMissing,
                            format!("{} is sealed but missing", slot_name(slot)),
                        )
                        .arch(arch)
                        .item(slot_name(slot)),
                    ),
                }
            }
        }
        let primary = &cds[0].1;
        // A component that exists must be sealed by every CodeDirectory;
        // otherwise it could be changed freely.
        let present: [(u32, bool, Code); 4] = [
            (
                SLOT_INFO_PLIST,
                input.info_plist.is_some(),
                Code::InfoPlistUnsealed,
            ),
            (
                SLOT_CODE_RESOURCES,
                input.code_resources.is_some(),
                Code::CodeResourcesUnsealed,
            ),
            (
                SLOT_ENTITLEMENTS,
                sb.slot(SLOT_ENTITLEMENTS).is_some(),
                Code::EntitlementsUnsealed,
            ),
            (
                SLOT_DER_ENTITLEMENTS,
                sb.slot(SLOT_DER_ENTITLEMENTS).is_some(),
                Code::EntitlementsUnsealed,
            ),
        ];
        for (slot, exists, code) in present {
            if let Some((_, cd)) = cds
                .iter()
                .find(|(_, cd)| exists && cd.check_special(slot, None) == SpecialSlot::Absent)
            {
                out.push(
                    here(
                        code,
                        format!(
                            "{} is present but the {} CodeDirectory does not seal it",
                            slot_name(slot),
                            cd.hash_type.name()
                        ),
                    )
                    .arch(arch)
                    .item(slot_name(slot)),
                );
            }
        }
        if outcome.entitlements.is_empty() {
            for (slot, name) in [
                (SLOT_ENTITLEMENTS, "entitlements"),
                (SLOT_DER_ENTITLEMENTS, "DER entitlements"),
            ] {
                if let Some(blob) = sb.slot(slot) {
                    match entitlements::parse_blob(blob) {
                        Ok(d) => outcome.entitlements.push((name, d)),
                        Err(e) => push(out, Code::SignatureMalformed, format!("{name} blob: {e}")),
                    }
                }
            }
        }
        info.team_id.clone_from(&primary.team_id);
        info.identifier = Some(primary.identifier.clone());
        if outcome.team_id.is_none() {
            outcome.team_id.clone_from(&primary.team_id);
        }
        check_cms(
            &sb,
            &cds,
            &digests,
            input,
            arch,
            &mut info,
            &mut outcome,
            out,
        );
        outcome.slices.push(info);
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
fn check_cms(
    sb: &SuperBlob<'_>,
    cds: &[(u32, CodeDirectory<'_>)],
    digests: &[Vec<u8>],
    input: &CodeInput<'_>,
    arch: &str,
    info: &mut SliceInfo,
    outcome: &mut CodeOutcome,
    out: &mut Vec<Finding>,
) {
    let push = |out: &mut Vec<Finding>, code: Code, msg: String| {
        out.push(
            Finding::new(code, input.bundle, msg)
                .path(input.path)
                .arch(arch),
        );
    };
    let at = Where {
        bundle: Some(input.bundle.to_owned()),
        path: Some(input.path.to_owned()),
        slice: None,
    };
    let blob = match sb.slot(SLOT_SIGNATURE) {
        Some(b) if b.len() > 8 => b,
        _ => {
            push(
                out,
                Code::CmsMissing,
                "no CMS signature: the code is ad-hoc signed".into(),
            );
            return;
        }
    };
    let sd = match signed_data(blob, &at) {
        Ok(sd) => sd,
        Err(e) => {
            push(out, Code::CmsMalformed, e.to_string());
            return;
        }
    };
    let Some(signer) = sd.signers.first() else {
        push(out, Code::CmsMalformed, "the CMS has no signer".into());
        return;
    };
    info.signing_time = signer.signing_time();
    let instant = match input.at {
        At::Instant(t) => Some(t),
        At::SigningTime => info.signing_time,
    };
    let Some(t) = instant else {
        push(
            out,
            Code::CmsInvalid,
            "the CMS has no signingTime to check at; give an instant".into(),
        );
        return;
    };
    if outcome.checked_at.is_none() {
        outcome.checked_at = Some(t);
    }
    let cd0 = cds
        .iter()
        .find(|(s, _)| *s == SLOT_CODE_DIRECTORY)
        .map_or(cds[0].1.raw, |(_, cd)| cd.raw);
    let (findings, _) = input.verifier.verify_signed_data(&sd, cd0, t);
    for f in findings {
        let code = match f.code {
            FindingCode::ChainUntrusted
            | FindingCode::ChainSignatureInvalid
            | FindingCode::ChainTooLong
            | FindingCode::ChainBudgetExceeded
            | FindingCode::IssuerNotCa
            | FindingCode::UnknownCriticalExtension => Code::ChainUntrusted,
            FindingCode::CertificateExpired | FindingCode::CertificateNotYetValid => {
                Code::SigningCertificateExpired
            }
            _ if f.severity == Severity::Error => Code::CmsInvalid,
            _ => continue,
        };
        let mut finding = Finding::new(code, input.bundle, f.message)
            .path(input.path)
            .arch(arch);
        finding.item = f.certificate;
        out.push(finding);
    }
    let leaf = sd.signer_certificate(signer).cloned();
    if let Some(leaf) = &leaf {
        info.signer = leaf.subject_cn().map(str::to_owned);
        info.signer_not_after = Some(leaf.not_after());
        info.signer_sha256 = Some(provkit_profile::hex(&leaf.sha256_fingerprint()));
        let team = cds[0].1.team_id.as_deref();
        if let (Some(team), Some(ou)) = (team, leaf.subject_ou())
            && team != ou
            && !is_apple_signed(leaf)
        {
            push(
                out,
                Code::TeamMismatch,
                format!("the CodeDirectory names team {team} but the certificate's OU is {ou}"),
            );
        }
    }
    if outcome.leaf.is_none() {
        outcome.leaf = leaf;
    }
    check_agility(signer, cds, digests, &mut |m| {
        push(out, Code::CdhashesMismatch, m)
    });
}

/// Whether a leaf is Apple's own App Store signing identity.
pub(crate) fn is_apple_signed(leaf: &Certificate) -> bool {
    leaf.subject_cn()
        .is_some_and(|cn| cn.starts_with("Apple iPhone OS Application Signing"))
}

/// The hash-agility attributes must list exactly the CodeDirectories' cdhashes.
fn check_agility(
    signer: &provkit_profile::SignerInfo,
    cds: &[(u32, CodeDirectory<'_>)],
    digests: &[Vec<u8>],
    report: &mut dyn FnMut(String),
) {
    for attr in signer.attributes() {
        match attr.oid.as_slice() {
            oid::APPLE_CDHASHES_PLIST => {
                let listed = attr
                    .values
                    .first()
                    .and_then(|v| tlv(v))
                    .filter(|(tag, _, _)| *tag == 0x04)
                    .and_then(|(_, body, _)| plist::parse(body).ok())
                    .and_then(|(v, _)| match v {
                        Value::Dictionary(d) => d.get("cdhashes").cloned(),
                        _ => None,
                    });
                let Some(Value::Array(listed)) = listed else {
                    report("the cdhashes attribute (1.2.840.113635.100.9.1) cannot be read".into());
                    continue;
                };
                let expected: Vec<Value> = digests
                    .iter()
                    .map(|d| Value::Data(d[..20].to_vec()))
                    .collect();
                if listed != expected {
                    report(format!(
                        "the signed cdhashes list ({} entries) does not match the {} CodeDirectories",
                        listed.len(),
                        cds.len()
                    ));
                }
            }
            oid::APPLE_CDHASHES_SET => {
                let mut listed: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                let mut readable = true;
                for v in &attr.values {
                    let pair = tlv(v)
                        .filter(|(t, _, _)| *t == 0x30)
                        .and_then(|(_, body, _)| {
                            let (t1, alg, rest) = tlv(body)?;
                            let (t2, digest, _) = tlv(rest)?;
                            (t1 == 0x06 && t2 == 0x04).then(|| (alg.to_vec(), digest.to_vec()))
                        });
                    match pair {
                        Some(p) => listed.push(p),
                        None => readable = false,
                    }
                }
                let mut expected: Vec<(Vec<u8>, Vec<u8>)> = cds
                    .iter()
                    .zip(digests)
                    .map(|((_, cd), d)| (hash_type_oid(cd.hash_type).to_vec(), d.clone()))
                    .collect();
                listed.sort();
                expected.sort();
                if !readable || listed != expected {
                    report(
                        "the signed (algorithm, cdhash) set (1.2.840.113635.100.9.2) does not match the CodeDirectories"
                            .into(),
                    );
                }
            }
            _ => {}
        }
    }
}

//! The first step of re-signing: every precondition checked, and per
//! bundle (inside-out) the bundle id it will carry and the profile it gets,
//! before anything is signed.

use provkit_profile::plist::{self, Dictionary, Value};
use provkit_profile::{Profile, ProvisioningProfile};

use crate::archive::Archive;
use crate::bundle::{App, BundleKind, Unit, join};

use super::{ResignError, ResignOptions, ResignRefusal};

/// A profile given to sign with, parsed, with its bytes.
pub(super) struct Candidate<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) profile: Profile,
}

/// One piece of code to sign.
pub(super) struct Step {
    pub(super) unit: Unit,
    /// The bundle id it will carry (empty for a dylib).
    pub(super) bundle_id: String,
    /// Index into [`Plan::candidates`] of its profile (apps and extensions).
    pub(super) profile: Option<usize>,
}

/// What re-signing will do, checked whole.
pub(super) struct Plan<'a> {
    pub(super) app: App<'a>,
    pub(super) team: String,
    pub(super) candidates: Vec<Candidate<'a>>,
    /// Inside-out, the app last.
    pub(super) steps: Vec<Step>,
}

/// Checks the preconditions and chooses each bundle's profile: an exact
/// application-identifier before a wildcard.
///
/// # Errors
/// [`ResignError::Refused`] with every refusal found.
pub(super) fn plan<'a>(
    archive: &'a Archive,
    opts: &ResignOptions<'a>,
) -> Result<Plan<'a>, ResignError> {
    let refuse = |r: ResignRefusal| ResignError::Refused(vec![r]);
    let id = opts.identity;
    let team = id
        .team()
        .ok_or_else(|| refuse(ResignRefusal::NoTeam))?
        .to_owned();
    // Entries the reader set aside would be copied into the output as they
    // are: refuse instead.
    if !archive.refused().is_empty() {
        return Err(ResignError::Refused(
            archive
                .refused()
                .iter()
                .map(|r| ResignRefusal::EntrySetAside {
                    path: r.path.clone(),
                    detail: r.detail.clone(),
                })
                .collect(),
        ));
    }
    let app = App::locate(archive).map_err(|e| refuse(ResignRefusal::NotAnApp(e.to_string())))?;
    let candidates = opts
        .profiles
        .iter()
        .map(|b| {
            ProvisioningProfile::from_der(b)
                .map(|p| Candidate {
                    bytes: b,
                    profile: p.into_profile(),
                })
                .map_err(|e| refuse(ResignRefusal::ProfileUnreadable(e.to_string())))
        })
        .collect::<Result<Vec<_>, _>>()?;
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
    let mut steps = Vec::new();
    for unit in app.units() {
        if unit.kind == BundleKind::Dylib {
            steps.push(Step {
                unit,
                bundle_id: String::new(),
                profile: None,
            });
            continue;
        }
        let info = read_info(&app, &unit.rel)?;
        let old = info
            .get("CFBundleIdentifier")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let bundle_id = rename(old);
        let profile = if unit.kind.has_own_profile() {
            let best = choose(&candidates, &bundle_id);
            match best {
                None => refusals.push(ResignRefusal::NoProfileCovers {
                    bundle_id: bundle_id.clone(),
                    bundle: app.archive_path(&unit.rel),
                }),
                Some(k) => check_profile(&candidates[k].profile, opts, &team, &mut refusals),
            }
            best
        } else {
            None
        };
        steps.push(Step {
            unit,
            bundle_id,
            profile,
        });
    }
    if !refusals.is_empty() {
        refusals.dedup();
        return Err(ResignError::Refused(refusals));
    }
    Ok(Plan {
        app,
        team,
        candidates,
        steps,
    })
}

/// The candidate covering `bundle_id`, an exact application-identifier
/// before a wildcard.
fn choose(candidates: &[Candidate<'_>], bundle_id: &str) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.profile.covers_bundle_id(bundle_id))
        .max_by_key(|(_, c)| {
            !c.profile
                .application_identifier()
                .unwrap_or_default()
                .ends_with('*')
        })
        .map(|(k, _)| k)
}

/// The profile must list the signing certificate and be of its team.
fn check_profile(
    p: &Profile,
    opts: &ResignOptions<'_>,
    team: &str,
    refusals: &mut Vec<ResignRefusal>,
) {
    let cert = opts.identity.certificate.der();
    if !p.developer_certificates.iter().any(|c| c.der() == cert) {
        refusals.push(ResignRefusal::CertificateNotInProfile {
            profile: p.uuid.clone(),
            name: p.name.clone().unwrap_or_default(),
        });
    }
    if let Some(t) = p.team_id()
        && t != team
    {
        refusals.push(ResignRefusal::TeamMismatch {
            profile: p.uuid.clone(),
            profile_team: t.to_owned(),
            team: team.to_owned(),
        });
    }
}

/// A bundle's Info.plist as a dictionary.
pub(super) fn read_info(app: &App<'_>, rel: &str) -> Result<Dictionary, ResignError> {
    let path = join(rel, "Info.plist");
    let bytes = app
        .read_rel(&path, app.archive.limits().max_read)?
        .ok_or_else(|| {
            ResignError::Refused(vec![ResignRefusal::NoInfoPlist {
                bundle: app.archive_path(rel),
            }])
        })?;
    match plist::parse(&bytes) {
        Ok((Value::Dictionary(d), _)) => Ok(d),
        _ => Err(ResignError::Refused(vec![
            ResignRefusal::InfoPlistUnreadable {
                path: app.archive_path(&path),
            },
        ])),
    }
}

//! Operations that change what the plan is about: renewal and deletion.

use serde::Serialize;

use crate::model::{AppId, AssignmentId, Intent, ProfileId, Tenant};

/// Why a profile cannot renew another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenewError {
    /// An id outside the tenant.
    #[error("profile #{0} does not exist")]
    Unknown(u32),
    /// A profile cannot renew itself.
    #[error("a profile cannot renew itself")]
    SameProfile,
    /// Teams differ.
    #[error("team {new} cannot renew a profile of team {old}")]
    TeamMismatch {
        /// The old profile's team.
        old: String,
        /// The new profile's team.
        new: String,
    },
    /// The new pattern does not cover the old one's application identifiers.
    #[error("application identifier {new} does not cover {old}")]
    AppIdNotCovered {
        /// Old pattern.
        old: String,
        /// New pattern.
        new: String,
    },
    /// The new profile does not expire later.
    #[error("the new profile expires {new}, not after the old one's {old}")]
    NotLater {
        /// Old expiry.
        old: chrono::DateTime<chrono::Utc>,
        /// New expiry.
        new: chrono::DateTime<chrono::Utc>,
    },
}

/// What a renewal changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renewal {
    /// Apps moved from the old profile to the new one.
    pub apps: Vec<AppId>,
    /// Assignments moved to the new profile.
    pub assignments: Vec<AssignmentId>,
    /// Apps whose signing certificate the new profile does not list: renewal
    /// cannot help them; they must be re-signed.
    pub resign_required: Vec<AppId>,
}

/// Makes `new` the successor of `old`: same team, covering the same
/// application identifiers, later expiry. Apps linked to `old` and its
/// assignments move to `new`.
///
/// # Errors
/// [`RenewError`] saying which condition fails.
pub fn renew(t: &mut Tenant, old: ProfileId, new: ProfileId) -> Result<Renewal, RenewError> {
    let (o, n) = match (t.profiles.get(old.index()), t.profiles.get(new.index())) {
        (Some(o), Some(n)) => (o, n),
        (None, _) => return Err(RenewError::Unknown(old.0)),
        (_, None) => return Err(RenewError::Unknown(new.0)),
    };
    if old == new {
        return Err(RenewError::SameProfile);
    }
    if o.team != n.team {
        return Err(RenewError::TeamMismatch {
            old: o.team.clone(),
            new: n.team.clone(),
        });
    }
    if !provkit_profile::wildcard_matches(&n.app_id, &o.app_id) {
        return Err(RenewError::AppIdNotCovered {
            old: o.app_id.clone(),
            new: n.app_id.clone(),
        });
    }
    if n.expires <= o.expires {
        return Err(RenewError::NotLater {
            old: o.expires,
            new: n.expires,
        });
    }
    let mut out = Renewal {
        apps: Vec::new(),
        assignments: Vec::new(),
        resign_required: Vec::new(),
    };
    let new_certs: Vec<[u8; 32]> = n.certificates.iter().map(|c| c.sha256).collect();
    for (i, app) in t.apps.iter_mut().enumerate() {
        if app.profile == Some(old) {
            let id = AppId(u32::try_from(i).unwrap_or(u32::MAX));
            app.profile = Some(new);
            out.apps.push(id);
            if !new_certs.contains(&app.certificate) {
                out.resign_required.push(id);
            }
        }
    }
    for (i, a) in t.assignments.iter_mut().enumerate() {
        if a.profile == old {
            a.profile = new;
            out.assignments
                .push(AssignmentId(u32::try_from(i).unwrap_or(u32::MAX)));
        }
    }
    // Drop assignments made identical by the move.
    let mut seen = std::collections::HashSet::new();
    t.assignments.retain(|a| seen.insert(a.clone()));
    t.profiles[old.index()].superseded_by = Some(new);
    Ok(out)
}

/// Why a profile cannot be deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile {uuid} is in use: {} linked app(s), {} active assignment(s)", apps.len(), assignments.len())]
pub struct DeleteRefused {
    /// The profile's UUID.
    pub uuid: String,
    /// Apps that link to it.
    pub apps: Vec<AppId>,
    /// Include assignments that target with it.
    pub assignments: Vec<AssignmentId>,
}

/// Refuses deletion while an app links to the profile or an include
/// assignment is active.
///
/// # Errors
/// [`DeleteRefused`] listing the apps and assignments.
pub fn check_delete(t: &Tenant, profile: ProfileId) -> Result<(), DeleteRefused> {
    let apps: Vec<AppId> = t
        .apps
        .iter()
        .enumerate()
        .filter(|(_, a)| a.profile == Some(profile))
        .map(|(i, _)| AppId(u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let assignments: Vec<AssignmentId> = t
        .assignments
        .iter()
        .enumerate()
        .filter(|(_, a)| a.profile == profile && a.intent == Intent::Include)
        .map(|(i, _)| AssignmentId(u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    if apps.is_empty() && assignments.is_empty() {
        Ok(())
    } else {
        Err(DeleteRefused {
            uuid: t
                .profiles
                .get(profile.index())
                .map(|p| p.uuid.clone())
                .unwrap_or_default(),
            apps,
            assignments,
        })
    }
}

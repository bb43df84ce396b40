//! The embedded profile of an app or extension, checked as the device
//! does: genuine and in date at the instant, for iOS, listing the signing
//! certificate, covering the bundle id, of the signature's team, allowing
//! every claimed entitlement, and (when asked) provisioning the device.

use provkit_profile::{FindingCode, ProvisioningProfile, Severity};

use crate::bundle::App;
use crate::entitlements;
use crate::report::{Code, Finding, ProfileInfo};
use crate::signature::At;
use crate::signature::code::{CodeOutcome, is_apple_signed};
use crate::verify::{MAX_SMALL, Options};

impl App<'_> {
    /// Checks the bundle's `embedded.mobileprovision` at `rel`; returns its
    /// summary when it parses.
    pub(crate) fn check_profile(
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
                .is_some_and(|d| d.contains_ignore_case(udid));
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
            devices: p.provisioned_devices.as_ref().map(|d| d.len()),
        })
    }
}

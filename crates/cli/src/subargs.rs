//! The words of the nested subcommands: inventory, trust, app, ipa,
//! profile.

use std::path::PathBuf;

use clap::Subcommand;

use crate::ipa_cmd;

#[derive(Debug, Subcommand)]
pub(crate) enum InventoryCommand {
    /// Write the inventory in the import form (re-imports to the same tenant).
    Export {
        /// `json` or `csv`.
        #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
        format: String,
    },
    /// Import users, devices and groups from a JSON or CSV file (format in the
    /// README), merging into what is stored unless told to replace.
    Import {
        /// The JSON or CSV file.
        file: PathBuf,
        /// Replace every group and device the file names instead of merging.
        #[arg(long)]
        replace: bool,
        /// Replace only this group's members and subgroups (repeatable).
        #[arg(long = "replace-group", value_name = "GROUP")]
        replace_group: Vec<String>,
        /// Print what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The instant for the desired-profile changes (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Trust a certificate (PEM or DER) as an anchor; audited.
    Add {
        /// The certificate file.
        cert: PathBuf,
    },
    /// The tenant's anchors (Apple's roots are always trusted).
    List,
    /// Stop trusting an anchor, by its SHA-256 or a unique prefix; audited.
    Remove {
        /// SHA-256 (hex) or a prefix of 8 or more digits.
        sha256: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum OrgGroupCommand {
    /// Create an organization group and any missing parents, e.g.
    /// Global/EMEA/Benelux; audited.
    Create {
        /// The path from Global.
        path: String,
    },
    /// The organization groups as a tree.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make an API token for `provkit serve`; it is printed once, only its
    /// hash is stored; audited.
    Create {
        /// A unique name (the audit log's actor for its requests).
        #[arg(long)]
        name: String,
        /// viewer (reads), operator (also assigns, renews, imports), admin (also deletes, manages).
        #[arg(long)]
        role: String,
        /// The organization group it sees (default: the root, Global).
        #[arg(long)]
        org_group: Option<String>,
    },
    /// Every token: name, role, organization group, created, revoked.
    List,
    /// Revoke a token by name; audited.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConsoleUserCommand {
    /// Make a console user; the password comes from an environment
    /// variable and is stored only as its argon2id hash; audited.
    Create {
        /// A unique name (what the user signs in with).
        name: String,
        /// viewer (reads), operator (also assigns, renews, uploads), admin (also deletes).
        #[arg(long)]
        role: String,
        /// The organization group the user sees (default: the root, Global).
        #[arg(long)]
        org_group: Option<String>,
        /// The environment variable that holds the password (10 characters or more).
        #[arg(long)]
        password_env: String,
    },
    /// Every console user: name, role, organization group, created.
    List,
    /// Remove a console user and end their sessions; audited.
    Remove {
        /// The user's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AppCommand {
    /// The tenant's apps with their profile and signing certificate.
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove an app's registration (audited).
    Remove {
        /// CFBundleIdentifier.
        bundle_id: String,
        /// Version.
        version: String,
    },
    /// Register an app by its facts, linked to its profile.
    Add {
        /// CFBundleIdentifier.
        #[arg(long)]
        bundle_id: String,
        /// Version.
        #[arg(long)]
        version: String,
        /// The profile UUID it was signed with.
        #[arg(long)]
        profile: String,
        /// The signing certificate (DER or PEM).
        #[arg(long)]
        certificate: PathBuf,
    },
}

/// Which certificates are trusted as roots.
#[derive(Debug, clap::Args)]
pub(crate) struct TrustArgs {
    /// Extra trust anchor (DER or PEM certificate), e.g. a test CA.
    #[arg(long = "anchor")]
    pub(crate) anchors: Vec<PathBuf>,
    /// Trust only the --anchor certificates, not Apple's roots.
    #[arg(long)]
    pub(crate) no_apple_roots: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IpaCommand {
    /// Verify every bundle, slice, seal and embedded profile; exit 0 valid, 1 invalid, 2 not an app.
    Verify {
        /// RFC 3339 instant, or `signing-time` for each signature's own CMS signingTime (default: now).
        #[arg(long)]
        at: Option<String>,
        /// Also check that this device's UDID is provisioned.
        #[arg(long)]
        device: Option<String>,
        /// One JSON object per app: valid, bundles, findings (code, bundle, arch, path, message, fix).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output: text, json (one object per app), junit (XML, one test
        /// case per app) or sarif (2.1.0, one result per finding).
        #[arg(long, value_enum, default_value = "text")]
        format: ipa_cmd::Format,
        #[command(flatten)]
        trust: TrustArgs,
        /// The .ipa files or .app folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Re-sign with a new identity and profile(s); exit 0 written, 1 refused, 2 not an app.
    Resign {
        /// The .ipa file or .app folder.
        input: PathBuf,
        /// The .ipa to write (atomically).
        #[arg(short, long)]
        output: PathBuf,
        /// Signing identity as PKCS#12 (.p12).
        #[arg(long)]
        identity: Option<PathBuf>,
        /// Environment variable holding the .p12 password.
        #[arg(long, default_value = "PROVKIT_P12_PASSWORD")]
        password_env: String,
        /// Signing certificate (PEM or DER), with --key.
        #[arg(long)]
        certificate: Option<PathBuf>,
        /// Private key (PEM or DER; PKCS#8 or PKCS#1), with --certificate.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Intermediate certificates to carry (e.g. Apple WWDR).
        #[arg(long)]
        chain: Vec<PathBuf>,
        /// Provisioning profile(s); each bundle gets the one covering its id.
        #[arg(long = "profile", required = true)]
        profiles: Vec<PathBuf>,
        /// Entitlements plist for the main app (default: what it claims, as the profile allows).
        #[arg(long)]
        entitlements: Option<PathBuf>,
        /// A new bundle id for the app (its extensions follow).
        #[arg(long)]
        bundle_id: Option<String>,
        /// Replace an existing output file (never the input).
        #[arg(long)]
        force: bool,
        /// The anchors the re-signed app must verify against before it is
        /// written (Apple's roots, plus --anchor).
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Bundle ids, versions, slices, hash types, team, signer, profile and entitlements.
    Info {
        /// One JSON object.
        #[arg(long)]
        json: bool,
        /// The .ipa file or .app folder.
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCommand {
    /// The tenant's profiles: kind, team, App ID, expiry, apps, devices, assignments.
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// One stored profile (UUID or unique prefix): versions, apps, devices, assignments.
    Show {
        /// Profile UUID or a unique prefix of 8 or more characters.
        profile: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Where each device stands with a profile: pending-install, sent,
    /// installed, failed (with the device's error chain), pending-removal,
    /// removed.
    Devices {
        /// Profile UUID or a unique prefix of 8 or more characters.
        profile: String,
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Print what a profile file holds.
    Inspect {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Profile files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Verify signature, chain and dates at an instant.
    Verify {
        /// RFC 3339 instant, or `signing-time` for each file's own CMS signingTime (default: now).
        #[arg(long)]
        at: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        trust: TrustArgs,
        /// Exit 1 when a profile's apps die within this window (e.g. 30d),
        /// even if it is valid today: a gate for CI.
        #[arg(long, value_name = "DURATION")]
        fail_if_expires_within: Option<String>,
        /// Profile files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write sample profiles signed by a test CA (and the CA's root) to a folder.
    Sample {
        /// Output folder.
        #[arg(long, default_value = "provkit-sample")]
        out: PathBuf,
    },
}

/// `device|user|group list|remove`.
#[derive(Debug, Subcommand)]
pub(crate) enum ListCommand {
    /// List them (groups as a tree).
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove one, taking it out of every group that lists it (audited); a
    /// user who is a device's primary user, or a group an assignment
    /// targets, is refused.
    Remove {
        /// The UDID, user name or group name.
        name: String,
    },
}

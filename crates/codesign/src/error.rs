//! Why a signature could not be read, and where.

/// Where in an app a problem is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Where {
    /// The bundle path inside the app.
    pub bundle: Option<String>,
    /// The file.
    pub path: Option<String>,
    /// Offset of the Mach-O slice in its file.
    pub slice: Option<usize>,
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(b) = &self.bundle {
            parts.push(format!("bundle {b}"));
        }
        if let Some(p) = &self.path {
            parts.push(format!("file {p}"));
        }
        if let Some(s) = self.slice {
            parts.push(format!("slice at {s}"));
        }
        if parts.is_empty() {
            f.write_str("(top level)")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A structure that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodesignError {
    /// A malformed Mach-O.
    #[error("Mach-O {at}: {reason}")]
    Macho {
        /// Where.
        at: Where,
        /// What.
        reason: &'static str,
    },
    /// A malformed embedded signature.
    #[error("code signature {at}: {reason}")]
    Signature {
        /// Where.
        at: Where,
        /// What.
        reason: &'static str,
    },
    /// The CMS signature in a code signature's wrapper blob is malformed;
    /// `source` carries the DER reader's byte offset inside the CMS (the
    /// blob's 8-byte header excluded).
    #[error("code signature {at}: the CMS signature is malformed: {source}")]
    Cms {
        /// Where.
        at: Where,
        /// What the CMS reader found, and at which byte.
        source: provkit_profile::CmsError,
    },
}

/// Why an input is not readable as an app at all (exit status 2 in the CLI).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// No single `Payload/<Name>.app/` with an Info.plist.
    #[error("not an app: {0}")]
    NotAnApp(String),
}

//! Reading an app from a hostile `.ipa` (a zip) or from an unpacked `.app`
//! folder. Every name is checked before use, every size is bounded before a
//! byte is inflated, and content is streamed in fixed-size chunks so memory
//! stays bounded whatever the archive's size; only files that must be parsed
//! whole (plists, profiles, and executables that are deflated or small) are
//! read into memory, within [`Limits::max_read`]. A large executable stored
//! as is is read by offset instead ([`Limits::stream_min`]).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zip::{CompressionMethod, ZipArchive};

/// Bounds applied to a hostile archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most entries an archive may list.
    pub max_entries: usize,
    /// Largest inflated size of one entry.
    pub max_entry_size: u64,
    /// Largest inflated size of all entries together.
    pub max_total_size: u64,
    /// Largest ratio of inflated to stored bytes for an entry above 1 MiB.
    pub max_ratio: u64,
    /// Largest file read whole into memory (executables, plists, profiles).
    pub max_read: u64,
    /// Executables of at least this size that are stored as is (a stored
    /// zip entry, a folder's file) are checked by parts, a run at a time,
    /// instead of being read whole (same checks, same findings).
    pub stream_min: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1_000_000,
            max_entry_size: 8 << 30,
            max_total_size: 64 << 30,
            max_ratio: 500,
            max_read: 2 << 30,
            stream_min: 4 << 20,
        }
    }
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link and its target.
    Symlink(String),
}

/// One usable entry of the app: a checked, normalised path (`/`-separated,
/// no `.` or `..` component, no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path from the archive root, e.g. `Payload/App.app/Info.plist`.
    pub path: String,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Inflated size in bytes (declared by the archive, enforced on read).
    pub size: u64,
    index: usize,
}

/// Why an entry was set aside. Each becomes a finding; the entry is then
/// treated as absent, so a verdict never rests on an ambiguous entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Refusal {
    /// A `..` component: the entry would land outside the folder.
    PathTraversal,
    /// An absolute path, a drive letter, a backslash or a NUL in the name.
    AbsolutePath,
    /// The same name listed more than once.
    Duplicate,
    /// An encrypted entry.
    Encrypted,
    /// A compression method other than stored or deflated.
    UnsupportedMethod,
    /// Declared size or inflate ratio beyond the limits.
    TooLarge,
    /// A symbolic link whose target leaves the app bundle.
    SymlinkEscapes,
    /// Entries whose stored bytes overlap (a zip-bomb construction).
    Overlapping,
}

/// An entry the reader refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The name as stored (lossy UTF-8).
    pub path: String,
    /// Why.
    pub why: Refusal,
    /// Details.
    pub detail: String,
}

/// Why an app could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a zip archive, or a broken central directory.
    #[error("not a readable zip archive: {0}")]
    NotZip(String),
    /// More entries than [`Limits::max_entries`].
    #[error("the archive lists {0} entries, more than the limit")]
    TooManyEntries(usize),
    /// An entry's content could not be read (corrupt data, CRC mismatch,
    /// more bytes than declared).
    #[error("entry {path}: {reason}")]
    Entry {
        /// The entry.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// A reader shared between threads: positioned reads on one open file.
#[derive(Debug, Clone)]
struct SharedFile {
    file: Arc<File>,
    pos: u64,
    len: u64,
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = read_at(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let next = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, at)
}

#[cfg(windows)]
fn read_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, at)
}

/// Size of the chunks content is streamed in.
const CHUNK: usize = 256 * 1024;

/// Deflated entries whose stated inflated size is at most this are inflated
/// whole by libdeflate (faster than a streaming inflater, but it needs the
/// whole input and output in memory) when streamed; larger ones stream
/// through zlib-rs in [`CHUNK`]s. Entries read whole are inflated whole at
/// any size, since their bytes are held anyway.
const WHOLE_INFLATE_MAX: u64 = 16 << 20;
/// Longest symlink target read from an archive.
const MAX_LINK: u64 = 4096;

#[derive(Debug)]
enum Backing {
    Zip(ZipArchive<SharedFile>),
    Memory(ZipArchive<std::io::Cursor<Arc<[u8]>>>),
    Dir(PathBuf),
}

/// An app's files, from a zip or a folder, with the entries it refused.
#[derive(Debug)]
pub struct Archive {
    entries: Vec<Entry>,
    refused: Vec<Refused>,
    backing: Backing,
    limits: Limits,
}

/// Checks a stored name; returns the normalised path or why it is refused.
fn check_name(raw: &str) -> Result<String, Refusal> {
    if raw.starts_with('/')
        || raw.contains('\\')
        || raw.contains('\0')
        || raw.as_bytes().get(1) == Some(&b':')
    {
        return Err(Refusal::AbsolutePath);
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(Refusal::PathTraversal),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Most links followed while resolving one link (Linux's `MAXSYMLINKS`).
const MAX_LINK_HOPS: usize = 40;

/// Resolves the symlink at `path` (inside `Payload/<X>.app/`) the way the
/// file system would: each step from the folder it stands in, following the
/// other links of `links` (path → target) as they are met. Says why the link
/// escapes: a step above the bundle root (wherever the path comes back to),
/// an absolute target, a resolution onto the bundle root itself, or a loop.
fn link_escapes<'a>(path: &'a str, links: &HashMap<&'a str, &'a str>) -> Option<String> {
    let mut comps = path.split('/');
    let app = match (comps.next(), comps.next()) {
        (Some("Payload"), Some(app)) if app.ends_with(".app") => app,
        _ => return Some("the link is not inside an app bundle".into()),
    };
    let mut at: Vec<&str> = comps.collect();
    // Steps still to take, last first.
    let mut pending: Vec<&str> = Vec::new();
    let mut hops = 0;
    let mut link = path;
    loop {
        // Replace the link by its target, read from the link's folder.
        at.pop();
        let target = links.get(link).copied().unwrap_or_default();
        if target.is_empty() || target.starts_with('/') || target.contains(['\\', '\0']) {
            return Some(format!("{link} points to {target:?}, outside the bundle"));
        }
        pending.extend(target.split('/').rev());
        loop {
            let Some(seg) = pending.pop() else {
                return at
                    .is_empty()
                    .then(|| "it resolves to the bundle root itself".into());
            };
            match seg {
                "" | "." => {}
                ".." => {
                    if at.pop().is_none() {
                        return Some(format!(
                            "{link} points to {target}, a step above the bundle root"
                        ));
                    }
                }
                name => {
                    at.push(name);
                    let here = format!("Payload/{app}/{}", at.join("/"));
                    if let Some((&next, _)) = links.get_key_value(here.as_str()) {
                        hops += 1;
                        if hops > MAX_LINK_HOPS {
                            return Some(format!("more than {MAX_LINK_HOPS} links to follow"));
                        }
                        link = next;
                        break;
                    }
                }
            }
        }
    }
}

/// Sets aside every symlink of `entries` that escapes its bundle
/// ([`link_escapes`]), once all entries are known.
fn set_aside_escaping_links(entries: &mut Vec<Entry>, refused: &mut Vec<Refused>) {
    let links: HashMap<&str, &str> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Symlink(t) => Some((e.path.as_str(), t.as_str())),
            _ => None,
        })
        .collect();
    if links.is_empty() {
        return;
    }
    let escaping: HashMap<String, String> = links
        .keys()
        .filter_map(|&p| link_escapes(p, &links).map(|why| (p.to_owned(), why)))
        .collect();
    if escaping.is_empty() {
        return;
    }
    entries.retain(|e| match escaping.get(&e.path) {
        Some(why) => {
            refused.push(Refused {
                path: e.path.clone(),
                why: Refusal::SymlinkEscapes,
                detail: why.clone(),
            });
            false
        }
        None => true,
    });
}

impl Archive {
    /// Opens an `.ipa` file, or an unpacked `.app` folder (read as
    /// `Payload/<Name>.app/...`).
    ///
    /// # Errors
    /// [`ArchiveError`] when the file cannot be read as a zip at all; entries
    /// that break the rules are kept aside in [`Archive::refused`] instead.
    pub fn open(path: &Path, limits: Limits) -> Result<Self, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: path.display().to_string(),
            source,
        };
        if path.is_dir() {
            return Self::open_dir(path, limits);
        }
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let reader = SharedFile {
            file: Arc::new(file),
            pos: 0,
            len,
        };
        let zip = ZipArchive::new(reader).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        Self::from_zip(Backing::Zip(zip), limits)
    }

    /// Reads an `.ipa` from any reader (a network stream, an upload): the
    /// bytes are spooled to an unnamed temporary file, so memory stays
    /// bounded; at most [`Limits::max_total_size`] bytes are accepted.
    ///
    /// # Errors
    /// As [`Archive::open`], and [`ArchiveError::Io`] when spooling fails.
    pub fn from_reader(reader: impl Read, limits: Limits) -> Result<Self, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: "(reader)".into(),
            source,
        };
        let path = std::env::temp_dir().join(format!(
            "provkit-spool-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        // The open handle keeps the data; the name goes at once (on Unix).
        let _ = std::fs::remove_file(&path);
        let copied =
            std::io::copy(&mut reader.take(limits.max_total_size + 1), &mut file).map_err(io)?;
        if copied > limits.max_total_size {
            return Err(ArchiveError::NotZip(
                "the stream is larger than the total size limit".into(),
            ));
        }
        let reader = SharedFile {
            file: Arc::new(file),
            pos: 0,
            len: copied,
        };
        let zip = ZipArchive::new(reader).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        Self::from_zip(Backing::Zip(zip), limits)
    }

    /// Reads an `.ipa` held in memory.
    ///
    /// # Errors
    /// As [`Archive::open`].
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>, limits: Limits) -> Result<Self, ArchiveError> {
        let zip = ZipArchive::new(std::io::Cursor::new(bytes.into()))
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        Self::from_zip(Backing::Memory(zip), limits)
    }

    fn from_zip(mut backing: Backing, limits: Limits) -> Result<Self, ArchiveError> {
        let (count, duplicates, overlapping) = match &mut backing {
            Backing::Zip(z) => (z.len(), z.has_duplicate_names(), z.has_overlapping_files()),
            Backing::Memory(z) => (z.len(), z.has_duplicate_names(), z.has_overlapping_files()),
            Backing::Dir(_) => (0, false, Ok(false)),
        };
        if count > limits.max_entries {
            return Err(ArchiveError::TooManyEntries(count));
        }
        let mut archive = Archive {
            entries: Vec::with_capacity(count),
            refused: Vec::new(),
            backing,
            limits,
        };
        if duplicates {
            archive.refused.push(Refused {
                path: String::new(),
                why: Refusal::Duplicate,
                detail: "the central directory lists a name more than once".into(),
            });
        }
        if overlapping.unwrap_or(true) {
            archive.refused.push(Refused {
                path: String::new(),
                why: Refusal::Overlapping,
                detail: "entries share stored bytes".into(),
            });
        }
        let mut seen = HashSet::with_capacity(count);
        let mut total: u64 = 0;
        for index in 0..count {
            let meta = match &archive.backing {
                Backing::Zip(z) => z.by_index_data(index).map(|d| meta_of(&d)),
                Backing::Memory(z) => z.by_index_data(index).map(|d| meta_of(&d)),
                Backing::Dir(_) => unreachable_meta(),
            }
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
            let refuse = |why, detail: String| Refused {
                path: meta.name.clone(),
                why,
                detail,
            };
            let path = match check_name(&meta.name) {
                Ok(p) => p,
                Err(why) => {
                    archive
                        .refused
                        .push(refuse(why, "the name leaves the archive root".into()));
                    continue;
                }
            };
            if meta.encrypted {
                archive
                    .refused
                    .push(refuse(Refusal::Encrypted, "the entry is encrypted".into()));
                continue;
            }
            if !meta.method_ok {
                archive.refused.push(refuse(
                    Refusal::UnsupportedMethod,
                    format!("compression method {}", meta.method),
                ));
                continue;
            }
            total = total.saturating_add(meta.size);
            if meta.size > limits.max_entry_size
                || total > limits.max_total_size
                || (meta.size > 1 << 20
                    && meta.size / meta.compressed_size.max(1) > limits.max_ratio)
            {
                archive.refused.push(refuse(
                    Refusal::TooLarge,
                    format!("{} bytes inflated from {}", meta.size, meta.compressed_size),
                ));
                continue;
            }
            if !seen.insert(path.clone()) {
                archive.refused.push(refuse(
                    Refusal::Duplicate,
                    "the same path is listed twice".into(),
                ));
                continue;
            }
            let kind = if meta.symlink {
                let target = archive.read_raw(index, &path, MAX_LINK, meta.size)?;
                EntryKind::Symlink(String::from_utf8_lossy(&target).into_owned())
            } else if meta.dir {
                EntryKind::Dir
            } else {
                EntryKind::File
            };
            archive.entries.push(Entry {
                path,
                kind,
                size: meta.size,
                index,
            });
        }
        set_aside_escaping_links(&mut archive.entries, &mut archive.refused);
        Ok(archive)
    }

    fn open_dir(root: &Path, limits: Limits) -> Result<Self, ArchiveError> {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut archive = Archive {
            entries: Vec::new(),
            refused: Vec::new(),
            backing: Backing::Dir(root.to_path_buf()),
            limits,
        };
        let prefix = format!("Payload/{name}");
        let mut stack = vec![(root.to_path_buf(), prefix)];
        while let Some((dir, virt)) = stack.pop() {
            let io = |source| ArchiveError::Io {
                path: dir.display().to_string(),
                source,
            };
            let mut list: Vec<_> = std::fs::read_dir(&dir)
                .map_err(io)?
                .collect::<Result<_, _>>()
                .map_err(io)?;
            list.sort_by_key(std::fs::DirEntry::file_name);
            for item in list {
                let fname = item.file_name().to_string_lossy().into_owned();
                let path = format!("{virt}/{fname}");
                let meta = item.path().symlink_metadata().map_err(io)?;
                if archive.entries.len() >= limits.max_entries {
                    return Err(ArchiveError::TooManyEntries(archive.entries.len()));
                }
                let index = archive.entries.len();
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(item.path())
                        .map_err(io)?
                        .to_string_lossy()
                        .into_owned();
                    archive.entries.push(Entry {
                        path,
                        kind: EntryKind::Symlink(target),
                        size: 0,
                        index,
                    });
                } else if meta.is_dir() {
                    archive.entries.push(Entry {
                        path: path.clone(),
                        kind: EntryKind::Dir,
                        size: 0,
                        index,
                    });
                    stack.push((item.path(), path));
                } else {
                    archive.entries.push(Entry {
                        path,
                        kind: EntryKind::File,
                        size: meta.len(),
                        index,
                    });
                }
            }
        }
        set_aside_escaping_links(&mut archive.entries, &mut archive.refused);
        Ok(archive)
    }

    /// The usable entries, in archive order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries set aside, with the reason.
    pub fn refused(&self) -> &[Refused] {
        &self.refused
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn dir_path(&self, entry: &Entry) -> Option<PathBuf> {
        let Backing::Dir(root) = &self.backing else {
            return None;
        };
        // The virtual path is Payload/<Name>.app/rest.
        let rest = entry.path.splitn(3, '/').nth(2).unwrap_or("");
        Some(root.join(rest))
    }

    /// Reads a whole entry (at most `cap` bytes, and within
    /// [`Limits::max_read`]).
    ///
    /// # Errors
    /// [`ArchiveError::Entry`] for an entry larger than the cap, corrupt
    /// data or a CRC mismatch.
    pub fn read(&self, entry: &Entry, cap: u64) -> Result<Vec<u8>, ArchiveError> {
        let cap = cap.min(self.limits.max_read);
        if entry.size > cap {
            return Err(ArchiveError::Entry {
                path: entry.path.clone(),
                reason: format!("{} bytes, more than the {cap}-byte limit", entry.size),
            });
        }
        if let Some(p) = self.dir_path(entry) {
            let len = usize::try_from(entry.size).unwrap_or(0);
            let mut out = Vec::with_capacity(len.saturating_add(read_slack(len)));
            File::open(&p)
                .and_then(|f| f.take(cap + 1).read_to_end(&mut out))
                .map_err(|e| ArchiveError::Entry {
                    path: entry.path.clone(),
                    reason: e.to_string(),
                })?;
            return Ok(out);
        }
        self.read_raw(entry.index, &entry.path, cap, entry.size)
    }

    fn read_raw(
        &self,
        index: usize,
        path: &str,
        cap: u64,
        size: u64,
    ) -> Result<Vec<u8>, ArchiveError> {
        let bad = |reason: String| ArchiveError::Entry {
            path: path.to_owned(),
            reason,
        };
        let len = usize::try_from(size.min(cap)).unwrap_or(0);
        let (mut input, mut out) = (Vec::new(), Vec::new());
        let limits = (cap, u64::MAX);
        let slack = read_slack(len);
        let whole = match &self.backing {
            Backing::Zip(z) => {
                inflate_whole(&mut z.clone(), index, limits, &mut input, &mut out, slack)
            }
            Backing::Memory(z) => {
                inflate_whole(&mut z.clone(), index, limits, &mut input, &mut out, slack)
            }
            Backing::Dir(_) => return Err(bad("not an archive entry".into())),
        };
        if whole.map_err(bad)? {
            return Ok(out);
        }
        drop(input);
        let mut out = Vec::with_capacity(len.saturating_add(read_slack(len)));
        self.stream_index(index, path, cap, &mut |chunk| out.extend_from_slice(chunk))?;
        Ok(out)
    }

    /// Streams an entry's content in chunks to `sink`, checking that it is
    /// exactly its declared size and that its CRC matches.
    ///
    /// # Errors
    /// [`ArchiveError::Entry`] for corrupt data.
    pub fn stream(&self, entry: &Entry, sink: &mut dyn FnMut(&[u8])) -> Result<(), ArchiveError> {
        if let Some(p) = self.dir_path(entry) {
            let bad = |e: std::io::Error| ArchiveError::Entry {
                path: entry.path.clone(),
                reason: e.to_string(),
            };
            let mut f = File::open(&p).map_err(bad)?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = f.read(&mut buf).map_err(bad)?;
                if n == 0 {
                    return Ok(());
                }
                sink(&buf[..n]);
            }
        }
        self.stream_index(entry.index, &entry.path, entry.size, sink)
    }

    fn stream_index(
        &self,
        index: usize,
        path: &str,
        cap: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), ArchiveError> {
        let bad = |reason: String| ArchiveError::Entry {
            path: path.to_owned(),
            reason,
        };
        match &self.backing {
            Backing::Zip(z) => pump(z.clone(), index, cap, sink).map_err(bad),
            Backing::Memory(z) => pump(z.clone(), index, cap, sink).map_err(bad),
            Backing::Dir(_) => Err(bad("not an archive entry".into())),
        }
    }
}

/// An entry whose bytes can be read at any offset without inflating: a
/// stored entry of an archive (in a file or in memory), or a folder's file.
#[derive(Debug)]
pub(crate) struct Direct {
    source: Source,
    start: u64,
    /// The entry's size.
    pub(crate) size: u64,
    /// The CRC-32 the archive states (none for a folder's file).
    pub(crate) crc: Option<u32>,
}

/// Where a [`Direct`] entry's bytes are.
#[derive(Debug)]
enum Source {
    File(Arc<File>),
    Memory(Arc<[u8]>),
}

impl Direct {
    /// Fills `buf` with the entry's bytes from `at`.
    pub(crate) fn read_at(&self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let eof = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        let end = at.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(eof());
        }
        let from = self.start.checked_add(at).ok_or_else(eof)?;
        match &self.source {
            Source::Memory(bytes) => {
                let from = usize::try_from(from).map_err(|_| eof())?;
                let part = from
                    .checked_add(buf.len())
                    .and_then(|to| bytes.get(from..to))
                    .ok_or_else(eof)?;
                buf.copy_from_slice(part);
            }
            Source::File(file) => {
                let mut done = 0;
                while done < buf.len() {
                    let n = read_at(file, &mut buf[done..], from + done as u64)?;
                    if n == 0 {
                        return Err(eof());
                    }
                    done += n;
                }
            }
        }
        Ok(())
    }
}

impl Archive {
    /// Random access to a regular file's bytes when they are stored as is
    /// (a stored zip entry, in a file or in memory, or a folder's file),
    /// within [`Limits::max_read`]; `None` otherwise (deflated, too large,
    /// not a regular file): read it with [`Archive::read`].
    pub(crate) fn direct(&self, entry: &Entry) -> Option<Direct> {
        if entry.kind != EntryKind::File || entry.size > self.limits.max_read {
            return None;
        }
        match &self.backing {
            Backing::Zip(z) => {
                let mut z = z.clone();
                let (start, crc) = stored_at(&mut z, entry)?;
                Some(Direct {
                    source: Source::File(z.into_inner().file),
                    start,
                    size: entry.size,
                    crc: Some(crc),
                })
            }
            Backing::Memory(z) => {
                let mut z = z.clone();
                let (start, crc) = stored_at(&mut z, entry)?;
                Some(Direct {
                    source: Source::Memory(z.into_inner().into_inner()),
                    start,
                    size: entry.size,
                    crc: Some(crc),
                })
            }
            Backing::Dir(_) => {
                let file = File::open(self.dir_path(entry)?).ok()?;
                let meta = file.metadata().ok()?;
                (meta.is_file() && meta.len() == entry.size).then(|| Direct {
                    source: Source::File(Arc::new(file)),
                    start: 0,
                    size: entry.size,
                    crc: None,
                })
            }
        }
    }
}

/// Where a stored entry's bytes start in its archive, and its stated
/// CRC-32; `None` for an entry that is not stored as is.
fn stored_at<R: Read + Seek>(zip: &mut ZipArchive<R>, entry: &Entry) -> Option<(u64, u32)> {
    let raw = zip.by_index_raw(entry.index).ok()?;
    let stored = raw.compression() == CompressionMethod::Stored
        && raw.compressed_size() == entry.size
        && raw.size() == entry.size;
    Some((raw.data_start().filter(|_| stored)?, raw.crc32()))
}

struct Meta {
    name: String,
    size: u64,
    compressed_size: u64,
    encrypted: bool,
    method_ok: bool,
    method: String,
    symlink: bool,
    dir: bool,
}

fn meta_of(d: &zip::read::ZipFileEntry<'_>) -> Meta {
    let method = d.compression();
    Meta {
        name: String::from_utf8_lossy(d.name_raw()).into_owned(),
        size: d.size(),
        compressed_size: d.compressed_size(),
        encrypted: d.encrypted(),
        method_ok: matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ),
        method: format!("{method:?}"),
        symlink: d.is_symlink(),
        dir: d.is_dir(),
    }
}

fn unreachable_meta() -> zip::result::ZipResult<Meta> {
    Err(zip::result::ZipError::FileNotFound)
}

/// Inflates a deflated entry of at most `whole_max` stated bytes in one
/// call to libdeflate: its stored bytes are read whole into `input`, and
/// inflated into `out`, sized to exactly the stated size (with `slack` bytes
/// of spare capacity), which must be filled exactly and match the stated
/// CRC-32. `false` for a stored entry or one above `whole_max`: those
/// stream, and neither buffer is touched.
fn inflate_whole<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    index: usize,
    limits: (u64, u64),
    input: &mut Vec<u8>,
    out: &mut Vec<u8>,
    slack: usize,
) -> Result<bool, String> {
    let (cap, whole_max) = limits;
    let raw = zip.by_index_raw(index).map_err(|e| e.to_string())?;
    let declared = raw.size();
    if raw.compression() != CompressionMethod::Deflated || declared > whole_max {
        return Ok(false);
    }
    if declared > cap {
        return Err(format!("{declared} bytes, more than the {cap}-byte limit"));
    }
    let (crc, stored) = (raw.crc32(), raw.compressed_size());
    let (Ok(out_len), Ok(in_len)) = (usize::try_from(declared), usize::try_from(stored)) else {
        return Ok(false);
    };
    // The reader's limits bound `stored` through the inflate ratio, and it
    // cannot run past the archive's end.
    input.clear();
    input.reserve(in_len.min(out_len.saturating_add(1 << 16)));
    raw.take(stored)
        .read_to_end(input)
        .map_err(|e| e.to_string())?;
    out.clear();
    out.reserve(out_len.saturating_add(slack));
    out.resize(out_len, 0);
    let got = libdeflater::Decompressor::new()
        .deflate_decompress(input, out)
        .map_err(|e| match e {
            libdeflater::DecompressionError::InsufficientSpace => {
                "more bytes than the declared size".to_owned()
            }
            libdeflater::DecompressionError::BadData => "corrupt deflate data".to_owned(),
        })?;
    if got != out_len {
        return Err(format!("{got} bytes where {declared} were declared"));
    }
    if libdeflater::crc32(out) != crc {
        return Err(
            "CRC-32 mismatch: the inflated bytes are not the ones the archive states".to_owned(),
        );
    }
    Ok(true)
}

/// Spare capacity for an entry read whole: room for a re-signed
/// executable's larger signature without moving its bytes (a small file
/// that outgrows it is cheap to move).
fn read_slack(size: usize) -> usize {
    size / 32
}

std::thread_local! {
    /// Each thread's input and output buffers for [`inflate_whole`] when
    /// streaming: reused from entry to entry instead of faulting in fresh
    /// memory for each (at most [`WHOLE_INFLATE_MAX`] of output a thread).
    static WHOLE_BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Inflates entry `index` into `sink`, at most `cap` bytes; the entry must
/// yield exactly its declared size and match its CRC. Small deflated
/// entries go through [`inflate_whole`], the rest stream.
fn pump<R: Read + Seek>(
    mut zip: ZipArchive<R>,
    index: usize,
    cap: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<(), String> {
    let mut whole = |input: &mut Vec<u8>, out: &mut Vec<u8>| -> Result<bool, String> {
        let done = inflate_whole(&mut zip, index, (cap, WHOLE_INFLATE_MAX), input, out, 0)?;
        if done {
            out.chunks(CHUNK).for_each(&mut *sink);
        }
        Ok(done)
    };
    let done = WHOLE_BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            let (input, out) = &mut *buffers;
            whole(input, out)
        }
        // A sink that streams another entry on this thread: fresh buffers.
        Err(_) => whole(&mut Vec::new(), &mut Vec::new()),
    })?;
    if done {
        return Ok(());
    }
    let file = zip.by_index(index).map_err(|e| e.to_string())?;
    let declared = file.size();
    if declared > cap {
        return Err(format!("{declared} bytes, more than the {cap}-byte limit"));
    }
    let mut limited = file.take(declared + 1);
    let mut buf = vec![
        0u8;
        CHUNK
            .min(usize::try_from(declared + 1).unwrap_or(CHUNK))
            .max(1)
    ];
    let mut got: u64 = 0;
    loop {
        let n = limited.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n as u64;
        if got > declared {
            return Err("more bytes than the declared size".into());
        }
        sink(&buf[..n]);
    }
    if got != declared {
        return Err(format!("{got} bytes where {declared} were declared"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("Payload/A.app/x"), Ok("Payload/A.app/x".into()));
        assert_eq!(check_name("Payload/A.app/"), Ok("Payload/A.app".into()));
        assert_eq!(check_name("Payload/../x"), Err(Refusal::PathTraversal));
        assert_eq!(check_name("/etc/passwd"), Err(Refusal::AbsolutePath));
        assert_eq!(check_name("C:/x"), Err(Refusal::AbsolutePath));
        assert_eq!(check_name("a\\..\\b"), Err(Refusal::AbsolutePath));
    }

    #[test]
    fn a_reader_is_spooled_and_read() {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        w.start_file("Payload/A.app/Info.plist", opts).unwrap();
        std::io::Write::write_all(&mut w, b"<plist/>").unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let a =
            Archive::from_reader(std::io::Cursor::new(bytes.clone()), Limits::default()).unwrap();
        assert_eq!(a.entries().len(), 1);
        assert_eq!(a.read(&a.entries()[0], 100).unwrap(), b"<plist/>");
        let small = Limits {
            max_total_size: 10,
            ..Limits::default()
        };
        assert!(Archive::from_reader(std::io::Cursor::new(bytes), small).is_err());
        assert!(
            Archive::from_reader(
                std::io::Cursor::new(b"not a zip".to_vec()),
                Limits::default()
            )
            .is_err()
        );
    }

    /// A zip of one deflated text entry and its content.
    fn deflated_text() -> (Vec<u8>, Vec<u8>) {
        let body: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {} of {}\n", i % 977, i % 13).into_bytes())
            .collect();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("Payload/A.app/www/a.js", opts).unwrap();
        std::io::Write::write_all(&mut w, &body).unwrap();
        (w.finish().unwrap().into_inner(), body)
    }

    /// Reads the only entry whole and streamed.
    fn both_ways(bytes: Vec<u8>) -> (Result<Vec<u8>, String>, Result<Vec<u8>, String>) {
        let a = Archive::from_bytes(bytes, Limits::default()).unwrap();
        let e = a.entries()[0].clone();
        let whole = a.read(&e, u64::MAX).map_err(|e| e.to_string());
        let mut out = Vec::new();
        let streamed = a
            .stream(&e, &mut |c| out.extend_from_slice(c))
            .map(|()| out)
            .map_err(|e| e.to_string());
        (whole, streamed)
    }

    /// Calls `edit` with the bytes from offset `at_local` of every local
    /// header and `at_central` of every central one.
    fn each_header(bytes: &mut [u8], at_local: usize, at_central: usize, edit: impl Fn(&mut [u8])) {
        for i in 0..bytes.len().saturating_sub(4) {
            let at = match &bytes[i..i + 4] {
                b"PK\x03\x04" => i + at_local,
                b"PK\x01\x02" => i + at_central,
                _ => continue,
            };
            edit(&mut bytes[at..]);
        }
    }

    /// Entries inflated whole by libdeflate keep every check the streaming
    /// inflater makes: the content, the exact stated size and the CRC.
    #[test]
    fn whole_entry_inflate_checks_size_and_crc() {
        let (good, body) = deflated_text();
        let (whole, streamed) = both_ways(good.clone());
        assert_eq!(whole.as_deref(), Ok(body.as_slice()));
        assert_eq!(streamed.as_deref(), Ok(body.as_slice()));

        let data_start = |bytes: &[u8]| {
            let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
            usize::try_from(z.by_index(0).unwrap().data_start().unwrap()).unwrap()
        };
        // Compressed bytes flipped in the middle.
        let mut corrupt = good.clone();
        let at = data_start(&good) + 500;
        corrupt[at] ^= 0x55;
        let (whole, streamed) = both_ways(corrupt);
        assert!(
            whole.is_err() && streamed.is_err(),
            "{whole:?} {streamed:?}"
        );

        // A CRC that does not match (local header offset 14, central 16).
        let mut crc = good.clone();
        each_header(&mut crc, 14, 16, |field| field[0] ^= 1);
        let (whole, streamed) = both_ways(crc);
        assert!(whole.unwrap_err().contains("CRC-32"));
        assert!(streamed.unwrap_err().contains("CRC-32"));

        // A stated size one byte short, and one byte long (local offset
        // 22, central 24; 32-bit little-endian).
        for delta in [-1i64, 1] {
            let mut lie = good.clone();
            each_header(&mut lie, 22, 24, |field| {
                let size = u32::from_le_bytes(field[..4].try_into().unwrap());
                let new = u32::try_from(i64::from(size) + delta).unwrap();
                field[..4].copy_from_slice(&new.to_le_bytes());
            });
            let (whole, streamed) = both_ways(lie);
            assert!(
                whole.is_err() && streamed.is_err(),
                "{delta}: {whole:?} {streamed:?}"
            );
        }
    }

    /// A stored zip of `names`, each holding its own name (or `big` zero bytes, deflated).
    fn zip_of(names: &[&str], big: usize) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for n in names {
            let method = if big > 0 {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            };
            let opts = zip::write::SimpleFileOptions::default().compression_method(method);
            w.start_file(*n, opts).unwrap();
            let body = if big > 0 {
                vec![0u8; big]
            } else {
                n.as_bytes().to_vec()
            };
            std::io::Write::write_all(&mut w, &body).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// Patches a 16-bit field of every local (`at_local`) and central
    /// (`at_central`) header.
    fn patch(bytes: &mut [u8], at_local: usize, at_central: usize, value: u16) {
        each_header(bytes, at_local, at_central, |field| {
            field[..2].copy_from_slice(&value.to_le_bytes());
        });
    }

    fn refusals(bytes: Vec<u8>) -> Vec<Refusal> {
        Archive::from_bytes(bytes, Limits::default())
            .map(|a| a.refused().iter().map(|r| r.why).collect())
            .unwrap_or_default()
    }

    #[test]
    fn hostile_entries_are_set_aside() {
        let ok = zip_of(&["Payload/A.app/Info.plist"], 0);
        assert!(refusals(ok.clone()).is_empty());
        // Encrypted (general-purpose bit 0).
        let mut enc = ok.clone();
        patch(&mut enc, 6, 8, 1);
        assert_eq!(refusals(enc), [Refusal::Encrypted]);
        // An unknown method (bzip2, 12).
        let mut bz = ok.clone();
        patch(&mut bz, 8, 10, 12);
        assert_eq!(refusals(bz), [Refusal::UnsupportedMethod]);
        // The same name twice (the second renamed by patching its bytes).
        let mut dup = zip_of(&["Payload/A.app/a1", "Payload/A.app/a2"], 0);
        let name = b"Payload/A.app/a2";
        for i in 0..dup.len() - name.len() {
            if &dup[i..i + name.len()] == name {
                dup[i + name.len() - 1] = b'1';
            }
        }
        assert!(refusals(dup).contains(&Refusal::Duplicate));
        // Path traversal and absolute names.
        assert_eq!(
            refusals(zip_of(&["Payload/A.app/../../x"], 0)),
            [Refusal::PathTraversal]
        );
        // A 4 MiB run of zeros deflates beyond the 500:1 ratio.
        assert_eq!(
            refusals(zip_of(&["Payload/A.app/zeros"], 4 << 20)),
            [Refusal::TooLarge]
        );
        // A declared size beyond the per-entry limit.
        let small = Limits {
            max_entry_size: 4,
            ..Limits::default()
        };
        let a = Archive::from_bytes(ok, small).unwrap();
        assert_eq!(a.refused()[0].why, Refusal::TooLarge);
    }

    /// Whether the link at `path` with `target` stays inside, among `others`.
    fn stays(path: &str, target: &str, others: &[(&str, &str)]) -> bool {
        let mut links: HashMap<&str, &str> = others.iter().copied().collect();
        links.insert(path, target);
        link_escapes(path, &links).is_none()
    }

    #[test]
    fn symlinks_must_stay_in_the_app() {
        assert!(stays("Payload/A.app/x", "y", &[]));
        assert!(stays("Payload/A.app/F/x", "../y", &[]));
        assert!(!stays("Payload/A.app/x", "../y", &[]));
        assert!(!stays("Payload/A.app/x", "../B.app/y", &[]));
        assert!(!stays("Payload/A.app/x", "/etc/passwd", &[]));
        assert!(!stays("Payload/A.app/F/x", "../../../z", &[]));
        assert!(!stays("Payload/A.app/F/x", "..", &[]));
        assert!(!stays("Payload/x", "y", &[]));
    }

    #[test]
    fn symlink_escaping_through_the_archive_root_and_back() {
        // Regression: `..` at the archive root was dropped, so this came back in.
        assert!(!stays("Payload/A.app/x", "../../../Payload/A.app/y", &[]));
        assert!(!stays("Payload/A.app/F/x", "../../A.app/y", &[]));
        // Through another link: F/up points at the root's parent's child.
        let up = [("Payload/A.app/F/G/up", "../..")];
        assert!(!stays("Payload/A.app/F/G/x", "up/../y", &up));
        let deep = [("Payload/A.app/d", "F/G/H")];
        assert!(stays("Payload/A.app/x", "d/../../y", &deep));
        assert!(!stays("Payload/A.app/x", "d/../../../../y", &deep));
        // Loops are refused, not followed forever.
        let cycle = [("Payload/A.app/b", "a")];
        assert!(!stays("Payload/A.app/a", "b", &cycle));
    }
}

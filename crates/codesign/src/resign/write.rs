//! Writing the re-signed app as an `.ipa`: re-signed Mach-O files as soon
//! as they are signed (when [`super::resign_path`] streams them), then every
//! other entry of the input in order, changed ones replaced, unchanged ones
//! copied in their compressed form; written beside the target and renamed
//! into place.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::archive::{Archive, EntryKind};

use super::sync_behind::SyncBehind;
use super::{ResignError, Resigned};

/// Writes the re-signed archive: every entry of the input in order, changed
/// ones replaced (Mach-O stored, others deflated), unchanged ones copied in
/// their compressed form, new ones appended; written to a temporary file
/// beside `out` and renamed into place.
///
/// # Errors
/// [`ResignError::Write`] on I/O failure (the target is then untouched).
pub fn write_ipa(input: &Path, changes: &Resigned, out: &Path) -> Result<(), ResignError> {
    let mut w = IpaWriter::create(out)?;
    w.copy_zip(input, changes)?;
    w.finish()
}

/// An `.ipa` being written to a temporary file beside its target: removed
/// when dropped unfinished, renamed into place by [`IpaWriter::finish`].
pub(super) struct IpaWriter {
    out: PathBuf,
    tmp: PathBuf,
    zip: Option<zip::ZipWriter<BufWriter<SyncBehind>>>,
    /// Entries already written ([`IpaWriter::put`]).
    written: HashSet<String>,
}

impl IpaWriter {
    /// Starts writing `out` (through a temporary file beside it).
    pub(super) fn create(out: &Path) -> Result<Self, ResignError> {
        let tmp = out.with_extension(format!("tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| werr(out, &e))?;
        Ok(IpaWriter {
            out: out.to_path_buf(),
            tmp,
            zip: Some(zip::ZipWriter::new(BufWriter::with_capacity(
                1 << 20,
                SyncBehind::new(file),
            ))),
            written: HashSet::new(),
        })
    }

    fn zip(&mut self) -> Result<&mut zip::ZipWriter<BufWriter<SyncBehind>>, ResignError> {
        let out = &self.out;
        self.zip
            .as_mut()
            .ok_or_else(|| werr(out, &"the archive is already finished"))
    }

    /// Writes one entry now; the copy that follows leaves it out.
    pub(super) fn put(&mut self, path: &str, bytes: &[u8]) -> Result<(), ResignError> {
        if !self.written.insert(path.to_owned()) {
            return Err(werr(&self.out, &format!("{path} written twice")));
        }
        let out = self.out.clone();
        write_new(self.zip()?, path, bytes).map_err(|e| werr(&out, &e))
    }

    /// Every entry of the zip at `input` not written yet, in order: changed
    /// ones from `changes`, unchanged ones copied compressed; then the new
    /// files `changes` adds.
    fn copy_zip(&mut self, input: &Path, changes: &Resigned) -> Result<(), ResignError> {
        let out = self.out.clone();
        let e = |x: &dyn std::fmt::Display| werr(&out, x);
        let src = File::open(input).map_err(|x| e(&x))?;
        let mut zin = zip::ZipArchive::new(std::io::BufReader::new(src)).map_err(|x| e(&x))?;
        for i in 0..zin.len() {
            // The name from the central directory (no read of the local header).
            let name = String::from_utf8_lossy(zin.by_index_data(i).map_err(|x| e(&x))?.name_raw())
                .into_owned();
            let key = name.trim_end_matches('/').to_owned();
            if self.written.contains(&key) {
                continue;
            }
            if let Some(bytes) = changes.files.get(&key) {
                self.put(&key, bytes)?;
            } else {
                let f = zin.by_index_raw(i).map_err(|x| e(&x))?;
                self.zip()?.raw_copy_file(f).map_err(|x| e(&x))?;
            }
        }
        self.put_new(changes)
    }

    /// Every entry of an unpacked app not written yet, in order (files
    /// deflated, symbolic links kept); then the new files `changes` adds.
    fn copy_folder(&mut self, archive: &Archive, changes: &Resigned) -> Result<(), ResignError> {
        let out = self.out.clone();
        for entry in archive.entries() {
            if self.written.contains(&entry.path) {
                continue;
            }
            match &entry.kind {
                EntryKind::Dir => {}
                EntryKind::Symlink(t) => {
                    self.written.insert(entry.path.clone());
                    self.zip()?
                        .add_symlink(&entry.path, t, zip::write::SimpleFileOptions::default())
                        .map_err(|x| werr(&out, &x))?;
                }
                EntryKind::File => match changes.files.get(&entry.path) {
                    Some(b) => self.put(&entry.path, b)?,
                    None => {
                        let bytes = archive.read(entry, archive.limits().max_read)?;
                        self.put(&entry.path, &bytes)?;
                    }
                },
            }
        }
        self.put_new(changes)
    }

    /// The files `changes` has that are not written yet.
    fn put_new(&mut self, changes: &Resigned) -> Result<(), ResignError> {
        for (path, bytes) in &changes.files {
            if !self.written.contains(path) {
                self.put(path, bytes)?;
            }
        }
        Ok(())
    }

    /// Every entry of `input` (a zip or an unpacked app, read as `archive`)
    /// not written yet, then [`IpaWriter::finish`].
    pub(super) fn complete(
        mut self,
        input: &Path,
        archive: &Archive,
        changes: &Resigned,
    ) -> Result<(), ResignError> {
        if input.is_dir() {
            self.copy_folder(archive, changes)?;
        } else {
            self.copy_zip(input, changes)?;
        }
        self.finish()
    }

    /// Ends the archive, syncs it to disk (most of it already is, synced
    /// in the background as it was written) and renames it into place.
    pub(super) fn finish(mut self) -> Result<(), ResignError> {
        let out = self.out.clone();
        let e = |x: &dyn std::fmt::Display| werr(&out, x);
        let zip = self.zip.take().ok_or_else(|| e(&"finished twice"))?;
        let mut inner = zip.finish().map_err(|x| e(&x))?;
        inner.flush().map_err(|x| e(&x))?;
        let file = inner
            .into_inner()
            .map_err(|x| e(&x))?
            .finish()
            .map_err(|x| e(&x))?;
        file.sync_all().map_err(|x| e(&x))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.out).map_err(|x| e(&x))?;
        // Renamed: nothing for drop to remove.
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for IpaWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.zip = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn werr(out: &Path, e: &dyn std::fmt::Display) -> ResignError {
    ResignError::Write {
        path: out.display().to_string(),
        reason: e.to_string(),
    }
}

fn write_new<W: Write + std::io::Seek>(
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

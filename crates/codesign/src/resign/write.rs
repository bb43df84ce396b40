//! Writing the re-signed app as an `.ipa`: every entry of the input in
//! order, changed ones replaced, unchanged ones copied in their compressed
//! form; written beside the target and renamed into place.

use std::collections::HashMap;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use crate::archive::{Archive, EntryKind};

use super::{ResignError, Resigned};

/// Writes the re-signed archive: every entry of the input in order, changed
/// ones replaced (Mach-O stored, others deflated), unchanged ones copied in
/// their compressed form, new ones appended; written to a temporary file
/// beside `out` and renamed into place.
///
/// # Errors
/// [`ResignError::Write`] on I/O failure (the target is then untouched).
pub fn write_ipa(input: &Path, changes: &Resigned, out: &Path) -> Result<(), ResignError> {
    let werr = |e: &dyn std::fmt::Display| ResignError::Write {
        path: out.display().to_string(),
        reason: e.to_string(),
    };
    let tmp: PathBuf = out.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| -> Result<(), ResignError> {
        let src = std::fs::File::open(input).map_err(|e| werr(&e))?;
        let mut zin = zip::ZipArchive::new(std::io::BufReader::new(src)).map_err(|e| werr(&e))?;
        let file = std::fs::File::create(&tmp).map_err(|e| werr(&e))?;
        let mut w = zip::ZipWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
        let mut written = std::collections::HashSet::new();
        for i in 0..zin.len() {
            // The name from the central directory (no read of the local header).
            let name =
                String::from_utf8_lossy(zin.by_index_data(i).map_err(|e| werr(&e))?.name_raw())
                    .into_owned();
            let key = name.trim_end_matches('/').to_owned();
            if let Some(bytes) = changes.files.get(&key) {
                write_new(&mut w, &key, bytes).map_err(|e| werr(&e))?;
                written.insert(key);
            } else {
                let f = zin.by_index_raw(i).map_err(|e| werr(&e))?;
                w.raw_copy_file(f).map_err(|e| werr(&e))?;
            }
        }
        for (path, bytes) in &changes.files {
            if !written.contains(path) {
                write_new(&mut w, path, bytes).map_err(|e| werr(&e))?;
            }
        }
        let mut inner = w.finish().map_err(|e| werr(&e))?;
        inner.flush().map_err(|e| werr(&e))?;
        let file = inner.into_inner().map_err(|e| werr(&e))?;
        file.sync_all().map_err(|e| werr(&e))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| werr(&e))
}

fn write_new<W: Write + Seek>(
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

pub(super) fn write_to(
    input: &Path,
    archive: &Archive,
    changes: &Resigned,
    out: &Path,
) -> Result<(), ResignError> {
    if input.is_dir() {
        write_folder_ipa(archive, changes, out)
    } else {
        write_ipa(input, changes, out)
    }
}

fn write_folder_ipa(archive: &Archive, changes: &Resigned, out: &Path) -> Result<(), ResignError> {
    let werr = |e: &dyn std::fmt::Display| ResignError::Write {
        path: out.display().to_string(),
        reason: e.to_string(),
    };
    let tmp = out.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| werr(&e))?;
    let mut w = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let mut seen = HashMap::new();
    for e in archive.entries() {
        seen.insert(e.path.clone(), ());
        match &e.kind {
            EntryKind::Dir => {}
            EntryKind::Symlink(t) => {
                w.add_symlink(&e.path, t, zip::write::SimpleFileOptions::default())
                    .map_err(|x| werr(&x))?;
            }
            EntryKind::File => {
                let bytes = match changes.files.get(&e.path) {
                    Some(b) => b.clone(),
                    None => archive.read(e, archive.limits().max_read)?,
                };
                write_new(&mut w, &e.path, &bytes).map_err(|x| werr(&x))?;
            }
        }
    }
    for (p, b) in &changes.files {
        if !seen.contains_key(p) {
            write_new(&mut w, p, b).map_err(|x| werr(&x))?;
        }
    }
    let mut inner = w.finish().map_err(|e| werr(&e))?;
    inner.flush().map_err(|e| werr(&e))?;
    drop(inner);
    std::fs::rename(&tmp, out).map_err(|e| werr(&e))
}

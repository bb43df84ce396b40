//! Rewriting the Mach-O fields a new signature touches: the size in
//! `LC_CODE_SIGNATURE`, the file and VM sizes of `__LINKEDIT` (the last
//! segment, which holds the signature), and a fat file's slice table. The
//! reader ([`super::slices`]) has already checked that the signature lies in
//! `__LINKEDIT` after the load commands; the offsets here are checked again
//! against the load commands' end before any byte is written.

use super::{FAT_MAGIC, FAT_MAGIC_64, Layout, u32_at, u64_at};

/// `linkedit_data_command.datasize`, from the command's start.
const SIGNATURE_DATASIZE: usize = 12;
/// `segment_command_64`: `vmsize`, `filesize`, and the size of the fields.
const SEGMENT64_VMSIZE: usize = 32;
const SEGMENT64_FILESIZE: usize = 48;
const SEGMENT64_FIELDS: usize = 56;
/// `segment_command` (32-bit): `vmsize`, `filesize`, and the size of the fields.
const SEGMENT32_VMSIZE: usize = 28;
const SEGMENT32_FILESIZE: usize = 36;
const SEGMENT32_FIELDS: usize = 40;
/// Page sizes for rounding `vmsize`: arm64 and the 32-bit ARM slices.
const PAGE_64: u64 = 0x4000;
const PAGE_32: u64 = 0x1000;

/// The load-command fields that size one slice's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignatureFields {
    /// Offset of `LC_CODE_SIGNATURE` in the slice.
    command: usize,
    /// Offset of the `__LINKEDIT` segment command.
    linkedit: usize,
    /// `__LINKEDIT`'s file offset.
    linkedit_fileoff: usize,
    /// A 64-bit slice.
    wide: bool,
}

impl SignatureFields {
    /// The fields of a slice, each inside its load commands.
    ///
    /// # Errors
    /// What is missing or out of place, as a sentence.
    pub(crate) fn of(layout: &Layout) -> Result<Self, &'static str> {
        let command = layout
            .code_signature_command
            .ok_or("no LC_CODE_SIGNATURE: sign it with codesign once first")?;
        let (linkedit, linkedit_fileoff) =
            layout.last_segment_command.ok_or("no __LINKEDIT segment")?;
        let fields = if layout.wide {
            SEGMENT64_FIELDS
        } else {
            SEGMENT32_FIELDS
        };
        if command + 16 > layout.commands_end || linkedit + fields > layout.commands_end {
            return Err("a load command is shorter than its fields");
        }
        Ok(SignatureFields {
            command,
            linkedit,
            linkedit_fileoff,
            wide: layout.wide,
        })
    }

    /// Records a signature of `size` bytes at `dataoff` in `code` (the slice
    /// up to its signature): `LC_CODE_SIGNATURE`'s size, and `__LINKEDIT`
    /// grown to end with it (its VM size rounded to pages, never shrunk).
    ///
    /// # Errors
    /// A size the 32-bit fields cannot hold.
    pub(crate) fn set_size(
        &self,
        code: &mut [u8],
        dataoff: usize,
        size: usize,
    ) -> Result<(), &'static str> {
        put32(
            code,
            self.command + SIGNATURE_DATASIZE,
            u32::try_from(size).map_err(|_| "signature too large")?,
        );
        let file_size = (dataoff + size - self.linkedit_fileoff) as u64;
        let seg = self.linkedit;
        if self.wide {
            let vm_size = file_size.div_ceil(PAGE_64) * PAGE_64;
            put64(code, seg + SEGMENT64_FILESIZE, file_size);
            let vm = u64_at(code, seg + SEGMENT64_VMSIZE, false).unwrap_or_default();
            put64(code, seg + SEGMENT64_VMSIZE, vm.max(vm_size));
        } else {
            let vm_size = file_size.div_ceil(PAGE_32) * PAGE_32;
            let fs = u32::try_from(file_size).map_err(|_| "__LINKEDIT too large")?;
            put32(code, seg + SEGMENT32_FILESIZE, fs);
            let vm = u32_at(code, seg + SEGMENT32_VMSIZE, false).unwrap_or_default();
            put32(
                code,
                seg + SEGMENT32_VMSIZE,
                vm.max(u32::try_from(vm_size).unwrap_or(u32::MAX)),
            );
        }
        Ok(())
    }
}

/// `fat_arch` and `fat_arch_64` sizes, and the offset of their fields.
const FAT_ARCH: usize = 20;
const FAT_ARCH_64: usize = 32;
const FAT_HEADER: usize = 8;

/// Whether `file` starts with a fat header, and whether it is the 64-bit one.
pub(crate) fn fat_kind(file: &[u8]) -> Option<bool> {
    match u32_at(file, 0, true)? {
        FAT_MAGIC => Some(false),
        FAT_MAGIC_64 => Some(true),
        _ => None,
    }
}

/// Where each slice of a fat file goes when slice `i`, now at
/// `slices[i].0`, becomes `slices[i].1` bytes long: in the order of the
/// slice table, each at its table alignment (at most 2^16), never before
/// its old offset, so a file can be rewritten in place from its last slice
/// to its first. Returns the new offsets.
///
/// # Errors
/// A slice table shorter than the slices, or a table field out of range.
pub(crate) fn fat_offsets(
    file: &[u8],
    wide: bool,
    slices: &[(usize, usize)],
) -> Result<Vec<usize>, &'static str> {
    let entry = if wide { FAT_ARCH_64 } else { FAT_ARCH };
    let table_end = FAT_HEADER + entry * slices.len();
    if file.len() < table_end {
        return Err("the fat header is shorter than its slice table");
    }
    let mut offsets = Vec::with_capacity(slices.len());
    let mut end = table_end;
    for (i, &(old, len)) in slices.iter().enumerate() {
        let at = FAT_HEADER + i * entry;
        let align_at = if wide { at + 24 } else { at + 16 };
        let align = u32_at(file, align_at, true).ok_or("fat table")?.min(16);
        let a = 1usize << align;
        let off = end.max(old).div_ceil(a) * a;
        offsets.push(off);
        end = off.checked_add(len).ok_or("fat file too large")?;
    }
    Ok(offsets)
}

/// Writes each slice's offset and size into the fat table, and zeroes the
/// bytes between the table and the first slice and between slices.
///
/// # Errors
/// An offset or size beyond a 32-bit table's range.
pub(crate) fn set_fat_table(
    file: &mut [u8],
    wide: bool,
    slices: &[(usize, usize)],
) -> Result<(), &'static str> {
    let entry = if wide { FAT_ARCH_64 } else { FAT_ARCH };
    let mut end = FAT_HEADER + entry * slices.len();
    for (i, &(off, len)) in slices.iter().enumerate() {
        let at = FAT_HEADER + i * entry;
        // fat_arch: cputype, cpusubtype, offset, size, align (32-bit fields);
        // fat_arch_64: cputype, cpusubtype, offset, size (64-bit), align.
        if wide {
            file[at + 8..at + 16].copy_from_slice(&(off as u64).to_be_bytes());
            file[at + 16..at + 24].copy_from_slice(&(len as u64).to_be_bytes());
        } else {
            let o = u32::try_from(off).map_err(|_| "fat file too large")?;
            let l = u32::try_from(len).map_err(|_| "slice too large")?;
            file[at + 8..at + 12].copy_from_slice(&o.to_be_bytes());
            file[at + 12..at + 16].copy_from_slice(&l.to_be_bytes());
        }
        file.get_mut(end..off).ok_or("fat table")?.fill(0);
        end = off + len;
    }
    Ok(())
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

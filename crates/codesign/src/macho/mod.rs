//! Mach-O files, thin or fat (both fat forms): every slice, its
//! architecture, and its `LC_CODE_SIGNATURE`, which must lie inside
//! `__LINKEDIT`, the last segment. Every read is bounds-checked.

use crate::error::{CodesignError, Where};

#[cfg(feature = "sign")]
pub(crate) mod write;

const MH_MAGIC: u32 = 0xfeed_face;
const MH_MAGIC_64: u32 = 0xfeed_facf;
const FAT_MAGIC: u32 = 0xcafe_babe;
const FAT_MAGIC_64: u32 = 0xcafe_babf;
const LC_SEGMENT: u32 = 0x1;
const LC_SEGMENT_64: u32 = 0x19;
const LC_CODE_SIGNATURE: u32 = 0x1d;
/// More slices than any real fat file has; bounds the work on hostile input.
const MAX_SLICES: u32 = 32;
/// More load commands than any real binary has.
const MAX_LOAD_COMMANDS: u32 = 4096;

/// A Mach-O file's bytes as the parser reads them: by offset and length.
/// A file in memory holds them all; a file read in part
/// ([`crate::signature::stream`]) holds what was fetched and notes the
/// first part it was asked for and did not hold.
pub(crate) trait Bytes {
    /// The file's length.
    fn size(&self) -> usize;
    /// `len` bytes at `at` (within the file), if held.
    fn range(&self, at: usize, len: usize) -> Option<&[u8]>;
}

impl Bytes for &[u8] {
    fn size(&self) -> usize {
        self.len()
    }
    fn range(&self, at: usize, len: usize) -> Option<&[u8]> {
        self.get(at..at.checked_add(len)?)
    }
}

/// A window of a file (a slice, or the whole file), bounds-checked.
#[derive(Clone, Copy)]
struct View<'a> {
    bytes: &'a dyn Bytes,
    base: usize,
    len: usize,
}

impl<'a> View<'a> {
    fn range(&self, at: usize, len: usize) -> Option<&'a [u8]> {
        if at.checked_add(len)? > self.len {
            return None;
        }
        self.bytes.range(self.base.checked_add(at)?, len)
    }

    fn u32(&self, at: usize, big: bool) -> Option<u32> {
        u32_at(self.range(at, 4)?, 0, big)
    }

    fn u64(&self, at: usize, big: bool) -> Option<u64> {
        u64_at(self.range(at, 8)?, 0, big)
    }
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

fn u64_at(b: &[u8], at: usize, big: bool) -> Option<u64> {
    let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(if big {
        u64::from_be_bytes(bytes)
    } else {
        u64::from_le_bytes(bytes)
    })
}

fn usize_of(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

/// One architecture's Mach-O image inside a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice<'a> {
    /// The architecture (`arm64`, `armv7`, ...).
    pub arch: &'static str,
    /// Offset of the slice in the file.
    pub offset: usize,
    /// The slice's bytes.
    pub data: &'a [u8],
    /// The embedded signature (the SuperBlob), if the slice has one.
    pub signature: Option<&'a [u8]>,
    /// Offset of the signature inside the slice: the code limit of a normal binary.
    pub signature_offset: usize,
    /// The embedded Info.plist (`__TEXT,__info_plist`): what special slot 1
    /// seals for a Mach-O that is not a bundle's main executable.
    pub info_plist: Option<&'a [u8]>,
    /// Where the load commands a signer rewrites are.
    pub layout: Layout,
}

/// The parts of a slice's header a signer needs, as read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// A 64-bit Mach-O.
    pub wide: bool,
    /// The file type (2: an executable).
    pub filetype: u32,
    /// Where the load commands end.
    pub commands_end: usize,
    /// Offset of the `LC_CODE_SIGNATURE` command.
    pub code_signature_command: Option<usize>,
    /// Offset of the last segment command (`__LINKEDIT` when signed) and
    /// that segment's file offset.
    pub last_segment_command: Option<(usize, usize)>,
    /// `__TEXT`'s file offset and size: the executable segment.
    pub text: Option<(u64, u64)>,
}

/// The architecture name of a CPU type and subtype.
pub fn arch_name(cputype: u32, cpusubtype: u32) -> &'static str {
    match (cputype, cpusubtype & 0x00ff_ffff) {
        (12, 6) => "armv6",
        (12, 9) => "armv7",
        (12, 10) => "armv7f",
        (12, 11) => "armv7s",
        (12, 12) => "armv7k",
        (12, _) => "arm",
        (0x0100_000c, 2) => "arm64e",
        (0x0100_000c, _) => "arm64",
        (0x0200_000c, _) => "arm64_32",
        (7, _) => "i386",
        (0x0100_0007, _) => "x86_64",
        _ => "unknown",
    }
}

/// Splits a Mach-O file into its slices.
///
/// # Errors
/// [`CodesignError::Macho`] naming the slice and what is malformed.
pub fn slices<'a>(file: &'a [u8]) -> Result<Vec<Slice<'a>>, CodesignError> {
    let parsed = parse(&file)?;
    let part = |r: Option<(usize, usize)>, data: &'a [u8]| {
        r.and_then(|(at, len)| data.get(at..at.checked_add(len)?))
    };
    Ok(parsed
        .into_iter()
        .filter_map(|p| {
            let data = file.get(p.offset..p.offset.checked_add(p.len)?)?;
            Some(Slice {
                arch: p.arch,
                offset: p.offset,
                data,
                signature: part(p.signature, data),
                signature_offset: p.signature_offset,
                info_plist: part(p.info_plist, data),
                layout: p.layout,
            })
        })
        .collect())
}

/// A slice as parsed: where its parts are, not its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// As [`Slice::arch`].
    pub arch: &'static str,
    /// Offset of the slice in the file.
    pub offset: usize,
    /// Length of the slice.
    pub len: usize,
    /// Offset and length of the signature inside the slice.
    pub signature: Option<(usize, usize)>,
    /// As [`Slice::signature_offset`].
    pub signature_offset: usize,
    /// Offset and length of `__TEXT,__info_plist` inside the slice.
    pub info_plist: Option<(usize, usize)>,
    /// As [`Slice::layout`].
    pub layout: Layout,
}

impl Parsed {
    /// `len` bytes at `at` inside the slice, if `file` holds them.
    pub(crate) fn part<'a>(
        &self,
        file: &'a dyn Bytes,
        r: Option<(usize, usize)>,
    ) -> Option<&'a [u8]> {
        let (at, len) = r?;
        View {
            bytes: file,
            base: self.offset,
            len: self.len,
        }
        .range(at, len)
    }
}

/// Splits a file, held whole or in part, into its slices: the same checks
/// whatever holds the bytes (a part not held reads as truncated, and a
/// caller holding only parts fetches what [`Bytes`] noted and parses again).
pub(crate) fn parse(file: &dyn Bytes) -> Result<Vec<Parsed>, CodesignError> {
    let bad = |reason: &'static str| CodesignError::Macho {
        at: Where::default(),
        reason,
    };
    let whole = View {
        bytes: file,
        base: 0,
        len: file.size(),
    };
    let magic_be = whole
        .u32(0, true)
        .ok_or(bad("shorter than a Mach-O header"))?;
    if magic_be == FAT_MAGIC || magic_be == FAT_MAGIC_64 {
        let wide = magic_be == FAT_MAGIC_64;
        let n = whole.u32(4, true).ok_or(bad("truncated fat header"))?;
        if n == 0 || n > MAX_SLICES {
            return Err(bad("implausible number of fat slices"));
        }
        let entry = if wide { 32 } else { 20 };
        let mut out = Vec::new();
        for i in 0..n as usize {
            let at = 8 + i * entry;
            let cputype = whole.u32(at, true).ok_or(bad("truncated fat arch"))?;
            let cpusubtype = whole.u32(at + 4, true).ok_or(bad("truncated fat arch"))?;
            let (offset, size) = if wide {
                (whole.u64(at + 8, true), whole.u64(at + 16, true))
            } else {
                (
                    whole.u32(at + 8, true).map(u64::from),
                    whole.u32(at + 12, true).map(u64::from),
                )
            };
            let (offset, size) = match (offset.and_then(usize_of), size.and_then(usize_of)) {
                (Some(o), Some(s)) => (o, s),
                _ => return Err(bad("truncated fat arch")),
            };
            if offset.checked_add(size).is_none_or(|end| end > whole.len) {
                return Err(bad("fat slice outside the file"));
            }
            let data = View {
                bytes: file,
                base: offset,
                len: size,
            };
            let mut slice = thin(data, offset)?;
            slice.arch = arch_name(cputype, cpusubtype);
            out.push(slice);
        }
        return Ok(out);
    }
    Ok(vec![thin(whole, 0)?])
}

fn thin(data: View<'_>, offset: usize) -> Result<Parsed, CodesignError> {
    let at = Where {
        slice: Some(offset),
        ..Where::default()
    };
    let bad = |reason: &'static str| CodesignError::Macho {
        at: at.clone(),
        reason,
    };
    let magic = data
        .u32(0, false)
        .ok_or(bad("shorter than a Mach-O header"))?;
    let wide = match magic {
        MH_MAGIC => false,
        MH_MAGIC_64 => true,
        _ => return Err(bad("not a Mach-O (bad magic)")),
    };
    let cputype = data.u32(4, false).ok_or(bad("truncated header"))?;
    let cpusubtype = data.u32(8, false).ok_or(bad("truncated header"))?;
    let ncmds = data.u32(16, false).ok_or(bad("truncated header"))?;
    if ncmds > MAX_LOAD_COMMANDS {
        return Err(bad("implausible number of load commands"));
    }
    let mut cursor = if wide { 32 } else { 28 };
    let mut last_segment: Option<(&[u8], usize, usize)> = None; // (name, fileoff, filesize)
    let mut code_signature = None;
    let mut layout = Layout {
        wide,
        filetype: data.u32(12, false).ok_or(bad("truncated header"))?,
        ..Layout::default()
    };
    let mut info_plist = None;
    for _ in 0..ncmds {
        let cmd = data
            .u32(cursor, false)
            .ok_or(bad("truncated load command"))?;
        let size = data
            .u32(cursor + 4, false)
            .ok_or(bad("truncated load command"))? as usize;
        if size < 8 || cursor.checked_add(size).is_none_or(|end| end > data.len) {
            return Err(bad("load command outside the file"));
        }
        match cmd {
            LC_SEGMENT_64 => {
                let name = data.range(cursor + 8, 16).ok_or(bad("truncated segment"))?;
                let fileoff = data
                    .u64(cursor + 40, false)
                    .and_then(usize_of)
                    .ok_or(bad("truncated segment"))?;
                let filesize = data
                    .u64(cursor + 48, false)
                    .and_then(usize_of)
                    .ok_or(bad("truncated segment"))?;
                last_segment = Some((name, fileoff, filesize));
                layout.segment(name, cursor, fileoff, filesize);
                info_plist = info_plist.or(find_info_plist(data, cursor, size, true));
            }
            LC_SEGMENT => {
                let name = data.range(cursor + 8, 16).ok_or(bad("truncated segment"))?;
                let fileoff = data
                    .u32(cursor + 32, false)
                    .ok_or(bad("truncated segment"))? as usize;
                let filesize = data
                    .u32(cursor + 36, false)
                    .ok_or(bad("truncated segment"))? as usize;
                last_segment = Some((name, fileoff, filesize));
                layout.segment(name, cursor, fileoff, filesize);
                info_plist = info_plist.or(find_info_plist(data, cursor, size, false));
            }
            LC_CODE_SIGNATURE => {
                let off = data
                    .u32(cursor + 8, false)
                    .ok_or(bad("truncated LC_CODE_SIGNATURE"))? as usize;
                let len = data
                    .u32(cursor + 12, false)
                    .ok_or(bad("truncated LC_CODE_SIGNATURE"))? as usize;
                code_signature = Some((off, len));
                layout.code_signature_command = Some(cursor);
            }
            _ => {}
        }
        cursor += size;
    }
    layout.commands_end = cursor;
    let (signature, signature_offset) = match code_signature {
        None => (None, data.len),
        Some((off, len)) => {
            let (name, segoff, segsize) = last_segment.ok_or(bad("signature without segments"))?;
            let trimmed: &[u8] = name.split(|b| *b == 0).next().unwrap_or_default();
            if trimmed != b"__LINKEDIT" {
                return Err(bad("the last segment is not __LINKEDIT"));
            }
            let end = off
                .checked_add(len)
                .ok_or(bad("signature outside the file"))?;
            if off < segoff || end > segoff.saturating_add(segsize) {
                return Err(bad("the signature is not inside __LINKEDIT"));
            }
            if off < cursor {
                return Err(bad("the signature overlaps the load commands"));
            }
            data.range(off, len)
                .ok_or(bad("signature outside the file"))?;
            (Some((off, len)), off)
        }
    };
    Ok(Parsed {
        arch: arch_name(cputype, cpusubtype),
        offset,
        len: data.len,
        signature,
        signature_offset,
        info_plist,
        layout,
    })
}

impl Layout {
    fn segment(&mut self, name: &[u8], command: usize, fileoff: usize, filesize: usize) {
        self.last_segment_command = Some((command, fileoff));
        if name.split(|b| *b == 0).next() == Some(b"__TEXT") {
            self.text = Some((fileoff as u64, filesize as u64));
        }
    }
}

/// Where the `__TEXT,__info_plist` section of a segment command is, if it
/// has one and it lies inside the file.
fn find_info_plist(
    data: View<'_>,
    cmd: usize,
    cmd_size: usize,
    wide: bool,
) -> Option<(usize, usize)> {
    let (nsects_at, first, sect_size) = if wide { (64, 72, 80) } else { (48, 56, 68) };
    let nsects = data.u32(cmd + nsects_at, false)? as usize;
    for i in 0..nsects {
        let at = cmd + first + i * sect_size;
        if at + sect_size > cmd + cmd_size {
            return None;
        }
        let name = data.range(at, 16)?;
        let segname = data.range(at + 16, 16)?;
        if name.split(|b| *b == 0).next()? != b"__info_plist"
            || segname.split(|b| *b == 0).next()? != b"__TEXT"
        {
            continue;
        }
        let (size, offset) = if wide {
            (
                usize_of(data.u64(at + 40, false)?)?,
                data.u32(at + 48, false)? as usize,
            )
        } else {
            (
                data.u32(at + 36, false)? as usize,
                data.u32(at + 40, false)? as usize,
            )
        };
        data.range(offset, size)?;
        return Some((offset, size));
    }
    None
}

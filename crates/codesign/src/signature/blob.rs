//! The embedded signature: a big-endian SuperBlob with strictly checked
//! bounds, its CodeDirectories (slot 0 and alternates from 0x1000), and the
//! page hashes under each.

use rayon::prelude::*;
use sha1::Digest as _;

use crate::error::{CodesignError, Where};

/// SuperBlob magic.
pub const SUPERBLOB: u32 = 0xfade_0cc0;
/// CodeDirectory magic.
pub const CODE_DIRECTORY: u32 = 0xfade_0c02;
/// Slot of the primary CodeDirectory.
pub const SLOT_CODE_DIRECTORY: u32 = 0;
/// First alternate CodeDirectory slot.
pub const SLOT_ALTERNATE: u32 = 0x1000;
/// CMS signature slot.
pub const SLOT_SIGNATURE: u32 = 0x10000;
/// Pages hashed per parallel task.
const PAGES_PER_TASK: usize = 64;
/// More blobs than a real signature has.
const MAX_BLOBS: u32 = 64;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A hash algorithm of a CodeDirectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HashType {
    /// 1: SHA-1 (20 bytes).
    Sha1,
    /// 2: SHA-256 (32 bytes).
    Sha256,
    /// 3: SHA-256 truncated to 20 bytes.
    Sha256Truncated,
    /// 4: SHA-384 (48 bytes).
    Sha384,
}

impl HashType {
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Self::Sha1,
            2 => Self::Sha256,
            3 => Self::Sha256Truncated,
            4 => Self::Sha384,
            _ => return None,
        })
    }

    /// The short name used in reports (`sha1`, `sha256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha256Truncated => "sha256-20",
            Self::Sha384 => "sha384",
        }
    }

    /// The full digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 | Self::Sha256Truncated => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
        }
    }

    /// The digest of `data` as a CodeDirectory stores it (truncated to
    /// [`HashType::size`]).
    pub(crate) fn stored(self, data: &[u8]) -> Vec<u8> {
        let mut d = self.digest(data);
        d.truncate(self.size());
        d
    }

    /// Bytes per stored hash.
    pub(crate) fn size(self) -> usize {
        match self {
            Self::Sha1 | Self::Sha256Truncated => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }
}

/// The blobs of a SuperBlob, by slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperBlob<'a> {
    /// (slot type, blob bytes including its 8-byte header), in index order.
    pub blobs: Vec<(u32, &'a [u8])>,
}

impl<'a> SuperBlob<'a> {
    /// Parses a SuperBlob: every index entry must point at a blob inside it,
    /// blobs may not overlap and slots may not repeat.
    ///
    /// # Errors
    /// [`CodesignError::Signature`] saying what is wrong.
    pub fn parse(sig: &'a [u8], at: &Where) -> Result<Self, CodesignError> {
        let bad = |reason: &'static str| CodesignError::Signature {
            at: at.clone(),
            reason,
        };
        if be32(sig, 0) != Some(SUPERBLOB) {
            return Err(bad("not a SuperBlob"));
        }
        let length = be32(sig, 4).ok_or(bad("truncated SuperBlob"))? as usize;
        let count = be32(sig, 8).ok_or(bad("truncated SuperBlob"))?;
        if length > sig.len() || length < 12 {
            return Err(bad("SuperBlob length outside the signature"));
        }
        if count > MAX_BLOBS {
            return Err(bad("implausible number of blobs"));
        }
        let sig = &sig[..length];
        let mut blobs: Vec<(u32, &[u8])> = Vec::new();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for i in 0..count as usize {
            let slot = be32(sig, 12 + 8 * i).ok_or(bad("truncated blob index"))?;
            let off = be32(sig, 16 + 8 * i).ok_or(bad("truncated blob index"))? as usize;
            let blob_len = be32(sig, off + 4).ok_or(bad("blob outside the SuperBlob"))? as usize;
            let end = off
                .checked_add(blob_len)
                .filter(|e| *e <= sig.len())
                .ok_or(bad("blob outside the SuperBlob"))?;
            if blob_len < 8 || off < 12 + 8 * count as usize {
                return Err(bad("blob overlaps the index"));
            }
            if blobs.iter().any(|(s, _)| *s == slot) {
                return Err(bad("duplicate slot in the SuperBlob"));
            }
            if ranges.iter().any(|(a, b)| off < *b && *a < end) {
                return Err(bad("overlapping blobs"));
            }
            ranges.push((off, end));
            blobs.push((slot, &sig[off..end]));
        }
        Ok(SuperBlob { blobs })
    }

    /// The blob in a slot.
    pub fn slot(&self, slot: u32) -> Option<&'a [u8]> {
        self.blobs.iter().find(|(s, _)| *s == slot).map(|(_, b)| *b)
    }

    /// The CodeDirectories: slot 0, then 0x1000, 0x1001, ... until the first gap.
    pub fn code_directories(&self) -> Vec<(u32, &'a [u8])> {
        let mut out: Vec<(u32, &[u8])> = self
            .slot(SLOT_CODE_DIRECTORY)
            .map(|b| (SLOT_CODE_DIRECTORY, b))
            .into_iter()
            .collect();
        let mut slot = SLOT_ALTERNATE;
        while let Some(b) = self.slot(slot) {
            out.push((slot, b));
            slot += 1;
        }
        out
    }
}

/// The outcome of a special-slot check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SpecialSlot {
    /// The digest matches the component.
    Ok,
    /// The digest does not match the component.
    Mismatch,
    /// A non-zero digest for a component that is not there.
    MissingComponent,
    /// No digest recorded (out of range or all zero).
    Absent,
}

/// Special slot of Info.plist.
pub const SLOT_INFO_PLIST: u32 = 1;
/// Special slot of the requirements blob.
pub const SLOT_REQUIREMENTS: u32 = 2;
/// Special slot of `_CodeSignature/CodeResources`.
pub const SLOT_CODE_RESOURCES: u32 = 3;
/// Special slot of the entitlements blob.
pub const SLOT_ENTITLEMENTS: u32 = 5;
/// Special slot of the DER entitlements blob.
pub const SLOT_DER_ENTITLEMENTS: u32 = 7;

/// A parsed CodeDirectory (versions up to 0x20500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDirectory<'a> {
    /// The blob, as signed.
    pub raw: &'a [u8],
    /// Version.
    pub version: u32,
    /// Flags.
    pub flags: u32,
    /// Hash algorithm.
    pub hash_type: HashType,
    /// Bytes per stored hash.
    pub hash_size: usize,
    /// log2 of the page size (0: one page).
    pub page_size_log2: u8,
    /// Special slots before the code slots.
    pub special_slots: u32,
    /// Code pages.
    pub code_slots: u32,
    /// Bytes covered by code pages (codeLimit64 when set).
    pub code_limit: u64,
    /// Offset of code slot 0's hash.
    pub hash_offset: usize,
    /// The identifier (usually the bundle id).
    pub identifier: String,
    /// The team identifier (version ≥ 0x20200).
    pub team_id: Option<String>,
    /// Executable segment base, limit, flags (version ≥ 0x20400).
    pub exec_segment: Option<(u64, u64, u64)>,
}

fn c_string(b: &[u8], at: usize) -> Option<String> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|c| *c == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

impl<'a> CodeDirectory<'a> {
    /// Parses a CodeDirectory blob with strict bounds.
    ///
    /// # Errors
    /// [`CodesignError::Signature`] saying what is wrong.
    pub fn parse(raw: &'a [u8], at: &Where) -> Result<Self, CodesignError> {
        let bad = |reason: &'static str| CodesignError::Signature {
            at: at.clone(),
            reason,
        };
        if be32(raw, 0) != Some(CODE_DIRECTORY) {
            return Err(bad("not a CodeDirectory"));
        }
        let length = be32(raw, 4).ok_or(bad("truncated CodeDirectory"))? as usize;
        if length != raw.len() {
            return Err(bad("CodeDirectory length disagrees with its blob"));
        }
        let field = |o: usize| be32(raw, o).ok_or(bad("truncated CodeDirectory"));
        let version = field(8)?;
        let flags = field(12)?;
        let hash_offset = field(16)? as usize;
        let ident_offset = field(20)? as usize;
        let special_slots = field(24)?;
        let code_slots = field(28)?;
        let code_limit32 = field(32)?;
        let hash_size = usize::from(*raw.get(36).ok_or(bad("truncated CodeDirectory"))?);
        let hash_type = HashType::from_code(*raw.get(37).ok_or(bad("truncated CodeDirectory"))?)
            .ok_or(bad("unknown hash type"))?;
        let page_size_log2 = *raw.get(39).ok_or(bad("truncated CodeDirectory"))?;
        if hash_size != hash_type.size() {
            return Err(bad("hash size does not match the hash type"));
        }
        if page_size_log2 > 30 {
            return Err(bad("implausible page size"));
        }
        let first = hash_offset
            .checked_sub(special_slots as usize * hash_size)
            .ok_or(bad("special slots before the CodeDirectory"))?;
        let end = hash_offset
            .checked_add(code_slots as usize * hash_size)
            .filter(|e| *e <= raw.len() && first >= 44)
            .ok_or(bad("hash slots outside the CodeDirectory"))?;
        let _ = end;
        let identifier =
            c_string(raw, ident_offset).ok_or(bad("identifier outside the CodeDirectory"))?;
        let team_id = if version >= 0x20200 {
            match field(48)? as usize {
                0 => None,
                off => Some(c_string(raw, off).ok_or(bad("team id outside the CodeDirectory"))?),
            }
        } else {
            None
        };
        let code_limit = match (version >= 0x20300).then(|| be64(raw, 56)).flatten() {
            Some(v) if v != 0 => v,
            _ => u64::from(code_limit32),
        };
        let exec_segment = if version >= 0x20400 {
            Some((
                be64(raw, 64).ok_or(bad("truncated CodeDirectory"))?,
                be64(raw, 72).ok_or(bad("truncated CodeDirectory"))?,
                be64(raw, 80).ok_or(bad("truncated CodeDirectory"))?,
            ))
        } else {
            None
        };
        Ok(CodeDirectory {
            raw,
            version,
            flags,
            hash_type,
            hash_size,
            page_size_log2,
            special_slots,
            code_slots,
            code_limit,
            hash_offset,
            identifier,
            team_id,
            exec_segment,
        })
    }

    /// The stored hash of code page `i`.
    pub fn page_hash(&self, i: u32) -> Option<&'a [u8]> {
        let at = self.hash_offset + i as usize * self.hash_size;
        self.raw.get(at..at + self.hash_size)
    }

    /// The stored hash of special slot `n` (1 Info.plist, 2 requirements,
    /// 3 CodeResources, 5 entitlements, 7 DER entitlements), if in range.
    pub fn special_hash(&self, n: u32) -> Option<&'a [u8]> {
        if n == 0 || n > self.special_slots {
            return None;
        }
        let at = self.hash_offset.checked_sub(n as usize * self.hash_size)?;
        self.raw.get(at..at + self.hash_size)
    }

    /// Checks special slot `n` against the component's bytes (`None` when
    /// the component is missing). An all-zero stored digest means absent.
    pub fn check_special(&self, n: u32, component: Option<&[u8]>) -> SpecialSlot {
        let Some(stored) = self.special_hash(n) else {
            return SpecialSlot::Absent;
        };
        if stored.iter().all(|b| *b == 0) {
            return SpecialSlot::Absent;
        }
        let Some(bytes) = component else {
            return SpecialSlot::MissingComponent;
        };
        if self.hash_type.stored(bytes) == stored {
            SpecialSlot::Ok
        } else {
            SpecialSlot::Mismatch
        }
    }

    /// The cdhash: the digest of the CodeDirectory, truncated to 20 bytes.
    pub fn cdhash(&self) -> Vec<u8> {
        let mut d = self.hash_type.digest(self.raw);
        d.truncate(20);
        d
    }

    /// The code limit and the page size, checked against a slice of
    /// `slice_len` bytes: the limit inside the slice, one code slot per page.
    pub(crate) fn page_plan(&self, slice_len: usize) -> Result<(usize, usize), &'static str> {
        let limit = usize::try_from(self.code_limit)
            .ok()
            .filter(|l| *l <= slice_len)
            .ok_or("code limit beyond the slice")?;
        let page = if self.page_size_log2 == 0 {
            limit.max(1)
        } else {
            1usize << self.page_size_log2
        };
        if limit.div_ceil(page) != self.code_slots as usize {
            return Err("the number of code slots does not cover the code limit");
        }
        Ok((limit, page))
    }

    /// Whether code page `i`'s bytes match its stored hash.
    pub(crate) fn page_matches(&self, i: usize, bytes: &[u8]) -> bool {
        let d = self.hash_type.stored(bytes);
        u32::try_from(i).is_ok_and(|i| Some(d.as_slice()) == self.page_hash(i))
    }

    /// Checks every code page of `slice` against its stored hash; returns the
    /// numbers of the pages that do not match.
    ///
    /// # Errors
    /// [`CodesignError::Signature`] when the code limit or the page count
    /// does not fit the slice.
    pub fn check_pages(&self, slice: &[u8], at: &Where) -> Result<Vec<u32>, CodesignError> {
        let (limit, page) =
            self.page_plan(slice.len())
                .map_err(|reason| CodesignError::Signature {
                    at: at.clone(),
                    reason,
                })?;
        // Pages are hashed in parallel, a run of them per task.
        let code = &slice[..limit];
        let count = self.code_slots as usize;
        let bad = (0..count.div_ceil(PAGES_PER_TASK))
            .into_par_iter()
            .flat_map_iter(|t| {
                let first = t * PAGES_PER_TASK;
                (first..(first + PAGES_PER_TASK).min(count)).filter_map(move |i| {
                    let start = i * page;
                    let ok = self.page_matches(i, &code[start..(start + page).min(limit)]);
                    u32::try_from(i).ok().filter(|_| !ok)
                })
            })
            .collect();
        Ok(bad)
    }
}

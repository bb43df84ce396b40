//! Checking an executable stored as is (a stored zip entry of an archive in
//! a file or in memory, a folder's file) without holding all of it: its headers, signatures and embedded
//! Info.plist are fetched by offset and parsed exactly as a file in memory
//! is (a part the parser asks for and is not held is fetched, and the parse
//! runs again), then every byte is read once, a run at a time and runs in
//! parallel, into a buffer each thread reuses: each run's code pages are
//! hashed with every CodeDirectory of their slice while in cache, and the
//! entry's CRC-32 is put together from the runs.
//!
//! Whatever this path does not do the way the in-memory check does (pages
//! larger than a run, slices whose code overlaps, too many fetches) and any
//! read error or CRC mismatch gives `None`: the caller then reads the file
//! whole and checks it as before, so the findings are the same either way.
//! Memory stays at the held parts plus one run a thread, instead of the
//! whole executable in fresh memory.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use rayon::prelude::*;

use crate::archive::Direct;
use crate::error::Where;
use crate::macho::{Bytes, Parsed, parse};
use crate::signature::blob::{CodeDirectory, SuperBlob};

/// Bytes read and hashed per task.
const RUN: usize = 256 << 10;
/// The least fetched at once (headers and load commands in one read).
const FETCH: usize = 64 << 10;
/// Largest single part fetched (a signature, an embedded Info.plist).
const MAX_PART: usize = 64 << 20;
/// Most bytes held in parts.
const MAX_HELD: usize = 128 << 20;
/// Most fetch-and-parse rounds (a few per slice).
const MAX_ROUNDS: usize = 8 + 4 * 32;

/// A file held in parts: what was fetched, and the first part a reader
/// asked for and did not find.
#[derive(Debug)]
pub(crate) struct Partial {
    size: usize,
    parts: Vec<(usize, Vec<u8>)>,
    missed: Cell<Option<(usize, usize)>>,
}

impl Bytes for Partial {
    fn size(&self) -> usize {
        self.size
    }

    fn range(&self, at: usize, len: usize) -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        let found = self.parts.iter().find_map(|(start, bytes)| {
            let from = at.checked_sub(*start)?;
            bytes.get(from..from.checked_add(len)?)
        });
        if found.is_none() && end <= self.size && self.missed.get().is_none() {
            self.missed.set(Some((at, len)));
        }
        found
    }
}

/// Why the pages of one CodeDirectory could not be checked, or the numbers
/// of those that do not match.
pub(crate) type PageResult = Result<Vec<u32>, &'static str>;

/// An executable checked by [`stream`]: the parts the checks read, and the
/// page result of each CodeDirectory by (slice, position in its SuperBlob).
#[derive(Debug)]
pub(crate) struct Streamed {
    pub(crate) held: Partial,
    pub(crate) pages: HashMap<(usize, usize), PageResult>,
}

/// One CodeDirectory whose pages are checked.
struct Job<'a> {
    slice: usize,
    position: usize,
    cd: CodeDirectory<'a>,
    limit: usize,
    page: usize,
}

/// One run of the entry: its offset, length and slice (none: only its
/// CRC-32 is needed).
struct Run {
    at: usize,
    len: usize,
    slice: Option<(usize, usize)>,
}

std::thread_local! {
    /// Each thread's run buffer, reused from run to run.
    static RUN_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A run's CRC-32 and its mismatched pages: (job, page number).
type Checked = (crc32fast::Hasher, Vec<(usize, u32)>);

/// Reads one run into this thread's buffer; its CRC-32, and the pages of
/// its slice that do not match, for every job of that slice.
fn check_run(d: &Direct, jobs: &[Job<'_>], run: &Run) -> Option<Checked> {
    RUN_BUFFER.with(|cell| {
        let mut fresh = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let buf = match &mut borrowed {
            Ok(b) => &mut **b,
            Err(_) => &mut fresh,
        };
        if buf.len() < RUN {
            buf.resize(RUN, 0);
        }
        let bytes = &mut buf[..run.len];
        d.read_at(run.at as u64, bytes).ok()?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(bytes);
        let mut bad = Vec::new();
        if let Some((slice, base)) = run.slice {
            let from = run.at - base;
            for (j, job) in jobs.iter().enumerate().filter(|(_, j)| j.slice == slice) {
                let mut start = from;
                while start < job.limit.min(from + run.len) {
                    let end = (start + job.page).min(job.limit);
                    let i = start / job.page;
                    if !job.cd.page_matches(i, &bytes[start - from..end - from]) {
                        bad.push((j, u32::try_from(i).ok()?));
                    }
                    start += job.page;
                }
            }
        }
        Some((crc, bad))
    })
}

/// Fetches `len` bytes at `at` into `held`, within the bounds above.
fn fetch(d: &Direct, held: &mut Partial, total: &mut usize, at: usize, len: usize) -> Option<()> {
    let len = len.max(FETCH).min(held.size.checked_sub(at)?);
    *total = total.checked_add(len).filter(|t| *t <= MAX_HELD)?;
    let mut bytes = vec![0u8; len];
    d.read_at(at as u64, &mut bytes).ok()?;
    held.parts.push((at, bytes));
    Some(())
}

/// Checks the executable `d` by parts; `None` when it must be read whole.
pub(crate) fn stream(d: &Direct) -> Option<Streamed> {
    let size = usize::try_from(d.size).ok()?;
    let mut held = Partial {
        size,
        parts: Vec::new(),
        missed: Cell::new(None),
    };
    let mut total = 0;
    if size > 0 {
        fetch(d, &mut held, &mut total, 0, FETCH)?;
    }
    let mut rounds = 0;
    // Parse until the parser asks for nothing it does not hold; the last
    // parse is the one every later check sees.
    let slices = loop {
        let parsed = parse(&held);
        let Some((at, len)) = held.missed.take() else {
            break parsed.unwrap_or_default();
        };
        rounds += 1;
        if rounds > MAX_ROUNDS || len > MAX_PART {
            return None;
        }
        fetch(d, &mut held, &mut total, at, len)?;
    };
    let pages = check_runs(d, &held, &slices)?;
    Some(Streamed { held, pages })
}

/// Reads every byte of the entry once: page hashes for each job, and the
/// CRC-32 of the whole, checked against the archive's.
fn check_runs(
    d: &Direct,
    held: &Partial,
    slices: &[Parsed],
) -> Option<HashMap<(usize, usize), PageResult>> {
    let mut pages = HashMap::new();
    let mut jobs = Vec::new();
    // Each slice's code: (offset, end of its longest code limit, slice).
    let mut code = Vec::new();
    for (index, slice) in slices.iter().enumerate() {
        let Some(sig) = slice.part(held, slice.signature) else {
            continue;
        };
        let Ok(sb) = SuperBlob::parse(sig, &Where::default()) else {
            continue;
        };
        let mut end = 0;
        for (position, (_, blob)) in sb.code_directories().into_iter().enumerate() {
            let Ok(cd) = CodeDirectory::parse(blob, &Where::default()) else {
                continue;
            };
            match cd.page_plan(slice.len) {
                Err(why) => {
                    pages.insert((index, position), Err(why));
                }
                Ok((_, page)) if page > RUN || !RUN.is_multiple_of(page) => return None,
                Ok((limit, page)) => {
                    pages.insert((index, position), Ok(Vec::new()));
                    end = end.max(limit);
                    jobs.push(Job {
                        slice: index,
                        position,
                        cd,
                        limit,
                        page,
                    });
                }
            }
        }
        if end > 0 {
            code.push((slice.offset, slice.offset + end, index));
        }
    }
    code.sort_unstable();
    let mut runs = Vec::new();
    let mut at = 0;
    let split = |from: usize, to: usize, slice: Option<usize>, runs: &mut Vec<Run>| {
        let mut start = from;
        while start < to {
            let len = RUN.min(to - start);
            runs.push(Run {
                at: start,
                len,
                slice: slice.map(|s| (s, from)),
            });
            start += len;
        }
    };
    for &(start, end, slice) in &code {
        if start < at {
            return None;
        }
        split(at, start, None, &mut runs);
        split(start, end, Some(slice), &mut runs);
        at = end;
    }
    split(at, held.size, None, &mut runs);
    let done: Vec<Option<Checked>> = runs
        .par_iter()
        .map(|run| check_run(d, &jobs, run))
        .collect();
    let mut crc = crc32fast::Hasher::new();
    for run in done {
        let (part, bad) = run?;
        crc.combine(&part);
        for (j, i) in bad {
            let job = &jobs[j];
            if let Some(Ok(list)) = pages.get_mut(&(job.slice, job.position)) {
                list.push(i);
            }
        }
    }
    if d.crc.is_some_and(|stated| stated != crc.finalize()) {
        return None;
    }
    Some(pages)
}

#[cfg(all(test, feature = "fixtures"))]
mod tests {
    use std::io::Write as _;
    use std::path::{Path, PathBuf};

    use provkit_profile::Verifier;
    use provkit_profile::fixtures::{TEST_TEAM, TestCa, utc};

    use super::*;
    use crate::archive::{Archive, Limits};
    use crate::fixtures::{Arch, developer_identity, signed_macho};
    use crate::macho::slices;
    use crate::signature::At;
    use crate::signature::code::{CodeInput, Exe, check_code};
    use crate::signature::sign::CodeSpec;

    /// A fat (armv7, arm64) executable with SHA-1 and SHA-256
    /// CodeDirectories and `code_len` bytes of code a slice.
    fn fat(ca: &TestCa, code_len: usize) -> Vec<u8> {
        let spec = CodeSpec::new("com.example.stream", TEST_TEAM, utc(2026, 3, 1));
        let id = developer_identity(ca);
        signed_macho(&[Arch::Armv7, Arch::Arm64], code_len, 7, &spec, &id)
    }

    /// `exe` as the one stored entry of a zip file; its path.
    fn stored_zip(exe: &[u8], tag: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("provkit-stream-{}-{tag}.zip", std::process::id()));
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).expect("create"));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        w.start_file("Payload/A.app/A", opts).expect("start");
        w.write_all(exe).expect("write");
        w.finish().expect("finish");
        path
    }

    /// The executable's entry streamed from the file, and the archive (kept
    /// open). Streamed from the same archive in memory, it gives the same.
    fn streamed(path: &Path) -> (Archive, Option<Streamed>) {
        let archive = Archive::open(path, Limits::default()).expect("zip");
        let direct = archive.direct(&archive.entries()[0]).expect("stored entry");
        let s = stream(&direct);
        let bytes = std::fs::read(path).expect("read");
        let memory = Archive::from_bytes(bytes, Limits::default()).expect("zip");
        let direct = memory.direct(&memory.entries()[0]).expect("stored entry");
        let m = stream(&direct);
        assert_eq!(
            s.as_ref().map(|s| &s.pages),
            m.as_ref().map(|m| &m.pages),
            "file and memory"
        );
        (archive, s)
    }

    /// The bad pages of every CodeDirectory when `exe` is held whole.
    fn whole_pages(exe: &[u8]) -> HashMap<(usize, usize), PageResult> {
        let mut out = HashMap::new();
        for (i, s) in slices(exe).expect("Mach-O").iter().enumerate() {
            let sb = SuperBlob::parse(s.signature.expect("signed"), &Where::default())
                .expect("SuperBlob");
            for (k, (_, blob)) in sb.code_directories().into_iter().enumerate() {
                let cd = CodeDirectory::parse(blob, &Where::default()).expect("CD");
                out.insert(
                    (i, k),
                    Ok(cd.check_pages(s.data, &Where::default()).expect("pages")),
                );
            }
        }
        out
    }

    #[test]
    fn a_stored_fat_executable_is_checked_by_parts_as_when_held_whole() {
        let ca = TestCa::rsa();
        let mut exe = fat(&ca, 1 << 20);
        let list = slices(&exe).expect("Mach-O");
        let (first, second) = (list[0].offset, list[1].offset);
        drop(list);
        let path = stored_zip(&exe, "clean");
        let (_archive, s) = streamed(&path);
        let s = s.expect("checked by parts");
        assert_eq!(s.pages.len(), 4, "two slices, two CodeDirectories each");
        assert!(
            s.pages.values().all(|r| r == &Ok(Vec::new())),
            "{:?}",
            s.pages
        );
        // Pages in the first and a later run of each slice, and the last.
        for at in [
            first + 5 * 4096 + 1,
            first + (300 << 10),
            second + (1 << 20) - 1,
        ] {
            exe[at] ^= 0x40;
        }
        std::fs::remove_file(&path).expect("remove");
        let path = stored_zip(&exe, "pages");
        let (_archive, s) = streamed(&path);
        let s = s.expect("checked by parts");
        std::fs::remove_file(&path).expect("remove");
        let whole = whole_pages(&exe);
        assert_eq!(s.pages, whole);
        assert_eq!(whole[&(0, 0)], Ok(vec![5, 75]));
        assert_eq!(whole[&(1, 1)], Ok(vec![255]));
    }

    #[test]
    fn bytes_that_disagree_with_the_stated_crc_fall_back_to_the_whole_read() {
        let ca = TestCa::rsa();
        let exe = fat(&ca, 64 << 10);
        let path = stored_zip(&exe, "crc");
        let mut zip = std::fs::read(&path).expect("read");
        let at = zip
            .windows(exe.len())
            .position(|w| w == exe.as_slice())
            .expect("stored bytes");
        zip[at + exe.len() / 2] ^= 1;
        std::fs::write(&path, &zip).expect("write");
        let (archive, s) = streamed(&path);
        assert!(s.is_none(), "a CRC mismatch must not be checked by parts");
        assert!(archive.read(&archive.entries()[0], u64::MAX).is_err());
        std::fs::remove_file(&path).expect("remove");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Any bytes changed anywhere (headers, load commands, signature,
        /// code), or the file cut short: the findings by parts are those of
        /// the file held whole.
        #[test]
        fn findings_by_parts_are_those_held_whole(
            flips in proptest::collection::vec((0usize..(300 << 10), 1u8..=255), 0..6),
            cut in proptest::option::of(0usize..(300 << 10)),
        ) {
            let ca = TestCa::rsa();
            let mut exe = fat(&ca, 96 << 10);
            for (at, x) in flips {
                let at = at % exe.len();
                exe[at] ^= x;
            }
            if let Some(cut) = cut {
                exe.truncate(cut % (exe.len() + 1));
            }
            let path = stored_zip(&exe, "prop");
            let (_archive, s) = streamed(&path);
            std::fs::remove_file(&path).expect("remove");
            let verifier = Verifier::new(ca.anchors());
            let input = CodeInput {
                bundle: "A.app",
                path: "A",
                info_plist: None,
                code_resources: None,
                verifier: &verifier,
                at: At::SigningTime,
                standalone: true,
            };
            let mut whole = Vec::new();
            let w = check_code(Exe::Whole(&exe), &input, &mut whole);
            if let Some(s) = s {
                let mut parts = Vec::new();
                let p = check_code(Exe::Streamed(&s), &input, &mut parts);
                proptest::prop_assert_eq!(&whole, &parts);
                proptest::prop_assert_eq!(&w.slices, &p.slices);
                proptest::prop_assert_eq!(&w.cdhashes, &p.cdhashes);
            }
        }
    }
}

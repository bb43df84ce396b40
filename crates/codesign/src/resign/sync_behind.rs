//! The output file of a re-sign, synced to disk while it is written.
//!
//! A re-signed app is written, then `fsync`ed before it is renamed into
//! place. Left alone, the kernel starts writing a new file's pages back
//! only once they are old or plentiful, so the final sync wrote the whole
//! archive (188 MB for the benchmark's app) while the signer waited: a
//! third of a re-sign, and most of its spread from run to run. Here a
//! helper thread syncs the file's data each time another
//! [`SYNC_EVERY`] bytes are written, so the disk works while the signer
//! does, and the final sync has only the tail left.
//!
//! A failed background sync is kept and returned by
//! [`SyncBehind::finish`]: the kernel reports a writeback error once per
//! open file, so it would be lost to the final sync otherwise.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes written between two background syncs.
const SYNC_EVERY: u64 = 16 << 20;

/// A file being written whose data is synced in the background.
#[derive(Debug)]
pub(super) struct SyncBehind {
    file: File,
    /// Bytes written since the last sync was asked for.
    since: u64,
    /// The helper's queue (one request at most: asking while a request
    /// waits adds nothing) and the helper itself. None when the file
    /// could not be shared with a thread or the thread could not start:
    /// then only the final sync is made.
    helper: Option<(SyncSender<()>, JoinHandle<io::Result<()>>)>,
}

impl SyncBehind {
    /// Wraps a file just created for writing.
    pub(super) fn new(file: File) -> Self {
        let helper = file.try_clone().ok().and_then(|shared| {
            let (ask, asked) = sync_channel(1);
            std::thread::Builder::new()
                .name("provkit-sync".into())
                .spawn(move || sync_when_asked(&shared, &asked))
                .ok()
                .map(|thread| (ask, thread))
        });
        SyncBehind {
            file,
            since: 0,
            helper,
        }
    }

    /// Stops the helper and returns the file, or the first error a
    /// background sync met. The caller still syncs the file: what was
    /// written since the last background sync is not on disk yet.
    pub(super) fn finish(mut self) -> io::Result<File> {
        if let Some((ask, thread)) = self.helper.take() {
            drop(ask);
            thread
                .join()
                .map_err(|_| io::Error::other("the background sync thread panicked"))??;
        }
        Ok(self.file)
    }
}

/// The helper's loop: one `fdatasync` per request, until the writer goes.
fn sync_when_asked(file: &File, asked: &Receiver<()>) -> io::Result<()> {
    let mut first_error = Ok(());
    while asked.recv().is_ok() {
        if let Err(e) = file.sync_data() {
            first_error = first_error.and(Err(e));
        }
    }
    first_error
}

impl Write for SyncBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.since += n as u64;
        if self.since >= SYNC_EVERY {
            self.since = 0;
            if let Some((ask, _)) = &self.helper {
                // Full: a sync is already waiting, and it will cover these bytes.
                let _ = ask.try_send(());
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for SyncBehind {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn what_is_written_through_background_syncs_reads_back() {
        let dir = std::env::temp_dir().join(format!("provkit-sync-behind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("out.bin");
        let mut w = SyncBehind::new(File::create(&path).expect("create"));
        assert!(w.helper.is_some(), "the helper thread starts");
        // Enough to ask for several syncs, then a patch behind the end.
        let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let chunks = usize::try_from(SYNC_EVERY * 3 / (1 << 20)).expect("fits");
        for _ in 0..chunks {
            w.write_all(&chunk).expect("write");
        }
        w.seek(SeekFrom::Start(3)).expect("seek");
        w.write_all(b"PATCH").expect("patch");
        w.seek(SeekFrom::End(0)).expect("seek to end");
        w.write_all(b"tail").expect("tail");
        let file = w.finish().expect("no background sync failed");
        file.sync_all().expect("final sync");
        drop(file);
        let mut back = Vec::new();
        File::open(&path)
            .expect("open")
            .read_to_end(&mut back)
            .expect("read");
        assert_eq!(back.len(), chunks * chunk.len() + 4);
        assert_eq!(&back[..3], &chunk[..3]);
        assert_eq!(&back[3..8], b"PATCH");
        assert_eq!(&back[8..chunk.len()], &chunk[8..]);
        assert_eq!(&back[back.len() - 4..], b"tail");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Commit under the write lock, fsync outside it.
//!
//! With `synchronous=FULL` SQLite fsyncs the WAL inside `COMMIT`, so the write lock is held for
//! the disk's whole flush and the next batch cannot even start its inserts meanwhile: under
//! load the lock was busy about three quarters of the time, most of it waiting for the disk.
//! The writer connection runs `synchronous=NORMAL` instead (a commit writes its WAL frames,
//! which is enough to be seen and to survive the process being killed), and this module makes
//! each commit durable after the lock is released: `fdatasync` on the WAL file, whose one call
//! covers every frame written before it (so concurrent requests share flushes, as they share
//! commits).
//!
//! Nothing is acknowledged before it is on disk, as before:
//! - a create or update answers only once [`WalSync::make_durable`] covered its commit;
//! - a read answers only once every commit it may have seen is covered, so nobody is shown
//!   data that a power cut could still take back (a conditional create that finds an earlier
//!   answer, a search right after a `$code`).
//!
//! Checkpoints keep their own syncs (SQLite syncs the WAL before copying it and the database
//! after, in NORMAL as in FULL), and the WAL file is never replaced while the store is open.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub(super) struct WalSync {
    wal: PathBuf,
    /// Commits begun: counted under the write lock just before each `COMMIT`.
    begun: AtomicU64,
    /// Commits whose `COMMIT` returned (their frames are written): counted under the write lock.
    finished: AtomicU64,
    /// Commits known to be on disk.
    synced: AtomicU64,
    /// One flush at a time: the others wait, then usually find themselves covered.
    flushing: Mutex<()>,
}

impl WalSync {
    pub(super) fn new(database: &std::path::Path) -> WalSync {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        WalSync {
            wal: PathBuf::from(wal),
            begun: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            flushing: Mutex::new(()),
        }
    }

    /// Runs one `COMMIT` (under the caller's write lock) and returns its number, for
    /// [`WalSync::make_durable`] once the lock is released.
    pub(super) fn commit<T>(&self, commit: impl FnOnce() -> T) -> (T, u64) {
        let n = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = commit();
        self.finished.store(n, Ordering::SeqCst);
        (outcome, n)
    }

    /// Every commit a read that has finished may have seen: those begun so far (a commit is
    /// counted before it becomes visible).
    pub(super) fn seen(&self) -> u64 {
        self.begun.load(Ordering::SeqCst)
    }

    /// Returns once commits `1..=through` are on disk.
    pub(super) fn make_durable(&self, through: u64) -> std::io::Result<()> {
        loop {
            if self.synced.load(Ordering::SeqCst) >= through {
                return Ok(());
            }
            let guard = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
            if self.synced.load(Ordering::SeqCst) >= through {
                return Ok(());
            }
            // Read before the flush starts: every commit counted here has written its frames.
            let covered = self.finished.load(Ordering::SeqCst);
            if covered > self.synced.load(Ordering::SeqCst) {
                std::fs::File::open(&self.wal)?.sync_data()?;
                self.synced.fetch_max(covered, Ordering::SeqCst);
            }
            drop(guard);
            if covered < through {
                // A commit this read may have seen is still being written; its own committer
                // is about to flush it. Rare, and shorter than a commit.
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        }
    }

    #[cfg(test)]
    pub(super) fn counts(&self) -> (u64, u64, u64) {
        (
            self.begun.load(Ordering::SeqCst),
            self.finished.load(Ordering::SeqCst),
            self.synced.load(Ordering::SeqCst),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn wal_beside(dir: &tempfile::TempDir) -> WalSync {
        let db = dir.path().join("db.sqlite");
        std::fs::write(dir.path().join("db.sqlite-wal"), b"frames").unwrap();
        WalSync::new(&db)
    }

    #[test]
    fn a_commit_is_durable_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal_beside(&dir);
        let ((), n) = wal.commit(|| ());
        assert_eq!(n, 1);
        assert_eq!(wal.counts(), (1, 1, 0), "committed, not yet flushed");
        wal.make_durable(n).unwrap();
        assert_eq!(wal.counts(), (1, 1, 1));
        // Covered already: no second flush needed, and none waits.
        wal.make_durable(1).unwrap();
    }

    /// A read that may have seen a commit still being written waits until that commit is
    /// written and flushed, not only until the earlier ones are.
    #[test]
    fn a_read_waits_for_a_commit_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(wal_beside(&dir));
        let (started, wait_started) = std::sync::mpsc::channel();
        let writer = {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let ((), n) = wal.commit(|| {
                    started.send(()).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(50));
                });
                n
            })
        };
        wait_started.recv().unwrap();
        let seen = wal.seen();
        assert_eq!(seen, 1);
        wal.make_durable(seen).unwrap();
        let (_, finished, synced) = wal.counts();
        assert_eq!(
            (finished, synced),
            (1, 1),
            "returned before the commit it may have seen was written and flushed"
        );
        assert_eq!(writer.join().unwrap(), 1);
    }

    #[test]
    fn a_missing_wal_file_is_an_error_not_an_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let wal = WalSync::new(&dir.path().join("db.sqlite"));
        let ((), n) = wal.commit(|| ());
        assert!(wal.make_durable(n).is_err());
        assert_eq!(wal.counts().2, 0);
    }
}

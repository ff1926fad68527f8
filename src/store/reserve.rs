//! Space kept allocated for the database's log, so a full disk cannot break it.
//!
//! sled writes its log in the background; when one of those writes fails (ENOSPC), sled records
//! a global error that it only clears when the database is opened again, and refuses every later
//! write. A disk filled for a moment (a big file in a writable path) would then leave every
//! directory not yet listed unreadable until a restart, long after the space was freed. So the
//! log file keeps [`RESERVE`] bytes allocated past its end (`fallocate` with `KEEP_SIZE`: the
//! length sled sees does not change), topped up after the store writes; the log grows into
//! space that is already its own while the disk is full.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::FallocateFlags;

/// Bytes kept allocated past the end of the log: eight of sled's 512 KiB segments, far more
/// than it writes between two top-ups.
pub const RESERVE: u64 = 4 << 20;

/// The log file of a sled database, and whether topping it up still makes sense.
pub struct DbReserve {
    log: Option<File>,
    /// Cleared when the filesystem cannot preallocate (EOPNOTSUPP): no retry on every write.
    supported: AtomicBool,
    /// The log's length at the last top-up that succeeded (`u64::MAX`: none yet).
    topped_at: AtomicU64,
}

impl DbReserve {
    /// The reserve of the sled database in `db_dir` (which sled has opened already).
    pub fn open(db_dir: &Path) -> DbReserve {
        let log = match std::fs::OpenOptions::new()
            .write(true)
            .open(db_dir.join("db"))
        {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the database log to reserve space for it");
                None
            }
        };
        let r = DbReserve {
            log,
            supported: AtomicBool::new(true),
            topped_at: AtomicU64::new(u64::MAX),
        };
        r.top_up();
        r
    }

    /// Makes the reserve whole again; on a full disk it stays as it is (sled is still writing
    /// into what is left of it) and the next call tries again.
    pub fn top_up(&self) {
        let Some(log) = &self.log else { return };
        if !self.supported.load(Ordering::Relaxed) {
            return;
        }
        let end = match log.metadata() {
            Ok(m) => m.len(),
            Err(_) => return,
        };
        // Half the reserve is still there: no fallocate, which walks the whole range's extents
        // each time (a seventh of a cold walk's CPU when it ran after every listing).
        let at = self.topped_at.load(Ordering::Relaxed);
        if at != u64::MAX && end >= at && end - at < RESERVE / 2 {
            return;
        }
        match rustix::fs::fallocate(log, FallocateFlags::KEEP_SIZE, end, RESERVE) {
            Ok(()) => self.topped_at.store(end, Ordering::Relaxed),
            Err(rustix::io::Errno::OPNOTSUPP) => {
                tracing::info!("the store's filesystem cannot preallocate; the database has no reserve for a full disk");
                self.supported.store(false, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "database reserve not topped up"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A directory holding a sled database with one record written out (and the database,
    /// which must stay open).
    fn written_db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"k", b"v").unwrap();
        db.flush().unwrap();
        (dir, db)
    }

    #[test]
    fn the_log_keeps_room_past_its_end_without_growing() {
        let (dir, _db) = written_db();
        let log = dir.path().join("db");
        let before = std::fs::metadata(&log).unwrap();
        let r = DbReserve::open(dir.path());
        let after = std::fs::metadata(&log).unwrap();
        assert_eq!(after.len(), before.len(), "sled must see the same length");
        if r.supported.load(Ordering::Relaxed) {
            assert!(after.blocks() * 512 >= before.len() + RESERVE);
        }
    }

    #[test]
    fn a_log_grown_past_half_the_reserve_is_topped_up_again() {
        use std::io::Write;
        let (dir, _db) = written_db();
        let r = DbReserve::open(dir.path());
        if !r.supported.load(Ordering::Relaxed) {
            return;
        }
        let log = dir.path().join("db");
        // The log grows into its reserve by more than half of it, as sled would write.
        let grown = std::fs::metadata(&log).unwrap().len() + RESERVE / 2 + 4096;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let len = std::fs::metadata(&log).unwrap().len();
        f.write_all(&vec![0u8; (grown - len) as usize]).unwrap();
        f.sync_all().unwrap();
        r.top_up();
        let m = std::fs::metadata(&log).unwrap();
        assert_eq!(m.len(), grown);
        assert!(
            m.blocks() * 512 >= grown + RESERVE,
            "the reserve must be whole again: {} bytes allocated for a {grown}-byte log",
            m.blocks() * 512
        );
    }
}

//! FUSE passthrough for files written through an overlay.
//!
//! Without it every `write(2)` into the mount is a WRITE request (Scorpio does not use the
//! kernel's writeback cache, which would cost a GETATTR after every close instead). With it the
//! kernel writes the upper file itself. The kernel allows one I/O mode per inode at a time:
//! cached (through the daemon and the page cache) or passthrough to one backing file; an open
//! asking for the other mode fails with EIO. So every open of an inode is recorded here, and
//! an open may pass through only when no cached open of the same inode is live.
//!
//! Policy: an open for writing (and the create of a new file) passes through; a read-only open
//! passes through only while the inode already has passthrough opens, so that reads keep the
//! page cache (a passthrough read marks the file's atime stale, which costs the next `stat` a
//! round trip). Lower files are never passed through: their bytes come from the blob store.
//! After a passthrough write the kernel's pages of the inode may be stale, so the next cached
//! open asks the kernel to drop them.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use rfuse3::notify::Notify;

/// How an open of an inode runs in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Through the daemon; `keep_cache`: the kernel may keep the pages it has.
    Cached {
        /// Whether the open reply may carry FOPEN_KEEP_CACHE.
        keep_cache: bool,
    },
    /// The kernel reads and writes the backing file with this id itself.
    Passthrough(i32),
}

/// The open files of one inode.
#[derive(Default)]
struct Opens {
    cached: usize,
    backing: Option<Backing>,
    /// Written through a backing file since the last cached open: cached pages may be stale.
    stale_pages: bool,
}

impl Opens {
    /// Counts one more cached open; the kernel may keep the inode's pages unless a
    /// passthrough write made them stale (then this open drops them, and they are fresh again).
    fn add_cached(&mut self) -> Mode {
        self.cached += 1;
        Mode::Cached {
            keep_cache: !std::mem::take(&mut self.stale_pages),
        }
    }
}

/// A registered backing file and how many opens use it.
struct Backing {
    id: i32,
    /// (st_dev, st_ino) of the backing file: every open of the inode must use the same one.
    file: (u64, u64),
    opens: usize,
}

/// The passthrough state of one overlay: off until the session hands over its channel.
#[derive(Default)]
pub(super) struct Passthrough {
    notify: OnceLock<Notify>,
    /// Set when registering a backing file failed for good (no CAP_SYS_ADMIN, not negotiated,
    /// upper layer on a stacked filesystem): from then on every open is cached.
    off: AtomicBool,
    opens: Mutex<HashMap<u64, Opens>>,
}

impl Passthrough {
    /// Turns passthrough on with the session's channel (once; later calls change nothing).
    pub(super) fn enable(&self, notify: Notify) {
        let _ = self.notify.set(notify);
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Opens>> {
        self.opens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a cached open of `ino` (a lower file, or an upper one that is not passed
    /// through) and says whether the kernel may keep its pages.
    pub(super) fn open_cached(&self, ino: u64) -> Mode {
        self.table().entry(ino).or_default().add_cached()
    }

    /// Records an open of upper file `file` of `ino`: passed through when `writable` (or when
    /// the inode has passthrough opens already) and nothing forbids it, else cached.
    pub(super) fn open_upper(
        &self,
        ino: u64,
        file: &std::fs::File,
        st: &rustix::fs::Stat,
        writable: bool,
    ) -> Mode {
        let Some(notify) = self
            .notify
            .get()
            .filter(|_| !self.off.load(Ordering::Relaxed))
        else {
            return self.open_cached(ino);
        };
        let id_of_file = (st.st_dev, st.st_ino);
        let mut t = self.table();
        let o = t.entry(ino).or_default();
        if o.cached > 0 {
            return o.add_cached();
        }
        match &mut o.backing {
            Some(b) if b.file == id_of_file => {
                b.opens += 1;
                return Mode::Passthrough(b.id);
            }
            Some(_) => {
                // Another file behind the same inode while the first is open: the kernel
                // will refuse this open (EIO) whatever we answer; say so in the log.
                tracing::warn!(ino, "an inode's upper file changed while it was open");
                o.cached += 1;
                return Mode::Cached { keep_cache: false };
            }
            None if !writable => return o.add_cached(),
            None => {}
        }
        match notify.backing_open(file.as_fd()) {
            Ok(id) => {
                o.backing = Some(Backing {
                    id,
                    file: id_of_file,
                    opens: 1,
                });
                o.stale_pages = true;
                Mode::Passthrough(id)
            }
            Err(e) => {
                tracing::info!(error = %e, "FUSE passthrough unavailable; writes go through the daemon");
                self.off.store(true, Ordering::Relaxed);
                o.add_cached()
            }
        }
    }

    /// Records the release of an open of `ino` that ran in `mode`.
    pub(super) fn release(&self, ino: u64, mode: Mode) {
        let mut t = self.table();
        let Some(o) = t.get_mut(&ino) else {
            return;
        };
        match mode {
            Mode::Cached { .. } => o.cached = o.cached.saturating_sub(1),
            Mode::Passthrough(_) => {
                if let Some(b) = &mut o.backing {
                    b.opens -= 1;
                    if b.opens == 0 {
                        let id = b.id;
                        o.backing = None;
                        if let Some(n) = self.notify.get() {
                            if let Err(e) = n.backing_close(id) {
                                tracing::debug!(id, error = %e, "closing a backing id failed");
                            }
                        }
                    }
                }
            }
        }
        if o.cached == 0 && o.backing.is_none() && !o.stale_pages {
            t.remove(&ino);
        }
    }

    /// Forgets what is known of `ino` (the kernel forgot the inode, and its pages with it).
    pub(super) fn forget(&self, ino: u64) {
        let mut t = self.table();
        if t.get(&ino)
            .is_some_and(|o| o.cached == 0 && o.backing.is_none())
        {
            t.remove(&ino);
        }
    }
}

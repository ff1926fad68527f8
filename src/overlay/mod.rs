//! OverlayFs: a writable view of one directory of the repository.
//!
//! Layers, top first: the upper directory (local disk, read-write), then the read-only Dicfuse
//! subtree. A name is looked up in the upper layer first; a whiteout there hides the lower entry,
//! an opaque directory hides the whole lower directory. The first write to a lower entry copies
//! it up (content, mode, owner, times). Upper entries are reached by path from the upper root
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a symlink a user made can never lead
//! the daemon outside the layer.
//!
//! Inodes: this overlay owns the range of its [`Slot`] (see `crate::ino`); the node table
//! (`nodes`) says which inode each name stands for and keeps the rules that tie them.
//!
//! Files are opened without a message (`crate::NO_OPEN`): the daemon never learns of an open
//! or a close, so every read and write names an inode and is served from whichever layer holds
//! it at that moment (a write copies up first). An inode whose last name is removed while the
//! kernel still knows it (it may be open) keeps its upper file through an fd until FORGET.
//!
//! This file holds the types and what every operation shares; `ops` is the FUSE edge, each
//! request served by a named operation in a file of its own: `lookup`, `create`, `remove`,
//! `rename`, `attr`, `io`, `xattr`, `readdir`, over `upper` (reaching the upper layer),
//! `copyup`, `detached` and `nodes`. `prune` cleans the upper layer after a push.

pub mod assemble;
mod attr;
pub mod cl;
mod copyup;
mod create;
mod detached;
mod io;
mod lookup;
pub mod lower;
mod mode;
mod nodes;
mod ops;
mod privs;
pub mod prune;
mod readdir;
mod remove;
mod rename;
mod upper;
pub mod whiteout;
mod xattr;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};

use crate::dicfuse::DicError;
use crate::ino::Slot;
pub use lower::Lower;
use nodes::{NodeInfo, NodeTable};

/// How long the kernel may trust overlay entries and attributes. Every change to an overlay
/// either passes through the kernel (which updates its own caches) or is one of Scorpio's own
/// (mount, unmount, reset, push), which invalidate what they change; so a long time is safe, and
/// spares a LOOKUP per path component per second that a build would otherwise send.
pub const UPPER_TTL: Duration = Duration::from_secs(24 * 3600);

/// Errors of overlay operations, mapped to an errno at the FUSE edge.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// A plain errno answer (ENOENT, EEXIST, ENOTEMPTY, ...).
    #[error("errno {0}")]
    Errno(i32),
    /// The upper layer failed.
    #[error("upper layer: {0}")]
    Io(#[from] std::io::Error),
    /// The lower layer failed.
    #[error(transparent)]
    Lower(#[from] DicError),
}

/// A blocking task that panicked or was cancelled: an I/O error (EIO at the FUSE edge).
impl From<tokio::task::JoinError> for OverlayError {
    fn from(e: tokio::task::JoinError) -> Self {
        OverlayError::Io(std::io::Error::from(e))
    }
}

impl From<rustix::io::Errno> for OverlayError {
    fn from(e: rustix::io::Errno) -> Self {
        OverlayError::Errno(e.raw_os_error())
    }
}

impl OverlayError {
    /// The errno for the kernel.
    pub fn errno(&self) -> i32 {
        match self {
            OverlayError::Errno(e) => *e,
            OverlayError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            OverlayError::Lower(e) => e.errno(),
        }
    }
}

impl From<OverlayError> for rfuse3::Errno {
    fn from(e: OverlayError) -> Self {
        e.errno().into()
    }
}

type Result<T> = std::result::Result<T, OverlayError>;

/// Waits (at most 2 s) until every notification queued for the kernel has been written.
pub async fn notifications_written() {
    let t0 = std::time::Instant::now();
    while rfuse3::notify::pending() > 0 && t0.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn errno<T>(e: i32) -> Result<T> {
    Err(OverlayError::Errno(e))
}

/// A writable overlay over one Dicfuse directory.
pub struct OverlayFs {
    slot: Slot,
    upper_path: PathBuf,
    upper_fd: OwnedFd,
    upper_parent_fd: OwnedFd,
    upper_name: OsString,
    work_fd: OwnedFd,
    lower: Lower,
    nodes: Mutex<NodeTable>,
    /// The last merged listing read, with the namespace generation it was taken in: a large
    /// directory is read in several READDIRs, which need not list it again each time.
    last_listing: Mutex<Option<readdir::Listing>>,
    /// Bumped by every exclusive `ns_lock` (`ns_write`): a listing from an older generation
    /// may be stale.
    ns_gen: AtomicU64,
    /// Exclusive for namespace changes (create, unlink, rename, copy-up, prune after a push); shared while
    /// a read or write resolves an inode to its file and uses it, so that the file is the one
    /// the inode names.
    ns_lock: tokio::sync::RwLock<()>,
    /// The session's channel to the kernel, for invalidating what it cached (see `privs`).
    notify: std::sync::OnceLock<rfuse3::notify::Notify>,
}

impl OverlayFs {
    /// An overlay of lower directory `lower_root` (`None`: no lower, e.g. a new directory) with
    /// its upper layer at `upper` and scratch space at `work` (same filesystem), owning the
    /// inode range of `slot`.
    pub fn new(
        slot: Slot,
        lower: Lower,
        lower_root: Option<u64>,
        upper: &Path,
        work: &Path,
    ) -> std::io::Result<OverlayFs> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(upper)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(work)?;
        let open_dir = |p: &Path| -> std::io::Result<OwnedFd> {
            Ok(rustix::fs::open(
                p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?)
        };
        let upper_parent = upper
            .parent()
            .ok_or_else(|| std::io::Error::other("upper layer has no parent"))?;
        let upper_name = upper
            .file_name()
            .ok_or_else(|| std::io::Error::other("upper layer has no name"))?;
        Ok(OverlayFs {
            slot,
            upper_path: upper.to_path_buf(),
            upper_fd: open_dir(upper)?,
            upper_parent_fd: open_dir(upper_parent)?,
            upper_name: upper_name.to_os_string(),
            work_fd: open_dir(work)?,
            lower,
            nodes: Mutex::new(NodeTable::new(slot, lower_root)),
            last_listing: Mutex::new(None),
            ns_gen: AtomicU64::new(0),
            ns_lock: tokio::sync::RwLock::new(()),
            notify: std::sync::OnceLock::new(),
        })
    }

    /// Hands the overlay its session's notify channel (once; later calls change nothing).
    pub fn set_notify(&self, n: rfuse3::notify::Notify) {
        let _ = self.notify.set(n);
    }

    /// Makes the kernel forget the attributes it cached for `ino`, and waits until it has:
    /// what follows may depend on it asking again (the mode after suid/sgid were killed).
    async fn invalidate_attrs(&self, ino: u64) {
        if let Some(n) = self.notify.get() {
            // Offset -1: attributes only, no pages.
            n.clone().invalid_inode(ino, -1, 0).await;
            notifications_written().await;
        }
    }

    /// The root inode.
    pub fn root_ino(&self) -> u64 {
        self.slot.root()
    }

    /// Whether `ino` is in this overlay's range.
    pub fn owns(&self, ino: u64) -> bool {
        self.slot.contains(ino)
    }

    /// The upper directory.
    pub fn upper_path(&self) -> &Path {
        &self.upper_path
    }

    /// Known inodes (for leak checks).
    pub fn known_inodes(&self) -> usize {
        self.table().len()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, NodeTable> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn info(&self, ino: u64) -> Result<NodeInfo> {
        self.table()
            .get(ino)
            .cloned()
            .ok_or(OverlayError::Errno(libc::ENOENT))
    }

    /// The path of `ino` relative to the layer roots (`""` for the root).
    fn rel_path(&self, ino: u64) -> Result<PathBuf> {
        self.table().rel_path(ino)
    }

    /// Takes `ns_lock` exclusively, for a change to the namespace (or to what a path names).
    async fn ns_write(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        let guard = self.ns_lock.write().await;
        self.ns_gen.fetch_add(1, Ordering::SeqCst);
        guard
    }
}

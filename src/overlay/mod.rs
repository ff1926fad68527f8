//! OverlayFs: a writable view of one directory of the repository.
//!
//! Layers, top first: the upper directory (local disk, read-write), then the read-only Dicfuse
//! subtree. A name is looked up in the upper layer first; a whiteout there hides the lower entry,
//! an opaque directory hides the whole lower directory. The first write to a lower entry copies
//! it up (content, mode, owner, times). Upper entries are reached by path from the upper root
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a symlink a user made can never lead
//! the daemon outside the layer.
//!
//! Inodes: this overlay owns the range of its [`Slot`] (see `crate::ino`).
//!
//! Files are opened without a message (`crate::NO_OPEN`): the daemon never learns of an open
//! or a close, so every read and write names an inode and is served from whichever layer holds
//! it at that moment (a write copies up first). An inode whose last name is removed while the
//! kernel still knows it (it may be open) keeps its upper file through an fd until FORGET.

pub mod beneath;
pub mod cl;
mod copyup;
pub mod lower;
mod nodes;
mod ops;
mod privs;
mod readdir;
pub mod settle;
pub mod whiteout;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rfuse3::raw::reply::FileAttr;
use rfuse3::{FileType, Timestamp};
use rustix::fs::{AtFlags, Mode, OFlags, Stat};

use crate::dicfuse::DicError;
use crate::ino::Slot;
use nodes::{NodeInfo, NodeTable};
pub use lower::Lower;

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

/// The FUSE file type of a `st_mode`.
fn file_type(mode: u32) -> FileType {
    match rustix::fs::FileType::from_raw_mode(mode) {
        rustix::fs::FileType::Directory => FileType::Directory,
        rustix::fs::FileType::Symlink => FileType::Symlink,
        rustix::fs::FileType::CharacterDevice => FileType::CharDevice,
        rustix::fs::FileType::BlockDevice => FileType::BlockDevice,
        rustix::fs::FileType::Fifo => FileType::NamedPipe,
        rustix::fs::FileType::Socket => FileType::Socket,
        _ => FileType::RegularFile,
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
    /// Exclusive for namespace changes (create, unlink, rename, copy-up, settle); shared while
    /// a read or write resolves an inode to its file and uses it, so that the file is the one
    /// the inode names.
    ns_lock: tokio::sync::RwLock<()>,
    /// The session's channel to the kernel, for invalidating what it cached (see `privs`).
    notify: std::sync::OnceLock<rfuse3::notify::Notify>,
}

/// Where an upper entry is: its directory and its name in it.
struct Target {
    dir: OwnedFd,
    name: OsString,
}

impl Target {
    /// Opens the entry with `flags` (close-on-exec; never through a symlink or out of the layer).
    fn open(&self, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat2(
            &self.dir,
            &self.name,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }
}

use beneath::RESOLVE;

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

    /// Opens `rel` (`""` is the layer root) in the upper layer with `flags`, if it is there.
    fn open_upper_rel(&self, rel: &Path, flags: OFlags) -> Result<Option<OwnedFd>> {
        let rel: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        match rustix::fs::openat2(&self.upper_fd, rel, flags, Mode::empty(), RESOLVE) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the upper directory at `rel` (`O_PATH`), if it exists.
    fn open_upper_dir(&self, rel: &Path) -> Result<Option<OwnedFd>> {
        self.open_upper_rel(rel, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC)
    }

    /// Opens `ino` itself in the upper layer with `flags`, if it is there: one `openat2` from
    /// the layer root, where going through its directory costs three system calls.
    fn open_upper(&self, ino: u64, flags: OFlags) -> Result<Option<OwnedFd>> {
        self.open_upper_rel(&self.rel_path(ino)?, flags)
    }

    /// The upper directory of `ino` (a directory node), if it is in the upper layer.
    fn upper_dir_of(&self, ino: u64) -> Result<Option<OwnedFd>> {
        let rel = self.rel_path(ino)?;
        self.open_upper_dir(&rel)
    }

    /// Where `ino` lives in the upper layer: its parent directory and name. The parent must
    /// already be in the upper layer.
    fn target(&self, ino: u64) -> Result<Option<Target>> {
        if ino == self.root_ino() {
            let dir = rustix::io::fcntl_dupfd_cloexec(&self.upper_parent_fd, 0)?;
            return Ok(Some(Target {
                dir,
                name: self.upper_name.clone(),
            }));
        }
        let info = self.info(ino)?;
        if info.detached {
            return Ok(None);
        }
        Ok(self.upper_dir_of(info.parent)?.map(|dir| Target {
            dir,
            name: info.name,
        }))
    }

    /// The upper stat of `ino`, if it is in the upper layer (whiteouts count as absent).
    fn upper_stat(&self, ino: u64) -> Result<Option<(Target, Stat)>> {
        let Some(t) = self.target(ino)? else {
            return Ok(None);
        };
        match rustix::fs::statat(&t.dir, &t.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if ino != self.root_ino() && whiteout::is_whiteout(&t.dir, &t.name, &st) => {
                Ok(None)
            }
            Ok(st) => Ok(Some((t, st))),
            Err(e) if e == rustix::io::Errno::NOENT => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn attr_from_stat(&self, ino: u64, st: &Stat) -> FileAttr {
        let kind = file_type(st.st_mode);
        let ts = |s: i64, ns: i64| Timestamp::new(s, ns.clamp(0, 999_999_999) as u32);
        FileAttr {
            ino,
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            atime: ts(st.st_atime, st.st_atime_nsec as i64),
            mtime: ts(st.st_mtime, st.st_mtime_nsec as i64),
            ctime: ts(st.st_ctime, st.st_ctime_nsec as i64),
            kind,
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: st.st_blksize as u32,
        }
    }

    /// Attributes of `ino` from whichever layer holds it.
    async fn attr_of(&self, ino: u64) -> Result<FileAttr> {
        if let Some((_, st)) = self.upper_stat(ino)? {
            return Ok(self.attr_from_stat(ino, &st));
        }
        // Detached but still known: the kept file is the truth.
        if let Some(f) = self.orphan(ino) {
            return Ok(self.attr_from_stat(ino, &rustix::fs::fstat(&*f)?));
        }
        let info = self.info(ino)?;
        match info.lower {
            Some(l) => {
                let mut a = self.lower.lower_attr(l).await?;
                a.ino = ino;
                Ok(a)
            }
            None => errno(libc::ENOENT),
        }
    }

    /// Finds or makes the inode for `name` in `parent`, counting one kernel lookup.
    fn link_node(
        &self,
        parent: u64,
        name: &OsStr,
        lower: Option<u64>,
        upper_id: Option<(u64, u64)>,
    ) -> u64 {
        self.table().lookup(parent, name, lower, upper_id)
    }

    /// The kept upper file of detached inode `ino`, if there is one.
    fn orphan(&self, ino: u64) -> Option<Arc<File>> {
        self.table().kept(ino)
    }

    /// The upper file of `ino` opened with `flags` (a kept one for a detached inode), or
    /// `None` when the inode is not in the upper layer (a whiteout at its path counts as not).
    /// The caller holds `ns_lock`, so the path still names this inode's file.
    fn upper_file(&self, ino: u64, flags: OFlags) -> Result<Option<Arc<File>>> {
        if let Some(f) = self.orphan(ino) {
            return Ok(Some(f));
        }
        if self.info(ino)?.detached {
            return Ok(None);
        }
        let Some(fd) = self.open_upper(ino, flags | OFlags::CLOEXEC | OFlags::NOFOLLOW)? else {
            return Ok(None);
        };
        let st = rustix::fs::fstat(&fd)?;
        if whiteout::is_whiteout_fd(&fd, &st) {
            return Ok(None);
        }
        Ok(Some(Arc::new(File::from(fd))))
    }

    /// Called under `ns_lock` before `name` in `parent` is removed (unlink, or a rename over
    /// it). When that is the last name the kernel knows for its inode, the inode is detached,
    /// and a regular upper file keeps an fd here until FORGET, so a process holding it open can
    /// go on reading and writing it. With another known name, the table's `drop_name` moves it there.
    fn detach_name(&self, parent: u64, name: &OsStr) -> Result<()> {
        let Some(ino) = self.table().attached_at(parent, name) else {
            return Ok(());
        };
        let upper = self.upper_stat(ino)?;
        // Only a hard-linked file can have another name (looking for one costs a scan).
        if upper
            .as_ref()
            .is_some_and(|(_, st)| st.st_nlink > 1 && !ops::is_dir_mode(st.st_mode))
            && self.table().has_other_name(ino, parent, name)
        {
            return Ok(());
        }
        let mut kept = None;
        if let Some((t, st)) = upper {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            {
                // A daemon that is not root may not open a read-only file for writing.
                let fd = t
                    .open(OFlags::RDWR | OFlags::NOFOLLOW)
                    .or_else(|_| t.open(OFlags::RDONLY | OFlags::NOFOLLOW))?;
                kept = Some(Arc::new(File::from(fd)));
            }
        }
        self.table().detach(ino, kept);
        Ok(())
    }

    /// Undoes `detach_name` when the removal of the name failed.
    fn reattach(&self, ino: u64) {
        self.table().reattach(ino);
    }

    /// The file a change to detached inode `ino` goes to (its name is gone, but a process may
    /// hold it open): its kept upper file, or else a copy of its lower content in an unnamed
    /// file, kept from then on. The caller holds `ns_lock` exclusively.
    async fn kept_file(&self, ino: u64) -> Result<Arc<File>> {
        if let Some(f) = self.orphan(ino) {
            return Ok(f);
        }
        let lower = self
            .info(ino)?
            .lower
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        let attr = self.lower.lower_attr(lower).await?;
        if attr.kind != FileType::RegularFile {
            // A removed directory or symlink has no content to go on writing.
            return errno(libc::ENOENT);
        }
        let mut src = self.lower.lower_open(lower).await?;
        let perm = u32::from(attr.perm);
        let fd = rustix::fs::openat(
            &self.work_fd,
            ".",
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(perm),
        )?;
        if perm & crate::privacy::DAEMON_UMASK != 0 {
            // The daemon's umask took bits the lower entry has.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(perm))?;
        }
        let mut dst = File::from(fd);
        let dst =
            tokio::task::spawn_blocking(move || std::io::copy(&mut src, &mut dst).map(|_| dst))
                .await??;
        let f = Arc::new(dst);
        self.table().keep(ino, f.clone());
        Ok(f)
    }

    /// Takes `ns_lock` exclusively, for a change to the namespace (or to what a path names).
    async fn ns_write(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        let guard = self.ns_lock.write().await;
        self.ns_gen.fetch_add(1, Ordering::SeqCst);
        guard
    }

    /// Whether the lower layer has `name` in `parent` (seen through `parent`'s merge).
    async fn lower_has(&self, parent: u64, name: &OsStr) -> Result<Option<u64>> {
        let Some(pl) = self.info(parent)?.lower else {
            return Ok(None);
        };
        Ok(self
            .lower
            .lower_lookup(pl, name.as_bytes())
            .await?
            .map(|(ino, _)| ino))
    }

    /// The lower entry an inode at `name` in upper directory `pdir` merges: an upper directory
    /// merges a lower one unless it is opaque; an upper file only remembers what it was copied
    /// from; a whiteout hides everything; without an upper entry the lower one shows.
    fn merged_lower(
        &self,
        pdir: Option<&OwnedFd>,
        name: &OsStr,
        upper: Option<&Stat>,
        lower: Option<(u64, lower::LowerNode)>,
    ) -> Option<u64> {
        let (l, node) = lower?;
        let Some(st) = upper else {
            return Some(l);
        };
        let pdir = pdir?;
        if ops::is_dir_mode(st.st_mode) {
            (node.kind.is_dir() && !whiteout::is_opaque(pdir, name)).then_some(l)
        } else if whiteout::is_whiteout(pdir, name, st) {
            None
        } else {
            (!node.kind.is_dir()).then_some(l)
        }
    }

    /// Ownership for a new entry in `parent_dir`: the caller, with the directory's group when
    /// it is set-group-id.
    fn new_owner(&self, parent_st: &Stat, uid: u32, gid: u32) -> (u32, u32) {
        if parent_st.st_mode & libc::S_ISGID != 0 {
            (uid, parent_st.st_gid)
        } else {
            (uid, gid)
        }
    }
}

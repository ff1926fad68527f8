//! Copy-up: bringing a lower entry into the upper layer before it is changed.
//!
//! The copy is built in the work directory (content, mode, owner, times) and renamed into place
//! with `RENAME_NOREPLACE`, so the upper layer never shows a half-copied entry.

use std::ffi::OsStr;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use rfuse3::FileType;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, Timespec, Timestamps};

use super::{errno, whiteout, OverlayError, OverlayFs, Result};

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn tmp_name() -> String {
    format!(
        "copyup-{}-{}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn ts(t: rfuse3::Timestamp) -> Timespec {
    Timespec {
        tv_sec: t.sec,
        tv_nsec: i64::from(t.nsec) as _,
    }
}

impl OverlayFs {
    /// Makes sure `ino` is in the upper layer, copying it and any missing ancestors up.
    /// The caller holds `ns_lock`.
    pub(super) async fn copy_up(&self, ino: u64) -> Result<()> {
        if self.info(ino)?.detached {
            // Its name is gone: copying it up would bring back a removed entry.
            return errno(libc::ENOENT);
        }
        let mut chain = Vec::new();
        let mut cur = ino;
        while cur != self.root_ino() && self.upper_stat(cur)?.is_none() {
            chain.push(cur);
            cur = self.info(cur)?.parent;
        }
        for n in chain.into_iter().rev() {
            let info = self.info(n)?;
            let lower = info.lower.ok_or(OverlayError::Errno(libc::ENOENT))?;
            let pdir = self
                .upper_dir_of(info.parent)?
                .ok_or(OverlayError::Errno(libc::EIO))?;
            self.copy_lower_entry(lower, &pdir, &info.name, false)
                .await?;
            tracing::debug!(path = %self.rel_path(n)?.display(), "copied up");
        }
        Ok(())
    }

    /// The upper directory of `parent`, copied up if needed. Caller holds `ns_lock`.
    pub(super) async fn writable_dir(&self, parent: u64) -> Result<OwnedFd> {
        self.copy_up(parent).await?;
        self.upper_dir_of(parent)?
            .ok_or(OverlayError::Errno(libc::ENOENT))
    }

    /// Copies `ino` up with everything below it, so it no longer needs the lower layer; its
    /// directories are then marked opaque. Used before renaming a directory.
    pub(super) async fn copy_up_tree(&self, ino: u64) -> Result<()> {
        self.copy_up(ino).await?;
        let info = self.info(ino)?;
        let (Some(lower), Some(t)) = (info.lower, self.target(ino)?) else {
            return Ok(());
        };
        if !self.lower.lower_node(lower).await?.kind.is_dir() {
            return Ok(());
        }
        let dir = t.open(OFlags::PATH | OFlags::DIRECTORY)?;
        self.fill_from_lower(lower, &dir).await?;
        whiteout::make_opaque(&t.dir, &t.name)?;
        Ok(())
    }

    /// Copies every lower child of `lower_dir` that `dir` does not hold (whiteouts included)
    /// into `dir`, recursively.
    fn fill_from_lower<'a>(
        &'a self,
        lower_dir: u64,
        dir: &'a OwnedFd,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            for child in self.lower.lower_children(lower_dir).await?.iter() {
                let name = OsStr::from_bytes(&child.name);
                match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => {
                        let is_dir = rustix::fs::FileType::from_raw_mode(st.st_mode)
                            == rustix::fs::FileType::Directory;
                        if is_dir && !whiteout::is_opaque(dir, name) {
                            let sub = rustix::fs::openat2(
                                dir,
                                name,
                                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                                Mode::empty(),
                                crate::beneath::RESOLVE,
                            )?;
                            if child.node.kind.is_dir() {
                                self.fill_from_lower(child.ino, &sub).await?;
                            }
                            whiteout::make_opaque(dir, name)?;
                        }
                    }
                    Err(e) if e == rustix::io::Errno::NOENT => {
                        self.copy_lower_entry(child.ino, dir, name, true).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
    }

    /// Copies lower entry `lower` to `name` in upper directory `pdir` (with its whole subtree
    /// when `recursive`, marking copied directories opaque).
    fn copy_lower_entry<'a>(
        &'a self,
        lower: u64,
        pdir: &'a OwnedFd,
        name: &'a OsStr,
        recursive: bool,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            let attr = self.lower.lower_attr(lower).await?;
            let tmp = tmp_name();
            let work = &self.work_fd;
            let mode = Mode::from_raw_mode(u32::from(attr.perm));
            match attr.kind {
                FileType::Directory => rustix::fs::mkdirat(work, tmp.as_str(), mode)?,
                FileType::Symlink => {
                    let target = self.lower.lower_readlink(lower).await?;
                    rustix::fs::symlinkat(OsStr::from_bytes(&target), work, tmp.as_str())?;
                }
                FileType::RegularFile => {
                    let mut src = self.lower.lower_open(lower).await?;
                    let dst = rustix::fs::openat(
                        work,
                        tmp.as_str(),
                        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                        mode,
                    )?;
                    let mut dst = std::fs::File::from(dst);
                    tokio::task::spawn_blocking(move || {
                        std::io::copy(&mut src, &mut dst).map(|_| ())
                    })
                    .await??;
                }
                _ => return errno(libc::EIO),
            }
            let cleanup = |e: OverlayError| {
                let flag = if attr.kind == FileType::Directory {
                    AtFlags::REMOVEDIR
                } else {
                    AtFlags::empty()
                };
                let _ = rustix::fs::unlinkat(work, tmp.as_str(), flag);
                e
            };
            let owner = (
                rustix::fs::Uid::from_raw(attr.uid),
                rustix::fs::Gid::from_raw(attr.gid),
            );
            rustix::fs::chownat(
                work,
                tmp.as_str(),
                Some(owner.0),
                Some(owner.1),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| cleanup(e.into()))?;
            if attr.kind != FileType::Symlink {
                rustix::fs::chmodat(work, tmp.as_str(), mode, AtFlags::empty())
                    .map_err(|e| cleanup(e.into()))?;
            }
            let times = Timestamps {
                last_access: ts(attr.atime),
                last_modification: ts(attr.mtime),
            };
            rustix::fs::utimensat(work, tmp.as_str(), &times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| cleanup(e.into()))?;
            if recursive && attr.kind == FileType::Directory {
                let sub = rustix::fs::openat(
                    work,
                    tmp.as_str(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| cleanup(e.into()))?;
                if let Err(e) = self.fill_from_lower(lower, &sub).await {
                    let _ = crate::beneath::remove_entry(work, OsStr::new(&tmp));
                    return Err(e);
                }
                whiteout::make_opaque(work, OsStr::new(&tmp)).map_err(|e| cleanup(e.into()))?;
            }
            rustix::fs::renameat_with(work, tmp.as_str(), pdir, name, RenameFlags::NOREPLACE)
                .map_err(|e| cleanup(e.into()))?;
            Ok(())
        })
    }
}

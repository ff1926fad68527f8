//! Reaching an inode in the upper layer: by its path from the layer root, with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` so that a symlink a user made can never lead
//! the daemon outside the layer. A whiteout at an inode's path counts as absent; a detached inode
//! has no path and is served by its kept file.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags, Stat};

use super::{whiteout, OverlayFs, Result};
use crate::beneath::RESOLVE;

/// Where an upper entry is: its directory and its name in it.
pub(super) struct Target {
    /// The directory holding it.
    pub dir: OwnedFd,
    /// Its name there.
    pub name: OsString,
}

impl Target {
    /// Opens the entry with `flags` (close-on-exec; never through a symlink or out of the layer).
    pub(super) fn open(&self, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat2(
            &self.dir,
            &self.name,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }
}

impl OverlayFs {
    /// Opens `rel` (`""` is the layer root) in the upper layer with `flags`, if it is there.
    pub(super) fn open_upper_rel(&self, rel: &Path, flags: OFlags) -> Result<Option<OwnedFd>> {
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
    pub(super) fn open_upper_dir(&self, rel: &Path) -> Result<Option<OwnedFd>> {
        self.open_upper_rel(rel, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC)
    }

    /// Opens `ino` itself in the upper layer with `flags`, if it is there: one `openat2` from
    /// the layer root, where going through its directory costs three system calls.
    pub(super) fn open_upper(&self, ino: u64, flags: OFlags) -> Result<Option<OwnedFd>> {
        self.open_upper_rel(&self.rel_path(ino)?, flags)
    }

    /// The upper directory of `ino` (a directory node), if it is in the upper layer.
    pub(super) fn upper_dir_of(&self, ino: u64) -> Result<Option<OwnedFd>> {
        let rel = self.rel_path(ino)?;
        self.open_upper_dir(&rel)
    }

    /// Where `ino` lives in the upper layer: its parent directory and name. The parent must
    /// already be in the upper layer.
    pub(super) fn target(&self, ino: u64) -> Result<Option<Target>> {
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
    pub(super) fn upper_stat(&self, ino: u64) -> Result<Option<(Target, Stat)>> {
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

    /// The upper file of `ino` opened with `flags` (a kept one for a detached inode), or
    /// `None` when the inode is not in the upper layer (a whiteout at its path counts as not).
    /// The caller holds `ns_lock`, so the path still names this inode's file.
    pub(super) fn upper_file(&self, ino: u64, flags: OFlags) -> Result<Option<Arc<File>>> {
        if let Some(f) = self.table().kept(ino) {
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
}

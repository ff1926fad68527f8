//! Removing names: UNLINK and RMDIR.
//!
//! An upper entry is removed; a name the lower layer has is then hidden by a whiteout. A
//! directory is empty when its merged listing is, and its upper copy may still hold whiteouts,
//! which go with it. An inode the kernel still knows is detached first (see `detached`), and
//! attached again if the removal fails.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use rfuse3::FileType;
use rustix::fs::{AtFlags, OFlags};

use super::upper::Target;
use super::{errno, whiteout, OverlayError, OverlayFs, Result};

impl OverlayFs {
    /// UNLINK (`dir` false) or RMDIR (`dir` true) of `name` in `parent`.
    pub(super) async fn remove_name(&self, parent: u64, name: &OsStr, dir: bool) -> Result<()> {
        let _ns = self.ns_write().await;
        let ino = self
            .child(parent, name)
            .await?
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        let attr = self.attr_of(ino).await?;
        let is_dir = attr.kind == FileType::Directory;
        if dir && !is_dir {
            return errno(libc::ENOTDIR);
        }
        if !dir && is_dir {
            return errno(libc::EISDIR);
        }
        if dir && !self.is_empty_dir(ino).await? {
            return errno(libc::ENOTEMPTY);
        }
        let lower_has = self.lower_has(parent, name).await?.is_some();
        let pdir = if lower_has {
            Some(self.writable_dir(parent).await?)
        } else {
            self.upper_dir_of(parent)?
        };
        let upper = self.upper_stat(ino)?;
        self.detach_name(parent, name)?;
        if let Some((t, _)) = upper {
            let removed = match dir {
                true => self
                    .clear_whiteouts(&t)
                    .and_then(|()| Ok(rustix::fs::unlinkat(&t.dir, &t.name, AtFlags::REMOVEDIR)?)),
                false => Ok(rustix::fs::unlinkat(&t.dir, &t.name, AtFlags::empty())?),
            };
            if let Err(e) = removed {
                self.reattach(ino);
                return Err(e);
            }
        }
        if lower_has {
            let pdir = pdir.ok_or(OverlayError::Errno(libc::EIO))?;
            whiteout::make_whiteout(&pdir, name)?;
        }
        self.table().drop_name(parent, name);
        Ok(())
    }

    /// Whether merged directory `ino` has no entries.
    pub(super) async fn is_empty_dir(&self, ino: u64) -> Result<bool> {
        Ok(self.merged_listing(ino).await?.is_empty())
    }

    /// Removes the whiteouts left in an upper directory that is empty in the merged view.
    pub(super) fn clear_whiteouts(&self, t: &Target) -> Result<()> {
        let dir = t.open(OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut d = rustix::fs::Dir::read_from(&dir)?;
        let mut names = Vec::new();
        while let Some(e) = d.read() {
            let n = OsStr::from_bytes(e?.file_name().to_bytes()).to_os_string();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        for n in names {
            rustix::fs::unlinkat(&dir, &n, AtFlags::empty())?;
        }
        Ok(())
    }
}

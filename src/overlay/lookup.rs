//! Lookup: which inode a name in a merged directory stands for, and what lower entry it merges.
//!
//! The upper layer is asked first; a whiteout there hides the lower entry, an opaque directory
//! hides the whole lower directory. Each answer to the kernel counts one lookup in the node
//! table, which FORGET takes back.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use rfuse3::raw::reply::ReplyEntry;
use rustix::fs::{AtFlags, Stat};

use super::mode::{is_dir_mode, upper_id};
use super::{errno, lower, whiteout, OverlayError, OverlayFs, Result, UPPER_TTL};

impl OverlayFs {
    /// The entry `name` in `parent` shows, counting one kernel lookup of it.
    pub(super) async fn lookup_entry(&self, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        if name.len() > 255 {
            return errno(libc::ENAMETOOLONG);
        }
        let pinfo = self.info(parent)?;
        let pdir = self.upper_dir_of(parent)?;
        let mut upper = None;
        if let Some(pdir) = &pdir {
            match rustix::fs::statat(pdir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if whiteout::is_whiteout(pdir, name, &st) => return errno(libc::ENOENT),
                Ok(st) => upper = Some(st),
                Err(e) if e == rustix::io::Errno::NOENT => {}
                Err(e) => return Err(e.into()),
            }
        }
        let lower = match pinfo.lower {
            Some(pl) => self.lower.lower_lookup(pl, name.as_bytes()).await?,
            None => None,
        };
        let ino = match (&upper, lower) {
            (Some(st), lower) => {
                let merged = self.merged_lower(pdir.as_ref(), name, Some(st), lower);
                self.table().lookup(parent, name, merged, upper_id(st))
            }
            (None, Some((l, _))) => self.table().lookup(parent, name, Some(l), None),
            (None, None) => return errno(libc::ENOENT),
        };
        let attr = match &upper {
            Some(st) => self.attr_from_stat(ino, st),
            None => self.attr_of(ino).await?,
        };
        Ok(ReplyEntry {
            ttl: UPPER_TTL,
            attr,
            generation: 0,
        })
    }

    /// LOOKUP as the kernel gets it: the entry, or for a miss in a known directory a negative
    /// entry (nodeid 0) the kernel may remember for a while. Compilers probe the same missing
    /// headers in every include directory thousands of times; every create goes through the
    /// kernel, which drops the negative entry then.
    pub(super) async fn lookup_or_miss(&self, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        match self.lookup_entry(parent, name).await {
            Err(OverlayError::Errno(libc::ENOENT)) if self.info(parent).is_ok() => {
                let mut attr = self.attr_of(parent).await?;
                attr.ino = 0;
                Ok(ReplyEntry {
                    ttl: UPPER_TTL,
                    attr,
                    generation: 0,
                })
            }
            r => r,
        }
    }

    /// The inode of `name` in `parent` as the merged view shows it.
    pub(super) async fn child(&self, parent: u64, name: &OsStr) -> Result<Option<u64>> {
        match self.lookup_entry(parent, name).await {
            Ok(e) => {
                // lookup_entry counted a kernel lookup that the kernel will not forget.
                self.forget_lookups(e.attr.ino, 1);
                Ok(Some(e.attr.ino))
            }
            Err(OverlayError::Errno(libc::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes back `n` kernel lookups of `ino` (FORGET).
    pub(super) fn forget_lookups(&self, ino: u64, n: u64) {
        self.table().forget(ino, n);
    }

    /// Whether the lower layer has `name` in `parent` (seen through `parent`'s merge).
    pub(super) async fn lower_has(&self, parent: u64, name: &OsStr) -> Result<Option<u64>> {
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
    pub(super) fn merged_lower(
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
        if is_dir_mode(st.st_mode) {
            (node.kind.is_dir() && !whiteout::is_opaque(pdir, name)).then_some(l)
        } else if whiteout::is_whiteout(pdir, name, st) {
            None
        } else {
            (!node.kind.is_dir()).then_some(l)
        }
    }
}

//! Extended attributes: SETXATTR, GETXATTR, LISTXATTR and REMOVEXATTR.
//!
//! Only the upper layer holds a user's attributes (the lower layer has none): setting one copies
//! the inode up first. Scorpio's own marks (whiteout, opaque) are never shown, set or removed
//! through the mount.

use std::ffi::OsStr;

use bytes::Bytes;
use rfuse3::raw::reply::ReplyXAttr;
use rustix::fs::XattrFlags;

use super::{errno, whiteout, OverlayError, OverlayFs, Result};

impl OverlayFs {
    /// SETXATTR `name` = `value` on `ino` (copied up first).
    pub(super) async fn set_xattr(
        &self,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: u32,
    ) -> Result<()> {
        if whiteout::is_private_xattr_os(name) {
            return errno(libc::EPERM);
        }
        let _ns = self.ns_write().await;
        self.copy_up(ino).await?;
        let t = self.target(ino)?.ok_or(OverlayError::Errno(libc::ENOENT))?;
        let path = whiteout::xattr_path(&t.dir, &t.name);
        rustix::fs::lsetxattr(&path, name, value, XattrFlags::from_bits_retain(flags))?;
        Ok(())
    }

    /// GETXATTR `name` of `ino`: its size when `size` is 0, else its value (ERANGE if larger).
    pub(super) async fn get_xattr(&self, ino: u64, name: &OsStr, size: u32) -> Result<ReplyXAttr> {
        if whiteout::is_private_xattr_os(name) {
            return errno(libc::ENODATA);
        }
        let Some((t, _)) = self.upper_stat(ino)? else {
            self.info(ino)?;
            return errno(libc::ENODATA);
        };
        let path = whiteout::xattr_path(&t.dir, &t.name);
        let len = rustix::fs::lgetxattr_query(&path, name)?;
        if size == 0 {
            return Ok(ReplyXAttr::Size(len as u32));
        }
        let mut buf = vec![0u8; len];
        let n = rustix::fs::lgetxattr(&path, name, &mut buf[..])?;
        buf.truncate(n);
        if buf.len() > size as usize {
            return errno(libc::ERANGE);
        }
        Ok(ReplyXAttr::Data(Bytes::from(buf)))
    }

    /// LISTXATTR of `ino`: the size of the list when `size` is 0, else the list.
    pub(super) async fn list_xattr(&self, ino: u64, size: u32) -> Result<ReplyXAttr> {
        let list = match self.upper_stat(ino)? {
            Some((t, _)) => {
                let path = whiteout::xattr_path(&t.dir, &t.name);
                let len = rustix::fs::llistxattr_query(&path)?;
                let mut buf = vec![0u8; len];
                let n = rustix::fs::llistxattr(&path, &mut buf[..])?;
                buf.truncate(n);
                whiteout::filter_xattr_list(&buf)
            }
            None => {
                self.info(ino)?;
                Vec::new()
            }
        };
        if size == 0 {
            return Ok(ReplyXAttr::Size(list.len() as u32));
        }
        if list.len() > size as usize {
            return errno(libc::ERANGE);
        }
        Ok(ReplyXAttr::Data(Bytes::from(list)))
    }

    /// REMOVEXATTR `name` of `ino`.
    pub(super) async fn remove_xattr(&self, ino: u64, name: &OsStr) -> Result<()> {
        if whiteout::is_private_xattr_os(name) {
            return errno(libc::EPERM);
        }
        let _ns = self.ns_write().await;
        if self.upper_stat(ino)?.is_none() {
            self.info(ino)?;
            return errno(libc::ENODATA);
        }
        let t = self.target(ino)?.ok_or(OverlayError::Errno(libc::ENOENT))?;
        let path = whiteout::xattr_path(&t.dir, &t.name);
        rustix::fs::lremovexattr(&path, name)?;
        Ok(())
    }
}

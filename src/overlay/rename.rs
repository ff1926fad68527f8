//! RENAME and RENAME2 (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
//!
//! The upper layer does the move with `renameat2`, so the kernel's atomicity holds; the node
//! table then records it. What the lower layer had at the old name is hidden by a whiteout; a
//! directory, which only moves as a whole, is copied up whole first and stops merging the
//! lower layer.

use std::ffi::OsStr;

use rfuse3::FileType;
use rustix::fs::{AtFlags, RenameFlags};

use super::mode::is_dir_mode;
use super::upper::Target;
use super::{errno, whiteout, OverlayError, OverlayFs, Result};

/// `renameat2` flags the kernel may pass.
const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;

impl OverlayFs {
    /// RENAME with `renameat2` flags: moves `name` in `parent` to `new_name` in `new_parent`,
    /// copying the source up first (a directory as a whole), leaving a whiteout where the lower
    /// layer had the old name and making a moved directory opaque over a lower one.
    pub(super) async fn rename_entry(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<()> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
            || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
        {
            return errno(libc::EINVAL);
        }
        if new_name.len() > 255 {
            return errno(libc::ENAMETOOLONG);
        }
        let _ns = self.ns_write().await;
        let src = self
            .child(parent, name)
            .await?
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        let dst = self.child(new_parent, new_name).await?;
        if dst == Some(src) {
            return Ok(());
        }
        let src_attr = self.attr_of(src).await?;
        let src_dir = src_attr.kind == FileType::Directory;
        if flags & RENAME_NOREPLACE != 0 && dst.is_some() {
            return errno(libc::EEXIST);
        }
        if flags & RENAME_EXCHANGE != 0 {
            let dst = dst.ok_or(OverlayError::Errno(libc::ENOENT))?;
            self.copy_up_tree(src).await?;
            self.copy_up_tree(dst).await?;
            let (a, b) = (self.target(src)?, self.target(dst)?);
            let (Some(a), Some(b)) = (a, b) else {
                return errno(libc::EIO);
            };
            rustix::fs::renameat_with(&a.dir, &a.name, &b.dir, &b.name, RenameFlags::EXCHANGE)?;
            self.table()
                .exchange(src, (parent, name), dst, (new_parent, new_name));
            return Ok(());
        }
        if let Some(dst) = dst {
            let dst_dir = self.attr_of(dst).await?.kind == FileType::Directory;
            match (src_dir, dst_dir) {
                (true, false) => return errno(libc::ENOTDIR),
                (false, true) => return errno(libc::EISDIR),
                (true, true) if !self.is_empty_dir(dst).await? => return errno(libc::ENOTEMPTY),
                _ => {}
            }
        }
        // A directory can only move as a whole: bring all of it up first.
        if src_dir {
            self.copy_up_tree(src).await?;
        } else {
            self.copy_up(src).await?;
        }
        let npdir = self.writable_dir(new_parent).await?;
        let src_t = self.target(src)?.ok_or(OverlayError::Errno(libc::EIO))?;
        match rustix::fs::statat(&npdir, new_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if whiteout::is_whiteout(&npdir, new_name, &st) => {
                rustix::fs::unlinkat(&npdir, new_name, AtFlags::empty())?;
            }
            Ok(st) if is_dir_mode(st.st_mode) => {
                self.clear_whiteouts(&Target {
                    dir: rustix::io::fcntl_dupfd_cloexec(&npdir, 0)?,
                    name: new_name.to_os_string(),
                })?;
            }
            _ => {}
        }
        let dst_lower = self.lower_has(new_parent, new_name).await?.is_some();
        if dst.is_some() {
            self.detach_name(new_parent, new_name)?;
        }
        if let Err(e) = rustix::fs::renameat_with(
            &src_t.dir,
            &src_t.name,
            &npdir,
            new_name,
            RenameFlags::empty(),
        ) {
            if let Some(d) = dst {
                self.reattach(d);
            }
            return Err(e.into());
        }
        if self.lower_has(parent, name).await?.is_some() {
            let pdir = self.writable_dir(parent).await?;
            whiteout::make_whiteout(&pdir, name)?;
        }
        if src_dir && dst_lower {
            whiteout::make_opaque(&npdir, new_name)?;
        }
        self.table()
            .rename(src, (parent, name), (new_parent, new_name), dst, src_dir);
        Ok(())
    }
}

//! Inodes whose last name is removed while the kernel still knows them (they may be open).
//!
//! Such an inode is detached in the node table (see `nodes`): no path reaches it again, and
//! a regular upper file keeps an fd there until FORGET, so a process holding it open goes on
//! reading and writing it. A detached inode that only the lower layer held gets its content
//! copied to an unnamed file at its first change.

use std::ffi::OsStr;
use std::fs::File;
use std::sync::Arc;

use rfuse3::FileType;
use rustix::fs::{Mode, OFlags};

use super::mode::is_dir_mode;
use super::{errno, OverlayError, OverlayFs, Result};

impl OverlayFs {
    /// Called under `ns_lock` before `name` in `parent` is removed (unlink, or a rename over
    /// it). When that is the last name the kernel knows for its inode, the inode is detached,
    /// and a regular upper file keeps an fd here until FORGET, so a process holding it open can
    /// go on reading and writing it. With another known name, the table's `drop_name` moves it there.
    pub(super) fn detach_name(&self, parent: u64, name: &OsStr) -> Result<()> {
        let Some(ino) = self.table().attached_at(parent, name) else {
            return Ok(());
        };
        let upper = self.upper_stat(ino)?;
        // Only a hard-linked file can have another name (looking for one costs a scan).
        if upper
            .as_ref()
            .is_some_and(|(_, st)| st.st_nlink > 1 && !is_dir_mode(st.st_mode))
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
    pub(super) fn reattach(&self, ino: u64) {
        self.table().reattach(ino);
    }

    /// The file a change to detached inode `ino` goes to (its name is gone, but a process may
    /// hold it open): its kept upper file, or else a copy of its lower content in an unnamed
    /// file, kept from then on. The caller holds `ns_lock` exclusively.
    pub(super) async fn kept_file(&self, ino: u64) -> Result<Arc<File>> {
        if let Some(f) = self.table().kept(ino) {
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
}

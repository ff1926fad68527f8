//! File content: READ, WRITE, FALLOCATE, FSYNC and FSYNCDIR, and STATFS.
//!
//! Files are opened without a message (`crate::NO_OPEN`), so every read and write names an
//! inode and is served from whichever layer holds it at that moment: a write copies it up first,
//! a detached inode is served by its kept file. The file is resolved and used under `ns_lock`
//! held shared, so it stays the inode's while it is used.

use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rfuse3::raw::flags::FUSE_WRITE_KILL_SUIDGID;
use rfuse3::raw::reply::{ReplyData, ReplyStatFs, ReplyWrite};
use rustix::fs::{Mode, OFlags};

use super::{privs, OverlayError, OverlayFs, Result};

impl OverlayFs {
    /// READ: up to `size` bytes of `ino` at `offset`.
    pub(super) async fn read_at(&self, ino: u64, offset: u64, size: u32) -> Result<ReplyData> {
        let ns = self.ns_lock.read().await;
        let file = match self.upper_file(ino, OFlags::RDONLY)? {
            Some(f) => f,
            None => {
                let lower = self
                    .info(ino)?
                    .lower
                    .ok_or(OverlayError::Errno(libc::ENOENT))?;
                Arc::new(self.lower.lower_open(lower).await?)
            }
        };
        let data = crate::fileio::read_full_at(&file, offset, size as usize)?;
        drop(ns);
        Ok(ReplyData { data })
    }

    /// WRITE: `data` to `ino` at `offset`, killing set-id bits first when the kernel asks.
    pub(super) async fn write_at(
        &self,
        ino: u64,
        offset: u64,
        data: &[u8],
        write_flags: u32,
    ) -> Result<ReplyWrite> {
        let (file, _ns) = self.writable_file(ino).await?;
        if write_flags & FUSE_WRITE_KILL_SUIDGID != 0 && privs::kill_suidgid(&*file)? {
            self.invalidate_attrs(ino).await;
        }
        file.write_all_at(data, offset)?;
        Ok(ReplyWrite {
            written: data.len() as u32,
        })
    }

    /// FALLOCATE on `ino`. It carries no kill flag: a caller but root is taken to lack
    /// CAP_FSETID, so its set-id bits go.
    pub(super) async fn allocate(
        &self,
        uid: u32,
        ino: u64,
        offset: u64,
        length: u64,
        mode: u32,
    ) -> Result<()> {
        let (file, _ns) = self.writable_file(ino).await?;
        if uid != 0 && privs::kill_suidgid(&*file)? {
            self.invalidate_attrs(ino).await;
        }
        rustix::fs::fallocate(
            file.as_fd(),
            rustix::fs::FallocateFlags::from_bits_retain(mode),
            offset,
            length,
        )?;
        Ok(())
    }

    /// FSYNC of `ino`. A file only in the lower layer has nothing unwritten.
    pub(super) async fn sync_file(&self, ino: u64, datasync: bool) -> Result<()> {
        let file = {
            let _ns = self.ns_lock.read().await;
            match self.upper_file(ino, OFlags::RDONLY)? {
                Some(f) => f,
                None => return Ok(()),
            }
        };
        // On a blocking thread: the session thread serves every other request meanwhile.
        tokio::task::spawn_blocking(move || match datasync {
            true => file.sync_data(),
            false => file.sync_all(),
        })
        .await??;
        Ok(())
    }

    /// FSYNCDIR of `ino`, if it is in the upper layer.
    pub(super) async fn sync_dir(&self, ino: u64) -> Result<()> {
        if let Some(dir) = self.upper_dir_of(ino)? {
            let fd = rustix::fs::openat(
                &dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            // On a blocking thread, as fsync.
            tokio::task::spawn_blocking(move || rustix::fs::fsync(&fd)).await??;
        }
        Ok(())
    }

    /// STATFS: the upper layer's filesystem.
    pub(super) fn fs_stats(&self) -> Result<ReplyStatFs> {
        let s = rustix::fs::fstatvfs(&self.upper_fd)?;
        Ok(ReplyStatFs {
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            bsize: s.f_bsize as u32,
            namelen: 255,
            frsize: s.f_frsize as u32,
        })
    }

    /// The file a write to `ino` goes to, copied up first when it is still only in the lower
    /// layer. Returned with `ns_lock` held shared: the file stays the inode's while it is used.
    async fn writable_file(
        &self,
        ino: u64,
    ) -> Result<(Arc<std::fs::File>, tokio::sync::RwLockReadGuard<'_, ()>)> {
        {
            let ns = self.ns_lock.read().await;
            if let Some(f) = self.upper_file(ino, OFlags::WRONLY)? {
                return Ok((f, ns));
            }
        }
        {
            let _ns = self.ns_write().await;
            if self.info(ino)?.detached {
                self.kept_file(ino).await?;
            } else {
                self.copy_up(ino).await?;
            }
        }
        let ns = self.ns_lock.read().await;
        let f = self
            .upper_file(ino, OFlags::WRONLY)?
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        Ok((f, ns))
    }
}

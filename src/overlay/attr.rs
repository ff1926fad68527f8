//! Attributes: what GETATTR shows from whichever layer holds an inode, SETATTR (copying up
//! first, or through the kept file of a detached inode), and READLINK.

use bytes::Bytes;
use rfuse3::raw::reply::{FileAttr, ReplyAttr, ReplyData};
use rfuse3::{SetAttr, Timestamp};
use rustix::fs::{AtFlags, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid};

use super::mode::file_type;
use super::{errno, privs, OverlayError, OverlayFs, Result, UPPER_TTL};

/// A setattr time, or "leave it" when absent.
fn timespec(t: Option<rfuse3::Timestamp>) -> Timespec {
    match t {
        Some(t) => Timespec {
            tv_sec: t.sec,
            tv_nsec: i64::from(t.nsec) as _,
        },
        None => Timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT as _,
        },
    }
}

impl OverlayFs {
    /// The attributes the kernel gets for `ino` with upper stat `st`.
    pub(super) fn attr_from_stat(&self, ino: u64, st: &Stat) -> FileAttr {
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
    pub(super) async fn attr_of(&self, ino: u64) -> Result<FileAttr> {
        if let Some((_, st)) = self.upper_stat(ino)? {
            return Ok(self.attr_from_stat(ino, &st));
        }
        // Detached but still known: the kept file is the truth.
        if let Some(f) = self.table().kept(ino) {
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

    /// SETATTR: owner, mode, size and times, copying `ino` up first (or through its kept file
    /// when it is detached).
    pub(super) async fn set_attr(&self, ino: u64, set: &SetAttr) -> Result<ReplyAttr> {
        // Held to the end: a push pruning the upper layer must not see half a change.
        let _ns = self.ns_write().await;
        if self.info(ino)?.detached {
            // Its name is gone, but a process may hold it open (fchmod, ftruncate...).
            let f = self.kept_file(ino).await?;
            if set.kill_suidgid && privs::kill_suidgid(&*f)? {
                self.invalidate_attrs(ino).await;
            }
            return self.setattr_fd(ino, &f, set);
        }
        // Usually already in the upper layer (tar sets owner, mode and times on what it just
        // wrote): then one lookup of the entry serves the whole request.
        let (t, st) = match self.upper_stat(ino)? {
            Some(found) => found,
            None => {
                self.copy_up(ino).await?;
                self.upper_stat(ino)?
                    .ok_or(OverlayError::Errno(libc::ENOENT))?
            }
        };
        let is_link =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink;
        // Before the change it comes with, so the kernel never shows the change with the bits.
        if set.kill_suidgid && privs::kill_suidgid_at(&t.dir, &t.name)? {
            self.invalidate_attrs(ino).await;
        }
        if set.uid.is_some() || set.gid.is_some() {
            rustix::fs::chownat(
                &t.dir,
                &t.name,
                set.uid.map(Uid::from_raw),
                set.gid.map(Gid::from_raw),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        if let Some(mode) = set.mode {
            if !is_link {
                rustix::fs::chmodat(
                    &t.dir,
                    &t.name,
                    Mode::from_raw_mode(mode & 0o7777),
                    AtFlags::empty(),
                )?;
            }
        }
        if let Some(size) = set.size {
            rustix::fs::ftruncate(t.open(OFlags::WRONLY | OFlags::NOFOLLOW)?, size)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let times = Timestamps {
                last_access: timespec(set.atime),
                last_modification: timespec(set.mtime),
            };
            rustix::fs::utimensat(&t.dir, &t.name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        }
        let st = rustix::fs::statat(&t.dir, &t.name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(ReplyAttr {
            ttl: UPPER_TTL,
            attr: self.attr_from_stat(ino, &st),
        })
    }

    /// setattr through the kept file of a detached inode.
    fn setattr_fd(&self, ino: u64, f: &std::fs::File, set: &SetAttr) -> Result<ReplyAttr> {
        if set.uid.is_some() || set.gid.is_some() {
            rustix::fs::fchown(f, set.uid.map(Uid::from_raw), set.gid.map(Gid::from_raw))?;
        }
        if let Some(mode) = set.mode {
            rustix::fs::fchmod(f, Mode::from_raw_mode(mode & 0o7777))?;
        }
        if let Some(size) = set.size {
            f.set_len(size)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let times = Timestamps {
                last_access: timespec(set.atime),
                last_modification: timespec(set.mtime),
            };
            rustix::fs::futimens(f, &times)?;
        }
        let st = rustix::fs::fstat(f)?;
        Ok(ReplyAttr {
            ttl: UPPER_TTL,
            attr: self.attr_from_stat(ino, &st),
        })
    }

    /// READLINK: the target of symlink `ino`, from whichever layer holds it.
    pub(super) async fn read_link(&self, ino: u64) -> Result<ReplyData> {
        if let Some((t, _)) = self.upper_stat(ino)? {
            let target = rustix::fs::readlinkat(&t.dir, &t.name, Vec::new())?;
            return Ok(ReplyData {
                data: Bytes::from(target.into_bytes()),
            });
        }
        let lower = self
            .info(ino)?
            .lower
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        Ok(ReplyData {
            data: self.lower.lower_readlink(lower).await?,
        })
    }
}

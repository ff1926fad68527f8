//! The rfuse3 `Filesystem` implementation of OverlayFs.
//!
//! Permission checks are the kernel's (`default_permissions`); this code runs as the daemon's
//! user, creates entries, then gives them to the caller (or to the set-group-id directory's
//! group). Every namespace change holds `ns_lock`.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, Stream};
use rfuse3::raw::flags::FUSE_WRITE_KILL_SUIDGID;
use rfuse3::raw::prelude::*;
use rfuse3::{Result as FuseResult, SetAttr};
use rustix::fs::{AtFlags, Gid, Mode, OFlags, RenameFlags, Timespec, Timestamps, Uid, XattrFlags};

use super::{errno, privs, whiteout, OverlayError, OverlayFs, Result, Target, UPPER_TTL};

/// `renameat2` flags the kernel may pass.
const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;

pub(super) fn is_dir_mode(mode: u32) -> bool {
    rustix::fs::FileType::from_raw_mode(mode) == rustix::fs::FileType::Directory
}

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

fn upper_id(st: &rustix::fs::Stat) -> Option<(u64, u64)> {
    (!is_dir_mode(st.st_mode) && st.st_nlink > 1).then_some((st.st_dev, st.st_ino))
}

impl OverlayFs {
    async fn do_lookup(&self, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
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
                self.link_node(parent, name, merged, upper_id(st))
            }
            (None, Some((l, _))) => self.link_node(parent, name, Some(l), None),
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

    /// The upper directory of `parent`, copied up if needed. Caller holds `ns_lock`.
    async fn writable_dir(&self, parent: u64) -> Result<rustix::fd::OwnedFd> {
        self.copy_up(parent).await?;
        self.upper_dir_of(parent)?
            .ok_or(OverlayError::Errno(libc::ENOENT))
    }

    /// Checks that `name` is free in the merged `parent`, removing a whiteout that hides a lower
    /// entry. Returns whether the lower layer has `name` (a new directory must then be opaque).
    async fn claim_name(
        &self,
        parent: u64,
        pdir: &rustix::fd::OwnedFd,
        name: &OsStr,
    ) -> Result<bool> {
        match rustix::fs::statat(pdir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if whiteout::is_whiteout(pdir, name, &st) => {
                rustix::fs::unlinkat(pdir, name, AtFlags::empty())?;
                Ok(true)
            }
            Ok(_) => errno(libc::EEXIST),
            Err(e) if e == rustix::io::Errno::NOENT => {
                if self.lower_has(parent, name).await?.is_some() {
                    return errno(libc::EEXIST);
                }
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives a new entry to its creator with exactly the mode `mode` asked for: the request
    /// carries the caller's umask already, but the daemon's own umask took bits away from it,
    /// and chown cleared the set-id bits.
    fn give(
        &self,
        pdir: &rustix::fd::OwnedFd,
        name: &OsStr,
        req: &Request,
        mode: Option<u32>,
    ) -> Result<()> {
        let pst = rustix::fs::fstat(pdir)?;
        let (uid, gid) = self.new_owner(&pst, req.uid, req.gid);
        rustix::fs::chownat(
            pdir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        // Most requests (0644, 0755) come out right already: no further system call.
        if let Some(mode) = mode.filter(|m| m & (0o7000 | crate::privacy::DAEMON_UMASK) != 0) {
            let mut want = mode & 0o7777;
            // A directory made in a set-group-id directory inherits the bit (as on any disk).
            let st = rustix::fs::statat(pdir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if is_dir_mode(st.st_mode) {
                want |= st.st_mode & libc::S_ISGID;
            }
            rustix::fs::chmodat(pdir, name, Mode::from_raw_mode(want), AtFlags::empty())?;
        }
        Ok(())
    }

    async fn new_entry(&self, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        let pdir = self
            .upper_dir_of(parent)?
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        let st = rustix::fs::statat(&pdir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let ino = self.link_node(parent, name, None, upper_id(&st));
        Ok(ReplyEntry {
            ttl: UPPER_TTL,
            attr: self.attr_from_stat(ino, &st),
            generation: 0,
        })
    }

    /// Creates `name` in `parent` with `make`, then hands it to the caller.
    async fn create_with(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        mode: Option<u32>,
        make: impl FnOnce(&rustix::fd::OwnedFd) -> rustix::io::Result<()>,
    ) -> Result<(ReplyEntry, bool)> {
        if name.len() > 255 {
            return errno(libc::ENAMETOOLONG);
        }
        let pdir = self.writable_dir(parent).await?;
        let lower_had = self.claim_name(parent, &pdir, name).await?;
        make(&pdir)?;
        self.give(&pdir, name, req, mode)?;
        Ok((self.new_entry(parent, name).await?, lower_had))
    }

    /// Whether merged directory `ino` has no entries.
    async fn is_empty_dir(&self, ino: u64) -> Result<bool> {
        Ok(self.merged_listing(ino).await?.is_empty())
    }

    /// Removes the whiteouts left in an upper directory that is empty in the merged view.
    fn clear_whiteouts(&self, t: &Target) -> Result<()> {
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

    /// The inode of `name` in `parent` as the merged view shows it.
    async fn child(&self, parent: u64, name: &OsStr) -> Result<Option<u64>> {
        match self.do_lookup(parent, name).await {
            Ok(e) => {
                // do_lookup counted a kernel lookup that the kernel will not forget.
                self.forget_one(e.attr.ino, 1);
                Ok(Some(e.attr.ino))
            }
            Err(OverlayError::Errno(libc::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn forget_one(&self, ino: u64, n: u64) {
        if ino == self.root_ino() {
            return;
        }
        self.table().forget(ino, n);
    }

    async fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> Result<()> {
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

    async fn do_rename(
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
        self.table().rename(
            src,
            (parent, name),
            (new_parent, new_name),
            dst,
            src_dir,
        );
        Ok(())
    }

    async fn do_setattr(&self, ino: u64, set: &SetAttr) -> Result<ReplyAttr> {
        // Held to the end: a push settling the upper layer must not see half a change.
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

impl Filesystem for OverlayFs {
    async fn init(&self, _req: Request) -> FuseResult<ReplyInit> {
        Ok(ReplyInit::default())
    }

    async fn destroy(&self, _req: Request) {}

    async fn lookup(&self, _req: Request, parent: u64, name: &OsStr) -> FuseResult<ReplyEntry> {
        match self.do_lookup(parent, name).await {
            // A miss the kernel may remember for a while (nodeid 0): compilers probe the same
            // missing headers in every include directory thousands of times. Every create goes
            // through the kernel, which drops the negative entry then.
            Err(OverlayError::Errno(libc::ENOENT)) if self.info(parent).is_ok() => {
                let mut attr = self.attr_of(parent).await?;
                attr.ino = 0;
                Ok(ReplyEntry {
                    ttl: UPPER_TTL,
                    attr,
                    generation: 0,
                })
            }
            r => Ok(r?),
        }
    }

    async fn forget(&self, _req: Request, inode: u64, nlookup: u64) {
        self.forget_one(inode, nlookup);
    }

    async fn batch_forget(&self, _req: Request, inodes: &[(u64, u64)]) {
        for (ino, n) in inodes {
            self.forget_one(*ino, *n);
        }
    }

    async fn getattr(
        &self,
        _req: Request,
        inode: u64,
        _fh: Option<u64>,
        _flags: u32,
    ) -> FuseResult<ReplyAttr> {
        Ok(ReplyAttr {
            ttl: UPPER_TTL,
            attr: self.attr_of(inode).await?,
        })
    }

    async fn setattr(
        &self,
        _req: Request,
        inode: u64,
        _fh: Option<u64>,
        set_attr: SetAttr,
    ) -> FuseResult<ReplyAttr> {
        Ok(self.do_setattr(inode, &set_attr).await?)
    }

    async fn readlink(&self, _req: Request, inode: u64) -> FuseResult<ReplyData> {
        if let Some((t, _)) = self.upper_stat(inode)? {
            let target =
                rustix::fs::readlinkat(&t.dir, &t.name, Vec::new()).map_err(OverlayError::from)?;
            return Ok(ReplyData {
                data: Bytes::from(target.into_bytes()),
            });
        }
        let lower = self
            .info(inode)?
            .lower
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        Ok(ReplyData {
            data: self.lower.lower_readlink(lower).await?,
        })
    }

    async fn symlink(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        link: &OsStr,
    ) -> FuseResult<ReplyEntry> {
        let _ns = self.ns_write().await;
        let (e, _) = self
            .create_with(&req, parent, name, None, |d| {
                rustix::fs::symlinkat(link, d, name)
            })
            .await?;
        Ok(e)
    }

    async fn mknod(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> FuseResult<ReplyEntry> {
        let _ns = self.ns_write().await;
        let ft = rustix::fs::FileType::from_raw_mode(mode);
        let perm = Mode::from_raw_mode(mode & 0o7777);
        let (e, _) = self
            .create_with(&req, parent, name, Some(mode), |d| {
                rustix::fs::mknodat(d, name, ft, perm, u64::from(rdev))
            })
            .await?;
        Ok(e)
    }

    async fn mkdir(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
    ) -> FuseResult<ReplyEntry> {
        let _ns = self.ns_write().await;
        let perm = Mode::from_raw_mode(mode & 0o7777);
        let (e, lower_had) = self
            .create_with(&req, parent, name, Some(mode), |d| {
                rustix::fs::mkdirat(d, name, perm)
            })
            .await?;
        if lower_had {
            let pdir = self
                .upper_dir_of(parent)?
                .ok_or(OverlayError::Errno(libc::EIO))?;
            whiteout::make_opaque(&pdir, name).map_err(OverlayError::from)?;
        }
        Ok(e)
    }

    async fn unlink(&self, _req: Request, parent: u64, name: &OsStr) -> FuseResult<()> {
        Ok(self.remove(parent, name, false).await?)
    }

    async fn rmdir(&self, _req: Request, parent: u64, name: &OsStr) -> FuseResult<()> {
        Ok(self.remove(parent, name, true).await?)
    }

    async fn rename(
        &self,
        _req: Request,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> FuseResult<()> {
        Ok(self
            .do_rename(parent, name, new_parent, new_name, 0)
            .await?)
    }

    async fn rename2(
        &self,
        _req: Request,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> FuseResult<()> {
        Ok(self
            .do_rename(parent, name, new_parent, new_name, flags)
            .await?)
    }

    async fn link(
        &self,
        _req: Request,
        inode: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> FuseResult<ReplyEntry> {
        let _ns = self.ns_write().await;
        self.copy_up(inode).await?;
        let src = self
            .target(inode)?
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        let npdir = self.writable_dir(new_parent).await?;
        self.claim_name(new_parent, &npdir, new_name).await?;
        rustix::fs::linkat(&src.dir, &src.name, &npdir, new_name, AtFlags::empty())
            .map_err(OverlayError::from)?;
        let st = rustix::fs::statat(&npdir, new_name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(OverlayError::from)?;
        self.table()
            .add_link(inode, new_parent, new_name, (st.st_dev, st.st_ino));
        Ok(ReplyEntry {
            ttl: UPPER_TTL,
            attr: self.attr_from_stat(inode, &st),
            generation: 0,
        })
    }

    /// Zero-message opens (`crate::NO_OPEN`): reads and writes find the file by inode.
    async fn open(&self, _req: Request, _inode: u64, _flags: u32) -> FuseResult<ReplyOpen> {
        Err(crate::NO_OPEN.into())
    }

    async fn read(
        &self,
        _req: Request,
        inode: u64,
        _fh: u64,
        offset: u64,
        size: u32,
    ) -> FuseResult<ReplyData> {
        let ns = self.ns_lock.read().await;
        let file = match self.upper_file(inode, OFlags::RDONLY)? {
            Some(f) => f,
            None => {
                let lower = self
                    .info(inode)?
                    .lower
                    .ok_or(OverlayError::Errno(libc::ENOENT))?;
                Arc::new(self.lower.lower_open(lower).await?)
            }
        };
        let data = crate::fileio::read_full_at(&file, offset, size as usize)
            .map_err(OverlayError::from)?;
        drop(ns);
        Ok(ReplyData { data })
    }

    async fn write(
        &self,
        _req: Request,
        inode: u64,
        _fh: u64,
        offset: u64,
        data: &[u8],
        write_flags: u32,
        _flags: u32,
    ) -> FuseResult<ReplyWrite> {
        let (file, _ns) = self.writable_file(inode).await?;
        if write_flags & FUSE_WRITE_KILL_SUIDGID != 0
            && privs::kill_suidgid(&*file).map_err(OverlayError::from)?
        {
            self.invalidate_attrs(inode).await;
        }
        file.write_all_at(data, offset)
            .map_err(OverlayError::from)?;
        Ok(ReplyWrite {
            written: data.len() as u32,
        })
    }

    async fn statfs(&self, _req: Request, _inode: u64) -> FuseResult<ReplyStatFs> {
        let s = rustix::fs::fstatvfs(&self.upper_fd).map_err(OverlayError::from)?;
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

    async fn release(
        &self,
        _req: Request,
        _inode: u64,
        _fh: u64,
        _flags: u32,
        _lock_owner: u64,
        _flush: bool,
    ) -> FuseResult<()> {
        Ok(())
    }

    async fn fsync(&self, _req: Request, inode: u64, _fh: u64, datasync: bool) -> FuseResult<()> {
        let file = {
            let _ns = self.ns_lock.read().await;
            // A file only in the lower layer has nothing unwritten.
            match self.upper_file(inode, OFlags::RDONLY)? {
                Some(f) => f,
                None => return Ok(()),
            }
        };
        // On a blocking thread: the session thread serves every other request meanwhile.
        tokio::task::spawn_blocking(move || match datasync {
            true => file.sync_data(),
            false => file.sync_all(),
        })
        .await
        .map_err(OverlayError::from)?
        .map_err(OverlayError::from)?;
        Ok(())
    }

    async fn setxattr(
        &self,
        _req: Request,
        inode: u64,
        name: &OsStr,
        value: &[u8],
        flags: u32,
        _position: u32,
    ) -> FuseResult<()> {
        if whiteout::is_private_xattr_os(name) {
            return Err(libc::EPERM.into());
        }
        let _ns = self.ns_write().await;
        self.copy_up(inode).await?;
        let t = self
            .target(inode)?
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        let path = whiteout::xattr_path(&t.dir, &t.name);
        rustix::fs::lsetxattr(&path, name, value, XattrFlags::from_bits_retain(flags))
            .map_err(OverlayError::from)?;
        Ok(())
    }

    async fn getxattr(
        &self,
        _req: Request,
        inode: u64,
        name: &OsStr,
        size: u32,
    ) -> FuseResult<ReplyXAttr> {
        if whiteout::is_private_xattr_os(name) {
            return Err(libc::ENODATA.into());
        }
        let Some((t, _)) = self.upper_stat(inode)? else {
            self.info(inode)?;
            return Err(libc::ENODATA.into());
        };
        let path = whiteout::xattr_path(&t.dir, &t.name);
        let len = rustix::fs::lgetxattr_query(&path, name).map_err(OverlayError::from)?;
        if size == 0 {
            return Ok(ReplyXAttr::Size(len as u32));
        }
        let mut buf = vec![0u8; len];
        let n = rustix::fs::lgetxattr(&path, name, &mut buf[..]).map_err(OverlayError::from)?;
        buf.truncate(n);
        if buf.len() > size as usize {
            return Err(libc::ERANGE.into());
        }
        Ok(ReplyXAttr::Data(Bytes::from(buf)))
    }

    async fn listxattr(&self, _req: Request, inode: u64, size: u32) -> FuseResult<ReplyXAttr> {
        let list = match self.upper_stat(inode)? {
            Some((t, _)) => {
                let path = whiteout::xattr_path(&t.dir, &t.name);
                let len = rustix::fs::llistxattr_query(&path).map_err(OverlayError::from)?;
                let mut buf = vec![0u8; len];
                let n = rustix::fs::llistxattr(&path, &mut buf[..]).map_err(OverlayError::from)?;
                buf.truncate(n);
                whiteout::filter_xattr_list(&buf)
            }
            None => {
                self.info(inode)?;
                Vec::new()
            }
        };
        if size == 0 {
            return Ok(ReplyXAttr::Size(list.len() as u32));
        }
        if list.len() > size as usize {
            return Err(libc::ERANGE.into());
        }
        Ok(ReplyXAttr::Data(Bytes::from(list)))
    }

    async fn removexattr(&self, _req: Request, inode: u64, name: &OsStr) -> FuseResult<()> {
        if whiteout::is_private_xattr_os(name) {
            return Err(libc::EPERM.into());
        }
        let _ns = self.ns_write().await;
        if self.upper_stat(inode)?.is_none() {
            self.info(inode)?;
            return Err(libc::ENODATA.into());
        }
        let t = self
            .target(inode)?
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        let path = whiteout::xattr_path(&t.dir, &t.name);
        rustix::fs::lremovexattr(&path, name).map_err(OverlayError::from)?;
        Ok(())
    }

    async fn flush(
        &self,
        _req: Request,
        _inode: u64,
        _fh: u64,
        _lock_owner: u64,
    ) -> FuseResult<()> {
        Ok(())
    }

    async fn opendir(&self, _req: Request, _inode: u64, _flags: u32) -> FuseResult<ReplyOpen> {
        Err(crate::NO_OPENDIR.into())
    }

    async fn readdir<'a>(
        &'a self,
        _req: Request,
        parent: u64,
        _fh: u64,
        offset: i64,
    ) -> FuseResult<ReplyDirectory<impl Stream<Item = FuseResult<DirectoryEntry>> + Send + 'a>>
    {
        let listing = self.listing(parent).await?;
        let entries: Vec<FuseResult<DirectoryEntry>> = listing
            .iter()
            .filter(|e| e.off > offset)
            .map(|e| {
                Ok(DirectoryEntry {
                    inode: e.ino,
                    kind: e.kind,
                    name: e.name.clone(),
                    offset: e.off,
                })
            })
            .collect();
        Ok(ReplyDirectory {
            entries: stream::iter(entries),
        })
    }

    async fn readdirplus<'a>(
        &'a self,
        _req: Request,
        parent: u64,
        _fh: u64,
        offset: u64,
        _lock_owner: u64,
    ) -> FuseResult<
        ReplyDirectoryPlus<impl Stream<Item = FuseResult<DirectoryEntryPlus>> + Send + 'a>,
    > {
        let listing = self.listing(parent).await?;
        let mut entries = Vec::new();
        for e in listing.iter().filter(|e| e.off as u64 > offset) {
            let attr = if e.off <= 2 {
                // `.` and `..`: the kernel links neither, so no lookup is counted.
                self.attr_of(e.ino).await?
            } else {
                // Each entry counts as a kernel lookup; one that vanished meanwhile is left out.
                match self.do_lookup(parent, &e.name).await {
                    Ok(found) => found.attr,
                    Err(OverlayError::Errno(libc::ENOENT)) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            entries.push(Ok(DirectoryEntryPlus {
                inode: attr.ino,
                generation: 0,
                kind: attr.kind,
                name: e.name.clone(),
                offset: e.off,
                attr,
                entry_ttl: UPPER_TTL,
                attr_ttl: UPPER_TTL,
            }));
        }
        Ok(ReplyDirectoryPlus {
            entries: stream::iter(entries),
        })
    }

    async fn releasedir(
        &self,
        _req: Request,
        _inode: u64,
        _fh: u64,
        _flags: u32,
    ) -> FuseResult<()> {
        Ok(())
    }

    async fn fsyncdir(
        &self,
        _req: Request,
        inode: u64,
        _fh: u64,
        _datasync: bool,
    ) -> FuseResult<()> {
        if let Some(dir) = self.upper_dir_of(inode)? {
            let fd = rustix::fs::openat(
                &dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(OverlayError::from)?;
            // On a blocking thread, as fsync.
            tokio::task::spawn_blocking(move || rustix::fs::fsync(&fd))
                .await
                .map_err(OverlayError::from)?
                .map_err(OverlayError::from)?;
        }
        Ok(())
    }

    async fn access(&self, _req: Request, inode: u64, _mask: u32) -> FuseResult<()> {
        self.info(inode)?;
        Ok(())
    }

    async fn create(
        &self,
        _req: Request,
        _parent: u64,
        _name: &OsStr,
        _mode: u32,
        _flags: u32,
    ) -> FuseResult<ReplyCreated> {
        Err(crate::NO_CREATE.into())
    }

    async fn fallocate(
        &self,
        req: Request,
        inode: u64,
        _fh: u64,
        offset: u64,
        length: u64,
        mode: u32,
    ) -> FuseResult<()> {
        let (file, _ns) = self.writable_file(inode).await?;
        // FALLOCATE carries no kill flag: anyone but root is taken to lack CAP_FSETID.
        if req.uid != 0 && privs::kill_suidgid(&*file).map_err(OverlayError::from)? {
            self.invalidate_attrs(inode).await;
        }
        rustix::fs::fallocate(
            file.as_fd(),
            rustix::fs::FallocateFlags::from_bits_retain(mode),
            offset,
            length,
        )
        .map_err(OverlayError::from)?;
        Ok(())
    }
}

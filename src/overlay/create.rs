//! Making entries: MKNOD, MKDIR, SYMLINK and LINK.
//!
//! Permission checks are the kernel's (`default_permissions`); this code runs as the daemon's
//! user, makes the entry in the upper layer (copying its directory up first), then gives it to
//! the caller (or to the set-group-id directory's group) with exactly the mode asked for. A
//! name the lower layer has is only free behind a whiteout, which the new entry replaces; a new
//! directory there is opaque. Every operation here holds `ns_lock` exclusively.

use std::ffi::OsStr;

use rfuse3::raw::reply::ReplyEntry;
use rfuse3::raw::Request;
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Gid, Mode, Stat, Uid};

use super::mode::{is_dir_mode, upper_id};
use super::{errno, whiteout, OverlayError, OverlayFs, Result, UPPER_TTL};

impl OverlayFs {
    /// Checks that `name` is free in the merged `parent`, removing a whiteout that hides a lower
    /// entry. Returns whether the lower layer has `name` (a new directory must then be opaque).
    pub(super) async fn claim_name(
        &self,
        parent: u64,
        pdir: &OwnedFd,
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
    fn give(&self, pdir: &OwnedFd, name: &OsStr, req: &Request, mode: Option<u32>) -> Result<()> {
        let pst = rustix::fs::fstat(pdir)?;
        let (uid, gid) = self.new_owner(&pst, req.uid, req.gid);
        match rustix::fs::chownat(
            pdir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => {}
            // A plain daemon cannot give an entry away (another user creates one only through
            // `allow_other`, or a group the daemon is not in): it stays the daemon's user's, as
            // on sshfs.
            Err(rustix::io::Errno::PERM) if !crate::privacy::is_root() => {}
            Err(e) => return Err(e.into()),
        }
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

    /// The entry just made at `name` in `parent`, counting the kernel lookup it carries.
    async fn new_entry(&self, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        let pdir = self
            .upper_dir_of(parent)?
            .ok_or(OverlayError::Errno(libc::ENOENT))?;
        let st = rustix::fs::statat(&pdir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let ino = self.table().lookup(parent, name, None, upper_id(&st));
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
        make: impl FnOnce(&OwnedFd) -> rustix::io::Result<()>,
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

    /// Ownership for a new entry in `parent_dir`: the caller, with the directory's group when
    /// it is set-group-id.
    fn new_owner(&self, parent_st: &Stat, uid: u32, gid: u32) -> (u32, u32) {
        if parent_st.st_mode & libc::S_ISGID != 0 {
            (uid, parent_st.st_gid)
        } else {
            (uid, gid)
        }
    }

    /// SYMLINK: `name` in `parent` pointing at `link`.
    pub(super) async fn make_symlink(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        link: &OsStr,
    ) -> Result<ReplyEntry> {
        let _ns = self.ns_write().await;
        let (e, _) = self
            .create_with(req, parent, name, None, |d| {
                rustix::fs::symlinkat(link, d, name)
            })
            .await?;
        Ok(e)
    }

    /// MKNOD: a file, fifo, socket or device `name` in `parent`.
    pub(super) async fn make_node(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> Result<ReplyEntry> {
        let _ns = self.ns_write().await;
        let ft = rustix::fs::FileType::from_raw_mode(mode);
        let perm = Mode::from_raw_mode(mode & 0o7777);
        let (e, _) = self
            .create_with(req, parent, name, Some(mode), |d| {
                rustix::fs::mknodat(d, name, ft, perm, u64::from(rdev))
            })
            .await?;
        Ok(e)
    }

    /// MKDIR: directory `name` in `parent`, opaque when the lower layer had that name.
    pub(super) async fn make_dir(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
    ) -> Result<ReplyEntry> {
        let _ns = self.ns_write().await;
        let perm = Mode::from_raw_mode(mode & 0o7777);
        let (e, lower_had) = self
            .create_with(req, parent, name, Some(mode), |d| {
                rustix::fs::mkdirat(d, name, perm)
            })
            .await?;
        if lower_had {
            let pdir = self
                .upper_dir_of(parent)?
                .ok_or(OverlayError::Errno(libc::EIO))?;
            whiteout::make_opaque(&pdir, name)?;
        }
        Ok(e)
    }

    /// LINK: a new name `new_name` in `new_parent` for `ino` (copied up first); the node table
    /// then finds `ino` by either name.
    pub(super) async fn make_link(
        &self,
        ino: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<ReplyEntry> {
        let _ns = self.ns_write().await;
        self.copy_up(ino).await?;
        let src = self.target(ino)?.ok_or(OverlayError::Errno(libc::ENOENT))?;
        let npdir = self.writable_dir(new_parent).await?;
        self.claim_name(new_parent, &npdir, new_name).await?;
        rustix::fs::linkat(&src.dir, &src.name, &npdir, new_name, AtFlags::empty())?;
        let st = rustix::fs::statat(&npdir, new_name, AtFlags::SYMLINK_NOFOLLOW)?;
        self.table()
            .add_link(ino, new_parent, new_name, (st.st_dev, st.st_ino));
        Ok(ReplyEntry {
            ttl: UPPER_TTL,
            attr: self.attr_from_stat(ino, &st),
            generation: 0,
        })
    }
}

//! The rfuse3 `Filesystem` implementation of OverlayFs: each request calls the named operation
//! that serves it (lookup.rs, create.rs, remove.rs, rename.rs, attr.rs, io.rs, xattr.rs,
//! readdir.rs), whose errors become an errno here.
//!
//! Files and directories are opened without a message (`crate::NO_OPEN`, `crate::NO_OPENDIR`),
//! so OPEN, RELEASE, FLUSH, OPENDIR and RELEASEDIR do nothing; CREATE is left to the kernel's
//! MKNOD fallback (`crate::NO_CREATE`).

use std::ffi::OsStr;

use futures::stream::Stream;
use rfuse3::raw::prelude::*;
use rfuse3::{Result as FuseResult, SetAttr};

use super::{OverlayFs, UPPER_TTL};

impl Filesystem for OverlayFs {
    async fn init(&self, _req: Request) -> FuseResult<ReplyInit> {
        Ok(ReplyInit::default())
    }

    async fn destroy(&self, _req: Request) {}

    async fn lookup(&self, _req: Request, parent: u64, name: &OsStr) -> FuseResult<ReplyEntry> {
        Ok(self.lookup_or_miss(parent, name).await?)
    }

    async fn forget(&self, _req: Request, inode: u64, nlookup: u64) {
        self.forget_lookups(inode, nlookup);
    }

    async fn batch_forget(&self, _req: Request, inodes: &[(u64, u64)]) {
        for (ino, n) in inodes {
            self.forget_lookups(*ino, *n);
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
        Ok(self.set_attr(inode, &set_attr).await?)
    }

    async fn readlink(&self, _req: Request, inode: u64) -> FuseResult<ReplyData> {
        Ok(self.read_link(inode).await?)
    }

    async fn symlink(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        link: &OsStr,
    ) -> FuseResult<ReplyEntry> {
        Ok(self.make_symlink(&req, parent, name, link).await?)
    }

    async fn mknod(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> FuseResult<ReplyEntry> {
        Ok(self.make_node(&req, parent, name, mode, rdev).await?)
    }

    async fn mkdir(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
    ) -> FuseResult<ReplyEntry> {
        Ok(self.make_dir(&req, parent, name, mode).await?)
    }

    async fn unlink(&self, _req: Request, parent: u64, name: &OsStr) -> FuseResult<()> {
        Ok(self.remove_name(parent, name, false).await?)
    }

    async fn rmdir(&self, _req: Request, parent: u64, name: &OsStr) -> FuseResult<()> {
        Ok(self.remove_name(parent, name, true).await?)
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
            .rename_entry(parent, name, new_parent, new_name, 0)
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
            .rename_entry(parent, name, new_parent, new_name, flags)
            .await?)
    }

    async fn link(
        &self,
        _req: Request,
        inode: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> FuseResult<ReplyEntry> {
        Ok(self.make_link(inode, new_parent, new_name).await?)
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
        Ok(self.read_at(inode, offset, size).await?)
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
        Ok(self.write_at(inode, offset, data, write_flags).await?)
    }

    async fn statfs(&self, _req: Request, _inode: u64) -> FuseResult<ReplyStatFs> {
        Ok(self.fs_stats()?)
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
        Ok(self.sync_file(inode, datasync).await?)
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
        Ok(self.set_xattr(inode, name, value, flags).await?)
    }

    async fn getxattr(
        &self,
        _req: Request,
        inode: u64,
        name: &OsStr,
        size: u32,
    ) -> FuseResult<ReplyXAttr> {
        Ok(self.get_xattr(inode, name, size).await?)
    }

    async fn listxattr(&self, _req: Request, inode: u64, size: u32) -> FuseResult<ReplyXAttr> {
        Ok(self.list_xattr(inode, size).await?)
    }

    async fn removexattr(&self, _req: Request, inode: u64, name: &OsStr) -> FuseResult<()> {
        Ok(self.remove_xattr(inode, name).await?)
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
        Ok(self.read_dir(parent, offset).await?)
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
        Ok(self.read_dir_plus(parent, offset).await?)
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
        Ok(self.sync_dir(inode).await?)
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
        Ok(self.allocate(req.uid, inode, offset, length, mode).await?)
    }
}

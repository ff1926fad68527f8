//! A read-only FUSE view of one Dicfuse directory, as the root of its own session.
//!
//! The kernel calls a session's root inode 1; Dicfuse calls the directory by its table number.
//! This adapter maps the two both ways and hands every other inode through unchanged (Dicfuse
//! numbers are stable and shared by every session over the same commit). Writes never reach it:
//! the session is mounted read-only, and they would be EROFS here anyway.

use std::ffi::OsStr;
use std::sync::Arc;

use futures::stream::{self, Stream, StreamExt};
use rfuse3::raw::prelude::*;
use rfuse3::{Result, SetAttr};

use crate::dicfuse::Dicfuse;
use crate::ino::RootMap;

/// Dicfuse directory `root` served as a session root.
#[derive(Clone)]
pub struct Subtree {
    dic: Arc<Dicfuse>,
    root: RootMap,
}

fn erofs<T>() -> Result<T> {
    Err(libc::EROFS.into())
}

impl Subtree {
    /// A view of Dicfuse directory `root`.
    pub fn new(dic: Arc<Dicfuse>, root: u64) -> Subtree {
        Subtree {
            dic,
            root: RootMap::new(root),
        }
    }

    fn inward(&self, ino: u64) -> u64 {
        self.root.inward(ino)
    }

    fn outward(&self, ino: u64) -> u64 {
        self.root.outward(ino)
    }
}

impl Filesystem for Subtree {
    async fn init(&self, req: Request) -> Result<ReplyInit> {
        self.dic.init(req).await
    }

    async fn destroy(&self, _req: Request) {}

    async fn lookup(&self, req: Request, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        let mut e = self.dic.lookup(req, self.inward(parent), name).await?;
        // A negative entry (ino 0) stays negative.
        if e.attr.ino != 0 {
            e.attr.ino = self.outward(e.attr.ino);
        }
        Ok(e)
    }

    async fn getattr(
        &self,
        req: Request,
        inode: u64,
        fh: Option<u64>,
        flags: u32,
    ) -> Result<ReplyAttr> {
        let mut a = self.dic.getattr(req, self.inward(inode), fh, flags).await?;
        a.attr.ino = inode;
        Ok(a)
    }

    async fn setattr(
        &self,
        _req: Request,
        _inode: u64,
        _fh: Option<u64>,
        _set_attr: SetAttr,
    ) -> Result<ReplyAttr> {
        erofs()
    }

    async fn readlink(&self, req: Request, inode: u64) -> Result<ReplyData> {
        self.dic.readlink(req, self.inward(inode)).await
    }

    async fn symlink(
        &self,
        _req: Request,
        _parent: u64,
        _name: &OsStr,
        _link: &OsStr,
    ) -> Result<ReplyEntry> {
        erofs()
    }

    async fn mknod(
        &self,
        _req: Request,
        _parent: u64,
        _name: &OsStr,
        _mode: u32,
        _rdev: u32,
    ) -> Result<ReplyEntry> {
        erofs()
    }

    async fn mkdir(
        &self,
        _req: Request,
        _parent: u64,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
    ) -> Result<ReplyEntry> {
        erofs()
    }

    async fn unlink(&self, _req: Request, _parent: u64, _name: &OsStr) -> Result<()> {
        erofs()
    }

    async fn rmdir(&self, _req: Request, _parent: u64, _name: &OsStr) -> Result<()> {
        erofs()
    }

    async fn rename(
        &self,
        _req: Request,
        _parent: u64,
        _name: &OsStr,
        _new_parent: u64,
        _new_name: &OsStr,
    ) -> Result<()> {
        erofs()
    }

    async fn link(
        &self,
        _req: Request,
        _inode: u64,
        _new_parent: u64,
        _new_name: &OsStr,
    ) -> Result<ReplyEntry> {
        erofs()
    }

    async fn open(&self, req: Request, inode: u64, flags: u32) -> Result<ReplyOpen> {
        self.dic.open(req, self.inward(inode), flags).await
    }

    async fn read(
        &self,
        req: Request,
        inode: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<ReplyData> {
        self.dic
            .read(req, self.inward(inode), fh, offset, size)
            .await
    }

    async fn write(
        &self,
        _req: Request,
        _inode: u64,
        _fh: u64,
        _offset: u64,
        _data: &[u8],
        _write_flags: u32,
        _flags: u32,
    ) -> Result<ReplyWrite> {
        erofs()
    }

    async fn statfs(&self, req: Request, inode: u64) -> Result<ReplyStatFs> {
        self.dic.statfs(req, self.inward(inode)).await
    }

    async fn release(
        &self,
        req: Request,
        inode: u64,
        fh: u64,
        flags: u32,
        lock_owner: u64,
        flush: bool,
    ) -> Result<()> {
        self.dic
            .release(req, self.inward(inode), fh, flags, lock_owner, flush)
            .await
    }

    async fn fsync(&self, _req: Request, _inode: u64, _fh: u64, _datasync: bool) -> Result<()> {
        Ok(())
    }

    async fn setxattr(
        &self,
        _req: Request,
        _inode: u64,
        _name: &OsStr,
        _value: &[u8],
        _flags: u32,
        _position: u32,
    ) -> Result<()> {
        erofs()
    }

    async fn getxattr(
        &self,
        req: Request,
        inode: u64,
        name: &OsStr,
        size: u32,
    ) -> Result<ReplyXAttr> {
        self.dic.getxattr(req, self.inward(inode), name, size).await
    }

    async fn listxattr(&self, req: Request, inode: u64, size: u32) -> Result<ReplyXAttr> {
        self.dic.listxattr(req, self.inward(inode), size).await
    }

    async fn removexattr(&self, _req: Request, _inode: u64, _name: &OsStr) -> Result<()> {
        erofs()
    }

    /// Nothing happens on close, so the kernel is told once (ENOSYS) to stop sending FLUSH.
    async fn flush(&self, _req: Request, _inode: u64, _fh: u64, _lock_owner: u64) -> Result<()> {
        Err(libc::ENOSYS.into())
    }

    async fn opendir(&self, req: Request, inode: u64, flags: u32) -> Result<ReplyOpen> {
        self.dic.opendir(req, self.inward(inode), flags).await
    }

    async fn readdir<'a>(
        &'a self,
        req: Request,
        parent: u64,
        fh: u64,
        offset: i64,
    ) -> Result<ReplyDirectory<impl Stream<Item = Result<DirectoryEntry>> + Send + 'a>> {
        let r = self
            .dic
            .readdir(req, self.inward(parent), fh, offset)
            .await?;
        let mut v: Vec<Result<DirectoryEntry>> = r.entries.collect().await;
        for e in v.iter_mut().flatten() {
            e.inode = self.outward(e.inode);
        }
        Ok(ReplyDirectory {
            entries: stream::iter(v),
        })
    }

    async fn readdirplus<'a>(
        &'a self,
        req: Request,
        parent: u64,
        fh: u64,
        offset: u64,
        lock_owner: u64,
    ) -> Result<ReplyDirectoryPlus<impl Stream<Item = Result<DirectoryEntryPlus>> + Send + 'a>>
    {
        let r = self
            .dic
            .readdirplus(req, self.inward(parent), fh, offset, lock_owner)
            .await?;
        let mut v: Vec<Result<DirectoryEntryPlus>> = r.entries.collect().await;
        for e in v.iter_mut().flatten() {
            e.inode = self.outward(e.inode);
            // Node id 0 (an entry sent without attributes, see Dicfuse) must stay 0.
            if e.attr.ino != 0 {
                e.attr.ino = e.inode;
            }
        }
        Ok(ReplyDirectoryPlus {
            entries: stream::iter(v),
        })
    }

    async fn releasedir(&self, req: Request, inode: u64, fh: u64, flags: u32) -> Result<()> {
        self.dic
            .releasedir(req, self.inward(inode), fh, flags)
            .await
    }

    async fn access(&self, req: Request, inode: u64, mask: u32) -> Result<()> {
        self.dic.access(req, self.inward(inode), mask).await
    }

    async fn create(
        &self,
        _req: Request,
        _parent: u64,
        _name: &OsStr,
        _mode: u32,
        _flags: u32,
    ) -> Result<ReplyCreated> {
        erofs()
    }
}

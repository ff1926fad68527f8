//! A read-only FUSE view of one Dicfuse directory, as the root of its own session.
//!
//! The kernel calls a session's root inode 1; Dicfuse calls the directory by its table number.
//! This adapter maps the two both ways ([`RootMap`]) and hands every other inode through
//! unchanged (Dicfuse numbers are stable and shared by every session over the same commit).
//! Requests go on to Dicfuse, which refuses writes (EROFS) as in the workspace; the session is
//! mounted read-only besides, so the kernel refuses them first.

use std::ffi::OsStr;
use std::sync::Arc;

use futures::stream::Stream;
use rfuse3::raw::prelude::*;
use rfuse3::{Result, SetAttr};

use crate::dicfuse::Dicfuse;
use crate::fs_methods::relist;
use crate::ino::RootMap;

/// Dicfuse directory `root` served as a session root.
#[derive(Clone)]
pub struct Subtree {
    dic: Arc<Dicfuse>,
    root: RootMap,
}

impl Subtree {
    /// A view of Dicfuse directory `root`.
    pub fn new(dic: Arc<Dicfuse>, root: u64) -> Subtree {
        Subtree {
            dic,
            root: RootMap::new(root),
        }
    }
}

/// Hands a request to Dicfuse with the kernel's root renumbered (the `via` of `forward!`).
macro_rules! inward {
    ($self:ident, $ino:expr, |$fs:ident, $i:ident| $call:expr) => {{
        let $fs = $self.dic.as_ref();
        let $i = $self.root.inward($ino);
        $call
    }};
}

impl Filesystem for Subtree {
    async fn init(&self, req: Request) -> Result<ReplyInit> {
        self.dic.init(req).await
    }

    async fn destroy(&self, _req: Request) {}

    async fn lookup(&self, req: Request, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        let mut e = inward!(self, parent, |fs, i| fs.lookup(req, i, name).await)?;
        // A negative entry (ino 0) stays negative.
        if e.attr.ino != 0 {
            e.attr.ino = self.root.outward(e.attr.ino);
        }
        Ok(e)
    }

    forward!(attr inward: getattr, setattr);
    forward!(inward: readlink, symlink, mknod, mkdir, unlink, rmdir, rename, link);
    forward!(inward: open, read, write, statfs, release, fsync, opendir, releasedir, access);
    forward!(inward: setxattr, getxattr, listxattr, removexattr, create);

    /// Nothing happens on close, so the kernel is told once (ENOSYS) to stop sending FLUSH.
    async fn flush(&self, _req: Request, _inode: u64, _fh: u64, _lock_owner: u64) -> Result<()> {
        Err(libc::ENOSYS.into())
    }

    method!(fn readdir(self, req, parent, fh, offset) {
        let r = inward!(self, parent, |fs, i| fs.readdir(req, i, fh, offset).await)?;
        let root = self.root;
        Ok(ReplyDirectory {
            entries: relist(r.entries, |e| e.inode = root.outward(e.inode)).await,
        })
    });

    method!(fn readdirplus(self, req, parent, fh, offset, lock_owner) {
        let r = inward!(self, parent, |fs, i| fs
            .readdirplus(req, i, fh, offset, lock_owner)
            .await)?;
        let root = self.root;
        let entries = relist(r.entries, |e| {
            e.inode = root.outward(e.inode);
            // Node id 0 (an entry sent without attributes, see Dicfuse) must stay 0.
            if e.attr.ino != 0 {
                e.attr.ino = e.inode;
            }
        })
        .await;
        Ok(ReplyDirectoryPlus { entries })
    });
}

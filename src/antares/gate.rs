//! Holding a mount's requests while its CL layer is swapped.
//!
//! [`Gated`] serves the router with every request but INIT and DESTROY holding its [`Gate`]
//! shared; a swap takes it exclusively, so it begins once the requests in flight are done, and
//! requests that arrive meanwhile wait for it to end: they are held, never failed. The swap
//! must send the kernel's invalidations only after the gate is released: the kernel may hold a
//! page or inode lock while it waits for a held request.

use std::ffi::OsStr;
use std::sync::Arc;

use futures::stream::Stream;
use rfuse3::raw::prelude::*;
use rfuse3::{Result, SetAttr};

use crate::fs_methods::relist;
use crate::fuse::router::WorkspaceFs;

/// The gate of one mount: shared by its requests, exclusive for a swap.
pub type Gate = Arc<tokio::sync::RwLock<()>>;

/// A router whose requests pass a [`Gate`].
pub struct Gated {
    inner: WorkspaceFs,
    gate: Gate,
}

impl Gated {
    /// `inner`, its requests held by `gate`.
    pub fn new(inner: WorkspaceFs, gate: Gate) -> Gated {
        Gated { inner, gate }
    }
}

/// Hands a request on while holding the gate (the `via` of `forward!`).
macro_rules! held {
    ($self:ident, $ino:expr, |$fs:ident, $i:ident| $call:expr) => {{
        let _held = $self.gate.read().await;
        let $fs = &$self.inner;
        let $i = $ino;
        $call
    }};
}

impl Filesystem for Gated {
    async fn init(&self, req: Request) -> Result<ReplyInit> {
        self.inner.init(req).await
    }

    async fn destroy(&self, req: Request) {
        self.inner.destroy(req).await
    }

    async fn lookup(&self, req: Request, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        held!(self, parent, |fs, i| fs.lookup(req, i, name).await)
    }

    async fn forget(&self, req: Request, inode: u64, nlookup: u64) {
        held!(self, inode, |fs, i| fs.forget(req, i, nlookup).await)
    }

    async fn batch_forget(&self, req: Request, inodes: &[(u64, u64)]) {
        let _held = self.gate.read().await;
        self.inner.batch_forget(req, inodes).await
    }

    forward!(held: getattr, setattr, readlink, symlink, mknod, mkdir, unlink, rmdir, rename);
    forward!(held: rename2, link, open, read, write, statfs, release, fsync, setxattr);
    forward!(held: getxattr, listxattr, removexattr, opendir, releasedir, fsyncdir, access);
    forward!(held: create, fallocate);

    async fn flush(&self, req: Request, inode: u64, fh: u64, lock_owner: u64) -> Result<()> {
        self.inner.flush(req, inode, fh, lock_owner).await
    }

    method!(fn readdir(self, req, parent, fh, offset) {
        let _held = self.gate.read().await;
        let r = self.inner.readdir(req, parent, fh, offset).await?;
        Ok(ReplyDirectory {
            entries: relist(r.entries, |_| {}).await,
        })
    });

    method!(fn readdirplus(self, req, parent, fh, offset, lock_owner) {
        let _held = self.gate.read().await;
        let r = self
            .inner
            .readdirplus(req, parent, fh, offset, lock_owner)
            .await?;
        Ok(ReplyDirectoryPlus {
            entries: relist(r.entries, |_| {}).await,
        })
    });
}

//! [`Timed`]: any filesystem, with each request the kernel sends counted and timed by opcode
//! (`scorpio_fuse_requests_total`, `scorpio_fuse_errors_total`,
//! `scorpio_fuse_request_seconds`).
//!
//! Every session is mounted through `Mounted::mount`, which wraps its filesystem in this: the
//! one place every FUSE request passes, whichever filesystem answers (the workspace router,
//! an Antares overlay, a read-only subtree). Every method of the trait is handed on unchanged,
//! the defaults included, so the wrapped filesystem answers exactly as it would alone.

use std::ffi::OsStr;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::Stream;
use rfuse3::notify::Notify;
use rfuse3::raw::prelude::*;
use rfuse3::{Result, SetAttr};

/// `fs`, with its requests counted and timed.
pub struct Timed<F>(pub F);

fn record(op: &'static str, started: Instant, failed: bool) {
    crate::metrics::global().fuse_request(op, started.elapsed(), failed);
}

/// `timed!(name, ...)`: hands each request on to the wrapped filesystem, timing it.
macro_rules! timed {
    ($($name:ident),+ $(,)?) => {
        $( fs_sig!(timed {@one} $name); )+
    };
    (@one; $name:ident<$($lt:lifetime)?>($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        async fn $name<$($lt)?>(&$($lt)? self, req: Request $(, $arg: $ty)*) -> Result<$ret> {
            let started = Instant::now();
            let r = self.0.$name(req $(, $arg)*).await;
            record(stringify!($name), started, r.is_err());
            r
        }
    };
}

impl<F: Filesystem + Send + Sync> Filesystem for Timed<F> {
    async fn init(&self, req: Request) -> Result<ReplyInit> {
        self.0.init(req).await
    }

    async fn destroy(&self, req: Request) {
        self.0.destroy(req).await
    }

    async fn lookup(&self, req: Request, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        let started = Instant::now();
        let r = self.0.lookup(req, parent, name).await;
        record("lookup", started, r.is_err());
        r
    }

    async fn forget(&self, req: Request, inode: u64, nlookup: u64) {
        let started = Instant::now();
        self.0.forget(req, inode, nlookup).await;
        record("forget", started, false);
    }

    async fn batch_forget(&self, req: Request, inodes: &[(u64, u64)]) {
        let started = Instant::now();
        self.0.batch_forget(req, inodes).await;
        record("batch_forget", started, false);
    }

    async fn flush(&self, req: Request, inode: u64, fh: u64, lock_owner: u64) -> Result<()> {
        let started = Instant::now();
        let r = self.0.flush(req, inode, fh, lock_owner).await;
        record("flush", started, r.is_err());
        r
    }

    async fn interrupt(&self, req: Request, unique: u64) -> Result<()> {
        let started = Instant::now();
        let r = self.0.interrupt(req, unique).await;
        record("interrupt", started, r.is_err());
        r
    }

    async fn bmap(&self, req: Request, inode: u64, blocksize: u32, idx: u64) -> Result<ReplyBmap> {
        let started = Instant::now();
        let r = self.0.bmap(req, inode, blocksize, idx).await;
        record("bmap", started, r.is_err());
        r
    }

    #[allow(clippy::too_many_arguments)]
    async fn poll(
        &self,
        req: Request,
        inode: u64,
        fh: u64,
        kh: Option<u64>,
        flags: u32,
        events: u32,
        notify: &Notify,
    ) -> Result<ReplyPoll> {
        let started = Instant::now();
        let r = self.0.poll(req, inode, fh, kh, flags, events, notify).await;
        record("poll", started, r.is_err());
        r
    }

    async fn notify_reply(&self, req: Request, inode: u64, offset: u64, data: Bytes) -> Result<()> {
        self.0.notify_reply(req, inode, offset, data).await
    }

    async fn lseek(
        &self,
        req: Request,
        inode: u64,
        fh: u64,
        offset: u64,
        whence: u32,
    ) -> Result<ReplyLSeek> {
        let started = Instant::now();
        let r = self.0.lseek(req, inode, fh, offset, whence).await;
        record("lseek", started, r.is_err());
        r
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_file_range(
        &self,
        req: Request,
        inode: u64,
        fh_in: u64,
        off_in: u64,
        inode_out: u64,
        fh_out: u64,
        off_out: u64,
        length: u64,
        flags: u64,
    ) -> Result<ReplyCopyFileRange> {
        let started = Instant::now();
        let r = self
            .0
            .copy_file_range(
                req, inode, fh_in, off_in, inode_out, fh_out, off_out, length, flags,
            )
            .await;
        record("copy_file_range", started, r.is_err());
        r
    }

    timed!(getattr, setattr, readlink, symlink, mknod, mkdir, unlink, rmdir, rename, rename2);
    timed!(link, open, read, write, statfs, release, fsync, setxattr, getxattr, listxattr);
    timed!(
        removexattr,
        opendir,
        readdir,
        readdirplus,
        releasedir,
        fsyncdir,
        access,
        create
    );
    timed!(fallocate);
}

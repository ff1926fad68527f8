//! WorkspaceFs: the router of the workspace's one FUSE session.
//!
//! Every inode has one owner, found from its number (`crate::ino`): the read-only Dicfuse view,
//! or the overlay of a slot. A mounted path is spliced into the Dicfuse
//! tree: looking up its name in its Dicfuse parent answers the overlay's root. When the whole
//! repository is mounted, the kernel's root inode (1) stands for the overlay's root.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::sync::{Arc, RwLock};

use futures::stream::{self, Stream, StreamExt};
use rfuse3::notify::Notify;
use rfuse3::raw::prelude::*;
use rfuse3::{Result, SetAttr};

use crate::dicfuse::Dicfuse;
use crate::fs_methods::relist;
use crate::ino::{self, RootMap, Slot, KERNEL_ROOT as ROOT};
use crate::overlay::{OverlayFs, UPPER_TTL};

#[derive(Default)]
struct Table {
    slots: HashMap<Slot, Arc<OverlayFs>>,
    /// (Dicfuse parent, name) -> slot of the overlay mounted there.
    at: HashMap<(u64, OsString), Slot>,
    /// The slot mounted over the whole repository.
    root: Option<Slot>,
}

/// Who answers for an inode.
enum Owner {
    Dic,
    Ovl(Arc<OverlayFs>),
}

/// The workspace filesystem: Dicfuse with overlays spliced in. Clones share everything, so the
/// session and the daemon's API hold the same router.
#[derive(Clone)]
pub struct WorkspaceFs {
    dic: Arc<Dicfuse>,
    table: Arc<RwLock<Table>>,
    /// The notify channel of the session the kernel uses now (replaced when a plain user's
    /// read-only mount gives way to a read-write one).
    notify: Arc<RwLock<Option<Notify>>>,
    /// Set once the kernel serves the session; before that there is no cache to invalidate.
    live: Arc<std::sync::atomic::AtomicBool>,
}

impl WorkspaceFs {
    /// A router over `dic` with no overlays.
    pub fn new(dic: Arc<Dicfuse>) -> WorkspaceFs {
        WorkspaceFs {
            dic,
            table: Arc::new(RwLock::new(Table::default())),
            notify: Arc::new(RwLock::new(None)),
            live: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// The read-only view.
    pub fn dicfuse(&self) -> &Arc<Dicfuse> {
        &self.dic
    }

    /// Hands the router the session's notify channel, for cache invalidation.
    pub fn set_notify(&self, n: Notify) {
        for ovl in self.read().slots.values() {
            ovl.set_notify(n.clone());
        }
        *self.notify.write().unwrap_or_else(|p| p.into_inner()) = Some(n);
    }

    /// The current session's notify channel.
    fn notify(&self) -> Option<Notify> {
        self.notify
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Splices `ovl` in at `name` of Dicfuse directory `parent` (`None`: the whole repository).
    pub async fn attach(&self, slot: Slot, at: Option<(u64, OsString)>, ovl: Arc<OverlayFs>) {
        if let Some(n) = self.notify() {
            ovl.set_notify(n.clone());
        }
        {
            let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
            t.slots.insert(slot, ovl);
            match &at {
                Some(key) => {
                    t.at.insert(key.clone(), slot);
                }
                None => t.root = Some(slot),
            }
        }
        self.invalidate(at).await;
    }

    /// Removes the overlay of `slot`; its path shows the read-only view again.
    pub async fn detach(&self, slot: Slot) -> Option<Arc<OverlayFs>> {
        let (ovl, at) = {
            let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
            let ovl = t.slots.remove(&slot)?;
            let key =
                t.at.iter()
                    .find(|(_, s)| **s == slot)
                    .map(|(k, _)| k.clone());
            if let Some(k) = &key {
                t.at.remove(k);
            }
            if t.root == Some(slot) {
                t.root = None;
            }
            (ovl, key)
        };
        if at.is_none() {
            // Names only the overlay had at the root are cached too.
            self.invalidate_names(ROOT, ovl.upper_path()).await;
        }
        self.invalidate(at).await;
        Some(ovl)
    }

    /// Marks the session as served by the kernel (mount changes now need invalidation).
    pub fn set_live(&self) {
        self.live.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the kernel serves the session.
    pub fn is_live(&self) -> bool {
        self.live.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Tells the kernel to forget the entries of `dir` named like those in local directory `names`.
    async fn invalidate_names(&self, dir: u64, names: &std::path::Path) {
        let Some(n) = self.notify().filter(|_| self.is_live()) else {
            return;
        };
        if let Ok(rd) = std::fs::read_dir(names) {
            for e in rd.flatten() {
                n.clone().invalid_entry(dir, e.file_name()).await;
            }
        }
    }

    /// Tells the kernel to forget what it cached for a mount point.
    async fn invalidate(&self, at: Option<(u64, OsString)>) {
        let Some(n) = self.notify().filter(|_| self.is_live()) else {
            return;
        };
        match at {
            Some((parent, name)) => {
                n.clone().invalid_entry(parent, name).await;
                // The kernel's cached listing of `parent` carries the entry's old inode number.
                n.clone().invalid_inode(parent, 0, 0).await;
            }
            None => {
                n.clone().invalid_inode(ROOT, 0, 0).await;
                if let Ok(children) = self.dic.lower_children(ROOT).await {
                    for c in children.iter() {
                        let name = OsString::from(String::from_utf8_lossy(c.name()).into_owned());
                        n.clone().invalid_entry(ROOT, name).await;
                    }
                }
            }
        }
    }

    /// Waits (at most 2 s) until every queued invalidation has been written to the kernel.
    pub async fn flush_notifications(&self) {
        crate::overlay::notifications_written().await;
    }

    /// Tells the kernel to drop the attributes and pages it cached for inodes of `ovl`.
    pub async fn forget_inodes(&self, ovl: &OverlayFs, inodes: &[u64]) {
        let Some(n) = self.notify().filter(|_| self.is_live()) else {
            return;
        };
        for ino in inodes {
            n.clone().invalid_inode(self.out(ovl, *ino), 0, 0).await;
        }
    }

    /// Tells the kernel to forget the names `names` in directories `dirs` of `ovl`, and what it
    /// cached of those directories (their listings): a pull changed what they show.
    pub async fn forget_names(&self, ovl: &OverlayFs, dirs: &[u64], names: &[OsString]) {
        let Some(n) = self.notify().filter(|_| self.is_live()) else {
            return;
        };
        for dir in dirs {
            let out = self.out(ovl, *dir);
            for name in names {
                n.clone().invalid_entry(out, name.clone()).await;
            }
            n.clone().invalid_inode(out, 0, 0).await;
        }
    }

    /// Tells the kernel to forget names (`(directory, name)`) and inodes of the read-only view
    /// after the base moved under them.
    pub async fn forget_cached(
        &self,
        items: impl IntoIterator<Item = (u64, OsString, Option<u64>)>,
    ) {
        let Some(n) = self.notify().filter(|_| self.is_live()) else {
            return;
        };
        for (parent, name, ino) in items {
            // Where an overlay is spliced in, the kernel's entry is the overlay's: the push did
            // not change what it shows, and dropping it would drop the whole subtree's inodes.
            let hidden = {
                let t = self.read();
                (parent == ROOT && t.root.is_some()) || t.at.contains_key(&(parent, name.clone()))
            };
            if hidden {
                continue;
            }
            n.clone().invalid_entry(parent, name).await;
            if let Some(ino) = ino {
                n.clone().invalid_inode(ino, 0, 0).await;
            }
        }
    }

    /// Number of overlays attached.
    pub fn overlay_count(&self) -> usize {
        self.read().slots.len()
    }

    fn owner(&self, ino: u64) -> Result<(Owner, u64)> {
        let t = self.read();
        if ino == ROOT {
            if let Some(slot) = t.root {
                let ovl = t.slots.get(&slot).ok_or(libc::ENOENT)?.clone();
                let r = ovl.root_ino();
                return Ok((Owner::Ovl(ovl), r));
            }
        }
        match ino::owner(ino) {
            ino::Owner::View => Ok((Owner::Dic, ino)),
            ino::Owner::Overlay(slot) => {
                let ovl = t.slots.get(&slot).ok_or(libc::ESTALE)?.clone();
                Ok((Owner::Ovl(ovl), ino))
            }
        }
    }

    /// The number the kernel knows `ino` of `ovl` by: an overlay mounted over the whole
    /// repository has its root remapped to 1.
    fn out(&self, ovl: &OverlayFs, ino: u64) -> u64 {
        let t = self.read();
        match t.root.and_then(|s| t.slots.get(&s)) {
            Some(root) if std::ptr::eq(root.as_ref(), ovl) => {
                RootMap::new(ovl.root_ino()).outward(ino)
            }
            _ => ino,
        }
    }

    fn mounted_at(&self, parent: u64, name: &OsStr) -> Option<Arc<OverlayFs>> {
        let t = self.read();
        let slot = t.at.get(&(parent, name.to_os_string()))?;
        t.slots.get(slot).cloned()
    }

    async fn root_entry(&self, ovl: &OverlayFs, req: Request) -> Result<ReplyEntry> {
        let a = ovl.getattr(req, ovl.root_ino(), None, 0).await?;
        Ok(ReplyEntry {
            ttl: UPPER_TTL,
            attr: a.attr,
            generation: 0,
        })
    }

    fn same_owner(&self, a: u64, b: u64) -> Result<(Owner, u64, u64)> {
        let (oa, ia) = self.owner(a)?;
        let (ob, ib) = self.owner(b)?;
        match (&oa, &ob) {
            (Owner::Dic, Owner::Dic) => Ok((oa, ia, ib)),
            (Owner::Ovl(x), Owner::Ovl(y)) if Arc::ptr_eq(x, y) => Ok((oa, ia, ib)),
            _ => Err(libc::EXDEV.into()),
        }
    }
}

/// Hands a request to the owner of `$ino` with the owner's number for it (the `via` of
/// `forward!`).
macro_rules! route {
    ($self:ident, $ino:expr, |$fs:ident, $i:ident| $call:expr) => {{
        match $self.owner($ino)? {
            (Owner::Dic, $i) => {
                let $fs = $self.dic.as_ref();
                $call
            }
            (Owner::Ovl(o), $i) => {
                let $fs = o.as_ref();
                $call
            }
        }
    }};
}

impl Filesystem for WorkspaceFs {
    async fn init(&self, _req: Request) -> Result<ReplyInit> {
        Ok(ReplyInit {
            max_write: std::num::NonZeroU32::new(1 << 20).ok_or(libc::EINVAL)?,
        })
    }

    async fn destroy(&self, _req: Request) {}

    async fn lookup(&self, req: Request, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        match self.owner(parent)? {
            (Owner::Dic, p) => match self.mounted_at(p, name) {
                Some(ovl) => self.root_entry(&ovl, req).await,
                None => self.dic.lookup(req, p, name).await,
            },
            (Owner::Ovl(o), p) => {
                let mut e = o.lookup(req, p, name).await?;
                e.attr.ino = self.out(&o, e.attr.ino);
                Ok(e)
            }
        }
    }

    async fn forget(&self, req: Request, inode: u64, nlookup: u64) {
        if let Ok((Owner::Ovl(o), i)) = self.owner(inode) {
            o.forget(req, i, nlookup).await;
        }
    }

    async fn batch_forget(&self, req: Request, inodes: &[(u64, u64)]) {
        for (ino, n) in inodes {
            self.forget(req, *ino, *n).await;
        }
    }

    forward!(attr route: getattr, setattr);
    forward!(route: readlink, symlink, mknod, mkdir, unlink, open, read, write, statfs, release);
    forward!(route: fsync, setxattr, getxattr, listxattr, removexattr, releasedir, fsyncdir);
    forward!(route: access, create, fallocate);

    async fn rmdir(&self, req: Request, parent: u64, name: &OsStr) -> Result<()> {
        if let (Owner::Dic, p) = self.owner(parent)? {
            if self.mounted_at(p, name).is_some() {
                return Err(libc::EBUSY.into());
            }
        }
        route!(self, parent, |fs, i| fs.rmdir(req, i, name).await)
    }

    method!(fn rename(self, req, parent, name, new_parent, new_name) {
        self.rename2(req, parent, name, new_parent, new_name, 0)
            .await
    });

    method!(fn rename2(self, req, parent, name, new_parent, new_name, flags) {
        match self.same_owner(parent, new_parent)? {
            (Owner::Dic, ..) => Err(libc::EROFS.into()),
            (Owner::Ovl(o), p, np) => o.rename2(req, p, name, np, new_name, flags).await,
        }
    });

    method!(fn link(self, req, inode, new_parent, new_name) {
        match self.same_owner(inode, new_parent)? {
            (Owner::Dic, ..) => Err(libc::EROFS.into()),
            (Owner::Ovl(o), i, np) => o.link(req, i, np, new_name).await,
        }
    });

    /// Neither layer has anything to do on close (writes go straight to the upper file, and
    /// POSIX locks are the kernel's), so the kernel is told once, by ENOSYS, to stop sending
    /// FLUSH: one round trip less per `close()`.
    async fn flush(&self, _req: Request, _inode: u64, _fh: u64, _lock_owner: u64) -> Result<()> {
        Err(libc::ENOSYS.into())
    }

    /// Every directory is opened without the daemon, the read-only view's as the overlays'
    /// (`crate::NO_OPENDIR`): a walk costs no OPENDIR and RELEASEDIR per directory, and the
    /// kernel keeps each listing in its readdir cache. A directory that gains or loses a mount
    /// point has its cached listing dropped by `attach`/`detach`.
    async fn opendir(&self, _req: Request, inode: u64, _flags: u32) -> Result<ReplyOpen> {
        self.owner(inode)?;
        Err(crate::NO_OPENDIR.into())
    }

    method!(fn readdir(self, req, parent, fh, offset) {
        let entries = match self.owner(parent)? {
            (Owner::Dic, p) => {
                let r = self.dic.readdir(req, p, fh, offset).await?;
                relist(r.entries, |e| {
                    if let Some(o) = self.mounted_at(p, &e.name) {
                        e.inode = o.root_ino();
                    }
                })
                .await
            }
            (Owner::Ovl(o), p) => {
                let r = o.readdir(req, p, fh, offset).await?;
                relist(r.entries, |e| e.inode = self.out(&o, e.inode)).await
            }
        };
        Ok(ReplyDirectory { entries })
    });

    method!(fn readdirplus(self, req, parent, fh, offset, lock_owner) {
        let entries = match self.owner(parent)? {
            (Owner::Dic, p) => {
                let r = self.dic.readdirplus(req, p, fh, offset, lock_owner).await?;
                let mut v: Vec<_> = r.entries.collect().await;
                for e in v.iter_mut().flatten() {
                    if e.name == "." || e.name == ".." {
                        continue;
                    }
                    if let Some(o) = self.mounted_at(p, &e.name) {
                        let root = self.root_entry(&o, req).await?;
                        e.inode = root.attr.ino;
                        e.attr = root.attr;
                        e.entry_ttl = UPPER_TTL;
                        e.attr_ttl = UPPER_TTL;
                    }
                }
                stream::iter(v)
            }
            (Owner::Ovl(o), p) => {
                let r = o.readdirplus(req, p, fh, offset, lock_owner).await?;
                relist(r.entries, |e| {
                    e.inode = self.out(&o, e.inode);
                    // Node id 0 (no attributes sent) stays 0.
                    if e.attr.ino != 0 {
                        e.attr.ino = e.inode;
                    }
                })
                .await
            }
        };
        Ok(ReplyDirectoryPlus { entries })
    });
}

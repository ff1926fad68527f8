//! Directory listings: from the remote into the inode table, each directory once, and ahead of
//! a reader that walks the tree.
//!
//! Promises: a directory is asked of the remote at most once while its listing is being written
//! (one lock per directory, dropped once it is listed); a listing is read from the remote and
//! written under the shared side of the epoch lock, with the directory's node read again under
//! it, so a listing of the commit shown before a rebase never lands after the rebase. When a
//! reader lists a directory, its subdirectories not yet listed are listed in the background, at
//! most `width` at once over the whole view (none when it is 0); those background listings do not start listings
//! of their own, so only what a reader walks into is read ahead, one level deep.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use super::DicError;
use crate::remote::{CommitInfo, EntryKind};
use crate::store::{Child, Store, StoreError};

/// How many directories a reader listed are remembered to tell a walk (a few bytes each).
const READ_REMEMBERED: u64 = 1 << 16;

/// Lists directories of the shown commit into the inode table.
pub(super) struct Lister {
    pub(super) store: Arc<Store>,
    /// The commit shown; moves only by a rebase, under the exclusive side of `epoch`.
    pub(super) commit: std::sync::RwLock<CommitInfo>,
    /// Held shared while a listing or a size is written to the inode table, exclusively while a
    /// rebase rewrites it, so that nothing read from the old commit lands after the rebase.
    pub(super) epoch: tokio::sync::RwLock<()>,
    /// One lock per directory being listed; removed once the directory is listed (or failed).
    dir_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// Bounds the background listings.
    ahead: tokio::sync::Semaphore,
    /// Most background listings at once (0: none).
    width: usize,
    /// Directories a reader has listed lately: a listing of a directory whose parent is here
    /// is a walk going down, and only that lists ahead (a plain `ls` fetches nothing more).
    read: moka::sync::Cache<u64, ()>,
    /// Directories asked of the remote (for tests and logs).
    listed: AtomicU64,
    /// The view's decoded listings: each listing written goes in, so the reader a listing
    /// ahead served finds it decoded.
    pub(super) listings: moka::sync::Cache<u64, Arc<Vec<Child>>>,
}

impl Lister {
    /// A lister of `commit` (already bound in the store's inode table), listing at most `width`
    /// directories ahead of a reader at once, each listing written going into `listings`.
    pub(super) fn new(
        store: Arc<Store>,
        commit: CommitInfo,
        width: usize,
        listings: moka::sync::Cache<u64, Arc<Vec<Child>>>,
    ) -> Lister {
        Lister {
            store,
            commit: std::sync::RwLock::new(commit),
            epoch: tokio::sync::RwLock::new(()),
            dir_locks: Mutex::new(HashMap::new()),
            ahead: tokio::sync::Semaphore::new(width),
            width,
            read: moka::sync::Cache::new(READ_REMEMBERED),
            listed: AtomicU64::new(0),
            listings,
        }
    }

    /// Most background listings at once.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    /// The commit shown.
    pub(super) fn commit(&self) -> CommitInfo {
        self.commit
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many directories this view has asked the remote for.
    pub(super) fn listed(&self) -> u64 {
        self.listed.load(Ordering::Relaxed)
    }

    /// Directories being listed right now (their locks).
    #[cfg(test)]
    pub(super) fn locks_held(&self) -> usize {
        self.dir_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Lists directory `ino` from the remote unless the inode table already has it.
    pub(super) async fn ensure_loaded(&self, ino: u64) -> Result<(), DicError> {
        if self.store.inodes.is_loaded(ino)? {
            return Ok(());
        }
        let lock = {
            let mut locks = self.dir_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(ino).or_default().clone()
        };
        let guard = lock.lock().await;
        let res = self.list_locked(ino).await;
        // Still under the directory's lock: whoever waits on it sees the listing (or lists
        // again after a failure); whoever comes later finds the directory loaded.
        self.dir_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ino);
        drop(guard);
        res
    }

    async fn list_locked(&self, ino: u64) -> Result<(), DicError> {
        let _epoch = self.epoch.read().await;
        if self.store.inodes.is_loaded(ino)? {
            return Ok(());
        }
        // Read again under the epoch: a rebase since the caller looked may have given the
        // directory another tree, or removed it.
        let node = self.store.inodes.get(ino)?.ok_or(DicError::NoEntry)?;
        if node.kind == EntryKind::Submodule {
            return Ok(());
        }
        if !node.kind.is_dir() {
            return Err(DicError::NotDir);
        }
        let path = self.store.inodes.path(ino)?;
        self.listed.fetch_add(1, Ordering::Relaxed);
        let listing = self
            .store
            .remote()
            .list_tree(&self.commit(), &path, node.oid)
            .await
            .map_err(StoreError::from)?;
        tracing::debug!(
            path,
            entries = listing.entries.len(),
            exact_modes = listing.exact_modes,
            "directory listed"
        );
        if let Some(children) = self.store.inodes.insert_children(ino, listing.entries)? {
            // Still under the epoch: a rebase empties the cache after it, never before.
            self.listings.insert(ino, Arc::new(children));
        }
        Ok(())
    }

    /// A reader starts listing directory `ino` (child of `parent`), which holds `children`: when
    /// the reader listed `parent` too, it is walking down, and the subdirectories of `ino` are
    /// listed ahead of it.
    pub(super) fn reader_lists(self: &Arc<Self>, ino: u64, parent: u64, children: &[Child]) {
        if self.width == 0 {
            return;
        }
        self.read.insert(ino, ());
        if ino != parent && self.read.contains_key(&parent) {
            self.list_ahead(children);
        }
    }

    /// Starts background listings of the subdirectories of `children` not listed yet.
    fn list_ahead(self: &Arc<Self>, children: &[Child]) {
        let dirs: Vec<u64> = children
            .iter()
            .filter(|c| c.node.kind == EntryKind::Dir)
            .filter(|c| matches!(self.store.inodes.is_loaded(c.ino), Ok(false)))
            .map(|c| c.ino)
            .collect();
        if dirs.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.clone();
        rt.spawn(async move {
            futures::stream::iter(dirs)
                .for_each_concurrent(me.width, |ino| {
                    let me = me.clone();
                    async move {
                        let Ok(_permit) = me.ahead.acquire().await else {
                            return;
                        };
                        let _busy = crate::busy::Busy::start();
                        if let Err(e) = me.ensure_loaded(ino).await {
                            // The reader that walks in lists it again and sees the error.
                            tracing::debug!(ino, error = %e, "listing ahead failed");
                        }
                    }
                })
                .await;
        });
    }
}

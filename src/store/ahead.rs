//! Fetching ahead of a reader, for remotes where every request is a round trip (Mega: one
//! `HEAD` per size, one `GET` per blob).
//!
//! When a reader first needs the size of a file that its listing did not carry, the sizes of
//! the other files of its directory, and of the directories below it already listed, are asked
//! for too, concurrently in the background; the reader's own request is shared, never repeated
//! ([`Store::blob_size`]). When a reader first reads a blob that is not stored, the small blobs
//! of the same files are fetched ahead the same way, through [`Store::ensure_blob`]: verified
//! against their ids before anything is stored, shared with a reader asking for the same blob,
//! and never served or kept when they do not verify (the reader then asks again and gets the
//! error). So a `stat` or a read of every file of a tree costs round trips side by side, not one
//! after another.
//!
//! The promise is bounded work: at most [`AHEAD_FILES`] files and [`AHEAD_BYTES`] bytes of
//! blobs no bigger than [`AHEAD_BLOB_MAX`] per trigger, each directory taken at most once per
//! run, and no more requests in flight ahead than the remote's
//! [`ahead_concurrency`](crate::remote::Remote::ahead_concurrency) (0: nothing is fetched ahead).
//! A failure ahead is only logged. Where the remote sends a pack of many objects in one
//! answer (a Mega `/third-party` repository), enough files wanted there take the pack instead
//! (see [`packs`](super::packs)).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::Semaphore;

use super::{join_or_start, lock, Flights, Store, StoreError};
use crate::remote::{EntryKind, Oid};

/// Most files one trigger fetches sizes or blobs of.
pub const AHEAD_FILES: usize = 4096;
/// Blobs bigger than this are left to their reader.
pub const AHEAD_BLOB_MAX: u64 = 256 * 1024;
/// Most bytes of blobs one trigger fetches.
pub const AHEAD_BYTES: u64 = 32 << 20;
/// Sizes remembered by blob id (those the inode table has not been told yet).
const SIZES_KEPT: u64 = 1 << 16;

/// What the store fetches ahead, and the sizes it learnt.
pub(super) struct Ahead {
    /// Requests in flight ahead, over every trigger; no permits when nothing is fetched ahead.
    permits: Arc<Semaphore>,
    limit: usize,
    sizes: moka::sync::Cache<Oid, u64>,
    size_inflight: Flights<u64>,
    /// Directories whose sizes, or blobs, were taken by a trigger.
    sized: Mutex<HashSet<u64>>,
    fetched: Mutex<HashSet<u64>>,
    /// Triggers under way, so that the reads of a directory a trigger is serving (one cut short
    /// by a bound, so not marked yet) do not start it again and again.
    busy: Mutex<HashSet<(u64, Work)>>,
}

impl Ahead {
    /// Fetching ahead with at most `limit` requests in flight (0: off).
    pub(super) fn new(limit: usize) -> Ahead {
        Ahead {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            sizes: moka::sync::Cache::new(SIZES_KEPT),
            size_inflight: Mutex::new(HashMap::new()),
            sized: Mutex::new(HashSet::new()),
            fetched: Mutex::new(HashSet::new()),
            busy: Mutex::new(HashSet::new()),
        }
    }
}

/// Which of the two kinds of work a trigger does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Work {
    Sizes,
    Blobs,
}

impl Store {
    /// The size of blob `oid`: remembered, or asked of the remote once however many ask at the
    /// same time (the request runs as its own task, so a caller giving up does not cancel it).
    pub async fn blob_size(self: &Arc<Self>, oid: Oid) -> Result<u64, StoreError> {
        if let Some(s) = self.ahead.sizes.get(&oid) {
            return Ok(s);
        }
        if let Some(pack) = self.pack_bringing(oid) {
            // Whatever the pack's fate, the size is then remembered or asked for below.
            let _ = pack.sizes.await;
            if let Some(s) = self.ahead.sizes.get(&oid) {
                return Ok(s);
            }
        }
        let fut = {
            let mut map = lock(&self.ahead.size_inflight);
            // A request that ended since the look above left its answer before leaving the map.
            if let Some(s) = self.ahead.sizes.get(&oid) {
                return Ok(s);
            }
            let store = self.clone();
            let run = async move {
                let r = store.remote.blob_size(oid).await.map_err(StoreError::from);
                if let Ok(s) = r {
                    store.ahead.sizes.insert(oid, s);
                }
                r
            };
            join_or_start(self, &mut map, oid, |s| &s.ahead.size_inflight, run)
        };
        fut.await
    }

    /// Remembers the size of blob `oid`, learnt some other way than asking for it.
    pub(super) fn remember_size(&self, oid: Oid, size: u64) {
        self.ahead.sizes.insert(oid, size);
    }

    /// The sizes remembered for the files of directory `dir` whose entries lack one, as
    /// [`InodeTable::set_sizes`](super::InodeTable::set_sizes) takes them: one write records
    /// what a pack, or the requests ahead, brought for the whole directory.
    pub fn remembered_sizes(&self, dir: u64) -> Result<Vec<(u64, Option<Oid>, u64)>, StoreError> {
        let mut out = Vec::new();
        for c in self.inodes.children(dir)? {
            if c.node.size.is_some() || c.node.kind.is_dir() {
                continue;
            }
            if let Some(oid) = c.node.oid {
                if let Some(s) = self.ahead.sizes.get(&oid) {
                    out.push((c.ino, Some(oid), s));
                }
            }
        }
        Ok(out)
    }

    /// A reader needs the size of a file of directory `dir`: the sizes of the files there and
    /// in the directories below it already listed are asked for in the background.
    pub fn sizes_ahead(self: &Arc<Self>, dir: u64) {
        self.ahead_from(dir, Work::Sizes);
    }

    /// A reader reads a blob of directory `dir` that is not stored: the small blobs of the files
    /// there and in the directories below it already listed are fetched in the background.
    pub fn blobs_ahead(self: &Arc<Self>, dir: u64) {
        self.ahead_from(dir, Work::Blobs);
    }

    /// Whether blob `oid` is stored and verified in this run (a read of it costs no request).
    pub fn has_blob(&self, oid: Oid) -> bool {
        self.objects.is_verified(oid)
    }

    fn ahead_from(self: &Arc<Self>, dir: u64, work: Work) {
        if self.ahead.limit == 0 {
            return;
        }
        let taken = match work {
            Work::Sizes => &self.ahead.sized,
            Work::Blobs => &self.ahead.fetched,
        };
        if lock(taken).contains(&dir) || !lock(&self.ahead.busy).insert((dir, work)) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let _busy = crate::busy::Busy::start();
            store.run_ahead(dir, work).await;
            lock(&store.ahead.busy).remove(&(dir, work));
        });
    }

    /// One trigger: what `dir` and below need, fetched in the walker's order, `limit` at a time.
    async fn run_ahead(self: &Arc<Self>, dir: u64, work: Work) {
        let s = self.clone();
        let files = match tokio::task::spawn_blocking(move || s.files_below(dir, work)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                tracing::debug!(dir, error = %e, "nothing fetched ahead");
                return;
            }
            Err(_) => return,
        };
        tracing::debug!(dir, ?work, files = files.len(), "fetching ahead");
        // Many files wanted in one repository the remote packs: one pack instead.
        let oids: Vec<Oid> = files.iter().map(|(o, _)| *o).collect();
        self.pack_ahead(dir, &oids).await;
        let budget = AtomicU64::new(AHEAD_BYTES);
        futures::stream::iter(files)
            .for_each_concurrent(self.ahead.limit, |(oid, known)| {
                let budget = &budget;
                async move {
                    let Ok(_permit) = self.ahead.permits.clone().acquire_owned().await else {
                        return;
                    };
                    if let Err(e) = self.one_ahead(oid, known, work, budget).await {
                        tracing::debug!(%oid, ?work, error = %e, "fetch ahead failed; its reader will ask again");
                    }
                }
            })
            .await;
    }

    async fn one_ahead(
        self: &Arc<Self>,
        oid: Oid,
        known: Option<u64>,
        work: Work,
        budget: &AtomicU64,
    ) -> Result<(), StoreError> {
        let size = match known {
            Some(s) => s,
            None => self.blob_size(oid).await?,
        };
        if work == Work::Sizes || size > AHEAD_BLOB_MAX || self.has_blob(oid) {
            return Ok(());
        }
        let left = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
            b.checked_sub(size)
        });
        if left.is_err() {
            return Ok(());
        }
        self.ensure_blob(oid).await
    }

    /// The blobs (with their sizes when known) of the files of `dir` and of the listed
    /// directories below it that `work` still has to do (a size not known, a blob not stored),
    /// up to [`AHEAD_FILES`], in the order a walker meets them (`find`: by name, each directory
    /// where it is named), so that what is fetched ahead is what the reader asks for next.
    fn files_below(&self, dir: u64, work: Work) -> Result<Vec<(Oid, Option<u64>)>, StoreError> {
        let mut out = Vec::new();
        self.collect(dir, work, &mut out, &mut 0, &mut HashSet::new())?;
        Ok(out)
    }

    /// Adds the work of `dir` and below to `out` (`bytes`: the known sizes of the blobs in it);
    /// false when a bound cut it short. A directory whose work was all taken is marked, so no
    /// later trigger takes it again; one cut short is left to a trigger of its own.
    fn collect(
        &self,
        dir: u64,
        work: Work,
        out: &mut Vec<(Oid, Option<u64>)>,
        bytes: &mut u64,
        seen: &mut HashSet<Oid>,
    ) -> Result<bool, StoreError> {
        let taken = match work {
            Work::Sizes => &self.ahead.sized,
            Work::Blobs => &self.ahead.fetched,
        };
        if lock(taken).contains(&dir) || !self.inodes.is_loaded(dir)? {
            return Ok(true);
        }
        for c in self.inodes.children(dir)? {
            if out.len() >= AHEAD_FILES {
                return Ok(false);
            }
            match c.node.kind {
                EntryKind::Dir => {
                    if !self.collect(c.ino, work, out, bytes, seen)? {
                        return Ok(false);
                    }
                }
                EntryKind::Submodule => {}
                EntryKind::File | EntryKind::Executable | EntryKind::Symlink => {
                    let Some(oid) = c.node.oid else { continue };
                    let needed = match work {
                        Work::Sizes => {
                            c.node.size.is_none() && !self.ahead.sizes.contains_key(&oid)
                        }
                        Work::Blobs => {
                            c.node.size.map_or(true, |s| s <= AHEAD_BLOB_MAX) && !self.has_blob(oid)
                        }
                    };
                    if !needed || !seen.insert(oid) {
                        continue;
                    }
                    if work == Work::Blobs {
                        *bytes += c.node.size.unwrap_or(0);
                        if *bytes > AHEAD_BYTES {
                            return Ok(false);
                        }
                    }
                    out.push((oid, c.node.size));
                }
            }
        }
        lock(taken).insert(dir);
        Ok(true)
    }
}

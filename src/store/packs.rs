//! A remote's pack in place of many single requests (see
//! [`Remote::pack`](crate::remote::Remote::pack); Mega: a `/third-party` repository).
//!
//! Once the files that readers ahead of them want (sizes not known, blobs not stored) in one
//! pack's directory reach [`PACK_AFTER_FILES`], that pack is fetched, once per run: its blobs
//! stored and their sizes remembered. Each object of a pack is named by the hash of its own
//! bytes, so what is stored is verified by construction. While the pack streams, a reader of a
//! file listed under it waits for the pack rather than asking on its own; what the pack did not
//! bring (the repository moved on since the mount, the pack was cut at its bound) is then asked
//! for file by file, as before.
//!
//! The bounds: at most [`PACK_MAX_BYTES`] of pack data, and no more than a quarter of the disk
//! cache's bound, so a pack never pushes out more than it brings. Blobs are written once the
//! pack is read (writing takes CPU that the server making the pack, and the reader inflating
//! it, want), held in memory meanwhile up to [`HOLD_BYTES`] at a time: a bigger pack has them
//! written as it streams, with at most three such lots in memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt;

use super::{lock, Flight, Store, StoreError};
use crate::remote::{EntryKind, ObjectKind, Oid, PackObject, PackUnit};

/// Files wanted in one pack's directory before the pack is worth fetching.
pub const PACK_AFTER_FILES: usize = 64;
/// Most bytes of pack data one pack reads.
pub const PACK_MAX_BYTES: u64 = 256 << 20;
/// Most files of a pack's directory registered as brought by it (readers of the others ask on
/// their own while it streams).
const PENDING_MAX: usize = 1 << 18;
/// Bytes of blobs held in memory while a pack streams, before they are written.
pub const HOLD_BYTES: usize = 64 << 20;

/// What a reader of a file a pack is bringing waits for.
#[derive(Clone)]
pub(super) struct Bringing {
    /// Every object of the pack read (its sizes remembered).
    pub(super) sizes: Flight<()>,
    /// Its blobs written too.
    pub(super) blobs: Flight<()>,
}

/// The packs of this run.
#[derive(Default)]
pub(super) struct Packs {
    /// Files wanted so far in each pack's directory.
    demand: Mutex<HashMap<PackUnit, usize>>,
    /// Packs fetched, or being fetched, in this run.
    taken: Mutex<HashSet<PackUnit>>,
    /// The files the packs under way are expected to bring.
    pending: Mutex<HashMap<Oid, Bringing>>,
}

impl Store {
    /// The pack bringing blob `oid`, if one is streaming: its reader waits for that rather than
    /// asking for the blob, or its size, on its own.
    pub(super) fn pack_bringing(&self, oid: Oid) -> Option<Bringing> {
        lock(&self.packs.pending).get(&oid).cloned()
    }

    /// Readers ahead want `files` (blob ids) of directory `dir` and below: when those not on
    /// disk make its pack worth fetching, fetches it (and returns once it is in). Blobs stored
    /// by an earlier run count for nothing: checking them costs no request.
    pub(super) async fn pack_ahead(self: &Arc<Self>, dir: u64, files: &[Oid]) {
        let wanted = files
            .iter()
            .filter(|o| self.stored_size(**o).is_none())
            .count();
        if wanted == 0 {
            return;
        }
        let store = self.clone();
        let unit = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let path = store.inodes.path(dir)?;
            Ok(store.remote.pack_unit(&path).map(|u| (u, path)))
        })
        .await;
        let Ok(Ok(Some((unit, path)))) = unit else {
            return;
        };
        {
            let mut taken = lock(&self.packs.taken);
            if taken.contains(&unit) {
                return;
            }
            let mut demand = lock(&self.packs.demand);
            let d = demand.entry(unit.clone()).or_default();
            *d += wanted;
            if *d < PACK_AFTER_FILES {
                return;
            }
            demand.remove(&unit);
            taken.insert(unit.clone());
        }
        // The pack's directory: as many levels up from `dir` as its path is deeper.
        let depth = |p: &str| p.split('/').filter(|s| !s.is_empty()).count();
        let up = depth(&path).saturating_sub(depth(&unit.root));
        let store = self.clone();
        let expected = tokio::task::spawn_blocking(move || -> Result<Vec<Oid>, StoreError> {
            let mut top = dir;
            for _ in 0..up {
                top = store.inodes.parent_of(top)?.unwrap_or(top);
            }
            let mut out = Vec::new();
            store.wanted_below(top, &mut out)?;
            Ok(out)
        });
        let expected = match expected.await {
            Ok(Ok(e)) => e,
            _ => Vec::new(),
        };
        let (read_tx, read_rx) = tokio::sync::oneshot::channel::<()>();
        let store = self.clone();
        let u = unit.clone();
        let task = tokio::spawn(async move { store.take_pack(&u, read_tx).await });
        let blobs: Flight<()> = async move { task.await? }.boxed().shared();
        // Read, or over (a pack that failed before its end drops the sender).
        let sizes: Flight<()> = read_rx.map(|_| Ok(())).boxed().shared();
        let bringing = Bringing {
            sizes,
            blobs: blobs.clone(),
        };
        {
            let mut pending = lock(&self.packs.pending);
            for oid in &expected {
                pending.entry(*oid).or_insert_with(|| bringing.clone());
            }
        }
        if let Err(e) = blobs.await {
            tracing::info!(pack = unit.root, error = %e, "pack failed; its files are asked for one by one");
        }
        let mut pending = lock(&self.packs.pending);
        for oid in &expected {
            pending.remove(oid);
        }
    }

    /// The blobs of the files listed under `dir` that are not on disk.
    fn wanted_below(&self, dir: u64, out: &mut Vec<Oid>) -> Result<(), StoreError> {
        if out.len() >= PENDING_MAX || !self.inodes.is_loaded(dir)? {
            return Ok(());
        }
        for c in self.inodes.children(dir)? {
            match c.node.kind {
                EntryKind::Dir => self.wanted_below(c.ino, out)?,
                EntryKind::Submodule => {}
                EntryKind::File | EntryKind::Executable | EntryKind::Symlink => {
                    if let Some(oid) = c.node.oid {
                        if self.stored_size(oid).is_none() && out.len() < PENDING_MAX {
                            out.push(oid);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Fetches pack `unit`: every blob's size remembered as it comes (`read` is told once the
    /// whole pack is read, or failed), every blob stored unless it already is, written by a
    /// task of its own so that reading the pack never waits for the disk.
    async fn take_pack(
        self: &Arc<Self>,
        unit: &PackUnit,
        read: tokio::sync::oneshot::Sender<()>,
    ) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let max_bytes = PACK_MAX_BYTES.min(self.objects.cap() / 4);
        // Few objects in the channel: each may be up to `remote::pack::OBJECT_MAX` bytes.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<PackObject>(64);
        let remote = self.remote.clone();
        let u = unit.clone();
        let fetch = tokio::spawn(async move { remote.pack(&u, max_bytes, tx).await });
        let (batches, mut to_write) = tokio::sync::mpsc::channel::<Vec<(Oid, Bytes)>>(1);
        let store = self.clone();
        let writer = tokio::spawn(async move {
            let mut stored = 0;
            while let Some(batch) = to_write.recv().await {
                stored += store.write_batch(batch).await?;
            }
            Ok::<usize, StoreError>(stored)
        });
        // The blobs wait in memory (up to HOLD_BYTES) until the pack is read: writing them takes
        // CPU that the server, making the pack, and the reader, inflating it, would want.
        let mut held: Vec<(Oid, Bytes)> = Vec::new();
        let mut held_bytes = 0;
        let mut writing = true;
        while let Some(o) = rx.recv().await {
            if o.kind != ObjectKind::Blob {
                continue;
            }
            self.remember_size(o.oid, o.size);
            let Some(data) = o.data else {
                // Too big to keep in memory: its reader fetches it alone.
                continue;
            };
            if self.objects.is_verified(o.oid) {
                continue;
            }
            held_bytes += data.len();
            held.push((o.oid, data));
            if held_bytes >= HOLD_BYTES {
                held_bytes = 0;
                if batches.send(std::mem::take(&mut held)).await.is_err() {
                    writing = false;
                    break;
                }
            }
        }
        let summary = fetch.await.map_err(StoreError::from);
        let _ = read.send(());
        if writing {
            let _ = batches.send(held).await;
        }
        drop(batches);
        let summary = summary??;
        let stored = writer.await??;
        tracing::info!(
            pack = unit.root,
            objects = summary.objects,
            announced = summary.announced,
            bytes = summary.bytes,
            complete = summary.complete,
            dropped = summary.dropped,
            too_big = summary.too_big,
            stored,
            ms = started.elapsed().as_millis() as u64,
            "pack taken"
        );
        Ok(())
    }

    /// Writes blobs of a pack to the object cache; how many were written.
    async fn write_batch(self: &Arc<Self>, batch: Vec<(Oid, Bytes)>) -> Result<usize, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || -> Result<usize, StoreError> {
            // Whatever the objects are about to take, the database's log must not lose its room.
            store.reserve.top_up();
            for (oid, data) in &batch {
                // Named by the hash of these very bytes (see `remote::pack`): nothing to verify.
                store.objects.insert(*oid, data)?;
            }
            Ok(batch.len())
        })
        .await?
    }
}

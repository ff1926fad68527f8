//! The persistent inode table (sled): each listed directory's entries, with their inodes, as one
//! record, and the spans of inodes each listing handed out (see `encoding`).
//!
//! Inode numbers are handed out once per directory entry of the bound commit and written with
//! the directory listing, so a restart on the same store sees the same numbers and a crash never
//! leaves a half-listed directory. A listing is one record, so a full walk of a large tree costs
//! a few database writes per directory, not per entry.
//!
//! A listing is written without a sled transaction: sled seals and writes out its log buffer at
//! every transaction (and wakes its whole I/O pool to do it), which made the database most of a
//! cold walk's CPU time. Instead the span of inodes goes in first and the listing after it, as a
//! compare-and-swap that only an absent listing accepts. sled recovers a prefix of its log, so a
//! listing found after a crash always has its span; a span left without its listing only wastes
//! its numbers. The next inode to hand out is kept in memory, and at open is the end of the last
//! span (or the recorded `next_ino` of a bind or rebase, whichever is higher). The table is
//! bound to one remote+commit; binding another clears it (objects stay cached by id).
//!
//! This module holds the table and its reads and listing writes; `rebase` moves it to another
//! commit, `encoding` is its layout in sled.

mod encoding;
mod rebase;

pub use rebase::Touched;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sled::transaction::TransactionError;

use encoding::{
    dec, dec_listing, enc, enc_listing, ino_at, span_at, span_value, Binding, Stored,
    StoredListing, BINDING, ENTRIES, NEXT_INO, OLD_TREES, ROOT,
};

use super::reserve::DbReserve;
use super::StoreError;
use crate::remote::{CommitInfo, EntryKind, ListedEntry, Oid};

/// The root directory's inode.
pub const ROOT_INO: u64 = 1;
/// Dicfuse inodes stay below this; higher ranges belong to overlays (DESIGN.md, "Inodes").
pub const MAX_INO: u64 = crate::ino::VIEW_END;

/// One entry of the mounted commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The directory holding it (the root is its own parent).
    pub parent: u64,
    /// Its name in the parent.
    pub name: Vec<u8>,
    /// What it is.
    pub kind: EntryKind,
    /// Its object (`None` only for a root whose tree id the remote did not tell).
    pub oid: Option<Oid>,
    /// The blob size once known.
    pub size: Option<u64>,
}

/// A child as a directory listing shows it. Its name is its node's, held once: a cold walk
/// decodes every listing, and a second copy of each name was a malloc and a copy per entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// Its inode.
    pub ino: u64,
    /// Its node.
    pub node: Node,
}

impl Child {
    /// Entry name.
    pub fn name(&self) -> &[u8] {
        &self.node.name
    }
}

/// Bytes of decoded listings kept for looking up single nodes.
const DECODED_BYTES: u64 = 4 << 20;

/// Recently decoded listings, so that looking up one node does not decode its directory's
/// listing each time.
struct Decoded {
    cache: moka::sync::Cache<u64, Arc<StoredListing>>,
    /// Bumped (under `gate`) whenever a stored listing changes, so that a listing decoded
    /// before the change is not cached after it.
    generation: AtomicU64,
    gate: Mutex<()>,
}

impl Decoded {
    fn new() -> Decoded {
        Decoded {
            cache: moka::sync::Cache::builder()
                .weigher(|_: &u64, l: &Arc<StoredListing>| {
                    let bytes: usize = l
                        .iter()
                        .map(|e| std::mem::size_of::<Stored>() + e.name.len())
                        .sum();
                    u32::try_from(bytes + 64).unwrap_or(u32::MAX)
                })
                .max_capacity(DECODED_BYTES)
                .build(),
            generation: AtomicU64::new(0),
            gate: Mutex::new(()),
        }
    }

    /// Forgets `dir`'s listing (every listing for `None`) after it changed on disk.
    fn changed(&self, dir: Option<u64>) {
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        match dir {
            Some(d) => self.cache.invalidate(&d),
            None => self.cache.invalidate_all(),
        }
    }
}

/// The sled-backed inode table.
pub struct InodeTable {
    listings: sled::Tree,
    spans: sled::Tree,
    meta: sled::Tree,
    decoded: Decoded,
    /// The next inode to hand out and the number of entries, the two moving together.
    counts: Mutex<Counts>,
    /// Topped up after each write, so the log always has room (see `reserve`).
    reserve: Option<Arc<DbReserve>>,
}

/// The inode allocator's state (see the module's note on writes without transactions).
#[derive(Clone, Copy, Debug)]
struct Counts {
    /// The next inode to hand out.
    next: u64,
    /// Entries in the table, the root included. Written after each listing: after a crash it
    /// may miss the last listings' entries (a gauge and `statfs` read it, nothing decides by it).
    entries: u64,
}

/// Maps a transaction's error to the store's.
fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Db(e),
    }
}

impl InodeTable {
    /// Opens the trees in `db`. A table of the layout before (one record per entry) keeps its
    /// binding and root, and lists its directories again.
    pub fn open(db: &sled::Db) -> Result<InodeTable, StoreError> {
        let mut t = InodeTable {
            listings: db.open_tree("listings")?,
            spans: db.open_tree("spans")?,
            meta: db.open_tree("meta")?,
            decoded: Decoded::new(),
            counts: Mutex::new(Counts {
                next: ROOT_INO + 1,
                entries: 1,
            }),
            reserve: None,
        };
        let names = db.tree_names();
        for old in OLD_TREES {
            if !names.iter().any(|n| n.as_ref() == old.as_bytes()) {
                continue;
            }
            if *old == "nodes" && t.meta.get(ROOT)?.is_none() {
                if let Some(root) = db.open_tree(old)?.get(ROOT_INO.to_be_bytes())? {
                    t.meta.insert(ROOT, root)?;
                    t.meta.insert(ENTRIES, &1u64.to_be_bytes())?;
                }
            }
            db.drop_tree(old)?;
        }
        let counts = t.recorded_counts()?;
        *t.counts.get_mut().unwrap_or_else(|p| p.into_inner()) = counts;
        Ok(t)
    }

    /// The allocator's state as the database holds it: past the last span and the recorded
    /// `next_ino`, whichever is higher.
    fn recorded_counts(&self) -> Result<Counts, StoreError> {
        let recorded = match self.meta.get(NEXT_INO)? {
            Some(v) => ino_at(&v),
            None => ROOT_INO + 1,
        };
        let spanned = match self.spans.last()? {
            Some((k, v)) => {
                let (first, _, count) = span_at(&k, &v);
                first.saturating_add(count)
            }
            None => 0,
        };
        let entries = self.meta.get(ENTRIES)?.map_or(1, |v| ino_at(&v));
        Ok(Counts {
            next: recorded.max(spanned),
            entries,
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The table, topping up `reserve` after each of its writes.
    pub fn with_reserve(self, reserve: Arc<DbReserve>) -> InodeTable {
        InodeTable {
            reserve: Some(reserve),
            ..self
        }
    }

    fn top_up(&self) {
        if let Some(r) = &self.reserve {
            r.top_up();
        }
    }

    /// The commit last bound for `remote`, if this store has one (used when the remote is down).
    pub fn recorded(&self, remote: &str) -> Result<Option<CommitInfo>, StoreError> {
        let Some(raw) = self.meta.get(BINDING)? else {
            return Ok(None);
        };
        let b: Binding = dec(&raw)?;
        Ok((b.remote == remote).then_some(b.commit))
    }

    /// Binds the table to `commit` of `remote`; returns true when it had to start afresh.
    pub fn bind(&self, remote: &str, commit: &CommitInfo) -> Result<bool, StoreError> {
        let binding = Binding {
            remote: remote.to_string(),
            commit: commit.clone(),
        };
        if let Some(raw) = self.meta.get(BINDING)? {
            if dec::<Binding>(&raw).is_ok_and(|b| b == binding) && self.meta.get(ROOT)?.is_some() {
                return Ok(false);
            }
        }
        self.listings.clear()?;
        self.spans.clear()?;
        self.decoded.changed(None);
        let root = Node {
            parent: ROOT_INO,
            name: Vec::new(),
            kind: EntryKind::Dir,
            oid: commit.root_tree,
            size: None,
        };
        self.meta.insert(ROOT, enc(&root))?;
        self.meta.insert(ENTRIES, &1u64.to_be_bytes())?;
        self.meta.insert(NEXT_INO, &(ROOT_INO + 1).to_be_bytes())?;
        self.meta.insert(BINDING, enc(&binding))?;
        self.meta.flush()?;
        *self.counts() = Counts {
            next: ROOT_INO + 1,
            entries: 1,
        };
        Ok(true)
    }

    /// The listing of directory `dir`, if it is loaded.
    fn listing(&self, dir: u64) -> Result<Option<StoredListing>, StoreError> {
        match self.listings.get(dir.to_be_bytes())? {
            Some(raw) => Ok(Some(dec_listing(&raw)?)),
            None => Ok(None),
        }
    }

    /// The listing of directory `dir`, through the cache of decoded ones.
    fn decoded_listing(&self, dir: u64) -> Result<Option<Arc<StoredListing>>, StoreError> {
        if let Some(l) = self.decoded.cache.get(&dir) {
            return Ok(Some(l));
        }
        let generation = self.decoded.generation.load(Ordering::SeqCst);
        let Some(listing) = self.listing(dir)? else {
            return Ok(None);
        };
        let listing = Arc::new(listing);
        let _gate = self.decoded.gate.lock().unwrap_or_else(|p| p.into_inner());
        if self.decoded.generation.load(Ordering::SeqCst) == generation {
            self.decoded.cache.insert(dir, listing.clone());
        }
        Ok(Some(listing))
    }

    /// The directory whose listing handed out `ino`.
    pub fn parent_of(&self, ino: u64) -> Result<Option<u64>, StoreError> {
        let Some(kv) = self.spans.range(..=ino.to_be_bytes()).next_back() else {
            return Ok(None);
        };
        let (k, v) = kv?;
        let (first, parent, count) = span_at(&k, &v);
        Ok((ino < first.saturating_add(count)).then_some(parent))
    }

    /// The root's node.
    fn root(&self) -> Result<Option<Node>, StoreError> {
        match self.meta.get(ROOT)? {
            Some(raw) => Ok(Some(dec(&raw)?)),
            None => Ok(None),
        }
    }

    /// The node for `ino`.
    pub fn get(&self, ino: u64) -> Result<Option<Node>, StoreError> {
        if ino == ROOT_INO {
            return self.root();
        }
        let Some(parent) = self.parent_of(ino)? else {
            return Ok(None);
        };
        let Some(listing) = self.decoded_listing(parent)? else {
            return Ok(None);
        };
        Ok(listing
            .iter()
            .find(|e| e.ino == ino)
            .map(|e| node_of(parent, e.clone())))
    }

    /// Whether the directory's listing is in the table.
    pub fn is_loaded(&self, ino: u64) -> Result<bool, StoreError> {
        Ok(self.listings.contains_key(ino.to_be_bytes())?)
    }

    /// The child `name` of `parent`.
    pub fn child(&self, parent: u64, name: &[u8]) -> Result<Option<u64>, StoreError> {
        let Some(listing) = self.listing(parent)? else {
            return Ok(None);
        };
        Ok(listing
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| listing[i].ino))
    }

    /// Every child of a loaded directory, sorted by name bytes.
    pub fn children(&self, parent: u64) -> Result<Vec<Child>, StoreError> {
        let Some(listing) = self.listing(parent)? else {
            return Ok(Vec::new());
        };
        Ok(listing.into_iter().map(|e| child_of(parent, e)).collect())
    }

    /// Records a directory's listing, giving each entry an inode; returns the children written,
    /// sorted by name. A directory already listed keeps its listing (and `None` is returned).
    /// A name the remote gives twice keeps its first entry.
    pub fn insert_children(
        &self,
        parent: u64,
        entries: Vec<ListedEntry>,
    ) -> Result<Option<Vec<Child>>, StoreError> {
        if self.is_loaded(parent)? {
            return Ok(None);
        }
        // Each entry's place in the remote's order stands in its inode until the count is known.
        // The names move over, not copied: a cold walk passes every name of the tree through here.
        let mut listing: StoredListing = entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| Stored {
                ino: i as u64,
                kind: e.entry.kind,
                oid: e.entry.oid,
                size: e.size,
                name: e.entry.name,
            })
            .collect();
        // Kept sorted by name; the sort is stable, so of equal names the remote's first comes
        // first and is the one kept.
        listing.sort_by(|a, b| a.name.cmp(&b.name));
        let before = listing.len();
        listing.dedup_by(|later, kept| later.name == kept.name);
        let count = listing.len() as u64;
        let first = {
            let mut counts = self.counts();
            if counts.next.saturating_add(count) > MAX_INO {
                return Err(StoreError::InodesExhausted);
            }
            let first = counts.next;
            counts.next += count;
            first
        };
        // Inodes are handed out in the remote's order, duplicates left out.
        if listing.len() == before {
            for e in listing.iter_mut() {
                e.ino += first;
            }
        } else {
            let mut places: Vec<u64> = listing.iter().map(|e| e.ino).collect();
            places.sort_unstable();
            for e in listing.iter_mut() {
                let rank = places.binary_search(&e.ino).unwrap_or_default();
                e.ino = first + rank as u64;
            }
        }
        let res = self.write_listing(parent, first, &listing);
        self.top_up();
        if !res? {
            return Ok(None);
        }
        Ok(Some(
            listing.into_iter().map(|e| child_of(parent, e)).collect(),
        ))
    }

    /// Writes `listing` of `parent` (its inodes from `first` on): the span first, then the
    /// listing if the directory has none yet, then the count of entries. False when the
    /// directory had a listing already.
    fn write_listing(
        &self,
        parent: u64,
        first: u64,
        listing: &StoredListing,
    ) -> Result<bool, StoreError> {
        let count = listing.len() as u64;
        if count > 0 {
            self.spans
                .insert(first.to_be_bytes(), &span_value(parent, count))?;
        }
        let written = self.listings.compare_and_swap(
            parent.to_be_bytes(),
            None as Option<&[u8]>,
            Some(enc_listing(listing)),
        )?;
        if written.is_err() {
            // Listed meanwhile by a caller that did not hold the directory's lock: that
            // listing stays, and the span just written is never looked up.
            return Ok(false);
        }
        // Under the lock, so that a lower count never overwrites a higher one.
        let mut counts = self.counts();
        counts.entries += count;
        self.meta.insert(ENTRIES, &counts.entries.to_be_bytes())?;
        Ok(true)
    }

    /// Records a blob size learnt later.
    pub fn set_size(&self, ino: u64, size: u64) -> Result<(), StoreError> {
        if ino == ROOT_INO {
            return Ok(());
        }
        let Some(parent) = self.parent_of(ino)? else {
            return Ok(());
        };
        self.set_sizes(parent, &[(ino, None, size)])
    }

    /// Records blob sizes learnt later for entries of directory `parent`, in one write: each
    /// `(ino, oid, size)` applies only while the entry still has that blob (`None`: any).
    pub fn set_sizes(
        &self,
        parent: u64,
        sizes: &[(u64, Option<Oid>, u64)],
    ) -> Result<(), StoreError> {
        if sizes.is_empty() {
            return Ok(());
        }
        let by_ino: std::collections::HashMap<u64, (Option<Oid>, u64)> = sizes
            .iter()
            .map(|&(ino, oid, size)| (ino, (oid, size)))
            .collect();
        let mut failed = None;
        // Compare-and-swap: sizes of one directory learnt at once must not overwrite each other.
        self.listings
            .update_and_fetch(parent.to_be_bytes(), |old| {
                let old = old?;
                let mut listing = match dec_listing(old) {
                    Ok(l) => l,
                    Err(e) => {
                        failed = Some(e);
                        return Some(old.to_vec());
                    }
                };
                for e in listing.iter_mut() {
                    if let Some(&(oid, size)) = by_ino.get(&e.ino) {
                        if oid.map_or(true, |o| o == e.oid) {
                            e.size = Some(size);
                        }
                    }
                }
                Some(enc_listing(&listing))
            })?;
        self.decoded.changed(Some(parent));
        self.top_up();
        failed.map_or(Ok(()), Err)
    }

    /// The `/`-separated path of `ino` from the root (`""` for the root).
    pub fn path(&self, mut ino: u64) -> Result<String, StoreError> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        while ino != ROOT_INO {
            let node = self
                .get(ino)?
                .ok_or_else(|| StoreError::Decode(format!("dangling inode {ino}")))?;
            parts.push(node.name);
            ino = node.parent;
        }
        parts.reverse();
        Ok(String::from_utf8_lossy(&parts.join(&b'/')).into_owned())
    }

    /// Number of inodes known.
    pub fn len(&self) -> usize {
        self.counts().entries as usize
    }

    /// Whether only the root is known.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }
}

/// Stored entry `e` of directory `parent` as a listing shows it.
fn child_of(parent: u64, e: Stored) -> Child {
    Child {
        ino: e.ino,
        node: node_of(parent, e),
    }
}

/// The node of stored entry `e` of directory `parent`.
fn node_of(parent: u64, e: Stored) -> Node {
    Node {
        parent,
        name: e.name,
        kind: e.kind,
        oid: Some(e.oid),
        size: e.size,
    }
}

#[cfg(test)]
mod tests;

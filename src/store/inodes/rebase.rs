//! Rebase planning: moving the table to another commit in place. The writes are gathered in a
//! `RebasePlan` first (reading through it sees them) and applied in one transaction, so every
//! entry that still exists keeps its inode and a failure writes nothing.

use std::collections::{HashMap, HashSet};

use sled::transaction::TransactionError;
use sled::Transactional;

use super::encoding::{
    dec, enc, enc_listing, span_value, Binding, Stored, StoredListing, BINDING, ENTRIES, NEXT_INO,
    ROOT,
};
use super::{tx_error, InodeTable, Node, MAX_INO, ROOT_INO};
use crate::remote::{CommitInfo, ListedEntry};
use crate::store::StoreError;

/// An entry whose identity a rebase changed: the kernel must forget `(parent, name)` and `ino`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touched {
    /// The directory holding the name.
    pub parent: u64,
    /// The name.
    pub name: Vec<u8>,
    /// The inode the name had before (`None` for a new name).
    pub ino: Option<u64>,
}

/// The writes of one rebase, gathered before they are applied in one transaction: whole
/// listings (`None`: forgotten), the spans of the inodes handed out, the root's node.
struct RebasePlan<'a> {
    table: &'a InodeTable,
    listings: HashMap<u64, Option<StoredListing>>,
    spans: Vec<(u64, u64)>,
    root: Node,
    next: u64,
    /// Entries added minus entries removed.
    delta: i64,
    touched: Vec<Touched>,
}

impl RebasePlan<'_> {
    fn listing(&self, dir: u64) -> Result<Option<StoredListing>, StoreError> {
        match self.listings.get(&dir) {
            Some(l) => Ok(l.clone()),
            None => self.table.listing(dir),
        }
    }

    fn child(&self, parent: u64, name: &[u8]) -> Result<Option<u64>, StoreError> {
        let Some(listing) = self.listing(parent)? else {
            return Ok(None);
        };
        Ok(listing
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| listing[i].ino))
    }

    fn resolve(&self, path: &str) -> Result<u64, StoreError> {
        let mut ino = ROOT_INO;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self.child(ino, part.as_bytes())?.ok_or_else(|| {
                StoreError::Decode(format!("rebase: {path:?} is not in the new commit"))
            })?;
        }
        Ok(ino)
    }

    /// Forgets the listing of `ino` and of every loaded directory below it.
    fn unload(&mut self, ino: u64) -> Result<(), StoreError> {
        let Some(listing) = self.listing(ino)? else {
            return Ok(());
        };
        for e in &listing {
            self.unload(e.ino)?;
            self.delta -= 1;
        }
        self.listings.insert(ino, None);
        Ok(())
    }

    fn new_ino(&mut self, dir: u64) -> Result<u64, StoreError> {
        if self.next >= MAX_INO {
            return Err(StoreError::InodesExhausted);
        }
        let ino = self.next;
        self.next += 1;
        self.delta += 1;
        self.spans.push((ino, dir));
        Ok(ino)
    }

    fn stored(ino: u64, e: &ListedEntry) -> Stored {
        Stored {
            ino,
            kind: e.entry.kind,
            oid: e.entry.oid,
            size: e.size,
            name: e.entry.name.clone(),
        }
    }

    /// Makes directory `dir` hold exactly `entries`, keeping the inodes of names that stay.
    /// A directory that changes without an entry in `listed` is forgotten and listed again
    /// from the remote when next looked at.
    fn apply(
        &mut self,
        dir: u64,
        path: &str,
        entries: &[ListedEntry],
        listed: &HashSet<&str>,
    ) -> Result<(), StoreError> {
        let Some(old) = self.listing(dir)? else {
            let mut listing = Vec::with_capacity(entries.len());
            for e in entries {
                let ino = self.new_ino(dir)?;
                listing.push(Self::stored(ino, e));
            }
            listing.sort_by(|a, b| a.name.cmp(&b.name));
            self.listings.insert(dir, Some(listing));
            return Ok(());
        };
        let mut old: HashMap<Vec<u8>, Stored> =
            old.into_iter().map(|e| (e.name.clone(), e)).collect();
        let mut listing: StoredListing = Vec::with_capacity(entries.len());
        for e in entries {
            let name = &e.entry.name;
            let Some(prev) = old.remove(name) else {
                let ino = self.new_ino(dir)?;
                listing.push(Self::stored(ino, e));
                self.touched.push(Touched {
                    parent: dir,
                    name: name.clone(),
                    ino: None,
                });
                continue;
            };
            if prev.kind == e.entry.kind && prev.oid == e.entry.oid {
                listing.push(prev);
                continue;
            }
            if !prev.kind.is_dir() || !e.entry.kind.is_dir() {
                // Other content is another file: a new inode, so that nothing the kernel keeps
                // about the old one (its size, its pages) can be taken for the new content.
                self.unload(prev.ino)?;
                self.delta -= 1;
                let ino = self.new_ino(dir)?;
                listing.push(Self::stored(ino, e));
                self.touched.push(Touched {
                    parent: dir,
                    name: name.clone(),
                    ino: Some(prev.ino),
                });
                continue;
            }
            let child_path = if path.is_empty() {
                String::from_utf8_lossy(name).into_owned()
            } else {
                format!("{path}/{}", String::from_utf8_lossy(name))
            };
            if !listed.contains(child_path.as_str()) {
                self.unload(prev.ino)?;
            }
            listing.push(Self::stored(prev.ino, e));
            self.touched.push(Touched {
                parent: dir,
                name: name.clone(),
                ino: Some(prev.ino),
            });
        }
        for (name, gone) in old {
            self.unload(gone.ino)?;
            self.delta -= 1;
            self.touched.push(Touched {
                parent: dir,
                name,
                ino: Some(gone.ino),
            });
        }
        listing.sort_by(|a, b| a.name.cmp(&b.name));
        self.listings.insert(dir, Some(listing));
        Ok(())
    }
}

impl InodeTable {
    /// Moves the table to `commit` in place: each of `updates` (a directory path and its entries
    /// in the new commit, parents before children) is applied to the directory at that path, so
    /// every entry that still exists keeps its inode. Returns the entries whose identity changed
    /// (added, removed or replaced), for the kernel to forget.
    ///
    /// The caller must keep every other writer of the table out while this runs.
    pub fn rebase(
        &self,
        commit: &CommitInfo,
        updates: &[(String, Vec<ListedEntry>)],
    ) -> Result<Vec<Touched>, StoreError> {
        let mut root = self
            .get(ROOT_INO)?
            .ok_or_else(|| StoreError::Decode("no root inode".into()))?;
        root.oid = commit.root_tree;
        let mut plan = RebasePlan {
            table: self,
            listings: HashMap::new(),
            spans: Vec::new(),
            root,
            next: self.counts().next,
            delta: 0,
            touched: Vec::new(),
        };
        let listed: HashSet<&str> = updates.iter().map(|(p, _)| p.as_str()).collect();
        for (path, entries) in updates {
            let ino = plan.resolve(path)?;
            plan.apply(ino, path, entries, &listed)?;
        }
        let remote = match self.meta.get(BINDING)? {
            Some(raw) => dec::<Binding>(&raw)?.remote,
            None => return Err(StoreError::Decode("rebase of an unbound table".into())),
        };
        let binding = enc(&Binding {
            remote,
            commit: commit.clone(),
        });
        let RebasePlan {
            listings,
            spans,
            root,
            next,
            delta,
            touched,
            ..
        } = plan;
        let root = enc(&root);
        let entries = (self.len() as i64 + delta).max(1) as u64;
        let res: Result<(), TransactionError<StoreError>> =
            (&self.listings, &self.spans, &self.meta).transaction(|(tl, ts, meta)| {
                for (dir, listing) in &listings {
                    match listing {
                        Some(l) => tl.insert(&dir.to_be_bytes(), enc_listing(l))?,
                        None => tl.remove(&dir.to_be_bytes())?,
                    };
                }
                for (first, dir) in &spans {
                    ts.insert(&first.to_be_bytes(), &span_value(*dir, 1))?;
                }
                meta.insert(ROOT, root.as_slice())?;
                meta.insert(ENTRIES, &entries.to_be_bytes())?;
                meta.insert(NEXT_INO, &next.to_be_bytes())?;
                meta.insert(BINDING, binding.as_slice())?;
                Ok(())
            });
        res.map_err(tx_error)?;
        *self.counts() = super::Counts { next, entries };
        self.decoded.changed(None);
        self.top_up();
        self.meta.flush()?;
        Ok(touched)
    }
}

//! The persistent inode table (sled): `ino -> Node` and `(parent, name) -> ino`.
//!
//! Inode numbers are handed out once per directory entry of the bound commit and written in
//! the same transaction as the directory listing, so a restart on the same store sees the same
//! numbers and a crash never leaves a half-listed directory. The table is bound to one
//! remote+commit; binding another clears it (objects stay cached by id).
//!
//! This module holds the table and its reads and listing writes; `rebase` moves it to another
//! commit, `encoding` is its layout in sled.

mod encoding;
mod rebase;

pub use rebase::Touched;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use encoding::{dec, enc, ino_at, name_key, Binding, BINDING, NEXT_INO};

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

/// A child as a directory listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// Entry name.
    pub name: Vec<u8>,
    /// Its inode.
    pub ino: u64,
    /// Its node.
    pub node: Node,
}

/// The sled-backed inode table.
pub struct InodeTable {
    nodes: sled::Tree,
    names: sled::Tree,
    dirs: sled::Tree,
    meta: sled::Tree,
    /// Topped up after each write, so the log always has room (see `reserve`).
    reserve: Option<Arc<DbReserve>>,
}

impl InodeTable {
    /// Opens the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<InodeTable, StoreError> {
        Ok(InodeTable {
            nodes: db.open_tree("nodes")?,
            names: db.open_tree("names")?,
            dirs: db.open_tree("dirs")?,
            meta: db.open_tree("meta")?,
            reserve: None,
        })
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
            if dec::<Binding>(&raw).is_ok_and(|b| b == binding) {
                return Ok(false);
            }
        }
        self.nodes.clear()?;
        self.names.clear()?;
        self.dirs.clear()?;
        let root = Node {
            parent: ROOT_INO,
            name: Vec::new(),
            kind: EntryKind::Dir,
            oid: commit.root_tree,
            size: None,
        };
        self.nodes.insert(ROOT_INO.to_be_bytes(), enc(&root))?;
        self.meta.insert(NEXT_INO, &(ROOT_INO + 1).to_be_bytes())?;
        self.meta.insert(BINDING, enc(&binding))?;
        self.meta.flush()?;
        Ok(true)
    }

    /// The node for `ino`.
    pub fn get(&self, ino: u64) -> Result<Option<Node>, StoreError> {
        match self.nodes.get(ino.to_be_bytes())? {
            Some(raw) => Ok(Some(dec(&raw)?)),
            None => Ok(None),
        }
    }

    /// Whether the directory's listing is in the table.
    pub fn is_loaded(&self, ino: u64) -> Result<bool, StoreError> {
        Ok(self.dirs.contains_key(ino.to_be_bytes())?)
    }

    /// The child `name` of `parent`.
    pub fn child(&self, parent: u64, name: &[u8]) -> Result<Option<u64>, StoreError> {
        Ok(self.names.get(name_key(parent, name))?.map(|v| ino_at(&v)))
    }

    /// Every child of a loaded directory, sorted by name bytes.
    pub fn children(&self, parent: u64) -> Result<Vec<Child>, StoreError> {
        let mut out = Vec::new();
        for kv in self.names.scan_prefix(parent.to_be_bytes()) {
            let (k, v) = kv?;
            let ino = ino_at(&v);
            let node = self
                .get(ino)?
                .ok_or_else(|| StoreError::Decode(format!("dangling inode {ino}")))?;
            out.push(Child {
                name: k[8..].to_vec(),
                ino,
                node,
            });
        }
        Ok(out)
    }

    /// Records a directory's listing, giving each entry an inode, in one transaction.
    pub fn insert_children(&self, parent: u64, entries: &[ListedEntry]) -> Result<(), StoreError> {
        let res: Result<(), TransactionError<StoreError>> =
            (&self.nodes, &self.names, &self.dirs, &self.meta).transaction(
                |(nodes, names, dirs, meta)| {
                    if dirs.get(parent.to_be_bytes())?.is_some() {
                        return Ok(());
                    }
                    let mut next = match meta.get(NEXT_INO)? {
                        Some(v) => ino_at(&v),
                        None => ROOT_INO + 1,
                    };
                    for e in entries {
                        let key = name_key(parent, &e.entry.name);
                        if names.get(&key)?.is_some() {
                            continue;
                        }
                        if next >= MAX_INO {
                            return Err(ConflictableTransactionError::Abort(
                                StoreError::InodesExhausted,
                            ));
                        }
                        let node = Node {
                            parent,
                            name: e.entry.name.clone(),
                            kind: e.entry.kind,
                            oid: Some(e.entry.oid),
                            size: e.size,
                        };
                        nodes.insert(&next.to_be_bytes(), enc(&node))?;
                        names.insert(key, &next.to_be_bytes())?;
                        next += 1;
                    }
                    meta.insert(NEXT_INO, &next.to_be_bytes())?;
                    dirs.insert(&parent.to_be_bytes(), &[])?;
                    Ok(())
                },
            );
        self.top_up();
        res.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Db(e),
        })
    }

    /// Records a blob size learnt later.
    pub fn set_size(&self, ino: u64, size: u64) -> Result<(), StoreError> {
        if let Some(mut node) = self.get(ino)? {
            node.size = Some(size);
            self.nodes.insert(ino.to_be_bytes(), enc(&node))?;
            self.top_up();
        }
        Ok(())
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

    fn next_ino(&self) -> Result<u64, StoreError> {
        Ok(match self.meta.get(NEXT_INO)? {
            Some(v) => ino_at(&v),
            None => ROOT_INO + 1,
        })
    }

    /// Number of inodes known.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the root is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }
}

#[cfg(test)]
mod tests;

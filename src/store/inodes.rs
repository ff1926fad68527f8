//! The persistent inode table (sled): `ino -> Node` and `(parent, name) -> ino`.
//!
//! Inode numbers are handed out once per directory entry of the bound commit and written in
//! the same transaction as the directory listing, so a restart on the same store sees the same
//! numbers and a crash never leaves a half-listed directory. The table is bound to one
//! remote+commit; binding another clears it (objects stay cached by id).

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::StoreError;
use crate::remote::{CommitInfo, EntryKind, ListedEntry, Oid};

/// The root directory's inode.
pub const ROOT_INO: u64 = 1;
/// Dicfuse inodes stay below this; higher ranges belong to overlays (DESIGN.md, "Inodes").
pub const MAX_INO: u64 = 1 << 32;

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

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct Binding {
    remote: String,
    commit: CommitInfo,
}

/// The sled-backed inode table.
pub struct InodeTable {
    nodes: sled::Tree,
    names: sled::Tree,
    dirs: sled::Tree,
    meta: sled::Tree,
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    // bincode cannot fail on these plain structs.
    bincode::serialize(v).unwrap_or_default()
}

fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, StoreError> {
    bincode::deserialize(b).map_err(|e| StoreError::Decode(e.to_string()))
}

fn name_key(parent: u64, name: &[u8]) -> Vec<u8> {
    let mut k = parent.to_be_bytes().to_vec();
    k.extend_from_slice(name);
    k
}

const BINDING: &[u8] = b"binding";
const NEXT_INO: &[u8] = b"next_ino";

impl InodeTable {
    /// Opens the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<InodeTable, StoreError> {
        Ok(InodeTable {
            nodes: db.open_tree("nodes")?,
            names: db.open_tree("names")?,
            dirs: db.open_tree("dirs")?,
            meta: db.open_tree("meta")?,
        })
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
        Ok(self.names.get(name_key(parent, name))?.map(|v| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[..8]);
            u64::from_be_bytes(b)
        }))
    }

    /// Every child of a loaded directory, sorted by name bytes.
    pub fn children(&self, parent: u64) -> Result<Vec<Child>, StoreError> {
        let mut out = Vec::new();
        for kv in self.names.scan_prefix(parent.to_be_bytes()) {
            let (k, v) = kv?;
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[..8]);
            let ino = u64::from_be_bytes(b);
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
                        Some(v) => {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(&v[..8]);
                            u64::from_be_bytes(b)
                        }
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
mod tests {
    use super::*;
    use crate::remote::TreeEntry;

    fn listed(name: &str, kind: EntryKind, id: u8) -> ListedEntry {
        ListedEntry {
            entry: TreeEntry {
                name: name.as_bytes().to_vec(),
                kind,
                oid: Oid([id; 20]),
            },
            size: Some(3),
        }
    }

    fn commit(id: u8) -> CommitInfo {
        CommitInfo {
            oid: Oid([id; 20]),
            root_tree: Some(Oid([id + 1; 20])),
            time: 5,
        }
    }

    #[test]
    fn inodes_survive_reopen_and_rebind_clears() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b);
        {
            let db = sled::open(dir.path()).unwrap();
            let t = InodeTable::open(&db).unwrap();
            assert!(t.bind("r", &commit(1)).unwrap());
            t.insert_children(
                ROOT_INO,
                &[
                    listed("a", EntryKind::Dir, 2),
                    listed("b", EntryKind::File, 3),
                ],
            )
            .unwrap();
            a = t.child(ROOT_INO, b"a").unwrap().unwrap();
            t.insert_children(a, &[listed("x y", EntryKind::File, 4)])
                .unwrap();
            b = t.child(a, b"x y").unwrap().unwrap();
            assert_eq!(t.path(b).unwrap(), "a/x y");
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let t = InodeTable::open(&db).unwrap();
        assert!(!t.bind("r", &commit(1)).unwrap());
        assert_eq!(t.child(ROOT_INO, b"a").unwrap(), Some(a));
        assert_eq!(t.child(a, b"x y").unwrap(), Some(b));
        assert_eq!(t.recorded("r").unwrap(), Some(commit(1)));
        assert_eq!(t.recorded("other").unwrap(), None);
        let names: Vec<_> = t
            .children(ROOT_INO)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, [b"a".to_vec(), b"b".to_vec()]);
        assert!(t.bind("r", &commit(7)).unwrap());
        assert_eq!(t.child(ROOT_INO, b"a").unwrap(), None);
        assert!(!t.is_loaded(ROOT_INO).unwrap());
    }

    #[test]
    fn listing_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = InodeTable::open(&db).unwrap();
        t.bind("r", &commit(1)).unwrap();
        t.insert_children(ROOT_INO, &[listed("a", EntryKind::File, 2)])
            .unwrap();
        let first = t.child(ROOT_INO, b"a").unwrap();
        t.insert_children(
            ROOT_INO,
            &[
                listed("a", EntryKind::File, 2),
                listed("z", EntryKind::File, 3),
            ],
        )
        .unwrap();
        assert_eq!(t.child(ROOT_INO, b"a").unwrap(), first);
        assert_eq!(t.child(ROOT_INO, b"z").unwrap(), None);
        t.set_size(first.unwrap(), 42).unwrap();
        assert_eq!(t.get(first.unwrap()).unwrap().unwrap().size, Some(42));
    }
}

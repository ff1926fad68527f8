//! The persistent inode table (sled): `ino -> Node` and `(parent, name) -> ino`.
//!
//! Inode numbers are handed out once per directory entry of the bound commit and written in
//! the same transaction as the directory listing, so a restart on the same store sees the same
//! numbers and a crash never leaves a half-listed directory. The table is bound to one
//! remote+commit; binding another clears it (objects stay cached by id).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

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

/// The writes of one rebase, gathered before they are applied in one transaction.
struct RebasePlan<'a> {
    table: &'a InodeTable,
    nodes: HashMap<u64, Option<Node>>,
    names: HashMap<Vec<u8>, Option<u64>>,
    dirs: HashMap<u64, bool>,
    next: u64,
    touched: Vec<Touched>,
}

impl RebasePlan<'_> {
    fn node(&self, ino: u64) -> Result<Option<Node>, StoreError> {
        match self.nodes.get(&ino) {
            Some(n) => Ok(n.clone()),
            None => self.table.get(ino),
        }
    }

    fn child(&self, parent: u64, name: &[u8]) -> Result<Option<u64>, StoreError> {
        match self.names.get(&name_key(parent, name)) {
            Some(i) => Ok(*i),
            None => self.table.child(parent, name),
        }
    }

    fn is_loaded(&self, ino: u64) -> Result<bool, StoreError> {
        match self.dirs.get(&ino) {
            Some(l) => Ok(*l),
            None => self.table.is_loaded(ino),
        }
    }

    /// The names of loaded directory `parent`, as the plan has them now.
    fn names_of(&self, parent: u64) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
        let mut out: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for kv in self.table.names.scan_prefix(parent.to_be_bytes()) {
            let (k, v) = kv?;
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[..8]);
            out.insert(k[8..].to_vec(), u64::from_be_bytes(b));
        }
        let prefix = parent.to_be_bytes();
        for (k, v) in &self.names {
            if k.len() >= 8 && k[..8] == prefix {
                match v {
                    Some(i) => out.insert(k[8..].to_vec(), *i),
                    None => out.remove(&k[8..]),
                };
            }
        }
        Ok(out.into_iter().collect())
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
        if !self.is_loaded(ino)? {
            return Ok(());
        }
        for (name, child) in self.names_of(ino)? {
            self.unload(child)?;
            self.names.insert(name_key(ino, &name), None);
            self.nodes.insert(child, None);
        }
        self.dirs.insert(ino, false);
        Ok(())
    }

    fn add(&mut self, parent: u64, e: &ListedEntry) -> Result<u64, StoreError> {
        if self.next >= MAX_INO {
            return Err(StoreError::InodesExhausted);
        }
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(
            ino,
            Some(Node {
                parent,
                name: e.entry.name.clone(),
                kind: e.entry.kind,
                oid: Some(e.entry.oid),
                size: e.size,
            }),
        );
        self.names
            .insert(name_key(parent, &e.entry.name), Some(ino));
        Ok(ino)
    }

    /// Makes directory `dir` hold exactly `entries`, keeping the inodes of names that stay.
    /// A directory that changes without an entry in `listed` is forgotten and listed again
    /// from the remote when next looked at.
    fn apply(
        &mut self,
        dir: u64,
        path: &str,
        entries: &[ListedEntry],
        listed: &std::collections::HashSet<&str>,
    ) -> Result<(), StoreError> {
        if !self.is_loaded(dir)? {
            for e in entries {
                self.add(dir, e)?;
            }
            self.dirs.insert(dir, true);
            return Ok(());
        }
        let old: HashMap<Vec<u8>, u64> = self.names_of(dir)?.into_iter().collect();
        let new: std::collections::HashSet<&[u8]> =
            entries.iter().map(|e| e.entry.name.as_slice()).collect();
        for (name, ino) in &old {
            if !new.contains(name.as_slice()) {
                self.unload(*ino)?;
                self.names.insert(name_key(dir, name), None);
                self.nodes.insert(*ino, None);
                self.touched.push(Touched {
                    parent: dir,
                    name: name.clone(),
                    ino: Some(*ino),
                });
            }
        }
        for e in entries {
            let Some(&ino) = old.get(&e.entry.name) else {
                self.add(dir, e)?;
                self.touched.push(Touched {
                    parent: dir,
                    name: e.entry.name.clone(),
                    ino: None,
                });
                continue;
            };
            let Some(mut node) = self.node(ino)? else {
                continue;
            };
            if node.kind == e.entry.kind && node.oid == Some(e.entry.oid) {
                continue;
            }
            if !node.kind.is_dir() || !e.entry.kind.is_dir() {
                // Other content is another file: a new inode, so that nothing the kernel keeps
                // about the old one (its size, its pages) can be taken for the new content.
                self.unload(ino)?;
                self.nodes.insert(ino, None);
                self.add(dir, e)?;
                self.touched.push(Touched {
                    parent: dir,
                    name: e.entry.name.clone(),
                    ino: Some(ino),
                });
                continue;
            }
            let child_path = if path.is_empty() {
                String::from_utf8_lossy(&e.entry.name).into_owned()
            } else {
                format!("{path}/{}", String::from_utf8_lossy(&e.entry.name))
            };
            if node.kind.is_dir()
                && !(e.entry.kind.is_dir() && listed.contains(child_path.as_str()))
            {
                self.unload(ino)?;
            }
            node.kind = e.entry.kind;
            node.oid = Some(e.entry.oid);
            node.size = e.size;
            self.nodes.insert(ino, Some(node));
            self.touched.push(Touched {
                parent: dir,
                name: e.entry.name.clone(),
                ino: Some(ino),
            });
        }
        Ok(())
    }
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
    /// Topped up after each write, so the log always has room (see `reserve`).
    reserve: Option<Arc<DbReserve>>,
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
        let mut plan = RebasePlan {
            table: self,
            nodes: HashMap::new(),
            names: HashMap::new(),
            dirs: HashMap::new(),
            next: self.next_ino()?,
            touched: Vec::new(),
        };
        let mut root = self
            .get(ROOT_INO)?
            .ok_or_else(|| StoreError::Decode("no root inode".into()))?;
        root.oid = commit.root_tree;
        plan.nodes.insert(ROOT_INO, Some(root));
        let listed: std::collections::HashSet<&str> =
            updates.iter().map(|(p, _)| p.as_str()).collect();
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
            nodes,
            names,
            dirs,
            next,
            touched,
            ..
        } = plan;
        let res: Result<(), TransactionError<StoreError>> =
            (&self.nodes, &self.names, &self.dirs, &self.meta).transaction(|(tn, tm, td, meta)| {
                for (ino, node) in &nodes {
                    match node {
                        Some(n) => tn.insert(&ino.to_be_bytes(), enc(n))?,
                        None => tn.remove(&ino.to_be_bytes())?,
                    };
                }
                for (key, ino) in &names {
                    match ino {
                        Some(i) => tm.insert(key.as_slice(), &i.to_be_bytes())?,
                        None => tm.remove(key.as_slice())?,
                    };
                }
                for (ino, loaded) in &dirs {
                    if *loaded {
                        td.insert(&ino.to_be_bytes(), &[])?;
                    } else {
                        td.remove(&ino.to_be_bytes())?;
                    }
                }
                meta.insert(NEXT_INO, &next.to_be_bytes())?;
                meta.insert(BINDING, binding.as_slice())?;
                Ok(())
            });
        res.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Db(e),
        })?;
        self.top_up();
        self.meta.flush()?;
        Ok(touched)
    }

    fn next_ino(&self) -> Result<u64, StoreError> {
        Ok(match self.meta.get(NEXT_INO)? {
            Some(v) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v[..8]);
                u64::from_be_bytes(b)
            }
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
        // sled's flusher thread outlives the dropped handle for a moment and holds the
        // database's lock until it ends (a new process, as a restart is, never sees that).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let db = loop {
            match sled::open(dir.path()) {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() < deadline => {
                    assert!(e.to_string().contains("lock"), "{e}");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("reopen: {e}"),
            }
        };
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
    fn rebase_keeps_inodes_of_what_stays_and_reports_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = InodeTable::open(&db).unwrap();
        t.bind("r", &commit(1)).unwrap();
        t.insert_children(
            ROOT_INO,
            &[
                listed("a", EntryKind::Dir, 2),
                listed("gone", EntryKind::File, 3),
                listed("same", EntryKind::File, 4),
                listed("was-dir", EntryKind::Dir, 5),
            ],
        )
        .unwrap();
        let a = t.child(ROOT_INO, b"a").unwrap().unwrap();
        let same = t.child(ROOT_INO, b"same").unwrap().unwrap();
        let was_dir = t.child(ROOT_INO, b"was-dir").unwrap().unwrap();
        t.insert_children(a, &[listed("f", EntryKind::File, 6)])
            .unwrap();
        let f = t.child(a, b"f").unwrap().unwrap();
        t.insert_children(was_dir, &[listed("inner", EntryKind::File, 7)])
            .unwrap();
        let inner = t.child(was_dir, b"inner").unwrap().unwrap();

        let touched = t
            .rebase(
                &commit(9),
                &[
                    (
                        String::new(),
                        vec![
                            listed("a", EntryKind::Dir, 12),
                            listed("new-dir", EntryKind::Dir, 13),
                            listed("same", EntryKind::File, 4),
                            listed("was-dir", EntryKind::File, 15),
                        ],
                    ),
                    (
                        "a".into(),
                        vec![
                            listed("f", EntryKind::Executable, 16),
                            listed("g", EntryKind::File, 17),
                        ],
                    ),
                    ("new-dir".into(), vec![listed("n", EntryKind::File, 18)]),
                ],
            )
            .unwrap();
        // What stays keeps its inode; what changed is updated in place.
        assert_eq!(t.child(ROOT_INO, b"a").unwrap(), Some(a));
        assert_eq!(t.child(ROOT_INO, b"same").unwrap(), Some(same));
        // A file with other content is another inode; the old one is gone.
        let f2 = t.child(a, b"f").unwrap().unwrap();
        assert_ne!(f2, f);
        assert_eq!(t.get(f).unwrap(), None);
        let fnode = t.get(f2).unwrap().unwrap();
        assert_eq!(
            (fnode.kind, fnode.oid),
            (EntryKind::Executable, Some(Oid([16; 20])))
        );
        assert_eq!(t.get(a).unwrap().unwrap().oid, Some(Oid([12; 20])));
        assert_eq!(t.get(ROOT_INO).unwrap().unwrap().oid, commit(9).root_tree);
        // Gone is gone; a directory turned file loses its listing.
        assert_eq!(t.child(ROOT_INO, b"gone").unwrap(), None);
        let now_file = t.child(ROOT_INO, b"was-dir").unwrap().unwrap();
        assert_eq!(t.get(now_file).unwrap().unwrap().kind, EntryKind::File);
        assert_eq!(t.get(was_dir).unwrap(), None);
        assert!(!t.is_loaded(was_dir).unwrap());
        assert_eq!(t.child(was_dir, b"inner").unwrap(), None);
        assert_eq!(t.get(inner).unwrap(), None);
        // New entries are listed from the update, with fresh inodes.
        let nd = t.child(ROOT_INO, b"new-dir").unwrap().unwrap();
        assert!(t.is_loaded(nd).unwrap());
        assert!(t.child(nd, b"n").unwrap().is_some());
        assert!(t.child(a, b"g").unwrap().is_some());
        let mut names: Vec<_> = touched.iter().map(|x| x.name.clone()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                b"a".to_vec(),
                b"f".to_vec(),
                b"g".to_vec(),
                b"gone".to_vec(),
                b"new-dir".to_vec(),
                b"was-dir".to_vec()
            ]
        );
        // The binding moved: a restart on commit 9 keeps all of this.
        assert!(!t.bind("r", &commit(9)).unwrap());
        assert_eq!(t.child(ROOT_INO, b"same").unwrap(), Some(same));
        // A path the new commit does not have is an error, and nothing is written.
        assert!(t
            .rebase(&commit(20), &[("missing".into(), vec![])])
            .is_err());
        assert_eq!(t.recorded("r").unwrap(), Some(commit(9)));
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

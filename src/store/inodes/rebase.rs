//! Rebase planning: moving the table to another commit in place. The writes are gathered in a
//! `RebasePlan` first (reading through it sees them) and applied in one transaction, so every
//! entry that still exists keeps its inode and a failure writes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use sled::transaction::TransactionError;
use sled::Transactional;

use super::encoding::{dec, enc, ino_at, name_key, Binding, BINDING, NEXT_INO};
use super::{InodeTable, Node, MAX_INO, ROOT_INO};
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
            out.insert(k[8..].to_vec(), ino_at(&v));
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
        listed: &HashSet<&str>,
    ) -> Result<(), StoreError> {
        if !self.is_loaded(dir)? {
            for e in entries {
                self.add(dir, e)?;
            }
            self.dirs.insert(dir, true);
            return Ok(());
        }
        let old: HashMap<Vec<u8>, u64> = self.names_of(dir)?.into_iter().collect();
        let new: HashSet<&[u8]> = entries.iter().map(|e| e.entry.name.as_slice()).collect();
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
}

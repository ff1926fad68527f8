//! Planning a move of the view to another commit of the remote (`scorpio pull`).
//!
//! Promises: only directories the inode table has listed are asked for again, and of those only
//! the ones whose tree differs in the new commit (a subtree whose id is unchanged is not
//! visited); the plan says which paths the new commit changes, so that a local edit of one of
//! them can be marked as a conflict. Nothing is written: [`Dicfuse::rebase`] applies the plan.

use std::collections::HashMap;

use futures::StreamExt;

use super::{DicError, Dicfuse};
use crate::remote::{CommitInfo, ListedEntry, Oid};
use crate::store::{StoreError, ROOT_INO};

/// Listings fetched at once while planning.
const PARALLEL: usize = 8;

/// What moving the view to a commit takes.
#[derive(Debug, Default)]
pub struct MovePlan {
    /// The directories to rewrite, with their entries in the new commit, parents first (the
    /// `updates` of [`Dicfuse::rebase`]).
    pub updates: Vec<(String, Vec<ListedEntry>)>,
    /// Repository paths the new commit changes: `(path, subtree)`; `subtree` when everything
    /// below the path may have changed too (a directory added, removed, replaced, or changed
    /// but never listed here).
    pub changed: Vec<(String, bool)>,
}

impl MovePlan {
    /// Whether the new commit changes `path` (a repository path).
    pub fn changes(&self, path: &str) -> bool {
        self.changed.iter().any(|(p, subtree)| {
            p == path
                || (*subtree
                    && (p.is_empty()
                        || path
                            .strip_prefix(p.as_str())
                            .is_some_and(|r| r.starts_with('/'))))
        })
    }

    /// The entries of `dir` in the new commit, when the plan rewrites it.
    pub fn listing(&self, dir: &str) -> Option<&[ListedEntry]> {
        self.updates
            .iter()
            .find(|(p, _)| p == dir)
            .map(|(_, e)| e.as_slice())
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl Dicfuse {
    /// What moving the view to `new` takes (see the module doc).
    pub async fn plan_move(&self, new: &CommitInfo) -> Result<MovePlan, DicError> {
        let inodes = &self.store.inodes;
        let remote = self.store.remote().clone();
        let root = inodes
            .get(ROOT_INO)?
            .ok_or_else(|| StoreError::Decode("no root inode".into()))?;
        let mut plan = MovePlan::default();
        if new.root_tree.is_some() && new.root_tree == root.oid {
            return Ok(plan);
        }
        let mut level: Vec<(u64, String, Option<Oid>)> =
            vec![(ROOT_INO, String::new(), new.root_tree)];
        while !level.is_empty() {
            let fetches: Vec<_> = level
                .iter()
                .map(|(_, path, oid)| {
                    let (remote, new, path, oid) =
                        (remote.clone(), new.clone(), path.clone(), *oid);
                    async move { remote.list_tree(&new, &path, oid).await }
                })
                .collect();
            let listings: Vec<_> = futures::stream::iter(fetches)
                .buffered(PARALLEL)
                .collect()
                .await;
            let mut next = Vec::new();
            for ((dir, path, _), listing) in level.into_iter().zip(listings) {
                let entries = listing.map_err(StoreError::from)?.entries;
                if !inodes.is_loaded(dir)? {
                    // Never looked into: nothing here was seen, so nothing here can conflict.
                    plan.updates.push((path, entries));
                    continue;
                }
                let mut old: HashMap<Vec<u8>, u64> = inodes
                    .children(dir)?
                    .into_iter()
                    .map(|c| (c.node.name, c.ino))
                    .collect();
                for e in &entries {
                    let name = String::from_utf8_lossy(&e.entry.name);
                    let child_path = join(&path, &name);
                    let Some(ino) = old.remove(&e.entry.name) else {
                        plan.changed.push((child_path, e.entry.kind.is_dir()));
                        continue;
                    };
                    let Some(node) = inodes.get(ino)? else {
                        continue;
                    };
                    if node.kind == e.entry.kind && node.oid == Some(e.entry.oid) {
                        continue;
                    }
                    let both_dirs = node.kind.is_dir() && e.entry.kind.is_dir();
                    // A listed directory is listed again (its entries keep their inodes); one
                    // never listed, or whose name is not UTF-8, is forgotten by the rebase and
                    // listed when next looked at.
                    let descend = both_dirs
                        && inodes.is_loaded(ino)?
                        && std::str::from_utf8(&e.entry.name).is_ok();
                    if descend {
                        next.push((ino, child_path.clone(), Some(e.entry.oid)));
                    }
                    plan.changed.push((
                        child_path,
                        (node.kind.is_dir() || e.entry.kind.is_dir()) && !descend,
                    ));
                }
                for (name, ino) in old {
                    let subtree = inodes.get(ino)?.is_some_and(|n| n.kind.is_dir());
                    plan.changed
                        .push((join(&path, &String::from_utf8_lossy(&name)), subtree));
                }
                plan.updates.push((path, entries));
            }
            level = next;
        }
        Ok(plan)
    }
}

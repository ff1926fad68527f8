//! The overlay's node table: which inode each name the kernel looked up stands for, how many
//! lookups the kernel holds on it, and what becomes of it when names are removed, renamed or
//! forgotten. Only this file changes the table's maps; its methods keep these rules:
//!
//! - The kernel's first lookup of (parent, name) makes a node numbered from the overlay's
//!   [`Slot`] (`first_free()` onward, never reused); each lookup counts one, FORGET takes them
//!   back, and at zero the node goes with its current name and hard-link key. The root is never
//!   forgotten.
//! - An upper file with more than one link is also known by its upper (dev, ino), so every name
//!   of it finds the same node; the node carries the name it was last seen under, and dropping
//!   that name moves it to another name it is known by.
//! - A node whose last name is removed while the kernel knows it is *detached*: no path reaches
//!   it again (its path is ENOENT), and a kept file (an fd to its upper file, or a copy of its
//!   lower content) may serve it until FORGET. Kept files exist only for detached nodes: found
//!   again through another link, reattached, or forgotten, a node loses its kept file.
//! - A rename moves the node to its new name (a directory, copied up whole, stops merging the
//!   lower layer, and so does everything below it); an exchange swaps two nodes' names.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::{errno, OverlayError, Result};
use crate::ino::Slot;

/// Past this depth a path is taken to loop (the table was made to hold a cycle).
const MAX_DEPTH: usize = 4096;

/// What the overlay knows about one inode.
#[derive(Clone, Debug)]
pub(super) struct NodeInfo {
    /// Parent inode (the root is its own parent).
    pub parent: u64,
    /// The name it was last seen under.
    pub name: OsString,
    /// Kernel lookup count.
    pub lookups: u64,
    /// The lower entry at this path: for a directory, the lower directory merged into it
    /// (`None` when it is opaque or the lower has none); for a file, what it was copied from.
    pub lower: Option<u64>,
    /// Its last name was removed (unlink, or a rename over it): it is never reached by path
    /// again, only through its kept file (or its immutable lower entry).
    pub detached: bool,
}

/// The node table of one overlay (see the module doc for its rules).
pub(super) struct NodeTable {
    root: u64,
    nodes: HashMap<u64, NodeInfo>,
    by_name: HashMap<(u64, OsString), u64>,
    /// Upper files with more than one link, by (dev, ino), so hard links share an inode.
    by_upper: HashMap<(u64, u64), u64>,
    /// Upper files of detached inodes the kernel still knows, by inode.
    kept: HashMap<u64, Arc<File>>,
    next: u64,
}

impl NodeTable {
    /// A table holding only the root of `slot`, merging lower directory `root_lower`.
    pub fn new(slot: Slot, root_lower: Option<u64>) -> NodeTable {
        let root = slot.root();
        let mut nodes = HashMap::new();
        nodes.insert(
            root,
            NodeInfo {
                parent: root,
                name: OsString::new(),
                lookups: 1,
                lower: root_lower,
                detached: false,
            },
        );
        NodeTable {
            root,
            nodes,
            by_name: HashMap::new(),
            by_upper: HashMap::new(),
            kept: HashMap::new(),
            next: slot.first_free(),
        }
    }

    /// Known inodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// What is known of `ino`, if it is known.
    pub fn get(&self, ino: u64) -> Option<&NodeInfo> {
        self.nodes.get(&ino)
    }

    /// Every known inode with what is known of it.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &NodeInfo)> {
        self.nodes.iter().map(|(i, n)| (*i, n))
    }

    /// The path of `ino` relative to the layer roots (`""` for the root): ENOENT when it or an
    /// ancestor is unknown or detached, ELOOP when its parents run in a circle.
    pub fn rel_path(&self, ino: u64) -> Result<PathBuf> {
        let mut parts = Vec::new();
        let mut cur = ino;
        while cur != self.root {
            let n = self
                .nodes
                .get(&cur)
                .ok_or(OverlayError::Errno(libc::ENOENT))?;
            if n.detached {
                return errno(libc::ENOENT);
            }
            parts.push(&n.name);
            cur = n.parent;
            if parts.len() > MAX_DEPTH {
                return errno(libc::ELOOP);
            }
        }
        Ok(parts.iter().rev().collect())
    }

    /// Finds or makes the inode for `name` in `parent`, counting one kernel lookup. A known
    /// name, or else a known hard-link key `upper_id`, finds its node; the node then takes this
    /// name and lower entry, and if it was detached a path names it again.
    pub fn lookup(
        &mut self,
        parent: u64,
        name: &OsStr,
        lower: Option<u64>,
        upper_id: Option<(u64, u64)>,
    ) -> u64 {
        let key = (parent, name.to_os_string());
        let existing = self
            .by_name
            .get(&key)
            .copied()
            .or_else(|| upper_id.and_then(|id| self.by_upper.get(&id).copied()));
        let ino = match existing.filter(|i| self.nodes.contains_key(i)) {
            Some(ino) => ino,
            None => {
                let ino = self.next;
                self.next += 1;
                self.nodes.insert(
                    ino,
                    NodeInfo {
                        parent,
                        name: name.to_os_string(),
                        lookups: 0,
                        lower,
                        detached: false,
                    },
                );
                ino
            }
        };
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.lookups += 1;
            n.parent = parent;
            n.name = name.to_os_string();
            n.lower = lower;
            if std::mem::take(&mut n.detached) {
                self.kept.remove(&ino);
            }
        }
        self.by_name.insert(key, ino);
        if let Some(id) = upper_id {
            self.by_upper.insert(id, ino);
        }
        ino
    }

    /// Records a new hard link `name` in `parent` to `ino` (upper key `upper_id`), counting the
    /// kernel lookup the new entry carries.
    pub fn add_link(&mut self, ino: u64, parent: u64, name: &OsStr, upper_id: (u64, u64)) {
        self.by_upper.insert(upper_id, ino);
        self.by_name.insert((parent, name.to_os_string()), ino);
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.lookups += 1;
        }
    }

    /// Takes back `n` kernel lookups of `ino`; at zero the node goes, with its current name,
    /// its hard-link key and its kept file. Returns whether it went.
    pub fn forget(&mut self, ino: u64, n: u64) -> bool {
        if ino == self.root {
            return false;
        }
        let gone = match self.nodes.get_mut(&ino) {
            Some(info) => {
                info.lookups = info.lookups.saturating_sub(n);
                info.lookups == 0
            }
            None => false,
        };
        if gone {
            self.kept.remove(&ino);
            if let Some(info) = self.nodes.remove(&ino) {
                let key = (info.parent, info.name);
                if self.by_name.get(&key) == Some(&ino) {
                    self.by_name.remove(&key);
                }
                self.by_upper.retain(|_, v| *v != ino);
            }
        }
        gone
    }

    /// Forgets the name `name` in `parent` (after unlink): a hard-linked inode known by that
    /// name moves to one of its other known names.
    pub fn drop_name(&mut self, parent: u64, name: &OsStr) {
        let key = (parent, name.to_os_string());
        let Some(ino) = self.by_name.remove(&key) else {
            return;
        };
        let is_current = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.parent == parent && n.name == name);
        if is_current {
            let other = self
                .by_name
                .iter()
                .find(|(_, i)| **i == ino)
                .map(|(k, _)| k.clone());
            if let (Some((p, n)), Some(info)) = (other, self.nodes.get_mut(&ino)) {
                info.parent = p;
                info.name = n;
            }
        }
    }

    /// The inode that removing `name` in `parent` may detach: the one known by that name, if it
    /// is attached and not the root.
    pub fn attached_at(&self, parent: u64, name: &OsStr) -> Option<u64> {
        let ino = *self.by_name.get(&(parent, name.to_os_string()))?;
        match self.nodes.get(&ino) {
            Some(n) if !n.detached && ino != self.root => Some(ino),
            _ => None,
        }
    }

    /// Whether `ino` is known by a name other than `name` in `parent`.
    pub fn has_other_name(&self, ino: u64, parent: u64, name: &OsStr) -> bool {
        self.by_name
            .iter()
            .any(|((p, n), i)| *i == ino && (*p, n.as_os_str()) != (parent, name))
    }

    /// Marks `ino` detached (its last name is going), keeping `kept` to serve it until FORGET.
    pub fn detach(&mut self, ino: u64, kept: Option<Arc<File>>) {
        let Some(n) = self.nodes.get_mut(&ino) else {
            return;
        };
        n.detached = true;
        if let Some(f) = kept {
            self.kept.insert(ino, f);
        }
    }

    /// Undoes `detach` when removing the name failed: a path names `ino` again.
    pub fn reattach(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.detached = false;
        }
        self.kept.remove(&ino);
    }

    /// The kept file of detached inode `ino`, if there is one.
    pub fn kept(&self, ino: u64) -> Option<Arc<File>> {
        self.kept.get(&ino).cloned()
    }

    /// Keeps `f` for `ino` from now on, if `ino` is known and detached (else nothing is kept).
    pub fn keep(&mut self, ino: u64, f: Arc<File>) {
        if self.nodes.get(&ino).is_some_and(|n| n.detached) {
            self.kept.insert(ino, f);
        }
    }

    /// Records that `src` moved from `name` in `parent` to `new_name` in `new_parent`, over
    /// `replaced` (if any, which loses that name, as after an unlink, and its lower entry). A
    /// directory `src` was
    /// copied up whole: it and everything known below it stop merging the lower layer.
    pub fn rename(
        &mut self,
        src: u64,
        (parent, name): (u64, &OsStr),
        (new_parent, new_name): (u64, &OsStr),
        replaced: Option<u64>,
        src_dir: bool,
    ) {
        self.by_name.remove(&(parent, name.to_os_string()));
        if let Some(d) = replaced {
            // As after an unlink: a hard-linked inode whose path was this name goes on under
            // another name it is known by, or its path would name the file renamed here.
            self.drop_name(new_parent, new_name);
            if let Some(info) = self.nodes.get_mut(&d) {
                info.lower = None;
            }
        }
        if let Some(info) = self.nodes.get_mut(&src) {
            info.parent = new_parent;
            info.name = new_name.to_os_string();
            if src_dir {
                info.lower = None;
            }
        }
        self.by_name
            .insert((new_parent, new_name.to_os_string()), src);
        if src_dir {
            let mut below = vec![src];
            while let Some(dir) = below.pop() {
                let kids: Vec<u64> = self
                    .nodes
                    .iter()
                    .filter(|(i, n)| n.parent == dir && **i != dir)
                    .map(|(i, _)| *i)
                    .collect();
                for k in kids {
                    if let Some(info) = self.nodes.get_mut(&k) {
                        info.lower = None;
                    }
                    below.push(k);
                }
            }
        }
    }

    /// Records that `a` (at `a_at`) and `b` (at `b_at`) swapped places; both were copied up
    /// whole, so neither merges the lower layer any more.
    pub fn exchange(&mut self, a: u64, a_at: (u64, &OsStr), b: u64, b_at: (u64, &OsStr)) {
        for (ino, (p, n)) in [(a, b_at), (b, a_at)] {
            if let Some(info) = self.nodes.get_mut(&ino) {
                info.parent = p;
                info.name = n.to_os_string();
                info.lower = None;
            }
            self.by_name.insert((p, n.to_os_string()), ino);
        }
    }

    /// Points `ino` at lower entry `lower` (after a push moved the base).
    pub fn set_lower(&mut self, ino: u64, lower: Option<u64>) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.lower = lower;
        }
    }
}

#[cfg(test)]
mod tests;

//! The trees of a commit: only the directories on the paths of changes are read from the
//! mounted commit (from the inode table, never fetched) and rebuilt; every other entry keeps
//! the commit's object id.

use std::collections::{BTreeMap, HashMap};

use tokio::runtime::Handle;

use super::ids::{git_oid, mode, our_oid};
use super::writer::Writer;
use crate::dicfuse::Dicfuse;
use crate::remote::{EntryKind, Oid};
use crate::store::ROOT_INO;
use crate::vcs::change::{Change, ChangeKind};
use crate::vcs::error::VcsError;
use crate::vcs::names::quote_path;

/// A change placed in the tree of changed paths.
#[derive(Default)]
struct Node {
    /// (name -> change at that name) for entries of this directory.
    here: BTreeMap<Vec<u8>, Vec<Change>>,
    /// (name -> subdirectory holding deeper changes).
    below: BTreeMap<Vec<u8>, Node>,
}

fn place(root: &mut Node, c: Change) {
    let parts: Vec<Vec<u8>> = c.path.split(|b| *b == b'/').map(<[u8]>::to_vec).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return;
    };
    let mut n = root;
    for p in dirs {
        n = n.below.entry(p.clone()).or_default();
    }
    n.here.entry(last.clone()).or_default().push(c);
}

/// One entry of a commit directory: mode, id, and the Dicfuse inode of a subdirectory.
type BaseEntry = (i32, git2::Oid, Option<u64>);

/// The commit's entries of every directory on a changed path, by repository path.
type BaseDirs = HashMap<Vec<u8>, BTreeMap<Vec<u8>, BaseEntry>>;

fn sub_key(key: &[u8], name: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(b'/');
    k.extend_from_slice(name);
    k
}

/// Reads, for every directory on a changed path, the commit's entries (from the inode table;
/// only these directories, never the rest of the tree).
fn gather(
    dic: &Dicfuse,
    rt: &Handle,
    lower: Option<u64>,
    node: &Node,
    key: Vec<u8>,
    out: &mut BaseDirs,
) -> Result<(), VcsError> {
    let mut entries = BTreeMap::new();
    if let Some(l) = lower {
        for c in rt.block_on(dic.lower_children(l))?.iter() {
            let oid = c.node.oid.ok_or_else(|| {
                VcsError::Lower(format!("entry without an id in {}", quote_path(&key)))
            })?;
            let dir = (c.node.kind == EntryKind::Dir).then_some(c.ino);
            entries.insert(c.name().to_vec(), (mode(c.node.kind), git_oid(oid)?, dir));
        }
    }
    for (name, sub) in &node.below {
        // A directory deleted here and written again (opaque) starts empty, not from the commit.
        let replaced = node
            .here
            .get(name)
            .is_some_and(|cs| cs.iter().any(|c| c.kind == ChangeKind::Deleted));
        let sub_lower = entries
            .get(name)
            .and_then(|e: &BaseEntry| e.2)
            .filter(|_| !replaced);
        gather(dic, rt, sub_lower, sub, sub_key(&key, name), out)?;
    }
    out.insert(key, entries);
    Ok(())
}

/// The bytes of a git tree holding `entries`, in git's order (a directory sorts as if its name
/// ended in `/`).
fn tree_bytes(entries: &BTreeMap<Vec<u8>, (i32, git2::Oid)>) -> Vec<u8> {
    let mut sorted: Vec<_> = entries.iter().collect();
    let key = |name: &[u8], m: i32| {
        let mut k = name.to_vec();
        if m == 0o040000 {
            k.push(b'/');
        }
        k
    };
    sorted.sort_by_key(|(name, (m, _))| key(name, *m));
    let mut out = Vec::new();
    for (name, (m, oid)) in sorted {
        out.extend_from_slice(format!("{m:o} ").as_bytes());
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(oid.as_bytes());
    }
    out
}

/// Builds the tree of directory `key` with `node`'s changes applied; `None` when it ends up
/// empty. Blobs were written by the scan; only trees are written here.
fn build(
    w: &mut Writer<'_>,
    base: &BaseDirs,
    key: &[u8],
    node: &Node,
) -> Result<Option<git2::Oid>, VcsError> {
    let mut entries: BTreeMap<Vec<u8>, (i32, git2::Oid)> = base
        .get(key)
        .map(|m| {
            m.iter()
                .map(|(n, (md, o, _))| (n.clone(), (*md, *o)))
                .collect()
        })
        .unwrap_or_default();
    for (name, changes) in &node.here {
        if changes.iter().any(|c| c.kind == ChangeKind::Deleted) {
            entries.remove(name);
        }
        for c in changes.iter().filter(|c| c.kind != ChangeKind::Deleted) {
            let new = c.new.ok_or_else(|| {
                VcsError::Lower(format!("{} has no new entry", quote_path(&c.path)))
            })?;
            entries.insert(name.clone(), (mode(new.kind), git_oid(new.oid)?));
        }
    }
    for (name, sub) in &node.below {
        match build(w, base, &sub_key(key, name), sub)? {
            Some(oid) => {
                entries.insert(name.clone(), (0o040000, oid));
            }
            None => {
                entries.remove(name);
            }
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        w.write(git2::ObjectType::Tree, &tree_bytes(&entries))?,
    ))
}

/// The commit's directories on the paths of `changes`, arranged for [`tree_with`].
pub struct Plan {
    root: Node,
    base: BaseDirs,
}

/// Reads what a commit of `changes` needs from the commit (on a blocking thread; `rt` answers
/// the lookups).
pub fn plan(dic: &Dicfuse, rt: &Handle, changes: Vec<Change>) -> Result<Plan, VcsError> {
    let mut root = Node::default();
    for c in changes {
        place(&mut root, c);
    }
    let mut base = HashMap::new();
    gather(dic, rt, Some(ROOT_INO), &root, Vec::new(), &mut base)?;
    Ok(Plan { root, base })
}

/// The root tree of the commit with the planned changes applied.
pub fn tree_with(w: &mut Writer<'_>, plan: &Plan) -> Result<Oid, VcsError> {
    match build(w, &plan.base, b"", &plan.root)? {
        Some(t) => Ok(our_oid(t)),
        None => Ok(our_oid(w.write(git2::ObjectType::Tree, b"")?)),
    }
}

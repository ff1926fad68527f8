//! `commit`: a git commit of the upper layer's changes on top of the mounted commit.
//!
//! Promises: only the trees on the paths of changes are rebuilt (every other entry keeps the
//! commit's object id, read from the inode table, never fetched); blobs come from the upper layer;
//! objects are written to a local bare repository (`store_path/git`) that holds only what Scorpio
//! made, so it is exactly what a push must send. Commits stack: the parent is the last local
//! commit until a push moves the base.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::status::{Change, ChangeKind};
use super::ManagerError;
use crate::dicfuse::Dicfuse;
use crate::remote::{EntryKind, Oid};
use crate::store::ROOT_INO;

/// Who a commit is by.
#[derive(Clone, Debug)]
pub struct Author {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

fn git_oid(o: Oid) -> Result<git2::Oid, ManagerError> {
    git2::Oid::from_bytes(&o.0).map_err(|e| ManagerError::Lower(e.to_string()))
}

fn our_oid(o: git2::Oid) -> Oid {
    let mut b = [0u8; 20];
    b.copy_from_slice(o.as_bytes());
    Oid(b)
}

fn mode(kind: EntryKind) -> i32 {
    match kind {
        EntryKind::File => 0o100644,
        EntryKind::Executable => 0o100755,
        EntryKind::Symlink => 0o120000,
        EntryKind::Dir => 0o040000,
        EntryKind::Submodule => 0o160000,
    }
}

/// The local repository commits are written to. Only this daemon uses it (the store's sled
/// database is locked for one process), so lock files found at start are what a crash left, and
/// are removed; a repository that does not open (a crash during its creation) is moved aside,
/// never deleted, and a new one is made in its place.
pub fn open_staging(store_path: &Path) -> Result<git2::Repository, ManagerError> {
    // Trees name objects this repository does not hold (the rest of the commit).
    git2::opts::strict_object_creation(false);
    let dir = store_path.join("git");
    let failed = |e: &dyn std::fmt::Display| {
        ManagerError::Lower(format!("staging repository {}: {e}", dir.display()))
    };
    if let Ok(r) = git2::Repository::open_bare(&dir) {
        remove_stale_locks(&dir);
        return Ok(r);
    }
    if dir.exists() {
        let aside = store_path.join(format!("git.broken-{}", unique_suffix()));
        std::fs::rename(&dir, &aside).map_err(|e| failed(&e))?;
        tracing::warn!(dir = %aside.display(), "the staging repository did not open; moved aside");
    }
    // Made aside and renamed into place, so a crash never leaves a half-made repository.
    let tmp = store_path.join(format!("git.new-{}", unique_suffix()));
    git2::Repository::init_bare(&tmp).map_err(|e| failed(&e))?;
    std::fs::rename(&tmp, &dir).map_err(|e| failed(&e))?;
    git2::Repository::open_bare(&dir).map_err(|e| failed(&e))
}

/// A suffix no other directory of the store has.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// Removes the `*.lock` files of repository `dir` (its top level and `refs/`).
fn remove_stale_locks(dir: &Path) {
    let mut dirs = vec![dir.to_path_buf(), dir.join("refs")];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && path.starts_with(dir.join("refs")) {
                dirs.push(path);
            } else if !is_dir && path.extension().is_some_and(|x| x == "lock") {
                tracing::warn!(file = %path.display(), "removing a lock file a crash left");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Replaces the staging repository by an empty one (after its objects were pushed).
pub fn renew_staging(store_path: &Path) -> Result<git2::Repository, ManagerError> {
    let dir = store_path.join("git");
    let old = store_path.join(format!("git.pushed-{}", unique_suffix()));
    std::fs::rename(&dir, &old)?;
    let fresh = open_staging(store_path)?;
    if let Err(e) = std::fs::remove_dir_all(&old) {
        tracing::warn!(dir = %old.display(), error = %e, "could not remove the old staging repository");
    }
    Ok(fresh)
}

/// A change placed in the tree of changed paths.
#[derive(Default)]
struct Node {
    /// (name -> change at that name) for entries of this directory.
    here: BTreeMap<Vec<u8>, Vec<Change>>,
    /// (name -> subdirectory holding deeper changes).
    below: BTreeMap<Vec<u8>, Node>,
}

fn place(root: &mut Node, c: Change) {
    let parts: Vec<&str> = c.path.split('/').collect();
    let mut n = root;
    for p in &parts[..parts.len() - 1] {
        n = n.below.entry(p.as_bytes().to_vec()).or_default();
    }
    n.here
        .entry(parts[parts.len() - 1].as_bytes().to_vec())
        .or_default()
        .push(c);
}

/// Writes the blob of an upper entry into `repo`.
fn write_blob(
    repo: &git2::Repository,
    file: &Path,
    kind: EntryKind,
) -> Result<git2::Oid, ManagerError> {
    let r = if kind == EntryKind::Symlink {
        let target = std::fs::read_link(file)?;
        repo.blob(target.as_os_str().as_bytes())
    } else {
        repo.blob_path(file)
    };
    r.map_err(|e| ManagerError::Lower(format!("writing the blob of {}: {e}", file.display())))
}

/// Where the upper file of repository path `path` is, given the mounted paths' upper layers.
fn upper_file<'a>(
    uppers: &'a [(String, std::path::PathBuf)],
    path: &str,
) -> Option<std::path::PathBuf> {
    uppers
        .iter()
        .find_map(|(m, u): &'a (String, std::path::PathBuf)| {
            if m.is_empty() {
                Some(u.join(path))
            } else {
                path.strip_prefix(m.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .map(|r| u.join(r))
            }
        })
}

/// One entry of a commit directory: mode, id, and the Dicfuse inode of a subdirectory.
type BaseEntry = (i32, git2::Oid, Option<u64>);

/// Reads, for every directory on a changed path, the commit's entries (from the inode table;
/// only these directories, never the rest of the tree).
async fn gather(
    dic: &Dicfuse,
    lower: Option<u64>,
    node: &Node,
    key: String,
    out: &mut std::collections::HashMap<String, BTreeMap<Vec<u8>, BaseEntry>>,
) -> Result<(), ManagerError> {
    let mut entries = BTreeMap::new();
    if let Some(l) = lower {
        for c in dic.lower_children(l).await?.iter() {
            let oid = c
                .node
                .oid
                .ok_or_else(|| ManagerError::Lower(format!("entry without an id in {key:?}")))?;
            let dir = (c.node.kind == EntryKind::Dir).then_some(c.ino);
            entries.insert(c.name.clone(), (mode(c.node.kind), git_oid(oid)?, dir));
        }
    }
    for (name, sub) in &node.below {
        let sub_lower = entries.get(name).and_then(|e: &BaseEntry| e.2);
        let sub_key = format!("{key}/{}", String::from_utf8_lossy(name));
        Box::pin(gather(dic, sub_lower, sub, sub_key, out)).await?;
    }
    out.insert(key, entries);
    Ok(())
}

/// Builds the tree of directory `key` with `node`'s changes applied; `None` when it ends up
/// empty.
fn build(
    repo: &git2::Repository,
    uppers: &[(String, std::path::PathBuf)],
    base: &std::collections::HashMap<String, BTreeMap<Vec<u8>, BaseEntry>>,
    key: &str,
    node: &Node,
) -> Result<Option<git2::Oid>, ManagerError> {
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
            let new = c
                .new
                .ok_or_else(|| ManagerError::Lower(format!("{} has no new entry", c.path)))?;
            let file = upper_file(uppers, &c.path).ok_or_else(|| {
                ManagerError::Lower(format!("{} is not in a writable path", c.path))
            })?;
            let oid = write_blob(repo, &file, new.kind)?;
            if our_oid(oid) != new.oid {
                return Err(ManagerError::Lower(format!(
                    "{} changed during the commit; try again",
                    c.path
                )));
            }
            entries.insert(name.clone(), (mode(new.kind), oid));
        }
    }
    for (name, sub) in &node.below {
        let sub_key = format!("{key}/{}", String::from_utf8_lossy(name));
        match build(repo, uppers, base, &sub_key, sub)? {
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
    let mut tb = repo
        .treebuilder(None)
        .map_err(|e| ManagerError::Lower(e.to_string()))?;
    for (name, (m, oid)) in &entries {
        tb.insert(std::ffi::OsStr::from_bytes(name), *oid, *m)
            .map_err(|e| ManagerError::Lower(e.to_string()))?;
    }
    Ok(Some(
        tb.write().map_err(|e| ManagerError::Lower(e.to_string()))?,
    ))
}

/// The commit's directories on the paths of `changes`, arranged for [`tree_with`].
pub struct Plan {
    root: Node,
    base: std::collections::HashMap<String, BTreeMap<Vec<u8>, BaseEntry>>,
}

/// Reads what a commit of `changes` needs from the commit (asynchronously, before any git work).
pub async fn plan(dic: &Dicfuse, changes: Vec<Change>) -> Result<Plan, ManagerError> {
    let mut root = Node::default();
    for c in changes {
        place(&mut root, c);
    }
    let mut base = std::collections::HashMap::new();
    gather(dic, Some(ROOT_INO), &root, String::new(), &mut base).await?;
    Ok(Plan { root, base })
}

/// The root tree of the commit with the planned changes applied.
pub fn tree_with(
    repo: &git2::Repository,
    uppers: &[(String, std::path::PathBuf)],
    plan: &Plan,
) -> Result<Oid, ManagerError> {
    match build(repo, uppers, &plan.base, "", &plan.root)? {
        Some(t) => Ok(our_oid(t)),
        None => {
            let empty = repo
                .treebuilder(None)
                .and_then(|tb| tb.write())
                .map_err(|e| ManagerError::Lower(e.to_string()))?;
            Ok(our_oid(empty))
        }
    }
}

/// Writes a commit object of `tree` on `parent` and returns its id.
pub fn write_commit(
    repo: &git2::Repository,
    tree: Oid,
    parent: Oid,
    author: &Author,
    message: &str,
) -> Result<Oid, ManagerError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let clean = |s: &str| s.replace(['<', '>', '\n'], "");
    let who = format!(
        "{} <{}> {now} +0000",
        clean(&author.name),
        clean(&author.email)
    );
    let mut msg = message.trim_end().to_string();
    msg.push('\n');
    let body = format!("tree {tree}\nparent {parent}\nauthor {who}\ncommitter {who}\n\n{msg}");
    let oid = repo
        .odb()
        .and_then(|odb| odb.write(git2::ObjectType::Commit, body.as_bytes()))
        .map_err(|e| ManagerError::Lower(e.to_string()))?;
    Ok(our_oid(oid))
}

/// The local commit history of a workspace: where it stands relative to its base.
pub struct History {
    tree: sled::Tree,
}

impl History {
    /// The history kept in `tree`.
    pub fn new(tree: sled::Tree) -> History {
        History { tree }
    }

    /// The last local commit and how many commits are ahead of `base`; `(base, 0)` when none.
    pub fn head(&self, base: Oid) -> (Oid, u64) {
        let get = |k: &str| self.tree.get(k).ok().flatten();
        match (get("base"), get("head"), get("ahead")) {
            (Some(b), Some(h), Some(a)) if b.as_ref() == base.0 => {
                let mut hb = [0u8; 20];
                hb.copy_from_slice(&h[..20]);
                let mut ab = [0u8; 8];
                ab.copy_from_slice(&a[..8]);
                (Oid(hb), u64::from_be_bytes(ab))
            }
            _ => (base, 0),
        }
    }

    /// Records `commit` as the new local head on `base`.
    pub fn advance(&self, base: Oid, commit: Oid) -> Result<u64, ManagerError> {
        let (_, ahead) = self.head(base);
        let ahead = ahead + 1;
        let r: Result<(), sled::Error> = (|| {
            self.tree.insert("base", &base.0)?;
            self.tree.insert("head", &commit.0)?;
            self.tree.insert("ahead", &ahead.to_be_bytes())?;
            self.tree.flush()?;
            Ok(())
        })();
        r.map_err(|e| ManagerError::Lower(e.to_string()))?;
        Ok(ahead)
    }
}

/// A pack of the objects Scorpio made for the commits from `head` back to (not including)
/// `base`: those commits, and the trees and blobs they reach that this repository holds (the
/// rest belongs to the base, which the server has).
pub fn pack_new_objects(
    repo: &git2::Repository,
    head: Oid,
    base: Oid,
) -> Result<(Vec<u8>, usize), ManagerError> {
    let err = |e: git2::Error| ManagerError::Lower(e.to_string());
    let odb = repo.odb().map_err(err)?;
    let mut pb = repo.packbuilder().map_err(err)?;
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<git2::Oid> = Vec::new();
    let mut c = head;
    while c != base {
        let commit = repo.find_commit(git_oid(c)?).map_err(err)?;
        pb.insert_object(commit.id(), None).map_err(err)?;
        stack.push(commit.tree_id());
        c = our_oid(commit.parent_id(0).map_err(err)?);
    }
    while let Some(t) = stack.pop() {
        if !seen.insert(t) || !odb.exists(t) {
            continue;
        }
        pb.insert_object(t, None).map_err(err)?;
        let tree = repo.find_tree(t).map_err(err)?;
        for e in tree.iter() {
            match e.kind() {
                Some(git2::ObjectType::Tree) => stack.push(e.id()),
                Some(git2::ObjectType::Blob) if odb.exists(e.id()) && seen.insert(e.id()) => {
                    pb.insert_object(e.id(), None).map_err(err)?;
                }
                _ => {}
            }
        }
    }
    let n = pb.object_count();
    let mut buf = git2::Buf::new();
    pb.write_buf(&mut buf).map_err(err)?;
    Ok((buf.to_vec(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_during_creation_or_a_commit_does_not_block_the_staging_repository() {
        let store = tempfile::tempdir().expect("tempdir");
        // Killed while creating it: a directory with a lock and no repository.
        let half = store.path().join("git");
        std::fs::create_dir_all(&half).expect("mkdir");
        std::fs::write(half.join("config.lock"), b"").expect("lock");
        let r = open_staging(store.path()).expect("opens over a half-made repository");
        drop(r);
        let aside: Vec<_> = std::fs::read_dir(store.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("git.broken-"))
            .collect();
        assert_eq!(aside.len(), 1, "the half-made one is kept aside");
        // Killed during a commit: lock files beside a working repository.
        std::fs::create_dir_all(half.join("refs/heads")).expect("mkdir refs");
        for lock in ["config.lock", "refs/heads/main.lock"] {
            std::fs::write(half.join(lock), b"").expect("lock");
        }
        let r = open_staging(store.path()).expect("opens with stale locks");
        assert!(!half.join("config.lock").exists() && !half.join("refs/heads/main.lock").exists());
        r.config()
            .and_then(|mut c| c.set_str("scorpio.test", "1"))
            .expect("the config can be written again");
    }
}

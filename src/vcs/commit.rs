//! `commit`: a git commit of the upper layer's changes on top of the mounted commit.
//!
//! Promises: only the trees on the paths of changes are rebuilt (every other entry keeps the
//! commit's object id, read from the inode table, never fetched); blobs come from the upper layer;
//! objects are written to a local bare repository (`store_path/git`) that holds only what Scorpio
//! made, so it is exactly what a push must send. Commits stack: the parent is the last local
//! commit until a push moves the base.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::runtime::Handle;

use super::change::{Change, ChangeKind};
use super::loose::{remove_temporaries, LooseBlob};
use super::names::quote_path;
use super::scan::{Content, Want};
use super::VcsError;
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

fn git_oid(o: Oid) -> Result<git2::Oid, VcsError> {
    git2::Oid::from_bytes(&o.0).map_err(|e| VcsError::Lower(e.to_string()))
}

/// Our id of a git2 id.
pub fn our_oid(o: git2::Oid) -> Oid {
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
pub fn open_staging(store_path: &Path) -> Result<git2::Repository, VcsError> {
    // Trees name objects this repository does not hold (the rest of the commit).
    git2::opts::strict_object_creation(false);
    let dir = store_path.join("git");
    let failed = |e: &dyn std::fmt::Display| {
        VcsError::Lower(format!("staging repository {}: {e}", dir.display()))
    };
    if let Ok(r) = git2::Repository::open_bare(&dir) {
        remove_stale_locks(&dir);
        // Objects a crash cut short, never to be finished.
        remove_temporaries(&dir.join("objects"));
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
pub fn renew_staging(store_path: &Path) -> Result<git2::Repository, VcsError> {
    let dir = store_path.join("git");
    let old = store_path.join(format!("git.pushed-{}", unique_suffix()));
    std::fs::rename(&dir, &old)?;
    let fresh = open_staging(store_path)?;
    if let Err(e) = std::fs::remove_dir_all(&old) {
        tracing::warn!(dir = %old.display(), error = %e, "could not remove the old staging repository");
    }
    Ok(fresh)
}

/// Writes objects into the staging repository, remembering the ones it created, so that a
/// commit that fails takes back everything it wrote (nothing is left to fill the disk).
///
/// Only one commit or push uses the repository at a time (`Vcs::op`), so whatever a failed
/// commit finds in the fan-out directories it wrote to that is not an object (a temporary file
/// of a write cut short) is its own too.
pub struct Writer<'r> {
    odb: git2::Odb<'r>,
    objects: PathBuf,
    created: Vec<git2::Oid>,
    /// Fan-out directories written to (`objects/ab`), and whether this commit made them.
    touched: BTreeMap<String, bool>,
}

/// A git2 failure while writing `what`; a full disk is [`VcsError::NoSpace`].
fn write_failed(what: &str, e: git2::Error) -> VcsError {
    let msg = e.message();
    if msg.contains("No space left on device") || msg.contains("Disk quota exceeded") {
        VcsError::NoSpace(format!("writing {what} to the staging repository: {msg}"))
    } else {
        VcsError::Lower(format!("writing {what}: {msg}"))
    }
}

impl<'r> Writer<'r> {
    /// A writer into `repo`.
    pub fn new(repo: &'r git2::Repository) -> Result<Writer<'r>, VcsError> {
        Ok(Writer {
            odb: repo.odb().map_err(|e| VcsError::Lower(e.to_string()))?,
            objects: repo.path().join("objects"),
            created: Vec::new(),
            touched: BTreeMap::new(),
        })
    }

    /// Writes an object (unless the repository has it) and returns its id.
    pub fn write(&mut self, kind: git2::ObjectType, data: &[u8]) -> Result<git2::Oid, VcsError> {
        let oid = git2::Oid::hash_object(kind, data).map_err(|e| write_failed("an object", e))?;
        if self.odb.exists(oid) {
            return Ok(oid);
        }
        self.will_write(oid);
        let written = self
            .odb
            .write(kind, data)
            .map_err(|e| write_failed(&format!("{kind} {oid}"), e))?;
        self.created.push(written);
        Ok(written)
    }

    /// Notes that object `oid` is about to be written, for [`Writer::roll_back`].
    fn will_write(&mut self, oid: git2::Oid) {
        let hex = oid.to_string();
        let fanout = hex[..2].to_string();
        let existed = self.objects.join(&fanout).is_dir();
        self.touched.entry(fanout).or_insert(!existed);
    }

    /// Puts `blob` (written by the scan as it read the file) in place as object `oid`, unless
    /// the repository has it (then `blob` is dropped, which removes it).
    pub fn place_loose(&mut self, blob: LooseBlob, oid: git2::Oid) -> Result<(), VcsError> {
        if self.odb.exists(oid) {
            return Ok(());
        }
        let what = format!("blob {oid}");
        let failed = |e: std::io::Error| {
            if super::is_no_space(&e) {
                VcsError::NoSpace(format!("writing {what} to the staging repository: {e}"))
            } else {
                VcsError::Lower(format!("writing {what}: {e}"))
            }
        };
        let hex = oid.to_string();
        self.will_write(oid);
        let fanout = self.objects.join(&hex[..2]);
        std::fs::create_dir_all(&fanout).map_err(failed)?;
        let tmp = blob.finish().map_err(failed)?;
        // Read-only, as git makes every object.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o444))
            .map_err(failed)?;
        tmp.persist(fanout.join(&hex[2..]))
            .map_err(|e| failed(e.error))?;
        self.created.push(oid);
        Ok(())
    }

    /// Removes every object this writer created, what a cut-short write left in the directories
    /// it wrote to, and the directories it made; returns the number of objects removed.
    pub fn roll_back(self) -> usize {
        let n = self.created.len();
        remove_temporaries(&self.objects);
        for oid in &self.created {
            let hex = oid.to_string();
            let _ = std::fs::remove_file(self.objects.join(&hex[..2]).join(&hex[2..]));
        }
        for (fanout, made) in &self.touched {
            let dir = self.objects.join(fanout);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let is_object =
                    name.len() == 38 && name.as_bytes().iter().all(u8::is_ascii_hexdigit);
                if !is_object {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            if *made {
                let _ = std::fs::remove_dir(&dir);
            }
        }
        n
    }
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
            entries.insert(c.name.clone(), (mode(c.node.kind), git_oid(oid)?, dir));
        }
    }
    for (name, sub) in &node.below {
        let sub_lower = entries.get(name).and_then(|e: &BaseEntry| e.2);
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

/// Takes the blobs of changed files into the staging repository as the scan reads them: the
/// blob written is exactly the bytes the change's id was computed from.
pub struct BlobSink<'w, 'r> {
    /// Where blobs go.
    pub writer: &'w mut Writer<'r>,
}

impl super::scan::Sink for BlobSink<'_, '_> {
    fn wants(&self) -> Want {
        Want::All(self.writer.objects.clone())
    }

    fn change(&mut self, c: &Change, content: Option<Content>) -> Result<(), VcsError> {
        let (Some(new), Some(content)) = (c.new, content) else {
            return Ok(());
        };
        if c.old.is_some_and(|o| o.oid == new.oid) {
            // Only the mode changed: the commit has the blob.
            return Ok(());
        }
        let bytes = match content {
            Content::Bytes(bytes) => bytes,
            Content::Loose(blob) => return self.writer.place_loose(blob, git_oid(new.oid)?),
            Content::TooLarge(_) => {
                return Err(VcsError::Lower(format!(
                    "the content of {} was not kept",
                    quote_path(&c.path)
                )))
            }
        };
        let oid = self.writer.write(git2::ObjectType::Blob, &bytes)?;
        if our_oid(oid) != new.oid {
            return Err(VcsError::Lower(format!(
                "the blob of {} hashed differently when written",
                quote_path(&c.path)
            )));
        }
        Ok(())
    }
}

/// Writes a commit object of `tree` on `parent` and returns its id.
pub fn write_commit(
    w: &mut Writer<'_>,
    tree: Oid,
    parent: Oid,
    author: &Author,
    message: &str,
) -> Result<Oid, VcsError> {
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
    Ok(our_oid(w.write(git2::ObjectType::Commit, body.as_bytes())?))
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

    /// Records `commit` as the new local head on `base`, all at once; when it cannot be made
    /// durable, the previous head is put back.
    pub fn advance(&self, base: Oid, commit: Oid) -> Result<u64, VcsError> {
        let (_, ahead) = self.head(base);
        let ahead = ahead + 1;
        let keys = ["base", "head", "ahead"];
        let before: Vec<Option<sled::IVec>> = keys
            .iter()
            .map(|k| self.tree.get(k).ok().flatten())
            .collect();
        let mut batch = sled::Batch::default();
        batch.insert("base", &base.0[..]);
        batch.insert("head", &commit.0[..]);
        batch.insert("ahead", &ahead.to_be_bytes()[..]);
        let r = self
            .tree
            .apply_batch(batch)
            .and_then(|()| self.tree.flush().map(|_| ()));
        if let Err(e) = r {
            let mut undo = sled::Batch::default();
            for (k, v) in keys.iter().zip(before) {
                match v {
                    Some(v) => undo.insert(*k, v),
                    None => undo.remove(*k),
                }
            }
            let _ = self.tree.apply_batch(undo);
            return Err(match e {
                sled::Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => {
                    VcsError::NoSpace(format!("recording the commit: {io}"))
                }
                e => VcsError::Lower(format!("recording the commit: {e}")),
            });
        }
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
) -> Result<(Vec<u8>, usize), VcsError> {
    let err = |e: git2::Error| VcsError::Lower(e.to_string());
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

    /// A file larger than what is read into memory is committed through a loose object written
    /// as the scan reads it: the blob is exactly the file, under the id the scan computed, and
    /// a commit that fails takes it back with nothing left in the repository.
    #[test]
    fn a_large_file_is_committed_through_a_loose_object_and_taken_back() {
        use crate::vcs::scan::{read_entry, Entry, IN_MEMORY_MAX};
        use std::os::fd::AsFd;
        let store = tempfile::tempdir().expect("store");
        let upper = tempfile::tempdir().expect("upper");
        let repo = open_staging(store.path()).expect("staging");
        let len = usize::try_from(IN_MEMORY_MAX).expect("usize") * 2 + 7;
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
        std::fs::write(upper.path().join("big"), &data).expect("write");
        let listing = |dir: &Path| {
            let mut all: Vec<_> = walkdir::WalkDir::new(dir)
                .into_iter()
                .map(|e| e.expect("walk").path().to_path_buf())
                .collect();
            all.sort();
            all
        };
        let before = listing(repo.path());
        let mut w = Writer::new(&repo).expect("writer");
        let d = std::fs::File::open(upper.path()).expect("open upper");
        let want = crate::vcs::scan::Sink::wants(&BlobSink { writer: &mut w });
        let Ok(Entry::Blob {
            oid,
            content: Some(Content::Loose(blob)),
            ..
        }) = read_entry(d.as_fd(), std::ffi::OsStr::new("big"), &want)
        else {
            panic!("a large file is read into an object");
        };
        w.place_loose(blob, git_oid(oid).expect("oid"))
            .expect("placed");
        let found = repo
            .find_blob(git_oid(oid).expect("oid"))
            .expect("the blob");
        assert!(found.content() == &data[..], "the blob is not the file");
        assert_eq!(
            found.id(),
            git2::Oid::hash_object(git2::ObjectType::Blob, &data).expect("id")
        );
        drop(found);
        assert_eq!(w.roll_back(), 1);
        assert_eq!(listing(repo.path()), before, "the failed commit left files");
    }
}

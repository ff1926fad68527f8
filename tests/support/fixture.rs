//! Git repository fixtures, built directly with git2 (no `git` processes).
//!
//! Every fixture is a BARE repository in its own temporary directory, with one branch
//! `refs/heads/main` that HEAD points to. Commits use a fixed signature and fixed times, so the
//! same fixture always has the same commit id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::{FileMode, ObjectType, Oid, Repository, RepositoryInitOptions, Signature, Time, Tree};

/// A bare git repository in a temporary directory.
pub struct Fixture {
    /// Owns the temporary directory; the repository is deleted when the fixture is dropped.
    pub dir: tempfile::TempDir,
    /// Path of the bare repository (inside `dir`).
    pub repo_path: PathBuf,
    /// Hex id of the commit the fixture was built with (the first commit of `main`).
    /// `add_commit` does not change it; use [`head`] for the current tip.
    pub commit: String,
}

impl Fixture {
    /// Opens the bare repository.
    pub fn open(&self) -> Repository {
        Repository::open_bare(&self.repo_path)
            .unwrap_or_else(|e| panic!("open fixture repo {}: {e}", self.repo_path.display()))
    }
}

/// The branch every fixture commits to.
pub const MAIN_REF: &str = "refs/heads/main";

/// Fixed author/committer of fixture commits.
pub const AUTHOR_NAME: &str = "Scorpio Fixture";
pub const AUTHOR_EMAIL: &str = "fixture@scorpio.test";
/// Commit time (unix seconds) of the first fixture commit; `add_commit` adds 60 s per commit.
pub const BASE_TIME: i64 = 1_700_000_000;
/// Message of the first commit of `standard()`.
pub const STANDARD_MESSAGE: &str = "Initial fixture commit";

// ---- Interesting paths of `standard()` ----------------------------------------------------

/// A small text file in nested directories.
pub const DEEP_FILE: &str = "a/b/c.txt";
pub const DEEP_FILE_CONTENT: &[u8] = b"hello from a/b/c.txt\n";
/// A file four directories down.
pub const DEEPEST_FILE: &str = "a/b/d/e/deep.txt";
pub const DEEPEST_FILE_CONTENT: &[u8] = b"deep down in a/b/d/e\n";
/// An empty file.
pub const EMPTY_FILE: &str = "empty.txt";
/// An executable (mode 100755).
pub const EXEC_FILE: &str = "bin/run.sh";
pub const EXEC_FILE_CONTENT: &[u8] = b"#!/bin/sh\necho run\n";
/// Relative symlink at the root: `link-rel -> a/b/c.txt`.
pub const SYMLINK_REL: &str = "link-rel";
pub const SYMLINK_REL_TARGET: &str = "a/b/c.txt";
/// Relative symlink going up: `a/up -> ../empty.txt`.
pub const SYMLINK_UP: &str = "a/up";
pub const SYMLINK_UP_TARGET: &str = "../empty.txt";
/// Absolute symlink: `link-abs -> /etc/hostname`.
pub const SYMLINK_ABS: &str = "link-abs";
pub const SYMLINK_ABS_TARGET: &str = "/etc/hostname";
/// Names with spaces.
pub const SPACE_DIR: &str = "dir with space";
pub const SPACE_FILE: &str = "dir with space/file name.txt";
pub const SPACE_FILE_CONTENT: &[u8] = b"spaces in names\n";
/// Non-ASCII names.
pub const UNICODE_DIR: &str = "ünïcødé";
pub const UNICODE_FILE: &str = "ünïcødé/日本語.txt";
pub const UNICODE_FILE_CONTENT: &[u8] = "こんにちは, wörld\n".as_bytes();
/// A 20 MiB pseudo-random file (see [`big_blob_content`]).
pub const BIG_FILE: &str = "big/blob.bin";
pub const BIG_FILE_SIZE: usize = 20 * 1024 * 1024;
/// Seed of the xorshift generator for `BIG_FILE`.
pub const BIG_FILE_SEED: u64 = 0x9E37_79B9_7F4A_7C15;
/// A submodule (gitlink, mode 160000) pointing at a commit that is not in the repository.
pub const SUBMODULE: &str = "vendor/sub";
pub const SUBMODULE_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
/// Ordinary files at the root and in `src/`.
pub const README: &str = "README.md";
pub const README_CONTENT: &[u8] = b"# Fixture repository\n\nUsed by Scorpio's integration tests.\n";
pub const LIB_RS: &str = "src/lib.rs";
pub const LIB_RS_CONTENT: &[u8] = b"pub fn answer() -> u32 {\n    42\n}\n";

/// Every directory of `standard()` (trees, not counting the root or the gitlink), sorted.
pub const STANDARD_DIRS: &[&str] = &[
    "a",
    "a/b",
    "a/b/d",
    "a/b/d/e",
    "big",
    "bin",
    "dir with space",
    "src",
    "vendor",
    "ünïcødé",
];

/// What a non-directory entry of a fixture is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file, mode 100644.
    File,
    /// Executable file, mode 100755.
    Executable,
    /// Symbolic link, mode 120000 (the blob holds the target).
    Symlink,
    /// Submodule commit, mode 160000 (no object in this repository).
    Gitlink,
}

impl EntryKind {
    /// The git tree mode of this kind (e.g. `0o100644`).
    pub fn mode(self) -> i32 {
        match self {
            EntryKind::File => i32::from(FileMode::Blob),
            EntryKind::Executable => i32::from(FileMode::BlobExecutable),
            EntryKind::Symlink => i32::from(FileMode::Link),
            EntryKind::Gitlink => i32::from(FileMode::Commit),
        }
    }
}

/// One non-directory entry of a fixture tree.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: &'static str,
    pub kind: EntryKind,
    /// File content, symlink target, or (for a gitlink) the 40-hex commit id as ASCII.
    pub data: Vec<u8>,
}

/// Deterministic pseudo-random bytes (xorshift64, little-endian words).
pub fn xorshift_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = if seed == 0 {
        0x2545_F491_4F6C_DD1D
    } else {
        seed
    };
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Content of `BIG_FILE`: 20 MiB of xorshift output.
pub fn big_blob_content() -> Vec<u8> {
    xorshift_bytes(BIG_FILE_SEED, BIG_FILE_SIZE)
}

/// Every non-directory entry of `standard()`, sorted by path.
pub fn standard_entries() -> Vec<Entry> {
    let file = |path, data: &[u8]| Entry {
        path,
        kind: EntryKind::File,
        data: data.to_vec(),
    };
    let link = |path, target: &str| Entry {
        path,
        kind: EntryKind::Symlink,
        data: target.as_bytes().to_vec(),
    };
    let mut entries = vec![
        file(README, README_CONTENT),
        file(LIB_RS, LIB_RS_CONTENT),
        file(DEEP_FILE, DEEP_FILE_CONTENT),
        file(DEEPEST_FILE, DEEPEST_FILE_CONTENT),
        link(SYMLINK_UP, SYMLINK_UP_TARGET),
        file(EMPTY_FILE, b""),
        Entry {
            path: EXEC_FILE,
            kind: EntryKind::Executable,
            data: EXEC_FILE_CONTENT.to_vec(),
        },
        link(SYMLINK_REL, SYMLINK_REL_TARGET),
        link(SYMLINK_ABS, SYMLINK_ABS_TARGET),
        file(SPACE_FILE, SPACE_FILE_CONTENT),
        file(UNICODE_FILE, UNICODE_FILE_CONTENT),
        Entry {
            path: BIG_FILE,
            kind: EntryKind::File,
            data: big_blob_content(),
        },
        Entry {
            path: SUBMODULE,
            kind: EntryKind::Gitlink,
            data: SUBMODULE_COMMIT.as_bytes().to_vec(),
        },
    ];
    entries.sort_by(|a, b| a.path.cmp(b.path));
    entries
}

/// Paths of every non-directory entry of `standard()`, sorted.
pub fn standard_paths() -> Vec<&'static str> {
    let mut paths = vec![
        README,
        LIB_RS,
        DEEP_FILE,
        DEEPEST_FILE,
        SYMLINK_UP,
        EMPTY_FILE,
        EXEC_FILE,
        SYMLINK_REL,
        SYMLINK_ABS,
        SPACE_FILE,
        UNICODE_FILE,
        BIG_FILE,
        SUBMODULE,
    ];
    paths.sort_unstable();
    paths
}

fn signature(time: i64) -> Signature<'static> {
    Signature::new(AUTHOR_NAME, AUTHOR_EMAIL, &Time::new(time, 0)).expect("build fixture signature")
}

/// Creates a temporary directory with an empty bare repository whose HEAD is `refs/heads/main`.
fn init_bare() -> (tempfile::TempDir, PathBuf, Repository) {
    let dir = tempfile::Builder::new()
        .prefix("scorpio-fixture-")
        .tempdir()
        .expect("create fixture temp dir");
    let repo_path = dir.path().join("repo.git");
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).initial_head("main").mkpath(true);
    let repo = Repository::init_opts(&repo_path, &opts)
        .unwrap_or_else(|e| panic!("init bare repo {}: {e}", repo_path.display()));
    (dir, repo_path, repo)
}

/// A directory being assembled before it is written with a TreeBuilder.
enum Node {
    Leaf { oid: Oid, mode: i32 },
    Dir(BTreeMap<String, Node>),
}

fn insert_node(root: &mut BTreeMap<String, Node>, path: &str, oid: Oid, mode: i32) {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().expect("non-empty path");
    let mut cur = root;
    for part in parts {
        let node = cur
            .entry(part.to_string())
            .or_insert_with(|| Node::Dir(BTreeMap::new()));
        cur = match node {
            Node::Dir(map) => map,
            Node::Leaf { .. } => panic!("fixture path {path}: {part} is both a file and a dir"),
        };
    }
    let old = cur.insert(name.to_string(), Node::Leaf { oid, mode });
    assert!(old.is_none(), "fixture path {path} inserted twice");
}

fn write_tree(repo: &Repository, dir: &BTreeMap<String, Node>) -> Oid {
    let mut tb = repo.treebuilder(None).expect("new treebuilder");
    for (name, node) in dir {
        let (oid, mode) = match node {
            Node::Leaf { oid, mode } => (*oid, *mode),
            Node::Dir(sub) => (write_tree(repo, sub), i32::from(FileMode::Tree)),
        };
        tb.insert(name.as_str(), oid, mode)
            .unwrap_or_else(|e| panic!("treebuilder insert {name} ({mode:o}): {e}"));
    }
    tb.write().expect("write tree")
}

/// Writes `entries` (path, kind, data) as blobs + nested trees and returns the root tree id.
fn build_tree(repo: &Repository, entries: &[Entry]) -> Oid {
    let mut root = BTreeMap::new();
    for e in entries {
        let oid = match e.kind {
            EntryKind::Gitlink => {
                let hex = std::str::from_utf8(&e.data).expect("gitlink id is ASCII");
                Oid::from_str(hex).expect("gitlink id is 40 hex")
            }
            _ => repo.blob(&e.data).expect("write blob"),
        };
        insert_node(&mut root, e.path, oid, e.kind.mode());
    }
    write_tree(repo, &root)
}

fn commit_on_main(
    repo: &Repository,
    tree: Oid,
    time: i64,
    message: &str,
    parents: &[&git2::Commit<'_>],
) -> Oid {
    let sig = signature(time);
    let tree = repo.find_tree(tree).expect("find written tree");
    let oid = repo
        .commit(Some(MAIN_REF), &sig, &sig, message, &tree, parents)
        .expect("commit to refs/heads/main");
    repo.set_head(MAIN_REF)
        .expect("point HEAD at refs/heads/main");
    oid
}

/// The standard fixture: one commit on `main` with nested dirs, an empty file, an executable,
/// relative and absolute symlinks, names with spaces and non-ASCII characters, a 20 MiB
/// pseudo-random file and a submodule gitlink. See the path constants in this module.
pub fn standard() -> Fixture {
    let (dir, repo_path, repo) = init_bare();
    let tree = build_tree(&repo, &standard_entries());
    let commit = commit_on_main(&repo, tree, BASE_TIME, STANDARD_MESSAGE, &[]);
    Fixture {
        dir,
        repo_path,
        commit: commit.to_string(),
    }
}

/// Path of the `i`-th file of `generated(n, files_per_dir)`.
pub fn generated_path(i: usize, n_files: usize, files_per_dir: usize) -> String {
    let per_dir = files_per_dir.max(1);
    let n_dirs = n_files.div_ceil(per_dir);
    let d = i / per_dir;
    if n_dirs <= 256 {
        format!("d{d:04}/f{i:07}.txt")
    } else {
        format!("g{:04}/d{d:06}/f{i:07}.txt", d / 256)
    }
}

/// Content of the `i`-th file of `generated()`.
pub fn generated_content(i: usize) -> Vec<u8> {
    format!("generated file {i}\n").into_bytes()
}

/// A bare repository with `n_files` small distinct files, `files_per_dir` per directory (with an
/// extra level of grouping directories once there are more than 256 directories). Objects are
/// written into an in-memory pack and stored as one packfile, so large counts are fast.
pub fn generated(n_files: usize, files_per_dir: usize) -> Fixture {
    let (dir, repo_path, repo) = init_bare();
    let commit = {
        let odb = repo.odb().expect("open odb");
        let mempack = odb
            .add_new_mempack_backend(999)
            .expect("add mempack backend");
        let mut root = BTreeMap::new();
        for i in 0..n_files {
            let oid = repo.blob(&generated_content(i)).expect("write blob");
            insert_node(
                &mut root,
                &generated_path(i, n_files, files_per_dir),
                oid,
                i32::from(FileMode::Blob),
            );
        }
        let tree = write_tree(&repo, &root);
        let sig = signature(BASE_TIME);
        let tree = repo.find_tree(tree).expect("find written tree");
        let msg = format!("Generated {n_files} files, {files_per_dir} per directory");
        // Write the commit object only; the ref is set after the pack is on disk.
        let commit = repo
            .commit(None, &sig, &sig, &msg, &tree, &[])
            .expect("write commit");
        let mut buf = git2::Buf::new();
        mempack.dump(&repo, &mut buf).expect("dump mempack");
        let mut writer = odb.packwriter().expect("open packwriter");
        std::io::Write::write_all(&mut writer, &buf).expect("write pack");
        writer.commit().expect("index pack");
        mempack.reset().expect("reset mempack");
        commit
    };
    drop(repo);
    let repo = Repository::open_bare(&repo_path).expect("reopen generated repo");
    repo.reference(MAIN_REF, commit, true, "generated fixture")
        .expect("set refs/heads/main");
    repo.set_head(MAIN_REF).expect("point HEAD at main");
    Fixture {
        dir,
        repo_path,
        commit: commit.to_string(),
    }
}

/// Returns `base` with the blob `blob` at `parts` (creating directories as needed).
fn upsert(repo: &Repository, base: Option<&Tree<'_>>, parts: &[&str], blob: Oid) -> Oid {
    let mut tb = repo.treebuilder(base).expect("treebuilder from tree");
    let name = parts[0];
    let existing = base.and_then(|t| t.get_name(name).map(|e| (e.id(), e.filemode(), e.kind())));
    if parts.len() == 1 {
        let mode = match existing {
            Some((_, mode, _)) if mode == i32::from(FileMode::BlobExecutable) => mode,
            _ => i32::from(FileMode::Blob),
        };
        tb.insert(name, blob, mode)
            .unwrap_or_else(|e| panic!("insert {name}: {e}"));
    } else {
        let sub = match existing {
            Some((id, _, Some(ObjectType::Tree))) => {
                Some(repo.find_tree(id).expect("find subtree"))
            }
            _ => None,
        };
        let sub_oid = upsert(repo, sub.as_ref(), &parts[1..], blob);
        tb.insert(name, sub_oid, i32::from(FileMode::Tree))
            .unwrap_or_else(|e| panic!("insert dir {name}: {e}"));
    }
    tb.write().expect("write tree")
}

/// Adds or changes the file `path` (mode 100644, or 100755 if it was executable) on `main` as a
/// new commit whose parent is the current tip; returns the new commit's hex id. The commit time is
/// the parent's + 60 s, so the result is deterministic. `fx.commit` is not changed.
pub fn add_commit(fx: &Fixture, path: &str, content: &[u8]) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    assert!(!parts.is_empty(), "add_commit: empty path");
    let repo = fx.open();
    let parent = repo
        .find_reference(MAIN_REF)
        .and_then(|r| r.peel_to_commit())
        .expect("resolve refs/heads/main");
    let blob = repo.blob(content).expect("write blob");
    let base = parent.tree().expect("parent tree");
    let tree = upsert(&repo, Some(&base), &parts, blob);
    let time = parent.time().seconds() + 60;
    let msg = format!("Update {path}");
    commit_on_main(&repo, tree, time, &msg, &[&parent]).to_string()
}

/// The current tip of `main`, as hex.
pub fn head(fx: &Fixture) -> String {
    fx.open()
        .find_reference(MAIN_REF)
        .and_then(|r| r.peel_to_commit())
        .expect("resolve refs/heads/main")
        .id()
        .to_string()
}

/// Id of the object at `path` in `commit` (hex); `""` or `"/"` is the root tree.
/// `None` if the path does not exist.
pub fn entry_oid(fx: &Fixture, commit: &str, path: &str) -> Option<String> {
    let repo = fx.open();
    let commit = repo
        .find_commit(Oid::from_str(commit).expect("commit hex"))
        .expect("find commit");
    let tree = commit.tree().expect("commit tree");
    let rel = path.trim_matches('/');
    if rel.is_empty() {
        return Some(tree.id().to_string());
    }
    tree.get_path(Path::new(rel))
        .ok()
        .map(|e| e.id().to_string())
}

/// Raw body of the object `oid` (as `git cat-file <type> <oid>` prints it).
pub fn object_bytes(fx: &Fixture, oid: &str) -> Vec<u8> {
    let repo = fx.open();
    let odb = repo.odb().expect("open odb");
    let obj = odb
        .read(Oid::from_str(oid).expect("object hex"))
        .unwrap_or_else(|e| panic!("read object {oid}: {e}"));
    obj.data().to_vec()
}

/// A non-bare clone of a fixture, for making commits with the `git` CLI.
pub struct Worktree {
    /// Owns the checkout.
    pub dir: tempfile::TempDir,
}

impl Worktree {
    /// Clones `fx` into a fresh temporary directory.
    pub fn clone_of(fx: &Fixture) -> Worktree {
        let dir = tempfile::tempdir().expect("worktree");
        let out = super::daemon::run_with_timeout(
            std::process::Command::new("git")
                .arg("clone")
                .arg("-q")
                .arg(&fx.repo_path)
                .arg(dir.path()),
            60,
        );
        assert!(
            out.status.success(),
            "git clone: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Worktree { dir }
    }

    /// The checkout's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `git <args>` in the checkout; panics on failure; returns trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let out = super::daemon::run_with_timeout(
            std::process::Command::new("git")
                .arg("-C")
                .arg(self.path())
                .args(args),
            60,
        );
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Commits everything in the checkout as a test author; returns the new commit's id.
    pub fn commit_all(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            message,
        ]);
        self.git(&["rev-parse", "HEAD"])
    }
}

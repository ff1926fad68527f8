//! Unit tests of the listing cache's bound and of listing ahead of a walker: each directory is
//! asked of the remote once, and a rebase while listings run ahead shows only the new commit.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::*;
use crate::remote::local::LocalRemote;
use crate::remote::{ClChange, Listing, Oid, Remote, RemoteError};
use crate::store::{Bounds, ROOT_INO};

/// The local remote, counting the listings asked of it by path, each one slowed by `delay`,
/// and the sizes asked of it (one at a time, and in bulk: each call's length).
struct Counting {
    inner: LocalRemote,
    lists: Mutex<HashMap<String, usize>>,
    delay: Duration,
    sizes_one: Mutex<usize>,
    sizes_bulk: Mutex<Vec<usize>>,
}

impl Counting {
    fn counts(&self) -> HashMap<String, usize> {
        self.lists.lock().unwrap().clone()
    }
}

#[async_trait]
impl Remote for Counting {
    fn kind(&self) -> &'static str {
        "counting"
    }
    async fn resolve(&self, r: Option<&str>) -> Result<CommitInfo, RemoteError> {
        self.inner.resolve(r).await
    }
    async fn list_tree(
        &self,
        commit: &CommitInfo,
        path: &str,
        oid: Option<Oid>,
    ) -> Result<Listing, RemoteError> {
        *self
            .lists
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default() += 1;
        tokio::time::sleep(self.delay).await;
        self.inner.list_tree(commit, path, oid).await
    }
    async fn blob(&self, oid: Oid) -> Result<Bytes, RemoteError> {
        self.inner.blob(oid).await
    }
    async fn blob_size(&self, oid: Oid) -> Result<u64, RemoteError> {
        *self.sizes_one.lock().unwrap() += 1;
        self.inner.blob_size(oid).await
    }
    fn sizes_in_bulk(&self) -> bool {
        self.inner.sizes_in_bulk()
    }
    async fn blob_sizes(&self, oids: &[Oid]) -> Result<Vec<u64>, RemoteError> {
        self.sizes_bulk.lock().unwrap().push(oids.len());
        self.inner.blob_sizes(oids).await
    }
    async fn cl_changes(
        &self,
        cl: &str,
        base: &CommitInfo,
        at: &str,
    ) -> Result<Vec<ClChange>, RemoteError> {
        self.inner.cl_changes(cl, base, at).await
    }
}

/// Commits `dirs` x `subs` directories holding one file `v` with `content` (and `extra`, a
/// directory of its own, when given) as the new HEAD of the repository at `dir`.
fn commit_tree(dir: &Path, dirs: usize, subs: usize, content: &str, extra: Option<&str>) {
    let repo = git2::Repository::open(dir)
        .or_else(|_| git2::Repository::init(dir))
        .unwrap();
    for d in 0..dirs {
        for s in 0..subs {
            let p = dir.join(format!("d{d}/s{s}"));
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("v"), content).unwrap();
        }
    }
    if let Some(x) = extra {
        std::fs::create_dir_all(dir.join(x)).unwrap();
        std::fs::write(dir.join(x).join("new"), content).unwrap();
    }
    let mut index = repo.index().unwrap();
    index.clear().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("t", "t@e", &git2::Time::new(1_700_000_000, 0)).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, content, &tree, &parents)
        .unwrap();
}

/// A view of the repository's HEAD over a counting remote.
async fn counted_view(dir: &Path, delay: Duration) -> (Arc<Counting>, Arc<Dicfuse>) {
    let remote = Arc::new(Counting {
        inner: LocalRemote::open(&dir.join("repo")).unwrap(),
        lists: Mutex::new(HashMap::new()),
        delay,
        sizes_one: Mutex::new(0),
        sizes_bulk: Mutex::new(Vec::new()),
    });
    let bounds = Bounds {
        mem_bytes: 1 << 24,
        disk_bytes: 1 << 30,
        db_bytes: 1 << 24,
    };
    let store = Store::open(&dir.join("store"), remote.clone(), bounds).unwrap();
    let commit = remote.resolve(None).await.unwrap();
    store.inodes.bind("test", &commit).unwrap();
    let dic = Dicfuse::new(store, commit, 0, 0).with_list_ahead(8);
    (remote, Arc::new(dic))
}

/// Waits (bounded) until `remote` has been asked for `n` listings and nothing is being listed.
async fn settle(remote: &Counting, dic: &Dicfuse, n: usize) {
    for _ in 0..500 {
        let asked: usize = remote.counts().values().sum();
        if asked >= n && dic.lister.locks_held() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Whatever would still come late has time to.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Reads every directory as `find` does, returning the files' paths and nodes.
async fn walk(dic: &Dicfuse) -> Vec<(String, Node)> {
    let mut out = Vec::new();
    let mut todo = vec![(ROOT_INO, String::new())];
    while let Some((ino, path)) = todo.pop() {
        let entries = dic.dir_entries(ino, 2).await.unwrap();
        for e in entries {
            let child = e.attr.ino;
            let p = format!("{path}/{}", e.name.to_string_lossy());
            let node = dic.lower_node(child).unwrap();
            if node.kind.is_dir() {
                todo.push((child, p));
            } else {
                out.push((p, node));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_listing_cache_is_bounded_in_bytes() {
    let cache = listing_cache(1 << 20);
    let child = |i: u32| Child {
        ino: u64::from(i),
        node: Node {
            parent: 1,
            name: format!("file-{i:08}.txt").into_bytes(),
            kind: EntryKind::File,
            oid: None,
            size: Some(1),
        },
    };
    let listing: Arc<Vec<Child>> = Arc::new((0..100).map(child).collect());
    for dir in 0..2_000u64 {
        // Each its own listing, as a walk holds them.
        cache.insert(dir, Arc::new(listing.iter().cloned().collect()));
    }
    cache.run_pending_tasks();
    assert!(
        cache.weighted_size() <= 1 << 20,
        "{}",
        cache.weighted_size()
    );
    // A listing of 100 entries weighs what it holds: more than 10 KB.
    assert!(u64::from(listing_weight(&listing)) > 10_000);
    assert!(cache.entry_count() < 100, "{}", cache.entry_count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_lists_each_directory_once_with_listings_ahead() {
    let dir = tempfile::tempdir().unwrap();
    commit_tree(&dir.path().join("repo"), 6, 5, "a", None);
    let (remote, dic) = counted_view(dir.path(), Duration::from_millis(2)).await;
    let files = walk(&dic).await;
    assert_eq!(files.len(), 30);
    // The root, 6 directories, 30 subdirectories.
    settle(&remote, &dic, 37).await;
    let counts = remote.counts();
    assert_eq!(counts.len(), 37, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert_eq!(dic.directories_listed(), 37);
}

/// The inode of `name` in directory `parent`.
async fn child_ino(dic: &Arc<Dicfuse>, parent: u64, name: &str) -> u64 {
    let entries = dic.dir_entries(parent, 2).await.unwrap();
    entries
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.attr.ino)
        .unwrap_or_else(|| panic!("no {name} in {parent}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directorys_sizes_are_asked_once_in_bulk_when_the_first_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    commit_tree(&repo, 1, 1, "abc", None);
    std::fs::create_dir_all(repo.join("many")).unwrap();
    for i in 0..40 {
        std::fs::write(repo.join(format!("many/f{i:02}")), "x".repeat(i)).unwrap();
    }
    commit_tree(&repo, 1, 1, "abc", None);
    let (remote, dic) = counted_view(dir.path(), Duration::ZERO).await;
    let many = child_ino(&dic, ROOT_INO, "many").await;
    // A listing asks for no size, and shows none it does not know.
    let listed = dic.dir_entries(many, 2).await.unwrap();
    assert_eq!(listed.len(), 40);
    assert!(listed.iter().all(|e| !e.known), "a size was listed");
    assert_eq!(*remote.sizes_one.lock().unwrap(), 0);
    assert!(remote.sizes_bulk.lock().unwrap().is_empty());
    // The first size needed brings the directory's: one call, for all 40.
    for e in &listed {
        let i: u64 = e.name.to_str().unwrap()[1..].parse().unwrap();
        assert_eq!(dic.lower_attr(e.attr.ino).await.unwrap().size, i);
    }
    assert_eq!(*remote.sizes_bulk.lock().unwrap(), [40]);
    assert_eq!(*remote.sizes_one.lock().unwrap(), 0);
    // They are in the inode table now: listed with the entries, asked no more.
    let again = dic.dir_entries(many, 2).await.unwrap();
    for e in &again {
        let i: u64 = e.name.to_str().unwrap()[1..].parse().unwrap();
        assert!(e.known && e.attr.size == i, "{e:?}", e = e.name);
    }
    let d0 = child_ino(&dic, ROOT_INO, "d0").await;
    let s0 = child_ino(&dic, d0, "s0").await;
    let v = child_ino(&dic, s0, "v").await;
    assert_eq!(dic.lower_attr(v).await.unwrap().size, 3);
    assert_eq!(*remote.sizes_bulk.lock().unwrap(), [40, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_going_down_lists_subdirectories_ahead_one_level() {
    let dir = tempfile::tempdir().unwrap();
    commit_tree(&dir.path().join("repo"), 4, 3, "a", None);
    let (remote, dic) = counted_view(dir.path(), Duration::ZERO).await;
    // Listing the root alone is a look, not a walk: nothing more is fetched.
    dic.dir_entries(ROOT_INO, 0).await.unwrap();
    settle(&remote, &dic, 1).await;
    assert_eq!(remote.counts().into_keys().collect::<Vec<_>>(), [""]);
    // A directory read from its listed parent is a walk going down: its subdirectories are
    // listed ahead, not theirs (what the background lists starts nothing more).
    let d0 = child_ino(&dic, ROOT_INO, "d0").await;
    dic.dir_entries(d0, 0).await.unwrap();
    settle(&remote, &dic, 5).await;
    let mut listed: Vec<String> = remote.counts().into_keys().collect();
    listed.sort();
    assert_eq!(listed, ["", "d0", "d0/s0", "d0/s1", "d0/s2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebase_while_listings_run_ahead_shows_only_the_new_commit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    commit_tree(&repo, 6, 4, "old", None);
    let (remote, dic) = counted_view(dir.path(), Duration::from_millis(20)).await;
    // Reading `d0` from the root starts four listings ahead, each taking a while.
    dic.dir_entries(ROOT_INO, 0).await.unwrap();
    let d0 = child_ino(&dic, ROOT_INO, "d0").await;
    dic.dir_entries(d0, 0).await.unwrap();
    commit_tree(&repo, 6, 4, "new", Some("added"));
    let new = remote.resolve(None).await.unwrap();
    let plan = dic.plan_move(&new).await.unwrap();
    dic.rebase(new.clone(), &plan.updates).await.unwrap();
    assert_eq!(dic.commit().oid, new.oid);
    settle(&remote, &dic, 6).await;
    let new_blob = Oid::from_hex(
        &git2::Oid::hash_object(git2::ObjectType::Blob, b"new")
            .unwrap()
            .to_string(),
    )
    .unwrap();
    let files = walk(&dic).await;
    assert_eq!(files.len(), 6 * 4 + 1, "{files:?}");
    for (path, node) in &files {
        assert_eq!(node.oid, Some(new_blob), "{path} shows the old commit");
    }
}

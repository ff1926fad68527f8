//! Unit tests of prefetch jobs over a local repository (no FUSE): what is listed and fetched,
//! depth, a second run finding everything kept, refusals, cancel.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::dicfuse::Dicfuse;

/// A view of a repository with `top.txt`, `a/f.txt`, `a/b/g.txt`, `a/b/c/h.txt`, `d/i.txt`:
/// five directories (the root included), five files.
async fn view(dir: &Path) -> Arc<Dicfuse> {
    let repo = git2::Repository::init(dir.join("repo")).expect("init");
    let blob = |s: &str| repo.blob(s.as_bytes()).expect("blob");
    let tree = |entries: &[(&str, git2::Oid, i32)]| {
        let mut tb = repo.treebuilder(None).expect("tb");
        for (name, oid, mode) in entries {
            tb.insert(name, *oid, *mode).expect("insert");
        }
        tb.write().expect("write")
    };
    let c = tree(&[("h.txt", blob("h\n"), 0o100644)]);
    let b = tree(&[("g.txt", blob("gg\n"), 0o100644), ("c", c, 0o040000)]);
    let a = tree(&[("f.txt", blob("fff\n"), 0o100644), ("b", b, 0o040000)]);
    let d = tree(&[("i.txt", blob("iiii\n"), 0o100755)]);
    let root = tree(&[
        ("a", a, 0o040000),
        ("d", d, 0o040000),
        ("top.txt", blob("top\n"), 0o100644),
    ]);
    let sig = git2::Signature::now("t", "t@t").expect("sig");
    repo.commit(
        Some("HEAD"),
        &sig,
        &sig,
        "base",
        &repo.find_tree(root).expect("tree"),
        &[],
    )
    .expect("commit");
    crate::dicfuse::test_view(&dir.join("repo"), &dir.join("store")).await
}

fn req(path: &str, depth: Option<u32>, blobs: bool) -> Request {
    Request {
        path: path.into(),
        depth,
        blobs,
    }
}

async fn run(p: &Arc<Prefetcher>, r: Request) -> Snapshot {
    p.start(&r).await.expect("start").wait().await
}

#[tokio::test]
async fn trees_then_blobs_then_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = Prefetcher::new(view(dir.path()).await, 4);
    let s = run(&p, req("/", None, false)).await;
    assert_eq!(s.state, JobState::Done, "{s:?}");
    // Resolving `/` lists nothing; the walk lists all five directories.
    assert_eq!((s.dirs_fetched, s.dirs_kept), (5, 0), "{s:?}");
    assert_eq!((s.blobs_fetched, s.blobs_kept), (0, 0), "{s:?}");
    let s = run(&p, req("", None, true)).await;
    assert_eq!((s.dirs_fetched, s.dirs_kept), (0, 5), "{s:?}");
    assert_eq!(
        (s.blobs_fetched, s.bytes_fetched),
        (5, 4 + 4 + 3 + 2 + 5),
        "{s:?}"
    );
    let s = run(&p, req("", None, true)).await;
    assert_eq!((s.fetched(), s.kept()), (0, 10), "{s:?}");
    assert_eq!(s.bytes_kept, 18, "{s:?}");
    assert!(
        s.summary().contains("done; 0 directories listed, 5 kept"),
        "{}",
        s.summary()
    );
}

#[tokio::test]
async fn depth_limits_the_levels_listed() {
    let dir = tempfile::tempdir().unwrap();
    let p = Prefetcher::new(view(dir.path()).await, 2);
    // `a` (1) and `a/b` (2); not `a/b/c`.
    let s = run(&p, req("a", Some(2), true)).await;
    assert_eq!(s.dirs_fetched, 2, "{s:?}");
    // The blobs of the listed directories only: f.txt and g.txt.
    assert_eq!(s.blobs_fetched, 2, "{s:?}");
    // Resolving `a` listed the root; the walk then finds `a` and `a/b` kept, lists `a/b/c`.
    let s = run(&p, req("a", Some(3), false)).await;
    assert_eq!((s.dirs_fetched, s.dirs_kept), (1, 2), "{s:?}");
}

#[tokio::test]
async fn bad_requests_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = Prefetcher::new(view(dir.path()).await, 2);
    for (r, want) in [
        (req("../etc", None, false), "BadPath"),
        (req("a/./b", None, false), "BadPath"),
        (req("nope", None, false), "NotFound"),
        (req("top.txt", None, false), "NotDir"),
        (req("top.txt/x", None, false), "NotDir"),
        (req("a", Some(0), false), "BadDepth"),
    ] {
        let e = p.start(&r).await.err().unwrap_or_else(|| panic!("{r:?}"));
        assert!(format!("{e:?}").starts_with(want), "{r:?}: {e:?}");
    }
    assert!(p.list().is_empty());
    assert!(matches!(p.get("x"), Err(PrefetchError::NoJob(_))));
    assert!(matches!(p.cancel("x"), Err(PrefetchError::NoJob(_))));
}

#[tokio::test]
async fn cancel_ends_a_job_and_an_ended_job_stays_as_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let p = Prefetcher::new(view(dir.path()).await, 1);
    let job = p.start(&req("", None, true)).await.unwrap();
    let s = p.cancel(job.id()).unwrap();
    assert_eq!(s.state, JobState::Cancelled);
    assert_eq!(job.wait().await.state, JobState::Cancelled);
    let done = run(&p, req("d", None, false)).await;
    assert_eq!(p.cancel(&done.id).unwrap().state, JobState::Done);
    assert_eq!(p.list().len(), 2);
}

#[test]
fn repo_paths_and_bytes() {
    assert_eq!(repo_path("/a//b/").unwrap(), "a/b");
    assert_eq!(repo_path("/").unwrap(), "");
    assert!(repo_path("a/../b").is_err());
    assert!(repo_path("a\0").is_err());
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
}

//! Unit tests of the assembly: names, directories, CL layers and their policies, over a local
//! repository (no FUSE).

use std::path::Path;

use super::*;
use crate::remote::ClAction;

/// A view of a repository whose HEAD holds `a/f.txt` and `top.txt`, with the tag `cl1` on a
/// commit that changes `a/f.txt`, adds `a/new.txt` and removes `top.txt`.
async fn view(dir: &Path) -> (Arc<Dicfuse>, git2::Repository) {
    let repo = git2::Repository::init(dir.join("repo")).expect("init");
    let hello = repo.blob(b"hello\n").expect("blob");
    let tree = |entries: &[(&str, git2::Oid, i32)]| {
        let mut tb = repo.treebuilder(None).expect("tb");
        for (name, oid, mode) in entries {
            tb.insert(name, *oid, *mode).expect("insert");
        }
        tb.write().expect("write")
    };
    let a = tree(&[("f.txt", hello, 0o100644)]);
    let base = tree(&[("a", a, 0o040000), ("top.txt", hello, 0o100644)]);
    let sig = git2::Signature::now("t", "t@t").expect("sig");
    let base = repo
        .commit(
            Some("HEAD"),
            &sig,
            &sig,
            "base",
            &repo.find_tree(base).expect("tree"),
            &[],
        )
        .expect("commit");
    let changed = repo.blob(b"changed\n").expect("blob");
    let a2 = tree(&[("f.txt", changed, 0o100644), ("new.txt", hello, 0o100644)]);
    let cl = tree(&[("a", a2, 0o040000)]);
    let parent = repo.find_commit(base).expect("commit");
    let cl = repo
        .commit(
            None,
            &sig,
            &sig,
            "cl",
            &repo.find_tree(cl).expect("tree"),
            &[&parent],
        )
        .expect("commit");
    repo.reference("refs/tags/cl1", cl, true, "cl1")
        .expect("tag");
    drop(parent);
    let view = crate::dicfuse::test_view(&dir.join("repo"), &dir.join("store")).await;
    (view, repo)
}

/// Points `refs/tags/cl1` at a blob: the remote then fails on it without saying "not found",
/// as an unreachable remote does.
fn break_cl(repo: &git2::Repository) {
    let blob = repo.blob(b"not a commit").expect("blob");
    repo.reference("refs/tags/cl1", blob, true, "broken")
        .expect("tag");
}

/// Assembles `path` with `cl` at `d/layer/cl`, upper `d/layer/upper`.
async fn assemble_at(
    dic: &Arc<Dicfuse>,
    d: &Path,
    path: &str,
    cl: Option<(&str, ClSource)>,
) -> Result<OverlayFs, AssembleError> {
    let layer = d.join("layer");
    std::fs::create_dir_all(&layer).expect("layer");
    let dir = resolve_dir(dic, path).await?;
    let cl_dir = layer.join("cl");
    assemble(
        dic,
        Assembly {
            path,
            dir: &dir,
            cl: cl.map(|(name, source)| ClLayer {
                name,
                dir: &cl_dir,
                source,
            }),
            upper: &layer.join("upper"),
            work: &layer.join("work"),
            slot: Slot::FIRST,
        },
    )
    .await
}

#[test]
fn repository_paths_are_normalised() {
    assert_eq!(normalize("/").unwrap(), "");
    assert_eq!(normalize("/a//b/").unwrap(), "a/b");
    assert!(matches!(
        normalize("a/../b"),
        Err(AssembleError::BadPath(_, _))
    ));
    assert!(normalize("./a").is_err());
    assert!(normalize("a\0b").is_err());
}

#[test]
fn cl_names_are_one_path_free_token() {
    assert!(check_cl_name("42").is_ok());
    assert!(check_cl_name("feature-x_1.2").is_ok());
    assert!(check_cl_name(&"x".repeat(256)).is_ok());
    for bad in ["", "../x", "a b", "a/b", "a..b", "a\tb"] {
        assert!(
            matches!(check_cl_name(bad), Err(AssembleError::BadClName(n)) if n == bad),
            "{bad:?}"
        );
    }
}

/// The workspace's old rule (no `/`, no `..`, no whitespace) took these; the one rule refuses
/// them, as Antares always did.
#[test]
fn cl_names_the_old_workspace_rule_accepted_are_refused() {
    for bad in ["a\u{7}b".to_string(), "\u{0}".to_string(), "x".repeat(257)] {
        assert!(!bad.contains('/') && !bad.contains("..") && !bad.contains(char::is_whitespace));
        assert!(check_cl_name(&bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn directories_are_resolved_and_checked() {
    let d = tempfile::tempdir().expect("dir");
    let (dic, _repo) = view(d.path()).await;
    let root = resolve_dir(&dic, "").await.expect("root");
    assert_eq!(root.ino, crate::store::ROOT_INO);
    let a = resolve_dir(&dic, "a").await.expect("a");
    assert_eq!((a.parent, a.name.as_slice()), (root.ino, &b"a"[..]));
    assert!(matches!(
        resolve_dir(&dic, "nope").await,
        Err(AssembleError::NotInRepository(p)) if p == "nope"
    ));
    assert!(matches!(
        resolve_dir(&dic, "top.txt").await,
        Err(AssembleError::NotADirectory(p)) if p == "top.txt"
    ));
    assert!(matches!(
        resolve_dir(&dic, "top.txt/x").await,
        Err(AssembleError::Through { path, through }) if path == "top.txt/x" && through == "top.txt"
    ));
}

#[tokio::test]
async fn change_lists_are_fetched_or_refused() {
    let d = tempfile::tempdir().expect("dir");
    let (dic, repo) = view(d.path()).await;
    let changes = fetch_cl(&dic, "cl1", "").await.expect("cl1");
    let mut paths: Vec<_> = changes.iter().map(|c| c.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["a/f.txt", "a/new.txt", "top.txt"]);
    assert!(matches!(
        fetch_cl(&dic, "nope", "").await,
        Err(AssembleError::NoSuchCl(c)) if c == "nope"
    ));
    break_cl(&repo);
    assert!(matches!(
        fetch_cl(&dic, "cl1", "").await,
        Err(AssembleError::Cl { cl, .. }) if cl == "cl1"
    ));
}

#[tokio::test]
async fn a_plain_overlay_makes_its_upper_and_work() {
    let d = tempfile::tempdir().expect("dir");
    let (dic, _repo) = view(d.path()).await;
    assemble_at(&dic, d.path(), "a", None)
        .await
        .expect("assemble");
    assert!(d.path().join("layer/upper").is_dir());
    assert!(d.path().join("layer/work").is_dir());
    assert!(!d.path().join("layer/cl").exists());
}

#[tokio::test]
async fn a_cl_layer_is_built_aside_and_swapped_in_without_following_symlinks() {
    let d = tempfile::tempdir().expect("dir");
    let (dic, _repo) = view(d.path()).await;
    let layer = d.path().join("layer");
    let victim = d.path().join("victim");
    std::fs::create_dir_all(&victim).expect("victim");
    std::fs::write(victim.join("keep"), b"keep").expect("keep");
    std::fs::create_dir_all(&layer).expect("layer");
    // What a change list (or a crash) left where the layer and its aside copy go.
    std::os::unix::fs::symlink(&victim, layer.join("cl")).expect("symlink");
    std::os::unix::fs::symlink(&victim, layer.join("cl.new")).expect("symlink");
    assemble_at(&dic, d.path(), "a", Some(("cl1", ClSource::FetchOrReuse)))
        .await
        .expect("assemble");
    assert_eq!(std::fs::read(victim.join("keep")).expect("victim"), b"keep");
    let cl = layer.join("cl");
    assert!(std::fs::symlink_metadata(&cl).expect("cl").is_dir());
    assert_eq!(std::fs::read(cl.join("f.txt")).expect("f"), b"changed\n");
    assert_eq!(std::fs::read(cl.join("new.txt")).expect("new"), b"hello\n");
    // Under `a`, the deletion of `top.txt` does not apply.
    assert_eq!(std::fs::read_dir(&cl).expect("ls").count(), 2);
    assert!(!layer.join("cl.new").exists());
    assert_eq!(
        std::fs::read(layer.join("cl.done")).expect("marker"),
        b"cl1"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cl).expect("cl").permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[tokio::test]
async fn the_workspace_policy_reuses_its_layer_when_the_remote_fails() {
    let d = tempfile::tempdir().expect("dir");
    let (dic, repo) = view(d.path()).await;
    assemble_at(&dic, d.path(), "a", Some(("cl1", ClSource::FetchOrReuse)))
        .await
        .expect("build");
    break_cl(&repo);
    assemble_at(&dic, d.path(), "a", Some(("cl1", ClSource::FetchOrReuse)))
        .await
        .expect("the layer built before");
    let cl = d.path().join("layer/cl");
    assert_eq!(std::fs::read(cl.join("f.txt")).expect("f"), b"changed\n");
    // Built from another CL: not this one's layer.
    std::fs::write(d.path().join("layer/cl.done"), b"other").expect("marker");
    assert!(matches!(
        assemble_at(&dic, d.path(), "a", Some(("cl1", ClSource::FetchOrReuse))).await,
        Err(AssembleError::Cl { cl, .. }) if cl == "cl1"
    ));
    // A CL the remote does not have is never replaced by an old layer.
    std::fs::write(d.path().join("layer/cl.done"), b"gone").expect("marker");
    assert!(matches!(
        assemble_at(&dic, d.path(), "a", Some(("gone", ClSource::FetchOrReuse))).await,
        Err(AssembleError::NoSuchCl(c)) if c == "gone"
    ));
}

#[tokio::test]
async fn the_antares_policies_build_from_given_changes_or_reuse_what_is_built() {
    let d = tempfile::tempdir().expect("dir");
    let (dic, repo) = view(d.path()).await;
    let changes = vec![ClChange {
        path: "a/gone.txt".into(),
        action: ClAction::Delete,
    }];
    assemble_at(&dic, d.path(), "a", Some(("x", ClSource::Fetched(changes))))
        .await
        .expect("fetched");
    let cl = d.path().join("layer/cl");
    let names: Vec<_> = std::fs::read_dir(&cl)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["gone.txt"]);
    // No marker: that is the workspace's policy only.
    assert!(!d.path().join("layer/cl.done").exists());
    // Built already: used as it is, the remote is not asked.
    break_cl(&repo);
    assemble_at(&dic, d.path(), "a", Some(("cl1", ClSource::BuiltOrFetch)))
        .await
        .expect("built");
    assert!(cl.join("gone.txt").exists());
    // Not built: fetched, and the remote's failure is the answer.
    std::fs::remove_dir_all(&cl).expect("rm");
    assert!(matches!(
        assemble_at(&dic, d.path(), "a", Some(("cl1", ClSource::BuiltOrFetch))).await,
        Err(AssembleError::Cl { cl, .. }) if cl == "cl1"
    ));
}

#[tokio::test]
async fn a_cl_with_nothing_under_the_path_is_refused_and_nothing_is_touched() {
    let d = tempfile::tempdir().expect("dir");
    let (dic, _repo) = view(d.path()).await;
    assemble_at(&dic, d.path(), "a", Some(("cl1", ClSource::FetchOrReuse)))
        .await
        .expect("build");
    let layer = d.path().join("layer");
    // Changes only elsewhere, or none at all: refused, whatever the source.
    let elsewhere = vec![ClChange {
        path: "top.txt".into(),
        action: ClAction::Delete,
    }];
    for changes in [elsewhere, Vec::new()] {
        assert!(matches!(
            assemble_at(&dic, d.path(), "a", Some(("cl2", ClSource::Fetched(changes)))).await,
            Err(AssembleError::ClNothingHere { cl, path }) if cl == "cl2" && path == "a"
        ));
    }
    // A change of the mounted directory itself is not one under it.
    let itself = vec![ClChange {
        path: "a".into(),
        action: ClAction::Delete,
    }];
    assert!(check_cl_here("x", &itself, "a").is_err());
    assert!(check_cl_here("x", &itself, "").is_ok());
    // The layer built before, and its marker, are as they were.
    assert_eq!(
        std::fs::read(layer.join("cl/f.txt")).expect("f"),
        b"changed\n"
    );
    assert_eq!(
        std::fs::read(layer.join("cl.done")).expect("marker"),
        b"cl1"
    );
    assert!(!layer.join("cl.new").exists());
}

#[tokio::test]
async fn a_swappable_overlay_swaps_and_drops_its_cl_layer_and_names_what_changed() {
    let d = tempfile::tempdir().expect("dir");
    let (dic, _repo) = view(d.path()).await;
    let layer = d.path().join("layer");
    std::fs::create_dir_all(&layer).expect("layer");
    let cl_dir = layer.join("cl");
    let dir = resolve_dir(&dic, "a").await.expect("a");
    let ovl = assemble_swappable(
        &dic,
        Assembly {
            path: "a",
            dir: &dir,
            cl: None,
            upper: &layer.join("upper"),
            work: &layer.join("work"),
            slot: Slot::FIRST,
        },
    )
    .await
    .expect("assemble");
    let root = ovl.root_ino();
    let f = ovl
        .lookup_entry(root, OsStr::new("f.txt"))
        .await
        .expect("f")
        .attr
        .ino;
    let read = |ino| {
        let ovl = &ovl;
        async move { ovl.read_at(ino, 0, 100).await.map(|r| r.data.to_vec()) }
    };
    assert_eq!(read(f).await.expect("read"), b"hello\n");
    // A layer that cannot be opened is refused; the overlay shows what it showed.
    assert!(ovl.swap_cl(Some(&layer.join("absent"))).await.is_err());
    assert_eq!(read(f).await.expect("read"), b"hello\n");
    let changes = fetch_cl(&dic, "cl1", "a").await.expect("changes");
    let aside = build_beside(&dic, "a", "cl1", &cl_dir, &changes)
        .await
        .expect("built beside");
    let changed = ovl.swap_cl(Some(&aside)).await.expect("swap");
    // The same inode shows the CL's content; its name and the CL's new one are named.
    assert_eq!(read(f).await.expect("read"), b"changed\n");
    assert!(changed.inodes.contains(&f) && changed.inodes.contains(&root));
    for name in ["f.txt", "new.txt"] {
        assert!(
            changed.entries.contains(&(root, name.into())),
            "{name}: {changed:?}"
        );
    }
    retire_layer(&cl_dir).expect("retire");
    promote_beside(&cl_dir).expect("promote");
    assert_eq!(
        std::fs::read(cl_dir.join("f.txt")).expect("f"),
        b"changed\n"
    );
    assert_eq!(read(f).await.expect("read after the move"), b"changed\n");
    assert!(ovl.lookup_entry(root, OsStr::new("new.txt")).await.is_ok());
    // Dropped: the commit again, the CL's file gone.
    ovl.swap_cl(None).await.expect("drop");
    assert_eq!(read(f).await.expect("read"), b"hello\n");
    assert!(ovl.lookup_entry(root, OsStr::new("new.txt")).await.is_err());
    // A plain overlay's lower is not layered: nothing to swap.
    let plain = assemble_at(&dic, &d.path().join("p"), "a", None)
        .await
        .expect("plain");
    assert!(matches!(
        plain.swap_cl(None).await,
        Err(crate::overlay::OverlayError::Errno(libc::EINVAL))
    ));
}

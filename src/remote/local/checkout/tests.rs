//! git's `receive.denyCurrentBranch` rule, checked on repositories made with git2.

use std::path::Path;

use git2::{Repository, RepositoryInitOptions, Signature};

use super::{checked_out_in, deny_current_branch, guard, Deny};
use crate::remote::PushError;

const MAIN: &str = "refs/heads/main";

fn init(dir: &Path, bare: bool) -> Repository {
    let mut opts = RepositoryInitOptions::new();
    opts.bare(bare).initial_head("main");
    Repository::init_opts(dir, &opts).expect("init")
}

/// A commit of `files` (path, content) whose parent is `parent`, not on any ref.
fn commit(repo: &Repository, files: &[(&str, &str)], parent: Option<git2::Oid>) -> git2::Oid {
    let mut tb = repo.treebuilder(None).expect("treebuilder");
    for (p, c) in files {
        let blob = repo.blob(c.as_bytes()).expect("blob");
        tb.insert(p, blob, 0o100644).expect("insert");
    }
    let tree = repo
        .find_tree(tb.write().expect("tree"))
        .expect("find tree");
    let sig = Signature::now("t", "t@t").expect("sig");
    let parents: Vec<git2::Commit<'_>> = parent
        .map(|p| repo.find_commit(p).expect("parent"))
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(None, &sig, &sig, "c", &tree, &parents)
        .expect("commit")
}

/// A non-bare repository with `main` at a commit of `f = a`, checked out (index and tree).
fn checkout_repo(dir: &Path) -> (Repository, git2::Oid) {
    let repo = init(dir, false);
    let a = commit(&repo, &[("f", "a\n")], None);
    repo.reference(MAIN, a, true, "init").expect("main");
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .expect("checkout");
    (repo, a)
}

fn set_deny(repo: &Repository, value: &str) {
    repo.config()
        .expect("config")
        .set_str("receive.denyCurrentBranch", value)
        .expect("set");
}

fn refused_reason(r: Result<Option<super::CheckedOut>, PushError>) -> String {
    match r {
        Err(PushError::Refused { refname, reason }) => {
            assert_eq!(refname, MAIN);
            reason
        }
        Err(e) => panic!("not a refusal: {e}"),
        Ok(_) => panic!("not refused"),
    }
}

#[test]
fn the_setting_reads_as_git_reads_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("config");
    let read = |text: &str| {
        std::fs::write(&path, text).expect("write");
        let cfg = git2::Config::open(&path).expect("open");
        deny_current_branch(&cfg)
    };
    assert_eq!(read(""), Ok(Deny::Refuse), "unset is git's default");
    for (v, want) in [
        ("refuse", Deny::Refuse),
        ("true", Deny::Refuse),
        ("yes", Deny::Refuse),
        ("ignore", Deny::Ignore),
        ("false", Deny::Ignore),
        ("0", Deny::Ignore),
        ("warn", Deny::Warn),
        ("updateInstead", Deny::UpdateInstead),
        ("UPDATEINSTEAD", Deny::UpdateInstead),
    ] {
        let got = read(&format!("[receive]\n\tdenyCurrentBranch = {v}\n"));
        assert_eq!(got, Ok(want), "{v}");
    }
    assert_eq!(
        read("[receive]\n\tdenyCurrentBranch\n"),
        Ok(Deny::Refuse),
        "a key without a value is true"
    );
    let bad = read("[receive]\n\tdenyCurrentBranch = sometimes\n").expect_err("unknown");
    assert!(
        bad.contains("sometimes") && bad.contains("updateInstead"),
        "{bad}"
    );
}

#[test]
fn only_a_branch_some_working_tree_has_checked_out_counts() {
    let dir = tempfile::tempdir().expect("tmp");
    let (repo, a) = checkout_repo(&dir.path().join("clone"));
    let found = checked_out_in(&repo, MAIN).expect("look").expect("main");
    assert_eq!(
        found.0.canonicalize().expect("canon"),
        dir.path().join("clone").canonicalize().expect("canon")
    );
    assert!(checked_out_in(&repo, "refs/heads/other")
        .expect("look")
        .is_none());
    // A linked worktree on `feature`: found from the main repository and from itself; from
    // the linked worktree, the main working tree's branch is found too.
    let feature = repo
        .branch("feature", &repo.find_commit(a).expect("a"), false)
        .expect("branch");
    let mut wopts = git2::WorktreeAddOptions::new();
    wopts.reference(Some(feature.get()));
    let wt_path = dir.path().join("linked");
    let wt = repo
        .worktree("linked", &wt_path, Some(&wopts))
        .expect("add");
    let found = checked_out_in(&repo, "refs/heads/feature")
        .expect("look")
        .expect("feature");
    assert_eq!(
        found.0.canonicalize().expect("canon"),
        wt_path.canonicalize().expect("canon")
    );
    let linked = Repository::open_from_worktree(&wt).expect("open linked");
    assert!(checked_out_in(&linked, "refs/heads/feature")
        .expect("look")
        .is_some());
    assert!(checked_out_in(&linked, MAIN).expect("look").is_some());
    // Detached: no branch is checked out.
    repo.set_head_detached(a).expect("detach");
    assert!(checked_out_in(&repo, MAIN).expect("look").is_none());
    // A bare repository has no working tree.
    let bare = init(&dir.path().join("bare.git"), true);
    let b = commit(&bare, &[("f", "a\n")], None);
    bare.reference(MAIN, b, true, "init").expect("main");
    assert!(checked_out_in(&bare, MAIN).expect("look").is_none());
    assert!(guard(&bare, MAIN).expect("bare pushes").is_none());
}

#[test]
fn refused_by_default_and_by_refuse_pushed_by_ignore_and_warn() {
    let dir = tempfile::tempdir().expect("tmp");
    let (repo, _) = checkout_repo(dir.path());
    let reason = refused_reason(guard(&repo, MAIN));
    assert!(
        reason.contains("checked out in the working tree")
            && reason.contains("bare repository")
            && reason.contains("receive.denyCurrentBranch updateInstead"),
        "{reason}"
    );
    set_deny(&repo, "refuse");
    refused_reason(guard(&repo, MAIN));
    for v in ["ignore", "false", "warn"] {
        set_deny(&repo, v);
        assert!(guard(&repo, MAIN).expect(v).is_none(), "{v}");
    }
    // Another branch is never this rule's business.
    set_deny(&repo, "refuse");
    assert!(guard(&repo, "refs/heads/other").expect("other").is_none());
}

#[test]
fn update_instead_switches_a_clean_tree_and_puts_it_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let (repo, a) = checkout_repo(dir.path());
    set_deny(&repo, "updateInstead");
    // Untracked files and ignored directories do not make it dirty.
    std::fs::write(dir.path().join("untracked"), b"u").expect("untracked");
    std::fs::write(dir.path().join(".git/info/exclude"), b"/target/\n").expect("exclude");
    std::fs::create_dir_all(dir.path().join("target/deep")).expect("mkdir");
    std::fs::write(dir.path().join("target/deep/x"), b"x").expect("ignored");
    let b = commit(&repo, &[("f", "b\n"), ("g", "new\n")], Some(a));
    let wt = guard(&repo, MAIN)
        .expect("clean")
        .expect("a tree to update");
    wt.update(a, b).expect("switch");
    assert_eq!(std::fs::read(dir.path().join("f")).expect("f"), b"b\n");
    assert_eq!(std::fs::read(dir.path().join("g")).expect("g"), b"new\n");
    // The index is B's: once the ref moves, nothing is dirty.
    repo.reference(MAIN, b, true, "moved").expect("move");
    assert!(super::dirty_paths(&repo).expect("status").is_empty());
    // Put back (as after a compare-and-swap that failed): A's files and index.
    repo.reference(MAIN, a, true, "back").expect("move back");
    wt.restore(b, a).expect("restore");
    assert_eq!(std::fs::read(dir.path().join("f")).expect("f"), b"a\n");
    assert!(!dir.path().join("g").exists());
    assert!(super::dirty_paths(&repo).expect("status").is_empty());
    assert_eq!(
        std::fs::read(dir.path().join("untracked")).expect("kept"),
        b"u"
    );
    assert!(dir.path().join("target/deep/x").exists());
}

#[test]
fn update_instead_refuses_a_dirty_tree_or_index_and_files_in_the_way() {
    let dir = tempfile::tempdir().expect("tmp");
    let (repo, a) = checkout_repo(dir.path());
    set_deny(&repo, "updateInstead");
    std::fs::write(dir.path().join("f"), b"mine\n").expect("edit");
    let reason = refused_reason(guard(&repo, MAIN));
    assert!(
        reason.contains("uncommitted changes") && reason.contains("(f)"),
        "{reason}"
    );
    assert_eq!(std::fs::read(dir.path().join("f")).expect("f"), b"mine\n");
    // Staged, with the tree matching the index: dirty as well.
    let mut index = repo.index().expect("index");
    index.add_path(Path::new("f")).expect("stage");
    index.write().expect("write index");
    refused_reason(guard(&repo, MAIN));
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .expect("clean again");
    // An untracked file where the pushed commit adds one: the checkout refuses, changes nothing.
    let b = commit(&repo, &[("f", "b\n"), ("g", "new\n")], Some(a));
    std::fs::write(dir.path().join("g"), b"untracked\n").expect("untracked");
    let wt = guard(&repo, MAIN)
        .expect("clean")
        .expect("a tree to update");
    let err = wt.update(a, b).expect_err("in the way");
    assert!(err.contains("in the way") && err.contains('g'), "{err}");
    assert_eq!(std::fs::read(dir.path().join("f")).expect("f"), b"a\n");
    assert_eq!(
        std::fs::read(dir.path().join("g")).expect("g"),
        b"untracked\n"
    );
}
